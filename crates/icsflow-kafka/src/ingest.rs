//! The ingest role: partner topics in; journey topic and dead-letter topic
//! out; at-least-once.
//!
//! Records are taken from librdkafka in batches of what it already holds,
//! each routed and handed to the producer without waiting for the broker.
//! Delivery reports arrive on the producer's own thread and are recorded in
//! `acknowledgements::InFlight`; once per batch (and every 100 ms when
//! idle) the loop stores the partner offsets that became storable, so no
//! task is woken per record.
//!
//! A record in Confluent framing whose schema id is not cached never makes
//! the loop wait: its partition is paused, the id is looked up on a
//! blocking thread (one request per id, however many partitions wait on
//! it), and the loop goes on with every other partition. When the answer
//! comes the partition is sought back to the held record and resumed; an
//! unavailable registry is asked again after a pause, and a refusal of
//! icsflow's credentials turns readiness off and says so.
//!
//! With `IngestDelivery::ExactlyOnce`, each batch is one Kafka transaction:
//! its journey and dead-letter records and the partner offsets after them
//! are committed together (`send_offsets_to_transaction` with the
//! consumer's group metadata, KIP-447), so a crash leaves either all of a
//! batch or none of it for `read_committed` readers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::{DecodeError, EventDecoder, LookupError, SchemaRegistryClient};
use icsflow_core::{Feed, RejectReason, Rejection, Timestamp, TimestampPolicy};
use icsflow_telemetry::{Health, PipelineMetrics, OTHER_ORGANISATION};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{debug, error, info, warn};

use crate::acknowledgements::{Delivered, IngestDeliveries, OutputKind, Source};
use crate::common::next_message;
use crate::context::RoleContext;
use crate::dead_letter::DeadLetterHeaders;
use crate::journey_record::{partition_of, JourneyBatch};
use crate::sources::{PartnerTopic, PartnerTopics, TopicId};
use crate::{ready_now, stopped, IngestDelivery, KafkaSettings, RoleError, Shutdown, Topics};

/// What an ingest run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub consumed: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// How long to wait before asking an unavailable schema registry again.
const REGISTRY_RETRY: Duration = Duration::from_secs(2);
/// How long to wait before asking again a registry that refused icsflow's
/// credentials (it only changes when someone fixes them).
const REGISTRY_REFUSED_RETRY: Duration = Duration::from_secs(30);

/// Most records taken from librdkafka before offsets are stored.
const BATCH: usize = 512;

