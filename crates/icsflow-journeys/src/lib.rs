//! What the join role holds, without the Kafka that feeds it:
//!
//! - [`record`]: the journey topic's record, icsflow's own compact encoding
//!   of events ingest validated (ingest writes it, join reads it);
//! - [`PartitionEngines`]: one journey engine per journey partition a
//!   replica owns, so that a revoked partition's journeys go whole;
//! - [`Clock`] and [`AsOf`]: the two instants the engines read, "now" (is an
//!   event from the future?) and "as of" (what the gauges and eviction are
//!   computed at).
//!
//! Architecture invariant: no I/O and no async runtime (the dependency list
//! holds it); time enters only through a [`Clock`] a caller gives.

mod clock;
mod partitions;
pub mod record;

pub use clock::{wall_clock, AsOf, Clock};
pub use partitions::{PartitionEngines, Settled};
pub use record::{partition_of, JourneyBatch, JourneyRecordError};
