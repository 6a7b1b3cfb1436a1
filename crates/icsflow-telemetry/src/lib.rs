//! The only crate that knows Prometheus and HTTP.
//!
//! - [`EngineCollector`]: renders the journey engine's series at scrape
//!   time. Nothing expires and no series disappears while the process
//!   lives: a label set seen once is reported (as 0 if need be) until exit.
//! - [`PipelineMetrics`]: records consumed, produced and rejected, consumer
//!   lag, freshness, replay progress, build info.
//! - [`Health`] and [`serve_admin`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`serve_published`]: the flow metrics under the NHS small-number rule
//!   ([`disclosure`]), for dashboards shared beyond the partners.
//!
//! The registry is passed explicitly, never global.

mod admin;
pub mod disclosure;
mod engine_collector;
mod pipeline;

pub use admin::{serve_admin, serve_published, AdminState, Health};
pub use engine_collector::{series_text, EngineCollector, EngineMetricsSource};
pub use pipeline::{
    PipelineMetrics, ORGANISATION_LABEL_LIMIT, OTHER_ORGANISATION, UNKNOWN_ORGANISATION,
};
pub use prometheus::{IntCounter, IntGauge, Registry};

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    encode(&registry.gather())
}

/// Renders the published view of a registry: flow gauges only, under the
/// small-number rule of [`disclosure`].
pub fn render_published(registry: &Registry) -> String {
    encode(&disclosure::published(registry.gather()))
}

fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    use prometheus::Encoder;
    let mut buffer = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(error) = encoder.encode(families, &mut buffer) {
        tracing::warn!(%error, "metrics encoding failed");
    }
    String::from_utf8(buffer).unwrap_or_default()
}