/// Runs the ingest role until `shutdown` is raised or a produced record
/// cannot be delivered (then the process should exit and restart from the
/// last stored offsets).
pub async fn run_ingest(
    settings: &KafkaSettings,
    topics: &Topics,
    reference: Arc<icsflow_core::Reference>,
    decoder: EventDecoder,
    clock: crate::Clock,
    metrics: PipelineMetrics,
    health: Arc<Health>,
    mut shutdown: Shutdown,
) -> Result<IngestSummary, RoleError> {
    let (rebalance_sender, mut rebalances) = unbounded_channel();
    let context = RoleContext {
        role: "ingest",
        health: Arc::clone(&health),
        metrics: metrics.clone(),
        rebalances: Some(rebalance_sender),
        lag_topic: {
            let topics = topics.clone();
            Box::new(move |topic| PartnerTopics::is_partner_topic(&topics, topic))
        },
        revocations: Default::default(),
        processed: Default::default(),
        ends: Default::default(),
        error_lines: Default::default(),
        replay_assigned: false,
        stopping: Default::default(),
        announced_caught_up: Default::default(),
    };
    let exactly_once = settings.ingest_delivery == IngestDelivery::ExactlyOnce;
    // At least once: offsets are stored by hand once outputs are
    // acknowledged, and committed from the store every second. Exactly
    // once: offsets are committed only inside each batch's transaction.
    let auto_commit = if exactly_once { "false" } else { "true" };
    let client_id = settings.client_id("icsflow-ingest");
    let consumer_config = settings.consumer_config(&[
        ("client.id", &client_id),
        ("group.id", &settings.ingest_group_id),
        ("enable.auto.commit", auto_commit),
        ("auto.commit.interval.ms", "1000"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]);
    let consumer: StreamConsumer<RoleContext> = consumer_config.create_with_context(context)?;
    let producer: ThreadedProducer<IngestDeliveries> = if exactly_once {
        let transactional_id = transactional_id(settings);
        let producer: ThreadedProducer<IngestDeliveries> = settings
            .ingest_producer_config(Some(&transactional_id))
            .create_with_context(IngestDeliveries::new(&topics.journey, true))?;
        // Fences any earlier producer with the same id, and aborts what it
        // left open.
        tokio::task::block_in_place(|| producer.init_transactions(TRANSACTION_TIMEOUT))?;
        info!(
            transactional_id,
            "exactly-once delivery: one transaction per batch"
        );
        producer
    } else {
        settings
            .ingest_producer_config(None)
            .create_with_context(IngestDeliveries::new(&topics.journey, false))?
    };
    let sources = PartnerTopics::new(topics, &metrics);
    let subscription = sources.subscription();
    consumer.subscribe(&subscription.iter().map(String::as_str).collect::<Vec<_>>())?;
    // Ready once partitions are assigned (the context's rebalance hook).
    health.set_consuming(false);
    info!(topics = ?subscription, journey_topic = %topics.journey, dead_letter_topic = %topics.dead_letter, "ingest started");

    let mut ingest = Ingest {
        producer: &producer,
        sources,
        decoder: &decoder,
        reference: &reference,
        clock,
        // Metric handles looked up once, not per record.
        produced: [&topics.journey, &topics.dead_letter]
            .map(|topic| metrics.produced.with_label_values(&["ingest", topic])),
        metrics: &metrics,
        freshness: Freshness::default(),
        dead_letter: topics.dead_letter.clone(),
        journey: JourneyBatches::new(&topics.journey),
        summary: IngestSummary::default(),
        lookups: Lookups::new(decoder.registry().cloned()),
        health: &health,
        transaction: exactly_once.then(Transaction::default),
    };
    ingest.journey.ask_partitions(&producer);
    // Offsets become storable on the producer's thread; they are stored
    // after each batch, and on this tick when no record arrives.
    let mut store_tick = tokio::time::interval(Duration::from_millis(100));
    store_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One stream for the role's life: `recv()` makes one per record.
    let mut messages = consumer.stream();
    let outcome: Result<(), RoleError> = 'records: loop {
        let received = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break Ok(()),
            _ = store_tick.tick() => {
                ingest.journey.follow_partitions(&producer);
                ingest.lookups.measure_held_ends(&consumer, &ingest.sources);
                // Exactly once: a transaction left open by the last batch
                // is committed once it is old enough, even when no record
                // arrives.
                if let Err(error) = ingest.commit_transaction(&consumer, Commit::WhenDue) {
                    break Err(error);
                }
                if let Err(error) = ingest.store_acknowledged(&consumer) {
                    break Err(error);
                }
                continue;
            }
            Some(_) = rebalances.recv() => {
                ingest.lookups.after_rebalance(&consumer, &ingest.sources);
                continue;
            }
            Some((schema_id, outcome)) = ingest.lookups.answers.recv() => {
                ingest.lookup_answered(&consumer, schema_id, outcome);
                continue;
            }
            Some(received) = next_message(&mut messages) => received,
        };
        // Take what else librdkafka already holds, up to a batch, without
        // waiting.
        let mut next = Some(received);
        let mut taken = 0;
        // One clock reading for the batch (a few milliseconds of records).
        let now = (ingest.clock)();
        while let Some(received) = next.take() {
            match received {
                Ok(message) => match ingest.handle(&consumer, &message, now).await {
                    Ok(()) => {}
                    Err(error) => {
                        ingest.abort_transaction();
                        break 'records Err(error);
                    }
                },
                Err(error) => {
                    consumer.context().consume_failed(&error);
                    break;
                }
            }
            taken += 1;
            if taken < BATCH {
                next = ready_now(next_message(&mut messages)).flatten();
            }
        }
        if let Err(error) = ingest.journey.send(&producer).await {
            ingest.abort_transaction();
            break Err(error);
        }
        if let Err(error) = ingest.commit_transaction(&consumer, Commit::WhenDue) {
            break Err(error);
        }
        if let Err(error) = ingest.store_acknowledged(&consumer) {
            break Err(error);
        }
    };

    // Partitions given up from here on are the stop's doing, not a fault.
    consumer
        .context()
        .stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // Finish in-flight work: the open transaction committed, or every
    // produced record acknowledged and its offset stored, then commit.
    let committed = match &outcome {
        Ok(()) => ingest.commit_transaction(&consumer, Commit::Now),
        Err(_) => Ok(()),
    };
    if let Err(error) = producer.flush(Duration::from_secs(10)) {
        warn!(%error, unacknowledged = producer.context().lock().pending(), "not every produced record was acknowledged in time; their partner records will be read again");
    }
    let stored = ingest.store_acknowledged(&consumer);
    if exactly_once {
        // Every batch's offsets were committed in its transaction.
    } else if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored yet is not a failure.
        if !matches!(
            error,
            KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)
        ) {
            warn!(%error, "final commit failed");
        }
    }
    let summary = ingest.summary;
    info!(
        consumed = summary.consumed,
        accepted = summary.accepted,
        rejected = summary.rejected,
        "ingest stopped"
    );
    outcome.and(committed).and(stored).map(|()| summary)
}

/// How long a transaction call may take before the role gives up on it.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What commit and abort may take: the transaction's remaining time (-1),
/// which librdkafka strongly recommends for both (other values risk its
/// state going out of step when a request fails).
const REMAINING_TRANSACTION_TIME: rdkafka::util::Timeout = rdkafka::util::Timeout::Never;

