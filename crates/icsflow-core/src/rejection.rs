//! Why a record was refused, as one bounded set of reason codes.
//!
//! The reason code is a metric label and a dead-letter header, so the set is
//! closed and small. A [`Rejection`] names the field at fault but never holds
//! the offending value: the value may be an NHS number.

use std::fmt;

use crate::identifiers::OdsCode;

/// The reason a partner record was rejected. Stable: these strings appear
/// in dead-letter headers, metric labels and partner-facing documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not a record in either Avro framing: empty, truncated,
    /// a bad header, an invalid varint or string, or bytes left over.
    Malformed,
    /// The schema fingerprint or registry schema id names no schema icsflow
    /// knows, or the registry says the id does not exist.
    UnknownSchema,
    /// The writer schema is known but cannot be read as the current version
    /// of its feed, or belongs to a different feed than the topic carries.
    IncompatibleSchema,
    /// A field breaks its rule: pseudonym, place, organisation, code, UUID,
    /// or the payload does not match the event type.
    InvalidField,
    /// A string field holds a valid NHS number. The record is never copied
    /// anywhere, only its coordinates are.
    IdentifiableData,
    /// A timestamp is in the future, before recorded time allows, or out of
    /// the plausible range.
    TimestampOutOfRange,
    /// On a partner's own topic, the record names a source organisation
    /// that partner does not publish for (another trust, or a topic whose
    /// suffix names no partner of the ICS): a partner writes only in its
    /// own name.
    OrganisationMismatch,
}

impl RejectReason {
    /// Every reason, in a stable order.
    pub const ALL: [RejectReason; 7] = [
        RejectReason::Malformed,
        RejectReason::UnknownSchema,
        RejectReason::IncompatibleSchema,
        RejectReason::InvalidField,
        RejectReason::IdentifiableData,
        RejectReason::TimestampOutOfRange,
        RejectReason::OrganisationMismatch,
    ];

    /// The reason code as it appears in labels and headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownSchema => "unknown_schema",
            RejectReason::IncompatibleSchema => "incompatible_schema",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::IdentifiableData => "identifiable_data",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
            RejectReason::OrganisationMismatch => "organisation_mismatch",
        }
    }

    /// Parses a reason code, for reading dead-letter headers back.
    pub fn from_code(code: &str) -> Option<RejectReason> {
        RejectReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A refused record: the reason code, the field at fault when there is one,
/// and a fixed explanation. Holds no data from the record itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    /// The schema field name, for example `patient_pseudonym`.
    pub field: Option<&'static str>,
    /// What rule was broken, written for the partner who sent the record.
    pub explanation: &'static str,
    /// The publishing organisation, when the record got far enough to name
    /// a valid one: who to tell.
    pub organisation: Option<OdsCode>,
}

impl Rejection {
    pub const fn new(reason: RejectReason, explanation: &'static str) -> Rejection {
        Rejection {
            reason,
            field: None,
            explanation,
            organisation: None,
        }
    }

    pub const fn in_field(
        reason: RejectReason,
        field: &'static str,
        explanation: &'static str,
    ) -> Rejection {
        Rejection {
            reason,
            field: Some(field),
            explanation,
            organisation: None,
        }
    }

    pub const fn invalid_field(field: &'static str, explanation: &'static str) -> Rejection {
        Rejection::in_field(RejectReason::InvalidField, field, explanation)
    }

    pub const fn from_organisation(self, organisation: Option<OdsCode>) -> Rejection {
        Rejection {
            organisation,
            ..self
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(
                formatter,
                "{} in field {field}: {}",
                self.reason, self.explanation
            ),
            None => write!(formatter, "{}: {}", self.reason, self.explanation),
        }
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip_and_are_distinct() {
        let mut codes: Vec<&str> = RejectReason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(reason.as_str()), Some(reason));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectReason::ALL.len());
        assert_eq!(RejectReason::from_code("nope"), None);
    }
}
