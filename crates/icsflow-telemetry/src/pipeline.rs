//! Metrics about the pipeline itself: what each role consumed, produced and
//! rejected, how far behind it is, how fresh each partner feed is, and how
//! far a replay has got. Labels: feed, organisation (ODS), reason code,
//! topic, partition, role. All bounded.

use std::sync::Arc;

use icsflow_core::{OdsCode, Reference};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The label value of an organisation that could not be read from a record.
pub const UNKNOWN_ORGANISATION: &str = "unknown";
/// The label value of every organisation no partner of the ICS speaks for.
pub const OTHER_ORGANISATION: &str = "other";

/// Every pipeline metric, registered on one registry.
#[derive(Clone, Debug)]
pub struct PipelineMetrics {
    /// `icsflow_pipeline_consumed_records_total{role, topic}`
    pub consumed: IntCounterVec,
    /// `icsflow_pipeline_produced_records_total{role, topic}`
    pub produced: IntCounterVec,
    /// `icsflow_ingest_rejected_records_total{feed, organisation, reason}`
    pub rejected: IntCounterVec,
    /// `icsflow_ingest_registry_unavailable_total{feed}`: records held back
    /// because the schema registry could not be asked (retried, not lost).
    pub registry_unavailable: IntCounterVec,
    /// `icsflow_ingest_registry_lookups_total{outcome}`: schema-id lookups
    /// sent to the registry: answered (a schema, or a final no), unavailable
    /// (retried), refused (401 or 403: the credentials are wrong).
    pub registry_lookups: IntCounterVec,
    /// `icsflow_pipeline_consumer_lag_records{role, topic, partition}`
    pub lag: IntGaugeVec,
    /// `icsflow_pipeline_caught_up{role}`: 1 once the role owns partitions,
    /// each with a lag of 0 (join: replayed too), at the last statistics.
    pub caught_up: IntGaugeVec,
    /// `icsflow_ingest_last_event_timestamp_seconds{feed, organisation}`:
    /// `occurred_at` of the newest accepted event per partner feed.
    pub last_event: IntGaugeVec,
    /// `icsflow_join_replay_remaining_records{partition}`: records left to
    /// replay before an assigned partition is ready.
    pub replay_remaining: IntGaugeVec,
    /// `icsflow_join_owned_partitions`
    pub owned_partitions: IntGauge,
    /// `icsflow_join_high_watermark_failures_total`: times the broker did
    /// not say where an assigned partition ends (its replay stays not ready
    /// and it is asked again).
    pub watermark_failures: prometheus::IntCounter,
    /// `icsflow_join_journeys`: journeys held by this replica.
    pub journeys: IntGauge,
    /// `icsflow_join_evicted_journeys_total`: complete journeys evicted
    /// (their settled contribution kept as constants).
    pub evicted: IntCounterVec,
    /// `icsflow_engine_events_total{outcome}`: applied, duplicate,
    /// beyond_horizon, undecodable, too_many_label_values, journey_full.
    pub engine_events: IntCounterVec,
    /// `icsflow_ready`: 1 when `/readyz` would answer 200.
    pub ready: IntGauge,
    /// `icsflow_build_info{version, revision, librdkafka, role}`: always 1.
    pub build_info: IntGaugeVec,
    /// `icsflow_pipeline_label_overflow_total{label}`: times a value from
    /// record content was counted as `other` because it is not in the
    /// ICS's reference data (an organisation no partner speaks for).
    pub label_overflow: IntCounterVec,
    /// `icsflow_reference_place_info{place, name}`: 1 for each place of the
    /// ICS's reference data, for dashboards to show names, not codes.
    pub place_info: IntGaugeVec,
    /// `icsflow_reference_partner_info{organisation, name, kind, place}`.
    pub partner_info: IntGaugeVec,
    /// `icsflow_reference_quiet_after_seconds{organisation, partner, kind,
    /// office_hours_only}`: how long the feed of an organisation a partner
    /// publishes for may be silent (the partner kind's cadence).
    pub partner_quiet_after: IntGaugeVec,
    /// The ICS's reference data, when the process has it: then only
    /// organisations one of its partners speaks for become label values.
    reference: Arc<std::sync::OnceLock<Arc<Reference>>>,
}

