//! icsflow's internal events, in the manner of Vector's `internal_events`:
//! one type per thing that happens inside a role (a record rejected, a
//! transaction aborted, journeys evicted, a partition held for its
//! schema…), each emitting its own log line (rate limited where it can
//! repeat) and its own metric.
//!
//! - [`metrics`]: every pipeline metric's name, help and labels, defined
//!   once ([`Counter`], [`Gauge`]), and the [`Recorder`] port a process
//!   records them through;
//! - [`Health`]: the readiness conditions `/readyz` answers from;
//! - [`events`]: the event types;
//! - [`Events`]: what a role holds to emit them.
//!
//! Architecture invariant: this crate knows neither Kafka nor Prometheus.
//! The roles emit; `icsflow-telemetry` implements [`Recorder`] with
//! Prometheus; the binary wires the two.

pub mod events;
mod health;
pub mod metrics;
mod rate_limit;

use std::sync::{Arc, OnceLock};

use icsflow_core::{OdsCode, Reference};

pub use health::Health;
pub use metrics::{Counter, CounterHandle, Gauge, GaugeHandle, Recorder};
pub use rate_limit::RateLimit;

/// The label value of an organisation that could not be read from a record.
pub const UNKNOWN_ORGANISATION: &str = "unknown";
/// The label value of every organisation no partner of the ICS speaks for.
pub const OTHER_ORGANISATION: &str = "other";

/// One occurrence inside icsflow: emitting it writes its log line and
/// records its metric.
pub trait InternalEvent {
    fn emit(self, events: &Events);
}

/// What a role emits its events through: the process's recorder, its
/// readiness, the ICS's reference data (which bounds the `organisation`
/// label) and the rate limit of repeating lines. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Events {
    recorder: Arc<dyn Recorder>,
    health: Arc<Health>,
    reference: Arc<OnceLock<Arc<Reference>>>,
    lines: Arc<RateLimit>,
}

impl Events {
    /// Events recorded by `recorder`, readiness kept in a new [`Health`]
    /// that also sets `icsflow_ready`.
    pub fn new(recorder: Arc<dyn Recorder>) -> Events {
        let health = Arc::new(Health::new(Some(recorder.gauge(Gauge::Ready, &[]))));
        Events {
            recorder,
            health,
            reference: Arc::default(),
            lines: Arc::default(),
        }
    }

    /// Emits `event`.
    pub fn emit(&self, event: impl InternalEvent) {
        event.emit(self);
    }

    /// A counter's series, looked up once for a hot path.
    pub fn counter(&self, counter: Counter, labels: &[&str]) -> CounterHandle {
        self.recorder.counter(counter, labels)
    }

    /// A gauge's series, looked up once for a hot path.
    pub fn gauge(&self, gauge: Gauge, labels: &[&str]) -> GaugeHandle {
        self.recorder.gauge(gauge, labels)
    }

    /// Removes a gauge's series (what it measured no longer exists here).
    pub fn forget(&self, gauge: Gauge, labels: &[&str]) {
        self.recorder.forget(gauge, labels);
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The rate limit of lines that can repeat (client errors, per-record
    /// warnings).
    pub fn lines(&self) -> &RateLimit {
        &self.lines
    }

    /// Bounds the `organisation` label by the ICS's reference data (set
    /// once; later calls change nothing) and serves its names and cadences
    /// as info metrics.
    pub fn bound_organisations_by(&self, reference: Arc<Reference>) {
        for place in reference.places() {
            self.gauge(Gauge::PlaceInfo, &[place.code.as_str(), &place.name])
                .set(1);
        }
        for partner in reference.partners() {
            let kind = partner.kind.as_str();
            self.gauge(
                Gauge::PartnerInfo,
                &[
                    partner.code.as_str(),
                    &partner.name,
                    kind,
                    partner.place.as_str(),
                ],
            )
            .set(1);
            let cadence = reference.cadence_of(partner);
            let office_hours_only = if cadence.office_hours_only {
                "true"
            } else {
                "false"
            };
            for organisation in std::iter::once(&partner.code).chain(&partner.publishes_for) {
                self.gauge(
                    Gauge::QuietAfter,
                    &[
                        organisation.as_str(),
                        partner.code.as_str(),
                        kind,
                        office_hours_only,
                    ],
                )
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
    /// always give the reference data, so the label's values are the
    /// reference data's organisations and these two: no record can add one.
    /// (Without reference data, as in the Kafka crate's own tests, the code
    /// read is the label.)
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
                self.counter(Counter::LabelOverflow, &["organisation"])
                    .add(1);
                OTHER_ORGANISATION.to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Tally;

    fn code(text: &str) -> OdsCode {
        OdsCode::parse("test", text).expect("an ODS code")
    }

    #[test]
    fn with_reference_data_only_its_partners_organisations_become_labels_and_sites_count_as_their_trust(
    ) {
        let tally = Arc::new(Tally::default());
        let events = Events::new(tally.clone());
        assert_eq!(events.organisation_label(Some(code("ZZZ"))), "ZZZ");
        let reference =
            icsflow_core::sample_reference(&[("RXP", icsflow_core::PartnerKind::AcuteTrust)]);
        events.bound_organisations_by(Arc::new(reference));
        assert_eq!(events.organisation_label(Some(code("RXP"))), "RXP");
        // A site counts as its trust: never a label value of its own.
        assert_eq!(events.organisation_label(Some(code("RXP01"))), "RXP");
        assert_eq!(events.organisation_label(Some(code("RXPZZ"))), "RXP");
        assert_eq!(
            events.organisation_label(Some(code("ZZZ"))),
            OTHER_ORGANISATION
        );
        assert_eq!(events.organisation_label(None), UNKNOWN_ORGANISATION);
        assert_eq!(tally.count(Counter::LabelOverflow, &["organisation"]), 1);
    }
}
