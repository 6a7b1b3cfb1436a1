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

    /// The calendar date in England (Europe/London: GMT, or BST from 01:00
    /// UTC on the last Sunday of March to 01:00 UTC on the last Sunday of
    /// October). Midnights, lengths of stay and delays are counted on this
    /// calendar, as the NHS counts them.
    pub fn london_date(self) -> Date {
        let utc_date = self.date();
        let (summer_starts, summer_ends) = british_summer_time(utc_date);
        if self.0 >= summer_starts && self.0 < summer_ends {
            Timestamp(self.0 + 3_600_000).date()
        } else {
            utc_date
        }
    }
}

/// The instants (milliseconds) British Summer Time starts and ends in the
/// year of `utc_date`. Years 2000 to 2100, the only ones validation lets
/// through, come from a table computed once; the journey engine asks for
/// every event it applies.
fn british_summer_time(utc_date: Date) -> (i64, i64) {
    const FIRST_YEAR: i32 = 2000;
    const YEARS: usize = 101;
    static TABLE: std::sync::OnceLock<[(i32, i64, i64); YEARS]> = std::sync::OnceLock::new();
    let compute = |year: i32| {
        (
            last_sunday(year, 3).start().0 + 3_600_000,
            last_sunday(year, 10).start().0 + 3_600_000,
        )
    };
    let table = TABLE.get_or_init(|| {
        let mut table = [(0, 0, 0); YEARS];
        for (offset, entry) in table.iter_mut().enumerate() {
            let year = FIRST_YEAR + offset as i32;
            let (starts, ends) = compute(year);
            *entry = (days_from_civil(year, 1, 1), starts, ends);
        }
        table
    });
    let index = table.partition_point(|(first_day, _, _)| *first_day <= utc_date.0);
    match index.checked_sub(1).and_then(|index| table.get(index)) {
        Some(&(_, starts, ends)) if index < YEARS => (starts, ends),
        _ => compute(civil_from_days(utc_date.0).0),
    }
}

/// The last Sunday of a month (March and October change the clocks).
fn last_sunday(year: i32, month: u32) -> Date {
    let days_in_month = match month {
        3 | 10 => 31,
        _ => 30,
    };
    let last_day = days_from_civil(year, month, days_in_month);
    // 1970-01-01 was a Thursday: weekday 0 = Sunday is (days + 4) mod 7.
    let weekday = (last_day + 4).rem_euclid(7);
    Date(last_day - weekday)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era =
        year_of_era as u32 * 365 + year_of_era as u32 / 4 - year_of_era as u32 / 100 + day_of_year;
    era * 146_097 + day_of_era as i32 - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097) as u32;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era as i32 + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// A calendar date, as days since 1970-01-01 (Avro `date`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(i32);

impl Date {
    /// A calendar date; `None` when the day does not exist in that month,
    /// or the year is beyond ±1,000,000 (never a panic, whatever the
    /// numbers: they may come from a command line).
    pub fn from_calendar(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(-1_000_000..=1_000_000).contains(&year)
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
        {
            return None;
        }
        let date = Date(days_from_civil(year, month, day));
        (civil_from_days(date.0) == (year, month, day)).then_some(date)
    }

    /// (year, month, day).
    pub fn to_calendar(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

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

impl Date {
    /// An ISO 8601 calendar date, `YYYY-MM-DD`; `None` otherwise.
    pub fn parse_iso8601(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        Date::from_calendar(
            digits(&bytes[0..4])? as i32,
            digits(&bytes[5..7])?,
            digits(&bytes[8..10])?,
        )
    }
}

impl Timestamp {
    /// An ISO 8601 (RFC 3339) date and time with its offset:
    /// `YYYY-MM-DDTHH:MM:SS`, optional fractions of a second (to the
    /// millisecond; further digits are dropped), then `Z` or `+HH:MM` /
    /// `-HH:MM`. A time without an offset is refused: it does not name an
    /// instant (and British Summer Time makes the guess wrong for half the
    /// year).
    pub fn parse_iso8601(text: &str) -> Option<Timestamp> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't' | b' ') {
            return None;
        }
        let date = Date::parse_iso8601(text.get(..10)?)?;
        if bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let (hour, minute, second) = (
            digits(&bytes[11..13])?,
            digits(&bytes[14..16])?,
            digits(&bytes[17..19])?,
        );
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut rest = &bytes[19..];
        let mut millis = 0_u32;
        if let Some(fraction) = rest.strip_prefix(b".") {
            let count = fraction
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            if count == 0 {
                return None;
            }
            for (index, digit) in fraction[..count].iter().take(3).enumerate() {
                millis += u32::from(digit - b'0') * [100, 10, 1][index];
            }
            rest = &fraction[count..];
        }
        let offset_minutes: i64 = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hours = i64::from(digits(&[*h1, *h2])?);
                let minutes = i64::from(digits(&[*m1, *m2])?);
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = hours * 60 + minutes;
                if *sign == b'-' {
                    -offset
                } else {
                    offset
                }
            }
            _ => return None,
        };
        let local = date.start().as_millis()
            + i64::from(hour * 3600 + minute * 60 + second) * 1000
            + i64::from(millis);
        Some(Timestamp(local - offset_minutes * 60_000))
    }
}

