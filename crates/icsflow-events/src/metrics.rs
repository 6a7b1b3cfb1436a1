//! Every pipeline metric, defined once: its name, help and label names.
//! (The journey engine's flow metrics are defined in `icsflow-engine`'s
//! `metrics.rs`.) A recorder registers each of [`Counter::ALL`] and
//! [`Gauge::ALL`]; the roles record through it, never naming a metric
//! library.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A metric's definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Definition {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

/// Defines an enum of metrics from one table: each variant's name, help
/// and labels, [`ALL`](Counter::ALL) in the table's order, and
/// [`index`](Counter::index), its position there (so a recorder can keep
/// its series in a `Vec` the compiler cannot get out of step with).
macro_rules! metrics {
    ($(#[$meta:meta])* $kind:ident {
        $($(#[doc = $doc:literal])* $variant:ident => $name:literal, [$($label:literal),*], $help:literal;)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $kind {
            $($(#[doc = $doc])* $variant,)*
        }

        impl $kind {
            pub const ALL: &'static [$kind] = &[$($kind::$variant),*];

            pub const fn definition(self) -> Definition {
                match self {
                    $($kind::$variant => Definition {
                        name: $name,
                        help: $help,
                        labels: &[$($label),*],
                    },)*
                }
            }

            /// Its position in [`Self::ALL`].
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

metrics! {
    /// A pipeline counter.
    Counter {
        Consumed => "icsflow_pipeline_consumed_records_total", ["role", "topic"],
            "Records consumed.";
        Produced => "icsflow_pipeline_produced_records_total", ["role", "topic"],
            "Records produced and acknowledged by the broker.";
        Rejected => "icsflow_ingest_rejected_records_total", ["feed", "organisation", "reason"],
            "Partner records rejected and sent to the dead-letter topic, by reason code.";
        /// Records held back because the schema registry could not be
        /// asked (retried, not lost).
        RegistryUnavailable => "icsflow_ingest_registry_unavailable_total", ["feed"],
            "Times a record was held back because the schema registry could not be asked; it is retried, not rejected.";
        RegistryLookups => "icsflow_ingest_registry_lookups_total", ["outcome"],
            "Schema-id lookups sent to the schema registry, by outcome: answered, unavailable (retried), refused (401 or 403: check the credentials).";
        /// Exactly once: transactions ended, by outcome (committed,
        /// aborted: their records are read again).
        Transactions => "icsflow_ingest_transactions_total", ["outcome"],
            "Exactly once: ingest's transactions ended, by outcome: committed, or aborted (their partner records are read again and nothing of them is kept).";
        WatermarkFailures => "icsflow_join_high_watermark_failures_total", [],
            "Times the broker did not say where an assigned journey partition ends; its replay stays not ready and it is asked again.";
        Evicted => "icsflow_join_evicted_journeys_total", [],
            "Complete journeys evicted past the eviction horizon (their settled contribution stays in every total).";
        EngineEvents => "icsflow_engine_events_total", ["outcome"],
            "Events given to the journey engine, by outcome.";
        /// Accepted partner events by how late they were
        /// ([`crate::events::DelayStage`], [`crate::events::Lateness`]).
        EventsByDelay => "icsflow_ingest_events_by_delay_total", ["feed", "organisation", "stage", "delay"],
            "Partner events ingest accepted, by how late they were: stage `recorded` (from occurred_at to recorded_at: how long the partner took to record it) or `arrived` (from recorded_at to ingest accepting it: how long it took to reach the ICS); delay `same_hour` (under 1 h), `same_day` (1 to 24 h), `next_day` (24 to 48 h), `later` (48 h or more).";
        /// Values from record content counted as `other`.
        LabelOverflow => "icsflow_pipeline_label_overflow_total", ["label"],
            "Values from record content counted as `other` because the ICS's reference data does not hold them (an organisation no partner speaks for).";
    }
}

metrics! {
    /// A pipeline gauge.
    Gauge {
        Lag => "icsflow_pipeline_consumer_lag_records", ["role", "topic", "partition"],
            "Records between the group's committed position (for ingest, the first record whose outcome is final: stored at least once, committed in a transaction exactly once; for join, the last record taken, committed every 5 s for monitoring) and the end of the partition: what kafka-consumer-groups shows.";
        CaughtUp => "icsflow_pipeline_caught_up", ["role"],
            "1 when the role owns partitions and every one's lag is 0 (join: and replayed), at librdkafka's last statistics (every 5 s); 0 otherwise. What a script waits on to know a run has taken all its input.";
        LastEvent => "icsflow_ingest_last_event_timestamp_seconds", ["feed", "organisation"],
            "occurred_at of the newest accepted event, per partner feed (freshness).";
        ReplayRemaining => "icsflow_join_replay_remaining_records", ["partition"],
            "Records still to replay before an assigned journey partition is ready.";
        OwnedPartitions => "icsflow_join_owned_partitions", [],
            "Journey topic partitions this replica owns.";
        Journeys => "icsflow_join_journeys", [],
            "Patient journeys held in memory by this replica.";
        Ready => "icsflow_ready", [],
            "1 when the process is ready (assigned partitions replayed, broker reachable).";
        BuildInfo => "icsflow_build_info", ["version", "revision", "librdkafka", "role"],
            "Always 1; the labels say what is running: icsflow's version and git revision, librdkafka's version, the role.";
        PlaceInfo => "icsflow_reference_place_info", ["place", "name"],
            "Always 1, for each place of the ICS's reference data: its name, to join on `place`.";
        PartnerInfo => "icsflow_reference_partner_info", ["organisation", "name", "kind", "place"],
            "Always 1, for each partner of the ICS's reference data: its name, kind and place, to join on `organisation` (or `provider`).";
        QuietAfter => "icsflow_reference_quiet_after_seconds", ["organisation", "partner", "kind", "office_hours_only"],
            "How long the feed of an organisation may be silent before it counts as quiet (within office hours when office_hours_only), from its partner kind's publishing cadence in the reference data.";
    }
}

/// Where metrics are recorded: Prometheus in a process
/// (`icsflow-telemetry`), a [`Tally`] in tests and tools.
pub trait Recorder: Send + Sync + fmt::Debug {
    /// The series of `counter` with these label values (in the order of
    /// its definition's labels).
    fn counter(&self, counter: Counter, labels: &[&str]) -> CounterHandle;
    /// The series of `gauge` with these label values.
    fn gauge(&self, gauge: Gauge, labels: &[&str]) -> GaugeHandle;
    /// Removes a gauge's series.
    fn forget(&self, gauge: Gauge, labels: &[&str]);
}

/// One series, as its recorder keeps it: what to do with a value.
pub struct Handle<T>(Arc<dyn Fn(T) + Send + Sync>);

/// One counter series: [`Handle::add`].
pub type CounterHandle = Handle<u64>;
/// One gauge series: [`Handle::set`].
pub type GaugeHandle = Handle<i64>;

impl<T> Handle<T> {
    pub fn new(record: impl Fn(T) + Send + Sync + 'static) -> Handle<T> {
        Handle(Arc::new(record))
    }
}

impl Handle<u64> {
    pub fn add(&self, count: u64) {
        (self.0)(count);
    }
}

impl Handle<i64> {
    pub fn set(&self, value: i64) {
        (self.0)(value);
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Handle<T> {
        Handle(Arc::clone(&self.0))
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Handle")
    }
}

type Series = BTreeMap<(usize, Vec<String>), i64>;

/// A recorder that keeps values in memory, for tests.
#[derive(Debug, Default)]
pub struct Tally {
    counters: Arc<Mutex<Series>>,
    gauges: Arc<Mutex<Series>>,
}

fn key(index: usize, labels: &[&str]) -> (usize, Vec<String>) {
    (
        index,
        labels.iter().map(|label| (*label).to_owned()).collect(),
    )
}

fn lock(series: &Mutex<Series>) -> std::sync::MutexGuard<'_, Series> {
    series
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Tally {
    /// A counter series' value (0 when never counted).
    pub fn count(&self, counter: Counter, labels: &[&str]) -> u64 {
        lock(&self.counters)
            .get(&key(counter.index(), labels))
            .map_or(0, |value| *value as u64)
    }

    /// Every series of `counter` with its label values.
    pub fn counts(&self, counter: Counter) -> Vec<(Vec<String>, u64)> {
        lock(&self.counters)
            .iter()
            .filter(|((index, _), _)| *index == counter.index())
            .map(|((_, labels), value)| (labels.clone(), *value as u64))
            .collect()
    }
}

impl Recorder for Tally {
    fn counter(&self, counter: Counter, labels: &[&str]) -> CounterHandle {
        let (series, key) = (Arc::clone(&self.counters), key(counter.index(), labels));
        lock(&series).entry(key.clone()).or_insert(0);
        CounterHandle::new(move |count| {
            *lock(&series).entry(key.clone()).or_insert(0) += count as i64
        })
    }

    fn gauge(&self, gauge: Gauge, labels: &[&str]) -> GaugeHandle {
        let (series, key) = (Arc::clone(&self.gauges), key(gauge.index(), labels));
        GaugeHandle::new(move |value| {
            lock(&series).insert(key.clone(), value);
        })
    }

    fn forget(&self, gauge: Gauge, labels: &[&str]) {
        lock(&self.gauges).remove(&key(gauge.index(), labels));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_named_once_in_prometheus_form_and_indexed_by_its_place() {
        let mut names = std::collections::HashSet::new();
        for (index, counter) in Counter::ALL.iter().enumerate() {
            let definition = counter.definition();
            assert_eq!(counter.index(), index);
            assert!(definition.name.starts_with("icsflow_") && definition.name.ends_with("_total"));
            assert!(names.insert(definition.name));
        }
        for (index, gauge) in Gauge::ALL.iter().enumerate() {
            let definition = gauge.definition();
            assert_eq!(gauge.index(), index);
            assert!(
                definition.name.starts_with("icsflow_") && !definition.name.ends_with("_total")
            );
            assert!(names.insert(definition.name));
        }
    }
}