/// How long a transaction stays open, taking batch after batch, before it
/// is committed (Kafka Streams' exactly-once default). Each commit costs a
/// broker round trip or more, and librdkafka cannot begin the next
/// transaction's partitions until the last one's markers are written, so a
/// transaction per batch of a few hundred records commits a few thousand
/// records a second at most.
const TRANSACTION_INTERVAL: Duration = Duration::from_millis(100);

/// Whether an open transaction is committed now, or only once it has been
/// open for [`TRANSACTION_INTERVAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commit {
    Now,
    WhenDue,
}

/// The transactional id of this ingest process: stable per replica when
/// `kafka.group_instance_id` is set (a restarted replica fences its former
/// self), otherwise unique per process (KIP-447's group-generation check
/// then fences a stale one).
fn transactional_id(settings: &KafkaSettings) -> String {
    match &settings.group_instance_id {
        Some(instance) => format!("{}-{instance}", settings.ingest_group_id),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.subsec_nanos());
            format!(
                "{}-{}-{nanos}",
                settings.ingest_group_id,
                std::process::id()
            )
        }
    }
}

/// The batch's transaction, when delivery is exactly once: whether one is
/// open, and the next offset of each partner partition it covers.
#[derive(Debug, Default)]
struct Transaction {
    open: bool,
    /// When it began.
    began: Option<std::time::Instant>,
    /// The consumer's revocation count when the transaction began.
    revocations_at_start: u64,
    /// The first offset of each partition in the batch: where to read
    /// again from when the transaction is aborted.
    first: std::collections::BTreeMap<(TopicId, i32), i64>,
    offsets: std::collections::BTreeMap<(TopicId, i32), i64>,
}

