//! Schema-id lookups: a record whose schema id is not cached holds its
//! partition (paused) while the id is looked up on a blocking thread, and
//! the partition is sought back and resumed once the registry answers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::{LookupError, SchemaRegistryClient};
use icsflow_core::Feed;
use icsflow_events::events::{
    PartitionHeld, RegistryAnswered, RegistryRefused, RegistryUnavailable,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::warn;

use super::Ingest;
use crate::context::RoleContext;
use crate::sources::{PartnerTopics, TopicId};

/// How long to wait before asking an unavailable schema registry again.
const REGISTRY_RETRY: Duration = Duration::from_secs(2);
/// How long to wait before asking again a registry that refused icsflow's
/// credentials (it only changes when someone fixes them).
const REGISTRY_REFUSED_RETRY: Duration = Duration::from_secs(30);

/// Partner partitions paused while the schema id of their next record is
/// looked up, and the lookups under way.
pub(super) struct Lookups {
    registry: Option<Arc<SchemaRegistryClient>>,
    /// (feed, partition) → (offset of the held record, its schema id).
    held: HashMap<(TopicId, i32), (i64, u32)>,
    /// Ids being looked up: one request each, however many partitions wait.
    asking: HashSet<u32>,
    /// When the held partitions' ends were last read from the broker.
    ends_measured: Option<std::time::Instant>,
    sender: UnboundedSender<(u32, LookupOutcome)>,
    pub(super) answers: UnboundedReceiver<(u32, LookupOutcome)>,
}

/// How a lookup ended, for the loop.
#[derive(Debug)]
pub(super) enum LookupOutcome {
    /// Cached now: a schema, or a final no (the record is then rejected).
    Answered,
    Unavailable(String),
    Refused(u16),
}

impl Lookups {
    const ENDS_EVERY: Duration = Duration::from_secs(5);

    pub(super) fn new(registry: Option<Arc<SchemaRegistryClient>>) -> Lookups {
        let (sender, answers) = unbounded_channel();
        Lookups {
            registry,
            held: HashMap::new(),
            asking: HashSet::new(),
            ends_measured: None,
            sender,
            answers,
        }
    }

    pub(super) fn holds(&self, source: TopicId, partition: i32) -> bool {
        self.held.contains_key(&(source, partition))
    }

    /// The end of each held partition, read from the broker: librdkafka
    /// fetches nothing for a paused partition, so its statistics keep the
    /// end seen when it was paused, and the lag left out every record
    /// published since (it stayed at 1 while 57 records waited). A blocking
    /// request per held partition, at most every [`Lookups::ENDS_EVERY`]:
    /// partitions are held only while a registry does not answer.
    pub(super) fn measure_held_ends(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        sources: &PartnerTopics,
    ) {
        if self.held.is_empty()
            || self
                .ends_measured
                .is_some_and(|at| at.elapsed() < Self::ENDS_EVERY)
        {
            return;
        }
        self.ends_measured = Some(std::time::Instant::now());
        for (source, partition) in self.held.keys() {
            let topic = sources.name(*source);
            let read = || consumer.fetch_watermarks(topic, *partition, Duration::from_millis(200));
            // Off the runtime's worker where it can be (not on a
            // single-threaded runtime, where the loop waits up to 200 ms).
            let end = match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(read),
                _ => read(),
            };
            if let Ok((_, end)) = end {
                consumer.context().known_end(topic, *partition, end);
            }
        }
    }

    /// Asks the registry for `schema_id` after `delay`, on a blocking
    /// thread; the answer comes back through `answers`.
    fn ask(&mut self, schema_id: u32, delay: Duration) {
        let Some(registry) = self.registry.clone() else {
            return;
        };
        self.asking.insert(schema_id);
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let answer =
                tokio::task::spawn_blocking(move || registry.writer_schema(schema_id)).await;
            let outcome = match answer {
                Ok(Ok(_) | Err(LookupError::Rejected(_))) => LookupOutcome::Answered,
                Ok(Err(LookupError::Unavailable(detail))) => LookupOutcome::Unavailable(detail),
                Ok(Err(LookupError::Refused { status })) => LookupOutcome::Refused(status),
                Err(join_error) => LookupOutcome::Unavailable(join_error.to_string()),
            };
            let _ = sender.send((schema_id, outcome));
        });
    }

    /// After a rebalance: a held partition no longer owned is forgotten
    /// (its next owner reads it from the committed offset); one still owned
    /// is paused again (an assignment starts unpaused).
    pub(super) fn after_rebalance(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        sources: &PartnerTopics,
    ) {
        let owned = consumer.assignment().unwrap_or_default();
        self.held.retain(|(source, partition), _| {
            let topic = sources.name(*source);
            let still_owned = owned.find_partition(topic, *partition).is_some();
            if still_owned {
                let _ = consumer.pause(&one_partition(topic, *partition));
            }
            still_owned
        });
    }
}

