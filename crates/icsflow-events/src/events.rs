//! The event types: one per thing that happens inside a role, each with
//! its log line and its metric. A role emits them through
//! [`Events::emit`](crate::Events::emit); the hot paths (records consumed,
//! produced, applied) hold series looked up once instead
//! ([`Events::counter`](crate::Events::counter)).

use icsflow_core::{Feed, OdsCode, RejectReason};
use tracing::{debug, error, info, warn};

use crate::{Counter, Events, Gauge, InternalEvent};

/// The two roles, as the `role` label and log field name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Ingest,
    Join,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Join => "join",
        }
    }
}

icsflow_core::kinds! {
    /// Which delay of an accepted event is measured.
    pub enum DelayStage {
        /// From `occurred_at` to `recorded_at`: how long the partner took to
        /// record it.
        Recorded => "recorded",
        /// From `recorded_at` to ingest accepting it: how long it took to
        /// reach the ICS.
        Arrived => "arrived",
    }
}

icsflow_core::kinds! {
    /// How late, in bands a reader can say aloud.
    pub enum Lateness {
        /// Under an hour.
        SameHour => "same_hour",
        /// From one hour to a day.
        SameDay => "same_day",
        /// From one day to two.
        NextDay => "next_day",
        /// Two days or more.
        Later => "later",
    }
}

impl Lateness {
    const HOUR: i64 = 3_600_000;

    /// The band of a delay in milliseconds; a negative one (clocks a few
    /// minutes apart, within ingest's tolerance) is `SameHour`.
    pub const fn of(delay_millis: i64) -> Lateness {
        if delay_millis < Self::HOUR {
            Lateness::SameHour
        } else if delay_millis < 24 * Self::HOUR {
            Lateness::SameDay
        } else if delay_millis < 48 * Self::HOUR {
            Lateness::NextDay
        } else {
            Lateness::Later
        }
    }
}

/// A partner record refused: it goes to the dead-letter topic.
#[derive(Debug)]
pub struct RecordRejected<'a> {
    pub feed: Feed,
    /// Who the rejection is counted against: the publisher on its own
    /// topic, else the organisation the record named, if it could be read.
    pub organisation: Option<OdsCode>,
    pub reason: RejectReason,
    /// The field at fault, a name from the schema (never a value).
    pub field: Option<&'static str>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl InternalEvent for RecordRejected<'_> {
    fn emit(self, events: &Events) {
        let organisation = events.organisation_label(self.organisation);
        events
            .counter(
                Counter::Rejected,
                &[self.feed.as_str(), &organisation, self.reason.as_str()],
            )
            .add(1);
        debug!(topic = self.topic, partition = self.partition, offset = self.offset, reason = %self.reason, field = self.field.unwrap_or("-"), "record rejected");
    }
}

/// A partition paused at a record whose schema id must be looked up in
/// the schema registry first.
#[derive(Debug)]
pub struct PartitionHeld<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub schema_id: u32,
}

impl InternalEvent for PartitionHeld<'_> {
    fn emit(self, _events: &Events) {
        debug!(
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            schema_id = self.schema_id,
            "partition held while its schema id is looked up"
        );
    }
}

/// The schema registry answered a lookup (a schema, or a final no).
#[derive(Debug)]
pub struct RegistryAnswered {
    /// No other schema id is still being asked for.
    pub none_waiting: bool,
}

impl InternalEvent for RegistryAnswered {
    fn emit(self, events: &Events) {
        events
            .counter(Counter::RegistryLookups, &["answered"])
            .add(1);
        let health = events.health();
        if health.registry_refused() {
            info!("the schema registry accepts icsflow's credentials again");
        }
        health.set_registry_accepts(true);
        if self.none_waiting {
            health.set_registry_answers(true);
        }
    }
}

/// The schema registry could not be asked: the records waiting on it are
/// held (retried, never lost), and readiness says so.
#[derive(Debug)]
pub struct RegistryUnavailable<'a> {
    pub schema_id: u32,
    /// The feed of each partition held on it.
    pub held: &'a [Feed],
    pub detail: &'a str,
}