/// How many revoking rebalances the consumer has been through.
fn revocations(consumer: &StreamConsumer<RoleContext>) -> u64 {
    consumer
        .context()
        .revocations
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Calls a transactional operation again while it times out with a
/// retriable error (it goes on in the background, and librdkafka resumes
/// it when called again), up to three times in all.
fn resumed(mut operation: impl FnMut() -> Result<(), KafkaError>) -> Result<(), KafkaError> {
    let mut attempt = 1;
    loop {
        match operation() {
            Err(KafkaError::Transaction(error)) if error.is_retriable() && attempt < 3 => {
                warn!(%error, attempt, "a transactional operation timed out; resuming it");
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Whether librdkafka says the transaction must be aborted (the commit did
/// not take effect).
fn transaction_requires_abort(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(error) => error.txn_requires_abort(),
        _ => false,
    }
}

/// Whether a failed transaction call leaves the producer usable (abort,
/// read the batch again, go on) or not (stop: a restart starts afresh).
fn transaction_is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(error) => error.is_fatal(),
        _ => false,
    }
}

/// Partner partitions paused while the schema id of their next record is
/// looked up, and the lookups under way.
struct Lookups {
    registry: Option<Arc<SchemaRegistryClient>>,
    /// (feed, partition) → (offset of the held record, its schema id).
    held: HashMap<(TopicId, i32), (i64, u32)>,
    /// Ids being looked up: one request each, however many partitions wait.
    asking: HashSet<u32>,
    /// When the held partitions' ends were last read from the broker.
    ends_measured: Option<std::time::Instant>,
    sender: UnboundedSender<(u32, LookupOutcome)>,
    answers: UnboundedReceiver<(u32, LookupOutcome)>,
}

/// How a lookup ended, for the loop.
#[derive(Debug)]
enum LookupOutcome {
    /// Cached now: a schema, or a final no (the record is then rejected).
    Answered,
    Unavailable(String),
    Refused(u16),
}

impl Lookups {
    const ENDS_EVERY: Duration = Duration::from_secs(5);

    fn new(registry: Option<Arc<SchemaRegistryClient>>) -> Lookups {
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

    fn holds(&self, source: TopicId, partition: i32) -> bool {
        self.held.contains_key(&(source, partition))
    }

    /// The end of each held partition, read from the broker: librdkafka
    /// fetches nothing for a paused partition, so its statistics keep the
    /// end seen when it was paused, and the lag left out every record
    /// published since (it stayed at 1 while 57 records waited). A blocking
    /// request per held partition, at most every [`Lookups::ENDS_EVERY`]:
    /// partitions are held only while a registry does not answer.
    fn measure_held_ends(
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
    fn after_rebalance(&mut self, consumer: &StreamConsumer<RoleContext>, sources: &PartnerTopics) {
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

/// The ingest loop's state and what it needs per record.
struct Ingest<'a> {
    producer: &'a ThreadedProducer<IngestDeliveries>,
    /// The partner topics met so far.
    sources: PartnerTopics,
    decoder: &'a EventDecoder,
    /// Every accepted event is counted by it (`Reference::counted`).
    reference: &'a icsflow_core::Reference,
    clock: crate::Clock,
    /// By `OutputKind as usize`.
    produced: [icsflow_telemetry::IntCounter; 2],
    metrics: &'a PipelineMetrics,
    freshness: Freshness,
    dead_letter: String,
    /// The journey records being filled.
    journey: JourneyBatches,
    summary: IngestSummary,
    lookups: Lookups,
    health: &'a Health,
    /// `Some` when delivery is exactly once.
    transaction: Option<Transaction>,
}

impl Ingest<'_> {
    /// Routes one partner record and hands its output to the producer, or
    /// holds its partition while its schema id is looked up.
    async fn handle(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        message: &BorrowedMessage<'_>,
        now: Timestamp,
    ) -> Result<(), RoleError> {
        let Some(source) = self.sources.resolve(message.topic()) else {
            return Ok(());
        };
        if self.lookups.holds(source, message.partition()) {
            // Fetched before the partition was paused: it is read again
            // from the held record once the lookup is answered.
            return Ok(());
        }
        let routing = route(
            message,
            self.sources.get(source),
            now,
            self.decoder,
            self.reference,
            self.metrics,
            &mut self.freshness,
        );
        let routed = match routing {
            Routing::Routed(routed) => routed,
            Routing::LookupNeeded(schema_id) => {
                self.hold(consumer, source, message, schema_id);
                return Ok(());
            }
        };
        // Counted once routed: a held record is counted when it is read again.
        self.summary.consumed += 1;
        self.sources.get(source).consumed.inc();
        if let Some(transaction) = &mut self.transaction {
            if !transaction.open {
                tokio::task::block_in_place(|| self.producer.begin_transaction())?;
                transaction.open = true;
                transaction.began = Some(std::time::Instant::now());
                transaction.revocations_at_start = revocations(consumer);
            }
            transaction
                .first
                .entry((source, message.partition()))
                .or_insert(message.offset());
            transaction
                .offsets
                .insert((source, message.partition()), message.offset() + 1);
        }
        let tracked =
            self.producer
                .context()
                .lock()
                .track(source, message.partition(), message.offset());
        match routed {
            Routed::Accepted(event) => {
                self.summary.accepted += 1;
                self.journey.add(self.producer, &event, tracked).await
            }
            Routed::Rejected(letter) => {
                self.summary.rejected += 1;
                let delivered = Box::new(Delivered {
                    kind: OutputKind::Rejected,
                    sources: vec![tracked],
                });
                let record = BaseRecord::with_opaque_to(&self.dead_letter, delivered)
                    .payload(&[][..])
                    .headers(letter.headers);
                send_with_backpressure(self.producer, record).await
            }
        }
    }

    /// Exactly once: commits the outputs of the batches taken since the
    /// transaction began, and the partner offsets after them, once it is due
    /// (or `Commit::Now`). A failure aborts the transaction and reads its
    /// records again (a rebalance that took one of its partitions does
    /// this); a fatal one (this producer was fenced) stops the role.
    fn commit_transaction(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        when: Commit,
    ) -> Result<(), RoleError> {
        let Some(transaction) = &mut self.transaction else {
            return Ok(());
        };
        let due = transaction
            .began
            .is_some_and(|began| began.elapsed() >= TRANSACTION_INTERVAL);
        if !transaction.open || (when == Commit::WhenDue && !due) {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for ((source, partition), offset) in &transaction.offsets {
            let topic = self.sources.name(*source);
            offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        transaction.offsets.clear();
        transaction.open = false;
        transaction.began = None;
        let first = std::mem::take(&mut transaction.first);
        let producer = self.producer;
        // Partitions of this batch may have gone to another replica, which
        // reads them from the last committed offset: committing their
        // outputs here would repeat them there.
        let revoked_meanwhile = revocations(consumer) != transaction.revocations_at_start;
        let outcome = if revoked_meanwhile {
            Outcome::Abort(Aborted::Revoked)
        } else {
            tokio::task::block_in_place(|| commit(producer, consumer, &offsets))
        };
        let aborted = match outcome {
            Outcome::Committed => {
                for element in offsets.elements() {
                    if let Offset::Offset(next) = element.offset() {
                        consumer
                            .context()
                            .processed(element.topic(), element.partition(), next);
                    }
                }
                return Ok(());
            }
            // This producer was fenced: another replica took over.
            Outcome::Abort(Aborted::Failed(error)) | Outcome::Unknown(error)
                if transaction_is_fatal(&error) =>
            {
                return Err(RoleError::TransactionFailed(error));
            }
            Outcome::Unknown(error) => {
                // Whether the broker committed is not known here: the role
                // stops, and the restarted one reads from the offsets the
                // broker holds, committed with the outputs or not at all.
                error!(%error, "a transaction's commit failed without saying whether it took effect; stopping");
                return Err(RoleError::TransactionFailed(error));
            }
            Outcome::Abort(aborted) => aborted,
        };
        if let Err(error) = tokio::task::block_in_place(|| {
            resumed(|| producer.abort_transaction(REMAINING_TRANSACTION_TIME))
        }) {
            error!(%error, "a transaction could not be aborted; stopping");
            return Err(RoleError::TransactionFailed(error));
        }
        // Read the aborted batch again from its first records, on the
        // partitions still owned (a revoked one is read by its next owner
        // from the committed offset).
        match aborted {
            Aborted::Failed(error) => {
                warn!(%error, partitions = first.len(), "transaction aborted; reading its batch again");
            }
            Aborted::Revoked => info!(
                partitions = first.len(),
                "partitions were revoked while the transaction was open: aborted, and read again where still owned"
            ),
        }
        // Without the assignment nothing could be sought back, and the
        // next commit would store offsets past the aborted records: stop,
        // and the restarted role reads from the offsets the broker holds.
        let owned = consumer.assignment().map_err(|error| {
            error!(%error, "the assignment could not be read after an abort; stopping");
            RoleError::Kafka(error)
        })?;
        for ((source, partition), offset) in first {
            let topic = self.sources.name(source);
            if owned.find_partition(topic, partition).is_some() {
                if let Err(error) =
                    consumer.seek(topic, partition, Offset::Offset(offset), Duration::ZERO)
                {
                    warn!(%error, topic, partition, "seeking back to an aborted batch failed; stopping");
                    return Err(RoleError::Kafka(error));
                }
            }
        }
        Ok(())
    }

    /// Exactly once: aborts an open transaction (the role is stopping on
    /// an error).
    fn abort_transaction(&mut self) {
        if let Some(transaction) = &mut self.transaction {
            if transaction.open {
                transaction.open = false;
                transaction.offsets.clear();
                transaction.first.clear();
                transaction.began = None;
                let producer = self.producer;
                // The role is stopping either way; an abort that fails is
                // completed by the broker's transaction timeout, and the
                // restarted role fences this producer.
                if let Err(error) = tokio::task::block_in_place(|| {
                    producer.abort_transaction(REMAINING_TRANSACTION_TIME)
                }) {
                    warn!(%error, "the open transaction could not be aborted while stopping; the broker ends it at its timeout");
                }
            }
        }
    }

    /// Pauses the record's partition and asks for its schema id, unless
    /// that id is being asked for already.
    fn hold(
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
        debug!(
            topic = message.topic(),
            partition,
            offset = message.offset(),
            schema_id,
            "partition held while its schema id is looked up"
        );
        if !self.lookups.asking.contains(&schema_id) {
            self.lookups.ask(schema_id, Duration::ZERO);
        }
    }

    /// The registry answered (or failed to) for `schema_id`: resume the
    /// partitions held on it, or ask again later.
    fn lookup_answered(
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
                self.metrics
                    .registry_lookups
                    .with_label_values(&["answered"])
                    .inc();
                self.lookups.asking.remove(&schema_id);
                if self.health.registry_refused() {
                    info!("the schema registry accepts icsflow's credentials again");
                }
                self.health.set_registry_accepts(true);
                if !self.lookups.asking.iter().any(|id| *id != schema_id) {
                    self.health.set_registry_answers(true);
                }
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
                self.metrics
                    .registry_lookups
                    .with_label_values(&["unavailable"])
                    .inc();
                for (source, _) in &waiting {
                    self.metrics
                        .registry_unavailable
                        .with_label_values(&[self.sources.get(*source).feed.as_str()])
                        .inc();
                }
                warn!(
                    schema_id,
                    partitions_held = waiting.len(),
                    detail,
                    "schema registry unavailable; its partitions are held and it is asked again"
                );
                // Held records are waiting, not lost: readiness says so.
                self.health.set_registry_answers(false);
                self.lookups.ask(schema_id, REGISTRY_RETRY);
            }
            LookupOutcome::Refused(status) => {
                self.metrics
                    .registry_lookups
                    .with_label_values(&["refused"])
                    .inc();
                error!(schema_id, status, partitions_held = waiting.len(), "the schema registry refuses icsflow's credentials: records in Confluent framing are held, and /readyz reports not ready, until the schema_registry settings are fixed");
                self.health.set_registry_accepts(false);
                self.lookups.ask(schema_id, REGISTRY_REFUSED_RETRY);
            }
        }
    }

    /// Counts what the broker acknowledged and stores the partner offsets
    /// that became storable; a refused delivery stops the role.
    fn store_acknowledged(&self, consumer: &StreamConsumer<RoleContext>) -> Result<(), RoleError> {
        let acknowledged = self.producer.context().lock().take();
        for (counter, count) in self.produced.iter().zip(acknowledged.produced) {
            if count > 0 {
                counter.inc_by(count);
            }
        }
        // Exactly once: offsets are committed in each batch's transaction,
        // never from the store.
        let storable = if self.transaction.is_some() {
            Default::default()
        } else {
            acknowledged.storable
        };
        for ((source, partition), offset) in storable {
            let topic = self.sources.name(source);
            // librdkafka stores this offset + 1, the next one to read.
            match consumer.store_offset(topic, partition, offset) {
                Ok(()) => consumer.context().processed(topic, partition, offset + 1),
                // A revoked partition: its next owner starts from the
                // last committed offset and re-produces (at-least-once).
                Err(error) => debug!(%error, topic, partition, "offset not stored"),
            }
        }
        match acknowledged.failure {
            // Exactly once: a record that was not delivered fails its
            // transaction's commit, which decides (records purged by an
            // abort report failures too).
            Some(_) if self.transaction.is_some() => Ok(()),
            Some(failure) => Err(RoleError::DeliveryFailed(failure)),
            None => Ok(()),
        }
    }
}

/// Most bytes of events in one journey record: it is sent once it holds
/// this many, well under the broker's default limit of 1 MB a record.
const JOURNEY_RECORD_BYTES: usize = 64 * 1024;

/// The journey records being filled, one per journey partition: the events
/// of a batch of partner records go out as one record per partition when
/// the batch ends (or once a record is full), not one record per event.
struct JourneyBatches {
    topic: String,
    /// The journey topic's partition count, when known. Until it is, each
    /// event is a record of its own keyed by its pseudonym, which
    /// librdkafka's partitioner places where `partition_of` would.
    partitions: Option<i32>,
    /// By partition: the record being filled and whose outputs it carries.
    open: Vec<(JourneyBatch, Vec<Source>)>,
}

impl JourneyBatches {
    fn new(topic: &str) -> JourneyBatches {
        JourneyBatches {
            topic: topic.to_owned(),
            partitions: None,
            open: Vec::new(),
        }
    }

    /// Asks the broker for the journey topic's partition count: once, as
    /// the role starts (later changes come from librdkafka's statistics,
    /// [`JourneyBatches::follow_partitions`]).
    fn ask_partitions(&mut self, producer: &ThreadedProducer<IngestDeliveries>) {
        let topic = self.topic.as_str();
        let answer = tokio::task::block_in_place(|| {
            producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))
        });
        let partitions = match answer {
            Ok(metadata) => metadata
                .topics()
                .iter()
                .find(|found| found.name() == topic && found.error().is_none())
                .and_then(|found| i32::try_from(found.partitions().len()).ok())
                .filter(|count| *count > 0),
            Err(error) => {
                debug!(%error, topic, "the journey topic's partitions could not be listed");
                None
            }
        };
        match partitions {
            Some(count) => self.set_partitions(count),
            None => {
                warn!(topic, "the journey topic's partition count is unknown (does it exist?): each event is produced as a record of its own until librdkafka's statistics give it");
            }
        }
    }

    /// Takes a partition count from librdkafka's statistics when it
    /// changed; called between batches, when no record is being filled.
    fn follow_partitions(&mut self, producer: &ThreadedProducer<IngestDeliveries>) {
        if let Some(count) = producer.context().journey_partitions() {
            if let Some(known) = self.partitions.filter(|known| *known != count) {
                error!(
                    topic = self.topic,
                    was = known,
                    now = count,
                    "the journey topic's partition count changed: patients' new events now go to other partitions than their history, which splits their journeys; never add partitions to the journey topic in place (README, the join role; runbook, IcsflowConsumerLagGrowing)"
                );
            }
            if self.partitions != Some(count) {
                self.set_partitions(count);
            }
        }
    }

    fn set_partitions(&mut self, count: i32) {
        info!(
            topic = self.topic,
            partitions = count,
            "journey records batched per partition"
        );
        self.partitions = Some(count);
        // Grows or shrinks: called only when every record was sent.
        self.open.resize_with(count as usize, || {
            (
                JourneyBatch::with_capacity(JOURNEY_RECORD_BYTES),
                Vec::new(),
            )
        });
    }

    /// Adds a validated event to its partition's record, sending the record
    /// if it is full.
    async fn add(
        &mut self,
        producer: &ThreadedProducer<IngestDeliveries>,
        event: &icsflow_core::Event,
        source: Source,
    ) -> Result<(), RoleError> {
        let Some(partitions) = self.partitions else {
            let payload = crate::journey_record::encode(event);
            let key = event.envelope.patient.hex();
            let delivered = Box::new(Delivered {
                kind: OutputKind::Accepted,
                sources: vec![source],
            });
            let record = BaseRecord::with_opaque_to(&self.topic, delivered)
                .key(key.as_str())
                .payload(payload.as_slice());
            return send_with_backpressure(producer, record).await;
        };
        let partition = partition_of(&event.envelope.patient, partitions) as usize;
        let (batch, sources) = &mut self.open[partition];
        batch.push(event);
        sources.push(source);
        if batch.as_bytes().len() >= JOURNEY_RECORD_BYTES {
            self.send_partition(producer, partition).await?;
        }
        Ok(())
    }

    /// Sends every record being filled.
    async fn send(
        &mut self,
        producer: &ThreadedProducer<IngestDeliveries>,
    ) -> Result<(), RoleError> {
        for partition in 0..self.open.len() {
            if !self.open[partition].0.is_empty() {
                self.send_partition(producer, partition).await?;
            }
        }
        Ok(())
    }

    async fn send_partition(
        &mut self,
        producer: &ThreadedProducer<IngestDeliveries>,
        partition: usize,
    ) -> Result<(), RoleError> {
        let (batch, sources) = &mut self.open[partition];
        let delivered = Box::new(Delivered {
            kind: OutputKind::Accepted,
            sources: std::mem::take(sources),
        });
        // librdkafka copies the payload, so the buffer is reused.
        let record = BaseRecord::with_opaque_to(&self.topic, delivered)
            .partition(partition as i32)
            .payload(batch.as_bytes());
        let sent = send_with_backpressure(producer, record).await;
        batch.clear();
        sent
    }
}

/// The dead letter of one rejected partner record: headers only, its value
/// empty (no partner byte is ever copied; `dead_letter.rs`).
struct DeadLetter {
    headers: rdkafka::message::OwnedHeaders,
}

/// What a partner record comes to.
enum Routed {
    /// A validated event, for the journey topic.
    Accepted(icsflow_core::Event),
    /// A dead letter, for the dead-letter topic.
    Rejected(DeadLetter),
}

/// What became of a transaction's commit.
enum Outcome {
    Committed,
    /// Not committed: it is aborted and its batch read again.
    Abort(Aborted),
    /// The commit failed in a way that does not say whether it took
    /// effect: it must not be aborted and read again.
    Unknown(KafkaError),
}

/// Why a transaction is aborted.
enum Aborted {
    /// A rebalance took partitions while it was open.
    Revoked,
    /// Before its commit, or a commit librdkafka says must be aborted.
    Failed(KafkaError),
}

/// Sends the consumer's offsets into the open transaction and commits it,
/// resuming either step when it times out.
fn commit(
    producer: &ThreadedProducer<IngestDeliveries>,
    consumer: &StreamConsumer<RoleContext>,
    offsets: &TopicPartitionList,
) -> Outcome {
    // Only a consumer outside any group has no metadata.
    let Some(metadata) = consumer.group_metadata() else {
        return Outcome::Abort(Aborted::Failed(KafkaError::Global(RDKafkaErrorCode::Fail)));
    };
    if let Err(error) =
        resumed(|| producer.send_offsets_to_transaction(offsets, &metadata, TRANSACTION_TIMEOUT))
    {
        return Outcome::Abort(Aborted::Failed(error));
    }
    // Past this point the broker may have committed: only an error that
    // says the transaction must be aborted makes aborting (and reading the
    // batch again) safe.
    match resumed(|| producer.commit_transaction(REMAINING_TRANSACTION_TIME)) {
        Ok(()) => Outcome::Committed,
        Err(error) if transaction_requires_abort(&error) => Outcome::Abort(Aborted::Failed(error)),
        Err(error) => Outcome::Unknown(error),
    }
}

/// A partner record routed, or held for its schema. Returned once per
/// record and matched at once: boxing the event would allocate per record.
#[allow(clippy::large_enum_variant)]
enum Routing {
    Routed(Routed),
    /// The record's schema id is not cached: look it up first.
    LookupNeeded(u32),
}

fn route(
    message: &BorrowedMessage<'_>,
    source: &PartnerTopic,
    now: Timestamp,
    decoder: &EventDecoder,
    reference: &icsflow_core::Reference,
    metrics: &PipelineMetrics,
    freshness: &mut Freshness,
) -> Routing {
    let feed = source.feed;
    let payload = message.payload().unwrap_or_default();
    let decoded = decoder
        .decode_cached(payload, &TimestampPolicy::wall_clock(now))
        .and_then(|event| {
            let organisation = event.envelope.source_organisation;
            if event.feed() != feed {
                Err(Rejection::new(
                    RejectReason::IncompatibleSchema,
                    "the record belongs to another feed than its topic",
                ))
            } else if !source.admits(organisation) {
                Err(Rejection::in_field(
                    RejectReason::OrganisationMismatch,
                    "source_organisation",
                    "a partner's topic carries only records of that partner (its own code, its sites, or the organisations it publishes for in the ICS's reference data)",
                ))
            } else {
                // Only the ICS's places and organisations travel on: a
                // place outside it as `out_of_area`, a site as its trust.
                reference.counted(&event).ok_or_else(|| {
                    Rejection::in_field(
                        RejectReason::OrganisationMismatch,
                        "source_organisation",
                        "no partner of the ICS publishes for this organisation (the ICS's reference data lists every partner, its sites and the organisations it publishes for)",
                    )
                })
            }
            .map_err(|rejection| {
                DecodeError::Rejected(rejection.from_organisation(Some(organisation)))
            })
        })
        .map_err(|error| match error {
            // On a partner's own topic the publisher is known whatever the
            // record says: its rejections are counted against it, never
            // against an organisation it named.
            DecodeError::Rejected(rejection) => DecodeError::Rejected(
                rejection.from_organisation(source.publisher(rejection.organisation)),
            ),
            error => error,
        });
    match decoded {
        Ok(event) => {
            freshness.record(
                metrics,
                feed,
                event.envelope.source_organisation,
                event.envelope.occurred_at,
            );
            Routing::Routed(Routed::Accepted(event))
        }
        Err(DecodeError::Rejected(rejection)) => {
            let organisation = metrics.organisation_label(rejection.organisation);
            metrics
                .rejected
                .with_label_values(&[feed.as_str(), &organisation, rejection.reason.as_str()])
                .inc();
            // The explanation names a field and a rule, never a value.
            debug!(topic = message.topic(), partition = message.partition(), offset = message.offset(), reason = %rejection.reason, field = rejection.field.unwrap_or("-"), "record rejected");
            let headers = DeadLetterHeaders {
                reason: rejection.reason,
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                feed,
                organisation: rejection.organisation,
                field: rejection.field,
                event_id: icsflow_avro::peek_event_id(payload),
                rejected_at_millis: now.as_millis(),
            };
            Routing::Routed(Routed::Rejected(DeadLetter {
                headers: headers.to_kafka(),
            }))
        }
        // `decode_cached` never asks the registry, so only this comes back
        // from it; the others are answers to a lookup.
        Err(
            DecodeError::LookupNeeded { schema_id }
            | DecodeError::RegistryUnavailable { schema_id, .. }
            | DecodeError::RegistryRefused { schema_id, .. },
        ) => Routing::LookupNeeded(schema_id),
    }
}

/// Hands a record to librdkafka, waiting while its queue is full.
async fn send_with_backpressure(
    producer: &ThreadedProducer<IngestDeliveries>,
    mut record: BaseRecord<'_, str, [u8], Box<Delivered>>,
) -> Result<(), RoleError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(RoleError::Kafka(error)),
        }
    }
}