/// A run of ASCII digits as a number; `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0_u32, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
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
    #[test]
    fn iso_8601_dates_and_instants_with_an_offset_are_read_and_others_refused() {
        assert_eq!(
            Date::parse_iso8601("2026-01-05"),
            Date::from_calendar(2026, 1, 5)
        );
        assert_eq!(Date::parse_iso8601("2026-02-30"), None);
        assert_eq!(Date::parse_iso8601("2026-1-05"), None);
        // 1_767_607_200_000 is 2026-01-05T10:00:00Z.
        let instant = Some(Timestamp::from_millis(1_767_607_200_000));
        assert_eq!(Timestamp::parse_iso8601("2026-01-05T10:00:00Z"), instant);
        assert_eq!(
            Timestamp::parse_iso8601("2026-01-05T11:00:00+01:00"),
            instant
        );
        assert_eq!(
            Timestamp::parse_iso8601("2026-01-05T09:30:00-00:30"),
            instant
        );
        assert_eq!(
            Timestamp::parse_iso8601("2026-01-05T10:00:00.25Z"),
            Some(Timestamp::from_millis(1_767_607_200_250))
        );
        assert_eq!(
            Timestamp::parse_iso8601("2026-01-05T10:00:00.1239Z"),
            Some(Timestamp::from_millis(1_767_607_200_123))
        );
        for refused in [
            "2026-01-05T10:00:00",
            "2026-01-05T24:00:00Z",
            "2026-01-05T10:00:00+0100",
            "2026-01-05T10:00:00.Z",
            "2026-01-05",
            "1767607200000",
        ] {
            assert_eq!(Timestamp::parse_iso8601(refused), None, "{refused}");
        }
    }

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
    fn calendar_round_trips() {
        for days in -800_000..800_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(Date::from_calendar(2026, 1, 1), Some(Date(20454)));
        assert_eq!(
            Date::from_calendar(2024, 2, 29).map(Date::to_calendar),
            Some((2024, 2, 29))
        );
        assert_eq!(Date::from_calendar(2026, 2, 29), None);
    }

    #[test]
    fn london_dates_follow_british_summer_time() {
        let instant = |year, month, day, hour: i64, minute: i64| {
            let date = Date::from_calendar(year, month, day).expect("date");
            Timestamp(date.start().0 + (hour * 60 + minute) * MINUTE)
        };
        let date = |year, month, day| Date::from_calendar(year, month, day).expect("date");
        // Winter: 23:30 UTC is still the same day in London.
        assert_eq!(
            instant(2026, 1, 15, 23, 30).london_date(),
            date(2026, 1, 15)
        );
        // Summer: 23:30 UTC is 00:30 BST the next day.
        assert_eq!(
            instant(2026, 7, 15, 23, 30).london_date(),
            date(2026, 7, 16)
        );
        // 2026 clocks go forward on Sunday 29 March at 01:00 UTC and back
        // on Sunday 25 October at 01:00 UTC.
        assert_eq!(
            instant(2026, 3, 28, 23, 30).london_date(),
            date(2026, 3, 28)
        );
        assert_eq!(
            instant(2026, 3, 29, 23, 30).london_date(),
            date(2026, 3, 30)
        );
        assert_eq!(
            instant(2026, 10, 24, 23, 30).london_date(),
            date(2026, 10, 25)
        );
        assert_eq!(
            instant(2026, 10, 25, 23, 30).london_date(),
            date(2026, 10, 25)
        );
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
