//! The dead-letter record: where a rejected partner record goes, with why.
//!
//! Headers carry the reason code, the record's coordinates (topic,
//! partition, offset), the feed, the publishing organisation when it could
//! be read, and the time of rejection. The value is the original bytes,
//! except for `identifiable_data`, where it is empty: the record held an NHS
//! number and must not be copied anywhere. The partner's key is never
//! copied (a partner might key by NHS number).

use icsflow_core::{Feed, OdsCode, RejectReason};
use rdkafka::message::{Header, OwnedHeaders};

pub const HEADER_REASON: &str = "icsflow.reason";
pub const HEADER_TOPIC: &str = "icsflow.source.topic";
pub const HEADER_PARTITION: &str = "icsflow.source.partition";
pub const HEADER_OFFSET: &str = "icsflow.source.offset";
pub const HEADER_FEED: &str = "icsflow.source.feed";
pub const HEADER_ORGANISATION: &str = "icsflow.source.organisation";
pub const HEADER_TIME: &str = "icsflow.rejected.at";

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
    pub(crate) fn to_kafka(&self) -> OwnedHeaders {
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
        if let Some(organisation) = &self.organisation {
            headers = headers.insert(Header {
                key: HEADER_ORGANISATION,
                value: Some(organisation.as_str()),
            });
        }
        headers
    }

    /// The value to write: nothing for identifiable data.
    pub(crate) fn value<'a>(&self, original: &'a [u8]) -> &'a [u8] {
        if self.reason == RejectReason::IdentifiableData {
            &[]
        } else {
            original
        }
    }
}
