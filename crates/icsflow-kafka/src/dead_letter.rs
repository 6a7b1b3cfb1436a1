//! The dead-letter record: where a rejected partner record goes, with why.
//!
//! A dead letter copies no partner byte, by construction: its value is
//! empty and its headers are written from checked values only. They carry
//! the reason code, the refused record's coordinates (topic, partition,
//! offset: the record itself stays on the partner's topic, under that
//! topic's retention and ACLs), the feed, the publishing organisation and
//! the event id when they could be read and validated (an ODS code, a
//! UUID, each written back by icsflow's own formatting), the schema field
//! at fault and the time of rejection. Whatever spelling of an NHS number a
//! record holds, in whatever field or framing, nothing of it can reach the
//! dead-letter topic, since nothing unchecked is written there.
//!
//! Letters written by earlier versions carried the record's bytes as their
//! value (or withheld them); [`DeadLetter::from_record`] still reads their
//! event id from such a value.

use icsflow_core::{EventId, Feed, OdsCode, RejectReason};
use rdkafka::message::{Header, OwnedHeaders};

pub const HEADER_REASON: &str = "icsflow.reason";
pub const HEADER_TOPIC: &str = "icsflow.source.topic";
pub const HEADER_PARTITION: &str = "icsflow.source.partition";
pub const HEADER_OFFSET: &str = "icsflow.source.offset";
pub const HEADER_FEED: &str = "icsflow.source.feed";
pub const HEADER_ORGANISATION: &str = "icsflow.source.organisation";
pub const HEADER_TIME: &str = "icsflow.rejected.at";
/// The schema field at fault, when the rejection names one.
pub const HEADER_FIELD: &str = "icsflow.field";
/// The refused record's event id, when it could be read as a UUID.
pub const HEADER_EVENT_ID: &str = "icsflow.source.event_id";
/// Written by earlier versions (`nhs_number`) when they withheld a value
/// that may have held an NHS number; never written now (no value is).
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
    /// The schema field at fault (a name from the schema, never a value).
    pub field: Option<&'static str>,
    /// The record's event id, when it could be read as a UUID.
    pub event_id: Option<EventId>,
    /// Milliseconds since the epoch.
    pub rejected_at_millis: i64,
}

/// A dead-letter record read back from its headers (and, for a letter an
/// earlier version wrote with the record's bytes as its value, the event id
/// from that value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: String,
    pub field: Option<String>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub feed: String,
    pub organisation: Option<String>,
    pub rejected_at_millis: i64,
    /// An earlier version withheld the value (it may have held an NHS
    /// number).
    pub withheld: bool,
    pub event_id: Option<EventId>,
}

impl DeadLetter {
    /// Reads a dead-letter record's headers (name, bytes) and value.
    pub fn from_record<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        value: &[u8],
    ) -> DeadLetter {
        let mut letter = DeadLetter {
            reason: String::new(),
            field: None,
            topic: String::new(),
            partition: -1,
            offset: -1,
            feed: String::new(),
            organisation: None,
            rejected_at_millis: 0,
            withheld: false,
            event_id: None,
        };
        for (name, bytes) in headers {
            let text = String::from_utf8_lossy(bytes).into_owned();
            match name {
                HEADER_REASON => letter.reason = text,
                HEADER_FIELD => letter.field = Some(text),
                HEADER_TOPIC => letter.topic = text,
                HEADER_PARTITION => letter.partition = text.parse().unwrap_or(-1),
                HEADER_OFFSET => letter.offset = text.parse().unwrap_or(-1),
                HEADER_FEED => letter.feed = text,
                HEADER_ORGANISATION => letter.organisation = Some(text),
                HEADER_TIME => letter.rejected_at_millis = text.parse().unwrap_or(0),
                HEADER_WITHHELD => letter.withheld = true,
                HEADER_EVENT_ID => letter.event_id = EventId::parse("event_id", &text).ok(),
                _ => {}
            }
        }
        if letter.event_id.is_none() && !letter.withheld {
            letter.event_id = icsflow_avro::peek_event_id(value);
        }
        letter
    }
}

impl DeadLetterHeaders {
    /// The headers: every value one icsflow wrote from a checked value.
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
        if let Some(event_id) = self.event_id {
            headers = headers.insert(Header {
                key: HEADER_EVENT_ID,
                value: Some(event_id.to_string().as_str()),
            });
        }
        if let Some(organisation) = &self.organisation {
            headers = headers.insert(Header {
                key: HEADER_ORGANISATION,
                value: Some(organisation.as_str()),
            });
        }
        if let Some(field) = self.field {
            headers = headers.insert(Header {
                key: HEADER_FIELD,
                value: Some(field),
            });
        }
        headers
    }
}