impl PipelineMetrics {
    pub fn register(registry: &Registry) -> Result<PipelineMetrics, prometheus::Error> {
        // process_cpu_seconds_total, process_resident_memory_bytes,
        // process_open_fds and the rest, as every Prometheus exporter has.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let gauge_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let metric = IntGauge::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        Ok(PipelineMetrics {
            consumed: counter("icsflow_pipeline_consumed_records_total", "Records consumed.", &["role", "topic"])?,
            produced: counter("icsflow_pipeline_produced_records_total", "Records produced and acknowledged by the broker.", &["role", "topic"])?,
            rejected: counter(
                "icsflow_ingest_rejected_records_total",
                "Partner records rejected and sent to the dead-letter topic, by reason code.",
                &["feed", "organisation", "reason"],
            )?,
            registry_unavailable: counter(
                "icsflow_ingest_registry_unavailable_total",
                "Times a record was held back because the schema registry could not be asked; it is retried, not rejected.",
                &["feed"],
            )?,
            registry_lookups: counter(
                "icsflow_ingest_registry_lookups_total",
                "Schema-id lookups sent to the schema registry, by outcome: answered, unavailable (retried), refused (401 or 403: check the credentials).",
                &["outcome"],
            )?,
            lag: gauge_vec("icsflow_pipeline_consumer_lag_records", "Records between the group's committed position (for ingest, the first record whose outcome is final: stored at least once, committed in a transaction exactly once; for join, the last record taken, committed every 5 s for monitoring) and the end of the partition: what kafka-consumer-groups shows.", &["role", "topic", "partition"])?,
            caught_up: gauge_vec("icsflow_pipeline_caught_up", "1 when the role owns partitions and every one's lag is 0 (join: and replayed), at librdkafka's last statistics (every 5 s); 0 otherwise. What a script waits on to know a run has taken all its input.", &["role"])?,
            last_event: gauge_vec(
                "icsflow_ingest_last_event_timestamp_seconds",
                "occurred_at of the newest accepted event, per partner feed (freshness).",
                &["feed", "organisation"],
            )?,
            replay_remaining: gauge_vec(
                "icsflow_join_replay_remaining_records",
                "Records still to replay before an assigned journey partition is ready.",
                &["partition"],
            )?,
            owned_partitions: gauge("icsflow_join_owned_partitions", "Journey topic partitions this replica owns.")?,
            watermark_failures: {
                let metric = prometheus::IntCounter::new(
                    "icsflow_join_high_watermark_failures_total",
                    "Times the broker did not say where an assigned journey partition ends; its replay stays not ready and it is asked again.",
                )?;
                registry.register(Box::new(metric.clone()))?;
                metric
            },
            journeys: gauge("icsflow_join_journeys", "Patient journeys held in memory by this replica.")?,
            evicted: {
                let evicted = counter("icsflow_join_evicted_journeys_total", "Complete journeys evicted past the eviction horizon (their settled contribution stays in every total).", &[])?;
                // Exported at 0 from the start, as a counter should be.
                evicted.with_label_values::<&str>(&[]);
                evicted
            },
            engine_events: counter("icsflow_engine_events_total", "Events given to the journey engine, by outcome.", &["outcome"])?,
            ready: gauge("icsflow_ready", "1 when the process is ready (assigned partitions replayed, broker reachable).")?,
            build_info: gauge_vec("icsflow_build_info", "Always 1; the labels say what is running: icsflow's version and git revision, librdkafka's version, the role.", &["version", "revision", "librdkafka", "role"])?,
            label_overflow: counter(
                "icsflow_pipeline_label_overflow_total",
                "Values from record content counted as `other` because the ICS's reference data does not hold them (an organisation no partner speaks for).",
                &["label"],
            )?,
            place_info: gauge_vec(
                "icsflow_reference_place_info",
                "Always 1, for each place of the ICS's reference data: its name, to join on `place`.",
                &["place", "name"],
            )?,
            partner_info: gauge_vec(
                "icsflow_reference_partner_info",
                "Always 1, for each partner of the ICS's reference data: its name, kind and place, to join on `organisation` (or `provider`).",
                &["organisation", "name", "kind", "place"],
            )?,
            partner_quiet_after: gauge_vec(
                "icsflow_reference_quiet_after_seconds",
                "How long the feed of an organisation may be silent before it counts as quiet (within office hours when office_hours_only), from its partner kind's publishing cadence in the reference data.",
                &["organisation", "partner", "kind", "office_hours_only"],
            )?,
            reference: Arc::default(),
        })
    }

    /// Bounds the `organisation` label by the ICS's reference data: an
    /// organisation none of its partners speaks for (its code, its sites,
    /// those it publishes for) is `other` (counted), however few have been
    /// seen. Set once; later calls change nothing.
    ///
    /// Also serves the reference data's names and cadences as info
    /// metrics.
    pub fn bound_organisations_by(&self, reference: Arc<Reference>) {
        for place in reference.places() {
            self.place_info
                .with_label_values(&[place.code.as_str(), &place.name])
                .set(1);
        }
        for partner in reference.partners() {
            let kind = partner.kind.as_str();
            self.partner_info
                .with_label_values(&[
                    partner.code.as_str(),
                    &partner.name,
                    kind,
                    partner.place.as_str(),
                ])
                .set(1);
            let cadence = reference.cadence(partner.kind);
            let office_hours_only = if cadence.office_hours_only {
                "true"
            } else {
                "false"
            };
            for organisation in std::iter::once(&partner.code).chain(&partner.publishes_for) {
                self.partner_quiet_after
                    .with_label_values(&[
                        organisation.as_str(),
                        partner.code.as_str(),
                        kind,
                        office_hours_only,
                    ])
                    .set(i64::from(cadence.quiet_after_minutes) * 60);
            }
        }
        let _ = self.reference.set(reference);
    }

    /// The `organisation` label value for an organisation read from a
    /// record: the organisation it counts as in the ICS's reference data (a
    /// trust's site as the trust, never a value of its own), `other`
    /// (counted in `icsflow_pipeline_label_overflow_total`) when no partner
    /// speaks for it, and `unknown` when none could be read. The roles
    /// always give the reference data ([`PipelineMetrics::bound_organisations_by`]),
    /// so the label's values are the reference data's organisations and
    /// these two: no record can add one. (Without reference data, as in the
    /// Kafka crate's own tests, the code read is the label.)
    pub fn organisation_label(&self, organisation: Option<OdsCode>) -> String {
        let Some(organisation) = organisation else {
            return UNKNOWN_ORGANISATION.to_owned();
        };
        let Some(reference) = self.reference.get() else {
            return organisation.to_string();
        };
        match reference.counted_organisation(organisation) {
            Some(counted) => counted.to_string(),
            None => {
                self.label_overflow
                    .with_label_values(&["organisation"])
                    .inc();
                OTHER_ORGANISATION.to_owned()
            }
        }
    }

    /// The series of a counter vector with their label values, sorted by
    /// label name (for terminal summaries).
    pub fn counter_values(counter: &IntCounterVec) -> Vec<(Vec<String>, u64)> {
        use prometheus::core::Collector;
        counter
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| {
                let labels = metric
                    .get_label()
                    .iter()
                    .map(|pair| pair.value().to_owned())
                    .collect();
                (labels, metric.get_counter().get_value() as u64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> OdsCode {
        OdsCode::parse("test", text).expect("an ODS code")
    }

    #[test]
    fn with_reference_data_only_its_partners_organisations_become_labels_and_sites_count_as_their_trust(
    ) {
        let metrics = PipelineMetrics::register(&Registry::new()).expect("registered");
        assert_eq!(metrics.organisation_label(Some(code("ZZZ"))), "ZZZ");
        let reference =
            icsflow_core::sample_reference(&[("RXP", icsflow_core::PartnerKind::AcuteTrust)]);
        metrics.bound_organisations_by(Arc::new(reference));
        assert_eq!(metrics.organisation_label(Some(code("RXP"))), "RXP");
        // A site counts as its trust: never a label value of its own.
        assert_eq!(metrics.organisation_label(Some(code("RXP01"))), "RXP");
        assert_eq!(metrics.organisation_label(Some(code("RXPZZ"))), "RXP");
        assert_eq!(
            metrics.organisation_label(Some(code("ZZZ"))),
            OTHER_ORGANISATION
        );
        assert_eq!(metrics.organisation_label(None), UNKNOWN_ORGANISATION);
        assert_eq!(
            metrics
                .label_overflow
                .with_label_values(&["organisation"])
                .get(),
            1
        );
    }
}
