//! Small-number disclosure control for metrics shared beyond the partners
//! that hold the data.
//!
//! The NHS rule for published sub-national statistics: a count of 1 to 7 is
//! not shown, and every other count is rounded to the nearest 5. Applied
//! here to every series of a metric the engine marks published (the
//! `icsflow_flow_*` ones), each one on its own:
//!
//! - 0 stays 0;
//! - 1-7: the series is left out of the scrape (Prometheus has no `*`), and
//!   `icsflow_disclosure_suppressed_series{metric}` counts how many were;
//! - 8 and above: rounded to the nearest 5, halves up (8 → 10, 12 → 10,
//!   13 → 15).
//!
//! Pipeline and quality metrics name partners and count records, not
//! people, and are not part of the published view at all.

use std::collections::BTreeMap;

use icsflow_engine::MetricKey;
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// Name of the gauge counting suppressed series per metric.
pub const SUPPRESSED_SERIES: &str = "icsflow_disclosure_suppressed_series";

/// The value a count is published as, or `None` when it is suppressed.
pub fn disclosed(count: f64) -> Option<f64> {
    if count <= 0.0 {
        Some(0.0)
    } else if count < 7.5 {
        None
    } else {
        Some((count / 5.0 + 0.5).floor() * 5.0)
    }
}

/// The published view of gathered families: the gauges of the metrics the
/// engine's definitions mark published (`MetricKey::is_published_name`), each value
/// passed through [`disclosed`], plus the suppressed-series counts.
pub fn published(families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    let mut suppressed: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for mut family in families {
        if !MetricKey::is_published_name(family.name())
            || family.get_field_type() != MetricType::GAUGE
        {
            continue;
        }
        let name = family.name().to_owned();
        let metrics = family.take_metric();
        let mut kept = Vec::with_capacity(metrics.len());
        for mut metric in metrics {
            match disclosed(metric.get_gauge().get_value()) {
                Some(value) => {
                    let mut gauge = Gauge::default();
                    gauge.set_value(value);
                    metric.set_gauge(gauge);
                    kept.push(metric);
                }
                None => *suppressed.entry(name.clone()).or_insert(0) += 1,
            }
        }
        suppressed.entry(name).or_insert(0);
        // The text encoder refuses a family without series.
        if !kept.is_empty() {
            family.set_metric(kept);
            out.push(family);
        }
    }
    let mut family = MetricFamily::default();
    family.set_name(SUPPRESSED_SERIES.to_owned());
    family.set_help(
        "Series of the metric left out of this published view because their count was 1-7."
            .to_owned(),
    );
    family.set_field_type(MetricType::GAUGE);
    for (metric_name, count) in suppressed {
        let mut label = LabelPair::default();
        label.set_name("metric".to_owned());
        label.set_value(metric_name);
        let mut gauge = Gauge::default();
        gauge.set_value(count as f64);
        let mut metric = Metric::default();
        metric.set_label(vec![label]);
        metric.set_gauge(gauge);
        family.mut_metric().push(metric);
    }
    if !family.get_metric().is_empty() {
        out.push(family);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_nhs_small_number_rule() {
        let cases = [
            (0.0, Some(0.0)),
            (1.0, None),
            (4.0, None),
            (7.0, None),
            (8.0, Some(10.0)),
            (10.0, Some(10.0)),
            (12.0, Some(10.0)),
            (13.0, Some(15.0)),
            (17.0, Some(15.0)),
            (18.0, Some(20.0)),
            (1_002.0, Some(1_000.0)),
            (1_003.0, Some(1_005.0)),
        ];
        for (count, expected) in cases {
            assert_eq!(disclosed(count), expected, "count {count}");
        }
    }

    #[test]
    fn no_published_value_is_between_1_and_7_or_off_the_grid_of_5() {
        for count in 0..2_000 {
            if let Some(value) = disclosed(f64::from(count)) {
                assert!(value == 0.0 || value >= 10.0, "{count} → {value}");
                assert_eq!(value % 5.0, 0.0, "{count} → {value}");
                assert!((value - f64::from(count)).abs() <= 2.5, "{count} → {value}");
            }
        }
    }

    fn gauge_family(name: &str, values: &[(&str, f64)]) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help("help".to_owned());
        family.set_field_type(MetricType::GAUGE);
        for (place, value) in values {
            let mut label = LabelPair::default();
            label.set_name("place".to_owned());
            label.set_value((*place).to_owned());
            let mut gauge = Gauge::default();
            gauge.set_value(*value);
            let mut metric = Metric::default();
            metric.set_label(vec![label]);
            metric.set_gauge(gauge);
            family.mut_metric().push(metric);
        }
        family
    }

    #[test]
    fn the_published_view_keeps_flow_gauges_only_and_counts_what_it_left_out() {
        let families = vec![
            gauge_family(
                "icsflow_flow_not_meeting_criteria_patients",
                &[("E06000047", 3.0), ("E08000021", 52.0), ("E08000037", 0.0)],
            ),
            gauge_family("icsflow_join_journeys", &[("E06000047", 5.0)]),
            gauge_family("icsflow_flow_discharges", &[("E06000047", 644.0)]),
            gauge_family("icsflow_flow_emergency_readmissions", &[("E06000047", 2.0)]),
        ];
        let view = published(families);
        let mut text = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &view, &mut text)
            .expect("the text encoder takes the whole view");
        let rendered: Vec<(String, Vec<(String, f64)>)> = view
            .iter()
            .map(|family| {
                (
                    family.name().to_owned(),
                    family
                        .get_metric()
                        .iter()
                        .map(|metric| {
                            (
                                metric.get_label()[0].value().to_owned(),
                                metric.get_gauge().get_value(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            rendered,
            vec![
                (
                    "icsflow_flow_not_meeting_criteria_patients".to_owned(),
                    vec![
                        ("E08000021".to_owned(), 50.0),
                        ("E08000037".to_owned(), 0.0)
                    ]
                ),
                (
                    "icsflow_flow_discharges".to_owned(),
                    vec![("E06000047".to_owned(), 645.0)]
                ),
                (
                    SUPPRESSED_SERIES.to_owned(),
                    vec![
                        ("icsflow_flow_discharges".to_owned(), 0.0),
                        ("icsflow_flow_emergency_readmissions".to_owned(), 1.0),
                        ("icsflow_flow_not_meeting_criteria_patients".to_owned(), 1.0)
                    ]
                ),
            ]
        );
    }
}
