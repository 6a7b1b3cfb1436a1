//! What one scrape of `/metrics` costs: every engine series (summed from
//! the engines, kept as 0 once reported) and every pipeline series, as
//! Prometheus text. Target (issue 33): under 5 ms at 2,000 series on one
//! core.
//!
//! The engine is fed a simulated ICS (4 places, 120 days, the demo's
//! simulator: about 1,600 series); the pipeline metrics hold what a run of
//! both roles sets for fourteen organisations per feed (freshness, rejections by
//! reason) and 24 partitions per partner topic (lag): over 2,000 series in
//! all. Measured: the whole exposition as
//! `/metrics` renders it, the published view, and, as the baseline in the
//! same run, the engine's `metrics()` alone (what any exposition has to
//! read).

use std::sync::{Arc, Mutex};

use icsflow_core::{Feed, RejectReason, Timestamp};
use icsflow_engine::{Engine, EngineConfig, MetricKey};
use icsflow_events::{Counter, Events, Gauge};
use icsflow_partner::{SimulationConfig, Simulator};
use icsflow_telemetry::{EngineCollector, PrometheusRecorder, Registry};

/// 2026-01-05T00:00:00Z.
const START: i64 = 1_767_571_200_000;
const DAY: i64 = Timestamp::MILLIS_PER_DAY;
const DAYS: i64 = 120;

struct Fixture {
    registry: Registry,
    engine: Arc<Mutex<Engine>>,
    as_of: Timestamp,
    series: usize,
}

fn fixture() -> Fixture {
    let mut config = SimulationConfig::new(7, Timestamp::from_millis(START));
    config.places = SimulationConfig::MAX_PLACES;
    let mut simulator = Simulator::new(config);
    let mut engine = Engine::new(EngineConfig::default());
    let mut batch = Vec::new();
    for day in 1..=DAYS {
        simulator.advance(Timestamp::from_millis(START + day * DAY), &mut batch);
        for publication in batch.drain(..) {
            if !publication.kind.is_bad() {
                engine.apply(&publication.event);
            }
        }
    }
    let as_of = Timestamp::from_millis(START + DAYS * DAY);
    let engine = Arc::new(Mutex::new(engine));
    let registry = Registry::new();
    let recorder = Arc::new(PrometheusRecorder::register(&registry).expect("registered"));
    let events = Events::new(recorder);
    for (topic, feed) in [
        ("ics.discharge.v1", Feed::Discharge),
        ("ics.social_care.v1", Feed::SocialCare),
        ("ics.primary_care.v1", Feed::PrimaryCare),
    ] {
        events
            .counter(Counter::Consumed, &["ingest", topic])
            .add(1_000);
        for partition in 0..24 {
            events
                .gauge(Gauge::Lag, &["ingest", topic, &partition.to_string()])
                .set(3);
        }
        for organisation in [
            "RXP", "RTD", "RVW", "RXN", "RAE", "840", "702", "805", "806", "807", "M83670",
            "M85001", "M85002", "M85003",
        ] {
            events
                .gauge(Gauge::LastEvent, &[feed.as_str(), organisation])
                .set(START / 1000);
            for reason in RejectReason::ALL {
                events
                    .counter(
                        Counter::Rejected,
                        &[feed.as_str(), organisation, reason.as_str()],
                    )
                    .add(1);
            }
        }
    }
    let source = {
        let engine = Arc::clone(&engine);
        move || -> Vec<(MetricKey, i64)> {
            engine
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .metrics(as_of)
        }
    };
    registry
        .register(Box::new(EngineCollector::new(Arc::new(source))))
        .expect("registered");
    let series = icsflow_telemetry::render(&registry)
        .expect("rendered")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .count();
    Fixture {
        registry,
        engine,
        as_of,
        series,
    }
}

fn main() {
    let fixture = fixture();
    let text = icsflow_telemetry::render(&fixture.registry).expect("rendered");
    println!(
        "scrape: {} series ({} engine series), {} KB of text",
        fixture.series,
        fixture
            .engine
            .lock()
            .expect("engine")
            .metrics(fixture.as_of)
            .len(),
        text.len() / 1024
    );
    println!(
        "target: `render_metrics` (what /metrics costs) under 5 ms at 2,000 series, on one core"
    );
    FIXTURE.set(fixture).ok().expect("once");
    divan::main();
}

static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();

fn fixture_ref() -> &'static Fixture {
    FIXTURE.get().expect("set in main")
}

/// Baseline: reading every engine series, no exposition.
#[divan::bench(sample_count = 100)]
fn engine_metrics_only() -> usize {
    let fixture = fixture_ref();
    fixture
        .engine
        .lock()
        .expect("engine")
        .metrics(fixture.as_of)
        .len()
}

/// `/metrics`: the whole exposition.
#[divan::bench(sample_count = 100)]
fn render_metrics() -> usize {
    icsflow_telemetry::render(&fixture_ref().registry)
        .expect("rendered")
        .len()
}

/// The published view: flow gauges under the small-number rule.
#[divan::bench(sample_count = 100)]
fn render_published() -> usize {
    icsflow_telemetry::render_published(&fixture_ref().registry)
        .expect("rendered")
        .len()
}
