//! The only crate that knows Prometheus and HTTP.
//!
//! - [`EngineCollector`]: renders the journey engine's series at scrape
//!   time. Nothing expires and no series disappears while the process
//!   lives: a label set seen once is reported (as 0 if need be) until exit.
//! - [`PrometheusRecorder`]: the pipeline metrics `icsflow-events` defines
//!   (records consumed, produced and rejected, consumer lag, freshness,
//!   replay progress, build info), recorded in Prometheus.
//! - [`serve_admin`]: `/metrics`, `/healthz`, `/readyz` (from the roles'
//!   [`Health`]).
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
pub use pipeline::PrometheusRecorder;
pub use prometheus::Registry;

/// Renders a registry in the Prometheus text format; an error when it
/// cannot be encoded (never an empty exposition that reads as "no series").
pub fn render(registry: &Registry) -> Result<String, RenderError> {
    encode(&registry.gather())
}

/// Renders the published view of a registry: flow gauges only, under the
/// small-number rule of [`disclosure`].
pub fn render_published(registry: &Registry) -> Result<String, RenderError> {
    encode(&disclosure::published(registry.gather()))
}

/// Why an exposition could not be rendered.
#[derive(Debug)]
pub struct RenderError(String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "the metrics could not be encoded: {}", self.0)
    }
}

impl std::error::Error for RenderError {}

fn encode(families: &[prometheus::proto::MetricFamily]) -> Result<String, RenderError> {
    use prometheus::Encoder;
    let mut buffer = Vec::new();
    prometheus::TextEncoder::new()
        .encode(families, &mut buffer)
        .map_err(|error| RenderError(error.to_string()))?;
    String::from_utf8(buffer).map_err(|error| RenderError(error.to_string()))
}
