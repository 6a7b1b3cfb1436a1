//! The icsflow domain: validated identifiers, national code lists and the
//! events partners publish, as plain Rust types.
//!
//! Every value here was checked on the way in: a [`Pseudonym`] is 32 bytes
//! of an HMAC, a [`PlaceCode`] is an upper-tier GSS code, an event's
//! timestamps are consistent. Code that holds these types never re-checks.
//!
//! This crate does no I/O and never reads the clock: callers pass the
//! instant "now" when a check depends on it ([`TimestampPolicy`]). It knows
//! nothing of Avro, Kafka, HTTP or Prometheus.

mod codes;
mod event;
mod identifiers;
mod kinds;
mod nhs_number;
mod reference;
mod rejection;
mod samples;
mod time;

pub use codes::*;
pub use event::*;
pub use identifiers::{EventId, OdsCode, PlaceCode, Pseudonym, PseudonymHex};
pub use kinds::{Kind, PerKind};
pub use nhs_number::{
    contains_nhs_number, is_valid_nhs_number, may_hold_nhs_number, may_show_nhs_number,
};
pub use reference::{Cadence, Partner, PartnerKind, Place, Reference, RolePrincipals};
pub use rejection::{RejectReason, Rejection};
pub use samples::{
    one_event_of_each_type, sample_envelope, sample_pseudonym, sample_reference, samples_reference,
    shifted_to_end_before,
};
pub use time::{Date, Timestamp, TimestampPolicy};