/// The newest `occurred_at` seen per partner feed, with its gauge handle.
/// Keyed by organisation while the organisation label takes new values;
/// every organisation past its limit shares the `None` entry (`other`), so
/// that record content cannot grow this map either.
#[derive(Default)]
struct Freshness {
    index: std::collections::HashMap<(Feed, Option<icsflow_core::OdsCode>), usize>,
    newest: Vec<(icsflow_telemetry::IntGauge, i64)>,
    /// The last organisation recorded and its entry: a partner's records
    /// come in runs.
    last: Option<(Feed, icsflow_core::OdsCode, usize)>,
}

impl Freshness {
    fn record(
        &mut self,
        metrics: &PipelineMetrics,
        feed: Feed,
        organisation: icsflow_core::OdsCode,
        occurred_at: Timestamp,
    ) {
        let seconds = occurred_at.as_millis() / 1000;
        let entry = match self.last {
            Some((last_feed, last, entry)) if last_feed == feed && last == organisation => entry,
            _ => {
                let entry = self.entry(metrics, feed, organisation);
                self.last = Some((feed, organisation, entry));
                entry
            }
        };
        let (gauge, newest) = &mut self.newest[entry];
        if seconds > *newest {
            *newest = seconds;
            gauge.set(seconds);
        }
    }

