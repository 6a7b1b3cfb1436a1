//! The journey engine's series as Prometheus gauges, computed from engine
//! state at scrape time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use icsflow_engine::MetricKey;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// Where the collector reads the engine's values from: every series of the
/// partitions this process owns, summed, as of now.
pub trait EngineMetricsSource: Send + Sync {
    fn engine_metrics(&self) -> Vec<(MetricKey, i64)>;
}

impl<F: Fn() -> Vec<(MetricKey, i64)> + Send + Sync> EngineMetricsSource for F {
    fn engine_metrics(&self) -> Vec<(MetricKey, i64)> {
        self()
    }
}

/// A series as the text exposition writes it, `name{label="value",...}`
/// (label values are closed sets of codes and bands: nothing to escape).
pub fn series_text(key: &MetricKey) -> String {
    let labels: Vec<String> = key
        .labels()
        .into_iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

pub struct EngineCollector {
    source: Arc<dyn EngineMetricsSource>,
    descriptions: Vec<Desc>,
    /// Every series ever reported, so that one whose journeys moved to
    /// another replica reads 0 instead of vanishing.
    reported: Mutex<BTreeMap<MetricKey, ()>>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EngineCollector")
            .field("metrics", &self.descriptions.len())
            .finish()
    }
}

impl EngineCollector {
    pub fn new(source: Arc<dyn EngineMetricsSource>) -> EngineCollector {
        let descriptions = MetricKey::one_of_each()
            .iter()
            .filter_map(|key| {
                let labels = key
                    .labels()
                    .into_iter()
                    .map(|(name, _)| name.to_owned())
                    .collect();
                Desc::new(
                    key.name().to_owned(),
                    key.help().to_owned(),
                    labels,
                    Default::default(),
                )
                .ok()
            })
            .collect();
        EngineCollector {
            source,
            descriptions,
            reported: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descriptions.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut values: BTreeMap<MetricKey, i64> = BTreeMap::new();
        for (key, value) in self.source.engine_metrics() {
            *values.entry(key).or_insert(0) += value;
        }
        {
            let mut reported = self
                .reported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for key in values.keys() {
                reported.insert(*key, ());
            }
            for key in reported.keys() {
                values.entry(*key).or_insert(0);
            }
        }
        let mut families: BTreeMap<&'static str, MetricFamily> = BTreeMap::new();
        for (key, value) in values {
            let family = families.entry(key.name()).or_insert_with(|| {
                let mut family = MetricFamily::default();
                family.set_name(key.name().to_owned());
                family.set_help(key.help().to_owned());
                family.set_field_type(MetricType::GAUGE);
                family
            });
            let mut gauge = Gauge::default();
            gauge.set_value(value as f64);
            let mut metric = Metric::default();
            metric.set_label(
                key.labels()
                    .into_iter()
                    .map(|(name, value)| {
                        let mut pair = LabelPair::default();
                        pair.set_name(name.to_owned());
                        pair.set_value(value);
                        pair
                    })
                    .collect(),
            );
            metric.set_gauge(gauge);
            family.mut_metric().push(metric);
        }
        families.into_values().collect()
    }
}
