//! The dead-letter record: where a rejected partner record goes, with why.
//!
//! Headers carry the reason code, the record's coordinates (topic,
//! partition, offset), the feed, the publishing organisation when it could
//! be read, and the time of rejection. The value is the original bytes,
//! except where they may hold an NHS number: for `identifiable_data`, and
//! for a record rejected for any other reason whose raw bytes hold ten
//! digits that pass the check (the guard only sees strings it could parse,
//! and a record cut short, in the wrong framing or too long was never
//! parsed). Then the value is empty and a header says it was withheld. The
//! partner's key is never copied (a partner might key by NHS number).

use icsflow_core::{may_hold_nhs_number, Feed, OdsCode, RejectReason};
use rdkafka::message::{Header, OwnedHeaders};

pub const HEADER_REASON: &str = "icsflow.reason";
pub const HEADER_TOPIC: &str = "icsflow.source.topic";
pub const HEADER_PARTITION: &str = "icsflow.source.partition";
pub const HEADER_OFFSET: &str = "icsflow.source.offset";
pub const HEADER_FEED: &str = "icsflow.source.feed";
pub const HEADER_ORGANISATION: &str = "icsflow.source.organisation";
pub const HEADER_TIME: &str = "icsflow.rejected.at";
/// Present (`nhs_number`) when the value was withheld because the record's
/// bytes may hold an NHS number.
pub const HEADER_WITHHELD: &str = "icsflow.value.withheld";

/// The facts written into a dead-letter record's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterHeaders {
    pub reason: RejectReason,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub feed: Feed,
    pub organisation: Option<OdsCode>,
    /// Milliseconds since the epoch.
    pub rejected_at_millis: i64,
}

impl DeadLetterHeaders {
    pub(crate) fn to_kafka(&self, original: &[u8]) -> OwnedHeaders {
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        let time = self.rejected_at_millis.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_REASON,
                value: Some(self.reason.as_str()),
            })
            .insert(Header {
                key: HEADER_TOPIC,
                value: Some(self.topic.as_str()),
            })
            .insert(Header {
                key: HEADER_PARTITION,
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: HEADER_OFFSET,
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: HEADER_FEED,
                value: Some(self.feed.as_str()),
            })
            .insert(Header {
                key: HEADER_TIME,
                value: Some(time.as_str()),
            });
        if self.withholds(original) {
            headers = headers.insert(Header {
                key: HEADER_WITHHELD,
                value: Some("nhs_number"),
            });
        }
        if let Some(organisation) = &self.organisation {
            headers = headers.insert(Header {
                key: HEADER_ORGANISATION,
                value: Some(organisation.as_str()),
            });
        }
        headers
    }

    /// The value to write: nothing when the record may hold an NHS number.
    pub(crate) fn value<'a>(&self, original: &'a [u8]) -> &'a [u8] {
        if self.withholds(original) {
            &[]
        } else {
            original
        }
    }

    fn withholds(&self, original: &[u8]) -> bool {
        self.reason == RejectReason::IdentifiableData || may_hold_nhs_number(original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(reason: RejectReason) -> DeadLetterHeaders {
        DeadLetterHeaders {
            reason,
            topic: "t".to_owned(),
            partition: 0,
            offset: 0,
            feed: Feed::Discharge,
            organisation: None,
            rejected_at_millis: 0,
        }
    }

    #[test]
    fn bytes_that_may_hold_an_nhs_number_are_never_copied_whatever_the_reason() {
        for reason in [
            RejectReason::Malformed,
            RejectReason::UnknownSchema,
            RejectReason::IdentifiableData,
        ] {
            let letter = headers(reason);
            assert_eq!(letter.value(b"\xc3\x01{\"x\": \"NHS9434765919\"}"), b"");
            assert_eq!(letter.value(b"\x02\x30943 476 5919"), b"");
        }
        let malformed = headers(RejectReason::Malformed);
        assert_eq!(malformed.value(b"\x00\x01garbage"), b"\x00\x01garbage");
    }
}