impl InternalEvent for RegistryUnavailable<'_> {
    fn emit(self, events: &Events) {
        events
            .counter(Counter::RegistryLookups, &["unavailable"])
            .add(1);
        for feed in self.held {
            events
                .counter(Counter::RegistryUnavailable, &[feed.as_str()])
                .add(1);
        }
        if let Some(suppressed) = events.lines().allow("registry unavailable") {
            warn!(
                schema_id = self.schema_id,
                partitions_held = self.held.len(),
                detail = self.detail,
                suppressed,
                "schema registry unavailable; its partitions are held and it is asked again"
            );
        }
        events.health().set_registry_answers(false);
    }
}

/// The schema registry refused icsflow's credentials (401 or 403).
#[derive(Debug)]
pub struct RegistryRefused {
    pub schema_id: u32,
    pub status: u16,
    pub partitions_held: usize,
}

impl InternalEvent for RegistryRefused {
    fn emit(self, events: &Events) {
        events
            .counter(Counter::RegistryLookups, &["refused"])
            .add(1);
        error!(schema_id = self.schema_id, status = self.status, partitions_held = self.partitions_held, "the schema registry refuses icsflow's credentials: records in Confluent framing are held, and /readyz reports not ready, until the schema_registry settings are fixed");
        events.health().set_registry_accepts(false);
    }
}

/// Exactly once: a transaction committed its outputs and offsets.
#[derive(Debug)]
pub struct TransactionCommitted;

impl InternalEvent for TransactionCommitted {
    fn emit(self, events: &Events) {
        events.counter(Counter::Transactions, &["committed"]).add(1);
    }
}

/// Why a transaction was aborted.
#[derive(Debug)]
pub enum AbortCause<'a> {
    /// The commit failed in a way that requires an abort.
    Failed(&'a dyn std::error::Error),
    /// Partitions of its batch were revoked while it was open.
    Revoked,
}

/// Exactly once: a transaction aborted; its batch is read again where its
/// partitions are still owned.
#[derive(Debug)]
pub struct TransactionAborted<'a> {
    pub cause: AbortCause<'a>,
    pub partitions: usize,
}

impl InternalEvent for TransactionAborted<'_> {
    fn emit(self, events: &Events) {
        events.counter(Counter::Transactions, &["aborted"]).add(1);
        match self.cause {
            AbortCause::Failed(error) => {
                if let Some(suppressed) = events.lines().allow("transaction aborted") {
                    warn!(%error, partitions = self.partitions, suppressed, "transaction aborted; reading its batch again");
                }
            }
            AbortCause::Revoked => info!(
                partitions = self.partitions,
                "partitions were revoked while the transaction was open: aborted, and read again where still owned"
            ),
        }
    }
}

/// Complete journeys evicted past the eviction horizon.
#[derive(Debug)]
pub struct JourneysEvicted {
    pub count: usize,
}

impl InternalEvent for JourneysEvicted {
    fn emit(self, events: &Events) {
        if self.count > 0 {
            events.counter(Counter::Evicted, &[]).add(self.count as u64);
            info!(evicted = self.count, "complete journeys evicted");
        }
    }
}

/// Replayed partitions' journeys derived once their replay was applied.
#[derive(Debug)]
pub struct ReplayDerived<'a> {
    pub partitions: &'a [i32],
    pub journeys: usize,
    pub seconds: f64,
}

impl InternalEvent for ReplayDerived<'_> {
    fn emit(self, _events: &Events) {
        info!(
            partitions = ?self.partitions,
            journeys = self.journeys,
            seconds = (self.seconds * 100.0).round() / 100.0,
            "replayed journeys derived"
        );
    }
}

/// The broker did not say where an assigned journey partition ends.
#[derive(Debug)]
pub struct WatermarkUnknown<'a> {
    pub partition: i32,
    pub attempt: u32,
    pub error: &'a dyn std::error::Error,
}

impl InternalEvent for WatermarkUnknown<'_> {
    fn emit(self, events: &Events) {
        events.counter(Counter::WatermarkFailures, &[]).add(1);
        if let Some(suppressed) = events.lines().allow("watermark unknown") {
            warn!(partition = self.partition, attempt = self.attempt, error = %self.error, suppressed, "high watermark not available; the partition's replay stays not ready and it is asked again");
        }
    }
}

