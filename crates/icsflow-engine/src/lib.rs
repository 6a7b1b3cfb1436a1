//! The journey engine: joins the three partner feeds per patient pseudonym
//! into journeys and keeps the place-based flow metrics analysts read.
//!
//! Pure: no I/O, no clock, no Kafka, Avro, HTTP, Prometheus or async
//! runtime (the dependency list holds only `icsflow-core`). Callers pass
//! validated events in and an "as of" instant when they read metrics.
//!
//! - Order-independent: a journey's contributions are a function of its set
//!   of events, so any arrival order gives the same metrics.
//! - Idempotent: an event seen again (same organisation and event id)
//!   changes nothing.
//! - Restating: cancellations and corrections are applied when a journey is
//!   derived, so everything that depended on a replaced fact moves.
//! - Incremental: applying an event re-derives only its own journey and
//!   moves only the series that changed; reading walks series, not patients.
//!   A rebuild defers deriving ([`Engine::defer`]) and derives each journey
//!   once when it settles.
//!
//! Definitions of every metric: `docs/metrics.md`.

mod derive;
mod engine;
mod hashing;
mod journey;
mod labels;
mod metrics;
mod series;
mod spells;

pub use engine::{
    Applied, Engine, EngineConfig, EngineStatistics, EVENT_VERSION_LIMIT, JOURNEY_EVENT_LIMIT,
    JOURNEY_REFERENCE_LIMIT,
};
pub use labels::{
    Amendment, DelayBand, Field, FollowUpOutcome, FollowUpWindow, PathwayLabel, ReablementOutcome,
    ReasonLabel, Recorded, StayBand, Window,
};
pub use metrics::MetricKey;
