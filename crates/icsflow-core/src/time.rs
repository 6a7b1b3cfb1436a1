//! Instants and calendar dates, and the rule for which timestamps are
//! plausible.
//!
//! Nothing here reads the clock. When a check needs "now" (is this event in
//! the future?), the caller puts it in a [`TimestampPolicy`]; replaying
//! history or running simulated time simply passes no wall-clock instant.

use crate::rejection::{RejectReason, Rejection};

/// An instant, as milliseconds since 1970-01-01T00:00:00Z (Avro
/// `timestamp-millis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MILLIS_PER_DAY: i64 = 86_400_000;

    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The UTC calendar date this instant falls on.
    pub const fn date(self) -> Date {
        Date(self.0.div_euclid(Timestamp::MILLIS_PER_DAY) as i32)
    }
}

/// A calendar date, as days since 1970-01-01 (Avro `date`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(i32);

impl Date {
    pub const fn from_days_since_epoch(days: i32) -> Date {
        Date(days)
    }

    pub const fn days_since_epoch(self) -> i32 {
        self.0
    }

    /// Midnight UTC at the start of this date.
    pub const fn start(self) -> Timestamp {
        Timestamp(self.0 as i64 * Timestamp::MILLIS_PER_DAY)
    }
}

/// Which timestamps a record may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampPolicy {
    /// The wall-clock instant the record is checked at, or `None` when the
    /// clock is simulated or history is being replayed (no future check).
    pub now: Option<Timestamp>,
    /// How far `occurred_at` may run after `recorded_at`, and a timestamp
    /// into the future, before the record is refused (clock skew).
    pub tolerance_millis: i64,
}

impl TimestampPolicy {
    /// Five minutes of clock skew between partner systems.
    pub const DEFAULT_TOLERANCE_MILLIS: i64 = 5 * 60 * 1000;
    /// 2000-01-01T00:00:00Z: no earlier event is plausible in these feeds.
    pub const EARLIEST: Timestamp = Timestamp(946_684_800_000);
    /// 2100-01-01T00:00:00Z: a guard against unit mistakes (microseconds
    /// sent as milliseconds) when no wall clock is given.
    pub const LATEST: Timestamp = Timestamp(4_102_444_800_000);

    pub const fn wall_clock(now: Timestamp) -> TimestampPolicy {
        TimestampPolicy {
            now: Some(now),
            tolerance_millis: TimestampPolicy::DEFAULT_TOLERANCE_MILLIS,
        }
    }

    pub const fn without_clock() -> TimestampPolicy {
        TimestampPolicy {
            now: None,
            tolerance_millis: TimestampPolicy::DEFAULT_TOLERANCE_MILLIS,
        }
    }

    /// Checks an event's two timestamps against each other and the clock.
    pub fn check(&self, occurred_at: Timestamp, recorded_at: Timestamp) -> Result<(), Rejection> {
        for (field, instant) in [("occurred_at", occurred_at), ("recorded_at", recorded_at)] {
            if instant < TimestampPolicy::EARLIEST || instant > TimestampPolicy::LATEST {
                return Err(Rejection::in_field(
                    RejectReason::TimestampOutOfRange,
                    field,
                    "timestamps are milliseconds since 1970 between the years 2000 and 2100",
                ));
            }
        }
        if occurred_at.0.saturating_sub(recorded_at.0) > self.tolerance_millis {
            return Err(Rejection::in_field(
                RejectReason::TimestampOutOfRange,
                "occurred_at",
                "occurred_at is later than recorded_at",
            ));
        }
        if let Some(now) = self.now {
            if recorded_at.0.saturating_sub(now.0) > self.tolerance_millis {
                return Err(Rejection::in_field(
                    RejectReason::TimestampOutOfRange,
                    "recorded_at",
                    "recorded_at is in the future",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: Timestamp = Timestamp(1_767_268_800_000); // 2026-01-01T12:00:00Z
    const MINUTE: i64 = 60_000;

    fn at(offset_minutes: i64) -> Timestamp {
        Timestamp(NOON.0 + offset_minutes * MINUTE)
    }

    #[test]
    fn dates_and_midnights() {
        assert_eq!(NOON.date(), Date(20454));
        assert_eq!(NOON.date().start(), Timestamp(NOON.0 - 12 * 60 * MINUTE));
        assert_eq!(Timestamp(-1).date(), Date(-1));
    }

    #[test]
    fn occurred_after_recorded_within_tolerance_only() {
        let policy = TimestampPolicy::without_clock();
        assert_eq!(policy.check(at(0), at(0)), Ok(()));
        assert_eq!(policy.check(at(-600), at(0)), Ok(()));
        assert_eq!(policy.check(at(5), at(0)), Ok(()));
        let rejection = policy.check(at(6), at(0)).expect_err("too late");
        assert_eq!(
            (rejection.reason, rejection.field),
            (RejectReason::TimestampOutOfRange, Some("occurred_at"))
        );
    }

    #[test]
    fn future_is_checked_only_against_a_wall_clock() {
        let policy = TimestampPolicy::wall_clock(at(0));
        assert_eq!(policy.check(at(4), at(5)), Ok(()));
        let rejection = policy.check(at(0), at(6)).expect_err("future");
        assert_eq!(rejection.field, Some("recorded_at"));
        assert_eq!(
            TimestampPolicy::without_clock().check(at(100_000), at(100_000)),
            Ok(())
        );
    }

    #[test]
    fn implausible_instants() {
        let policy = TimestampPolicy::without_clock();
        let micros = Timestamp(NOON.0 * 1000);
        assert_eq!(
            policy
                .check(micros, micros)
                .map_err(|rejection| rejection.field),
            Err(Some("occurred_at"))
        );
        assert!(policy.check(Timestamp(0), NOON).is_err());
    }
}
