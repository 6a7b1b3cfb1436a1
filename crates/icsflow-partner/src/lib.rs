//! What runs on the partner side of the ICS boundary.
//!
//! - [`PseudonymKey`]: pseudonymisation at source. Every partner computes
//!   the same HMAC-SHA256 of a patient's NHS number with the key shared
//!   within the ICS, so that journeys join across partners without an NHS
//!   number ever leaving one.
//! - [`Simulator`]: a deterministic simulation of an ICS's partners (acute
//!   trusts, local authorities, GP practices) publishing their feeds the
//!   way real ones do: late, out of order across partners, with duplicates,
//!   corrections and a few bad records, and trusts of different
//!   [`RecordingQuality`] (one late, one leaving fields out). The demo,
//!   tests and benchmarks use it.
//!
//! This crate does no I/O and never reads the clock; it knows nothing of
//! Avro or Kafka. Callers encode and publish what it produces.

mod pseudonym;
mod random;
mod simulation;

pub use pseudonym::{NhsNumberError, PseudonymKey, PseudonymKeyError};
pub use random::Random;
pub use simulation::{
    Publication, PublicationKind, Publishing, RecordingQuality, SimulatedPlace, SimulationConfig,
    SimulationStatistics, Simulator,
};