    fn entry(
        &mut self,
        metrics: &PipelineMetrics,
        feed: Feed,
        organisation: icsflow_core::OdsCode,
    ) -> usize {
        if let Some(entry) = self.index.get(&(feed, Some(organisation))) {
            return *entry;
        }
        let label = metrics.organisation_label(Some(organisation));
        let key = (feed, (label != OTHER_ORGANISATION).then_some(organisation));
        let next = self.newest.len();
        let entry = *self.index.entry(key).or_insert(next);
        if entry == next {
            self.newest.push((
                metrics
                    .last_event
                    .with_label_values(&[feed.as_str(), &label]),
                i64::MIN,
            ));
        }
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(group_instance_id: Option<&str>) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: "127.0.0.1:9092".to_owned(),
            ingest_group_id: "icsflow-ingest".to_owned(),
            join_group_id: "icsflow-join".to_owned(),
            session_timeout_ms: 6000,
            group_instance_id: group_instance_id.map(str::to_owned),
            ingest_delivery: IngestDelivery::ExactlyOnce,
            librdkafka: Default::default(),
        }
    }

    /// With static membership a restarted replica has its former self's
    /// transactional id, so starting it fences that self and aborts what it
    /// left open; without, each process has its own.
    #[test]
    fn a_replica_with_static_membership_keeps_its_transactional_id() {
        let replica = settings(Some("ingest-0"));
        assert_eq!(transactional_id(&replica), "icsflow-ingest-ingest-0");
        let dynamic = transactional_id(&settings(None));
        assert!(
            dynamic.starts_with(&format!("icsflow-ingest-{}-", std::process::id())),
            "{dynamic}"
        );
    }
}