/// Reads the dead-letter topic from `since` (or its start) to the end it
/// had when asked, with `read_committed`, and keeps the letters of
/// `organisation` only: a partner's rejections, never another's. A letter
/// whose organisation could not be read is nobody's.
pub fn read_dead_letters(
    settings: &crate::settings::KafkaSettings,
    topic: &str,
    since: Option<icsflow_core::Timestamp>,
    organisation: &str,
) -> Result<Vec<DeadLetter>, crate::common::RoleError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    const TIMEOUT: Duration = Duration::from_secs(30);
    let consumer: BaseConsumer<crate::context::ToolContext> = settings
        .consumer_config(&[
            ("client.id", "icsflow-rejections"),
            ("group.id", "icsflow-rejections"),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "false"),
        ])
        .create_with_context(crate::context::ToolContext::new("rejections"))?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|topic| topic.partitions().iter().map(|partition| partition.id()))
        .collect();
    let mut start = rdkafka::TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in &partitions {
        let (_, high) = consumer.fetch_watermarks(topic, *partition, TIMEOUT)?;
        ends.insert(*partition, high);
        let offset = match since {
            Some(instant) => rdkafka::Offset::Offset(instant.as_millis()),
            None => rdkafka::Offset::Beginning,
        };
        start.add_partition_offset(topic, *partition, offset)?;
    }
    if since.is_some() {
        // Timestamps to the first offset at or after them (the end when none).
        start = consumer.offsets_for_times(start, TIMEOUT)?;
    }
    consumer.assign(&start)?;
    let mut letters = Vec::new();
    let mut next: BTreeMap<i32, i64> = start
        .elements()
        .iter()
        .map(|element| {
            let offset = match element.offset() {
                rdkafka::Offset::Offset(offset) => offset,
                _ => ends.get(&element.partition()).copied().unwrap_or(0),
            };
            (
                element.partition(),
                if since.is_some() { offset } else { 0 },
            )
        })
        .collect();
    let started = Instant::now();
    while next
        .iter()
        .any(|(partition, offset)| *offset < ends.get(partition).copied().unwrap_or(0))
    {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(crate::common::RoleError::DeliveryFailed(format!(
                "reading {topic} did not reach its end within two minutes"
            )));
        }
        let Some(received) = consumer.poll(Duration::from_millis(200)) else {
            // Transaction markers are never handed out: follow the position.
            if let Ok(position) = consumer.position() {
                for element in position.elements() {
                    if let (Some(known), rdkafka::Offset::Offset(offset)) =
                        (next.get_mut(&element.partition()), element.offset())
                    {
                        *known = (*known).max(offset);
                    }
                }
            }
            continue;
        };
        let message = received?;
        let partition = message.partition();
        next.insert(partition, message.offset() + 1);
        if message.offset() >= ends.get(&partition).copied().unwrap_or(0) {
            continue;
        }
        let headers: Vec<(&str, &[u8])> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key, header.value.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let letter = DeadLetter::from_record(headers, message.payload().unwrap_or_default());
        if letter.organisation.as_deref() == Some(organisation) {
            letters.push(letter);
        }
    }
    letters.sort_by_key(|letter| letter.rejected_at_millis);
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    fn headers(reason: RejectReason) -> DeadLetterHeaders {
        DeadLetterHeaders {
            reason,
            topic: "ics.discharge.v1.RVW".to_owned(),
            partition: 2,
            offset: 41,
            feed: Feed::Discharge,
            organisation: OdsCode::parse("source_organisation", "RVW").ok(),
            field: Some("place"),
            event_id: Some(icsflow_core::one_event_of_each_type()[0].envelope.event_id),
            rejected_at_millis: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_dead_letter_is_written_from_checked_values_and_reads_back() {
        let written = headers(RejectReason::InvalidField);
        let kafka = written.to_kafka();
        let pairs: Vec<(&str, &[u8])> = kafka
            .iter()
            .map(|header| (header.key, header.value.unwrap_or_default()))
            .collect();
        let letter = DeadLetter::from_record(pairs, b"");
        assert_eq!(letter.event_id, written.event_id);
        assert_eq!(letter.reason, "invalid_field");
        assert_eq!(letter.field.as_deref(), Some("place"));
        assert_eq!(letter.organisation.as_deref(), Some("RVW"));
        assert_eq!((letter.partition, letter.offset), (2, 41));
        assert_eq!(letter.topic, "ics.discharge.v1.RVW");
        assert!(!letter.withheld);
    }

    #[test]
    fn a_letter_of_an_earlier_version_gives_the_event_id_of_its_value_unless_withheld() {
        let event = icsflow_core::one_event_of_each_type()[0];
        let catalogue = icsflow_avro::SchemaCatalogue::embedded();
        let value = icsflow_avro::encode_single_object(&catalogue, &event);
        let headers = [
            (HEADER_REASON, &b"invalid_field"[..]),
            (HEADER_ORGANISATION, b"RVW"),
        ];
        let letter = DeadLetter::from_record(headers, &value);
        assert_eq!(letter.event_id, Some(event.envelope.event_id));
        let withheld = DeadLetter::from_record(
            headers
                .into_iter()
                .chain([(HEADER_WITHHELD, &b"nhs_number"[..])]),
            &value,
        );
        assert_eq!(withheld.event_id, None);
        assert_eq!(
            DeadLetter::from_record(headers, b"\xc3\x01garbage").event_id,
            None
        );
    }
}