fn one_partition(topic: &str, partition: i32) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    list
}

impl Ingest<'_> {
    /// Pauses the record's partition and asks for its schema id, unless
    /// that id is being asked for already.
    pub(super) fn hold(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        source: TopicId,
        message: &BorrowedMessage<'_>,
        schema_id: u32,
    ) {
        let partition = message.partition();
        if let Err(error) = consumer.pause(&one_partition(message.topic(), partition)) {
            warn!(%error, topic = message.topic(), partition, "pausing a partition failed");
        }
        self.lookups
            .held
            .insert((source, partition), (message.offset(), schema_id));
        consumer
            .context()
            .held_at(message.topic(), partition, message.offset());
        self.events.emit(PartitionHeld {
            topic: message.topic(),
            partition,
            offset: message.offset(),
            schema_id,
        });
        if !self.lookups.asking.contains(&schema_id) {
            self.lookups.ask(schema_id, Duration::ZERO);
        }
    }

    /// The registry answered (or failed to) for `schema_id`: resume the
    /// partitions held on it, or ask again later.
    pub(super) fn lookup_answered(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        schema_id: u32,
        outcome: LookupOutcome,
    ) {
        let waiting: Vec<(TopicId, i32)> = self
            .lookups
            .held
            .iter()
            .filter(|(_, (_, id))| *id == schema_id)
            .map(|(key, _)| *key)
            .collect();
        match outcome {
            LookupOutcome::Answered => {
                self.lookups.asking.remove(&schema_id);
                self.events.emit(RegistryAnswered {
                    none_waiting: self.lookups.asking.is_empty(),
                });
                for key in waiting {
                    let Some((offset, _)) = self.lookups.held.remove(&key) else {
                        continue;
                    };
                    let topic = self.sources.name(key.0);
                    // Asynchronous (no wait): librdkafka drops what it had
                    // fetched past the held record and fetches from it.
                    if let Err(error) =
                        consumer.seek(topic, key.1, Offset::Offset(offset), Duration::ZERO)
                    {
                        warn!(%error, topic, partition = key.1, "seeking back to a held record failed");
                    }
                    if let Err(error) = consumer.resume(&one_partition(topic, key.1)) {
                        warn!(%error, topic, partition = key.1, "resuming a partition failed");
                    }
                }
            }
            LookupOutcome::Unavailable(detail) => {
                let held: Vec<Feed> = waiting
                    .iter()
                    .map(|(source, _)| self.sources.get(*source).feed)
                    .collect();
                // Held records are waiting, not lost: readiness says so.
                self.events.emit(RegistryUnavailable {
                    schema_id,
                    held: &held,
                    detail: &detail,
                });
                self.lookups.ask(schema_id, REGISTRY_RETRY);
            }
            LookupOutcome::Refused(status) => {
                self.events.emit(RegistryRefused {
                    schema_id,
                    status,
                    partitions_held: waiting.len(),
                });
                self.lookups.ask(schema_id, REGISTRY_REFUSED_RETRY);
            }
        }
    }
}