/// A broker answered, or none did: said when it changes.
#[derive(Debug)]
pub struct BrokerReachability {
    pub role: Role,
    pub reachable: bool,
}

impl InternalEvent for BrokerReachability {
    fn emit(self, events: &Events) {
        let health = events.health();
        if self.reachable != health.broker_reachable() {
            if self.reachable {
                info!(role = self.role.as_str(), "broker reachable");
            } else {
                warn!(
                    role = self.role.as_str(),
                    "no broker reachable; /readyz reports not ready until one is"
                );
            }
        }
        health.set_broker_reachable(self.reachable);
    }
}

/// A partition's lag measured (records between the group's committed
/// position and the partition's end).
#[derive(Debug)]
pub struct LagMeasured<'a> {
    pub role: Role,
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl InternalEvent for LagMeasured<'_> {
    fn emit(self, events: &Events) {
        events
            .gauge(
                Gauge::Lag,
                &[self.role.as_str(), self.topic, &self.partition.to_string()],
            )
            .set(self.lag);
    }
}

/// A partition no longer owned: its lag is unknown here, not its last
/// value.
#[derive(Debug)]
pub struct PartitionReleased<'a> {
    pub role: Role,
    pub topic: &'a str,
    pub partition: i32,
}

impl InternalEvent for PartitionReleased<'_> {
    fn emit(self, events: &Events) {
        events.forget(
            Gauge::Lag,
            &[self.role.as_str(), self.topic, &self.partition.to_string()],
        );
    }
}

/// Whether a role has taken all its input (every owned partition's lag is
/// 0; join: and replayed), at librdkafka's last statistics.
#[derive(Debug)]
pub struct CaughtUp {
    pub role: Role,
    pub caught_up: bool,
    /// The first time this process is caught up: said in the log.
    pub first: bool,
}

impl InternalEvent for CaughtUp {
    fn emit(self, events: &Events) {
        events
            .gauge(Gauge::CaughtUp, &[self.role.as_str()])
            .set(i64::from(self.caught_up));
        if self.caught_up && self.first {
            info!(
                role = self.role.as_str(),
                "caught up: every owned partition's lag is 0 (icsflow_pipeline_caught_up)"
            );
        }
    }
}

/// Ingest owns partitions, or stopped owning any.
#[derive(Debug)]
pub struct IngestAssignment {
    pub partitions: usize,
    pub stopping: bool,
}

impl InternalEvent for IngestAssignment {
    fn emit(self, events: &Events) {
        let health = events.health();
        let consuming = self.partitions > 0;
        if consuming != health.consuming() {
            if consuming {
                info!(
                    role = Role::Ingest.as_str(),
                    partitions = self.partitions,
                    "partitions assigned: consuming"
                );
            } else if self.stopping {
                info!(
                    role = Role::Ingest.as_str(),
                    "partitions released: stopping"
                );
            } else {
                warn!(
                    role = Role::Ingest.as_str(),
                    "no partitions owned; /readyz reports not ready until some are assigned"
                );
            }
        }
        health.set_consuming(consuming);
    }
}

/// How far a join replica's partitions are: owned, journeys held.
#[derive(Debug)]
pub struct JoinHolds {
    pub journeys: usize,
}

impl InternalEvent for JoinHolds {
    fn emit(self, events: &Events) {
        events.gauge(Gauge::Journeys, &[]).set(self.journeys as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_fall_in_the_bands_their_names_say() {
        let hour = 3_600_000;
        let cases = [
            (-5 * 60_000, Lateness::SameHour),
            (0, Lateness::SameHour),
            (hour - 1, Lateness::SameHour),
            (hour, Lateness::SameDay),
            (24 * hour - 1, Lateness::SameDay),
            (24 * hour, Lateness::NextDay),
            (48 * hour - 1, Lateness::NextDay),
            (48 * hour, Lateness::Later),
            (400 * 24 * hour, Lateness::Later),
        ];
        for (delay, band) in cases {
            assert_eq!(Lateness::of(delay), band, "{delay} ms");
        }
    }
}
