//! The pipeline metrics in Prometheus: a [`Recorder`] that registers every
//! metric `icsflow-events` defines ([`Counter::ALL`], [`Gauge::ALL`]) on one
//! registry. Labels: feed, organisation (ODS), reason code, topic,
//! partition, role. All bounded.

use icsflow_events::metrics::Definition;
use icsflow_events::{Counter, CounterHandle, Gauge, GaugeHandle, Recorder};
use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Every pipeline metric, registered on one registry.
#[derive(Clone, Debug)]
pub struct PrometheusRecorder {
    /// By [`Counter::index`].
    counters: Vec<IntCounterVec>,
    /// By [`Gauge::index`].
    gauges: Vec<IntGaugeVec>,
}

impl PrometheusRecorder {
    pub fn register(registry: &Registry) -> Result<PrometheusRecorder, prometheus::Error> {
        // process_cpu_seconds_total, process_resident_memory_bytes,
        // process_open_fds and the rest, as every Prometheus exporter has.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let counters = Counter::ALL
            .iter()
            .map(|counter| register(registry, counter.definition(), IntCounterVec::new))
            .collect::<Result<Vec<_>, prometheus::Error>>()?;
        let gauges = Gauge::ALL
            .iter()
            .map(|gauge| register(registry, gauge.definition(), IntGaugeVec::new))
            .collect::<Result<Vec<_>, prometheus::Error>>()?;
        Ok(PrometheusRecorder { counters, gauges })
    }

    /// The series of a counter with their label values (for terminal
    /// summaries and tests).
    pub fn counter_values(&self, counter: Counter) -> Vec<(Vec<String>, u64)> {
        use prometheus::core::Collector;
        self.counters[counter.index()]
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

    /// One counter series' value.
    pub fn counter_value(&self, counter: Counter, labels: &[&str]) -> u64 {
        self.counters[counter.index()]
            .get_metric_with_label_values(labels)
            .map_or(0, |series| series.get())
    }
}

/// Registers the vector of one definition (a series without labels is
/// exported at 0 from the start, as a counter should be).
fn register<T>(
    registry: &Registry,
    definition: Definition,
    new: fn(Opts, &[&str]) -> Result<MetricVec<T>, prometheus::Error>,
) -> Result<MetricVec<T>, prometheus::Error>
where
    T: MetricVecBuilder + 'static,
    MetricVec<T>: prometheus::core::Collector + Clone,
{
    let metric = new(
        Opts::new(definition.name, definition.help),
        definition.labels,
    )?;
    registry.register(Box::new(metric.clone()))?;
    if definition.labels.is_empty() {
        metric.with_label_values::<&str>(&[]);
    }
    Ok(metric)
}

impl Recorder for PrometheusRecorder {
    fn counter(&self, counter: Counter, labels: &[&str]) -> CounterHandle {
        let series = self.counters[counter.index()].with_label_values(labels);
        CounterHandle::new(move |count| series.inc_by(count))
    }

    fn gauge(&self, gauge: Gauge, labels: &[&str]) -> GaugeHandle {
        let series = self.gauges[gauge.index()].with_label_values(labels);
        GaugeHandle::new(move |value| series.set(value))
    }

    fn forget(&self, gauge: Gauge, labels: &[&str]) {
        let _ = self.gauges[gauge.index()].remove_label_values(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_metric_is_exported_under_its_name() {
        let registry = Registry::new();
        let recorder = PrometheusRecorder::register(&registry).expect("registered");
        recorder
            .counter(Counter::Rejected, &["discharge", "RXP", "invalid_code"])
            .add(2);
        recorder.gauge(Gauge::CaughtUp, &["join"]).set(1);
        let text = crate::render(&registry).expect("rendered");
        for name in Counter::ALL
            .iter()
            .map(|counter| counter.definition().name)
            .chain(Gauge::ALL.iter().map(|gauge| gauge.definition().name))
        {
            // A vector with labels appears once a series exists; its HELP
            // line is there either way for those touched here.
            let touched = matches!(
                name,
                "icsflow_ingest_rejected_records_total" | "icsflow_pipeline_caught_up"
            );
            let labelled = Counter::ALL
                .iter()
                .map(|counter| counter.definition())
                .chain(Gauge::ALL.iter().map(|gauge| gauge.definition()))
                .any(|definition| definition.name == name && !definition.labels.is_empty());
            if touched || !labelled {
                assert!(text.contains(&format!("# HELP {name} ")), "{name} exported");
            }
        }
        assert_eq!(
            recorder.counter_value(Counter::Rejected, &["discharge", "RXP", "invalid_code"]),
            2
        );
        assert!(
            text.contains("icsflow_pipeline_caught_up{role=\"join\"} 1\n"),
            "{text}"
        );
    }
}
