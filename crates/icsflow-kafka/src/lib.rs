//! The only crate that knows Kafka: the `ingest` and `join` roles over
//! rdkafka.
//!
//! - **ingest** consumes the partner topics, decodes and validates each
//!   record, produces its event to the journey topic in a batch record of
//!   the patient's journey partition (the murmur2 partition of the
//!   pseudonym, as the Java client places keyed records) or a dead letter
//!   with a reason, and stores a partner offset only after the broker
//!   acknowledged what it produced for it (at least once), or commits the
//!   offsets with the outputs in a transaction (exactly once).
//! - **join** consumes the journey topic in a consumer group. Every
//!   assignment starts from the beginning of retention, whatever is
//!   committed (its positions are committed for Kafka's tools only), so a
//!   partition's journeys are rebuilt by replay, and the replica reports
//!   ready once each assigned partition reached the high watermark seen at
//!   assignment. Revocation drops the partition's engine.
//!
//! Bad input never stops a role: it is dead-lettered and counted. What
//! happens inside a role is emitted as internal events (`icsflow-events`);
//! this crate knows no metrics library.

mod acknowledgements;
mod common;
mod context;
mod dead_letter;
mod embedded;
mod ingest;
mod join;
mod publisher;
mod settings;
mod sources;
mod topics;

pub use common::{librdkafka_version, next_message, stopped, RoleError, Shutdown};
pub use dead_letter::{
    read_dead_letters, DeadLetter, DeadLetterHeaders, HEADER_EVENT_ID, HEADER_FEED, HEADER_FIELD,
    HEADER_OFFSET, HEADER_ORGANISATION, HEADER_PARTITION, HEADER_REASON, HEADER_TIME, HEADER_TOPIC,
    HEADER_WITHHELD,
};
pub use embedded::EmbeddedBroker;
pub use ingest::{run_ingest, IngestSummary};
pub use join::{run_join, JoinOptions, JoinSummary};
pub use publisher::{Delivery, DeliveryFailure, PartnerProducer};
pub use settings::{IngestDelivery, KafkaSettings, TopicLayout, Topics};
pub use topics::{
    create_topics, find_topics, topic_plan, PlannedTopic, TopicsFound, DEAD_LETTER_PARTITIONS,
    JOURNEY_PARTITIONS, PER_PARTNER_PARTITIONS, SHARED_FEED_PARTITIONS,
};
