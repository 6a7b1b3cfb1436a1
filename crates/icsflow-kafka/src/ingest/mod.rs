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
//! With `IngestDelivery::ExactlyOnce`, batches are committed in Kafka
//! transactions (one per interval under load, one per batch when the loop
//! has taken all there was; `transaction.rs`): their journey and dead-letter
//! records and the partner offsets after them are committed together (`send_offsets_to_transaction` with the
//! consumer's group metadata, KIP-447), so a crash leaves either all of a
//! batch or none of it for `read_committed` readers.

mod batching;
mod lookups;
mod routing;
mod transaction;

use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::EventDecoder;
use icsflow_core::{PerKind, Timestamp};
use icsflow_events::events::Role;
use icsflow_events::{Counter, CounterHandle, Events};
use icsflow_journeys::Clock;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use tokio::sync::mpsc::unbounded_channel;
use tracing::{debug, info, warn};

use self::batching::{send_with_backpressure, JourneyBatches};
use self::lookups::Lookups;
use self::routing::{route, Freshness, Routed, Routing};
use self::transaction::{revocations, transactional_id, Commit, Transaction, TRANSACTION_TIMEOUT};
use crate::acknowledgements::{Delivered, IngestDeliveries, OutputKind};
use crate::common::{next_message, ready_now, stopped, RoleError, Shutdown};
use crate::context::RoleContext;
use crate::settings::{IngestDelivery, KafkaSettings, Topics};
use crate::sources::PartnerTopics;

/// What an ingest run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub consumed: u64,
    pub accepted: u64,
    pub rejected: u64,
}

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
    clock: Clock,
    events: Events,
    mut shutdown: Shutdown,
) -> Result<IngestSummary, RoleError> {
    let (rebalance_sender, mut rebalances) = unbounded_channel();
    let context = RoleContext {
        role: Role::Ingest,
        events: events.clone(),
        rebalances: Some(rebalance_sender),
        lag_topic: {
            let topics = topics.clone();
            Box::new(move |topic| PartnerTopics::is_partner_topic(&topics, topic))
        },
        revocations: Default::default(),
        processed: Default::default(),
        ends: Default::default(),
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
    let sources = PartnerTopics::new(topics, &events);
    let subscription = sources.subscription();
    consumer.subscribe(&subscription.iter().map(String::as_str).collect::<Vec<_>>())?;
    // Ready once partitions are assigned (the context's rebalance hook).
    events.health().set_consuming(false);
    info!(topics = ?subscription, journey_topic = %topics.journey, dead_letter_topic = %topics.dead_letter, "ingest started");

    let mut ingest = Ingest {
        producer: &producer,
        sources,
        decoder: &decoder,
        reference: &reference,
        clock,
        // Metric handles looked up once, not per record.
        produced: PerKind::new(|kind| {
            let topic = match kind {
                OutputKind::Accepted => &topics.journey,
                OutputKind::Rejected => &topics.dead_letter,
            };
            events.counter(Counter::Produced, &["ingest", topic])
        }),
        events: &events,
        freshness: Freshness::default(),
        dead_letter: topics.dead_letter.clone(),
        journey: JourneyBatches::new(&topics.journey),
        summary: IngestSummary::default(),
        lookups: Lookups::new(decoder.registry().cloned()),
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
        // Exactly once, the commit cadence follows the load: a batch that
        // took all librdkafka held (nothing else waits) is committed now, so
        // a quiet feed's records reach the journey topic within a commit's
        // round trip; under load, batches keep coming and a transaction
        // takes them for its whole interval.
        let when = if taken < BATCH {
            Commit::Now
        } else {
            Commit::WhenDue
        };
        if let Err(error) = ingest.commit_transaction(&consumer, when) {
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

/// The ingest loop's state and what it needs per record.
struct Ingest<'a> {
    producer: &'a ThreadedProducer<IngestDeliveries>,
    /// The partner topics met so far.
    sources: PartnerTopics,
    decoder: &'a EventDecoder,
    /// Every accepted event is counted by it (`Reference::counted`).
    reference: &'a icsflow_core::Reference,
    clock: Clock,
    produced: PerKind<OutputKind, CounterHandle>,
    events: &'a Events,
    freshness: Freshness,
    dead_letter: String,
    /// The journey records being filled.
    journey: JourneyBatches,
    summary: IngestSummary,
    lookups: Lookups,
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
            self.events,
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
        self.sources.get(source).consumed.add(1);
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

    /// Counts what the broker acknowledged and stores the partner offsets
    /// that became storable; a refused delivery stops the role.
    fn store_acknowledged(&self, consumer: &StreamConsumer<RoleContext>) -> Result<(), RoleError> {
        let acknowledged = self.producer.context().lock().take();
        for (kind, count) in acknowledged.produced.iter() {
            if *count > 0 {
                self.produced[kind].add(*count);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(group_instance_id: Option<&str>) -> KafkaSettings {
        KafkaSettings {
            group_instance_id: group_instance_id.map(str::to_owned),
            ingest_delivery: IngestDelivery::ExactlyOnce,
            ..KafkaSettings::for_broker("127.0.0.1:9092", "icsflow")
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
