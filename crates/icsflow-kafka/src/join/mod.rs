//! The join role: the journey topic in, journeys and metrics out.

mod apply;
mod replay;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::EventDecoder;
use icsflow_core::{Event, PerKind, TimestampPolicy};
use icsflow_engine::EngineConfig;
use icsflow_events::events::{JoinHolds, JourneysEvicted, Role};
use icsflow_events::{Counter, CounterHandle, Events, Health};
use icsflow_journeys::{Clock, PartitionEngines};
use rdkafka::consumer::{CommitMode, Consumer, MessageStream, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use self::apply::{Applier, Outcome, OutcomeCounters};
use self::replay::{
    apply_rebalance, ask_unknown_targets, finish_replays, Read, Replay, ReplayProgress,
};
use crate::common::{next_message, ready_now, stopped, RoleError, Shutdown};
use crate::context::{RebalanceEvent, RoleContext};
use crate::settings::{KafkaSettings, Topics};

/// What a join run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinSummary {
    /// Journey records consumed.
    pub consumed: u64,
    /// Events decoded from them.
    pub decoded: u64,
    pub applied: u64,
    pub undecodable: u64,
}

/// How the join role's engines are built and what time they read.
#[derive(Clone)]
pub struct JoinOptions {
    pub engine_config: EngineConfig,
    /// The instant the engines are read and journeys evicted as of
    /// (`engine.as_of`: now, or the newest event; [`icsflow_journeys::AsOf`]).
    pub as_of: Clock,
    /// Now: the wall clock, or the demo's simulated one. An event dated
    /// after it (beyond the clock-skew tolerance) is applied but never
    /// becomes the engines' latest event.
    pub now: Clock,
    /// The ICS's reference data: every event read is counted by it
    /// (`Reference::counted`) before an engine sees it, records written
    /// before ingest did the same included, so an engine's tables hold only
    /// the ICS's places (and `out_of_area`) and organisations.
    pub reference: Arc<icsflow_core::Reference>,
}

impl std::fmt::Debug for JoinOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JoinOptions")
            .field("engine_config", &self.engine_config)
            .finish_non_exhaustive()
    }
}

/// Runs the join role until `shutdown` is raised.
pub async fn run_join(
    settings: &KafkaSettings,
    topics: &Topics,
    options: JoinOptions,
    engines: Arc<PartitionEngines>,
    events: Events,
    mut shutdown: Shutdown,
) -> Result<JoinSummary, RoleError> {
    let JoinOptions {
        engine_config,
        as_of,
        now,
        reference,
    } = options;
    let (rebalance_sender, mut rebalances) = mpsc::unbounded_channel();
    let context = RoleContext {
        role: Role::Join,
        events: events.clone(),
        rebalances: Some(rebalance_sender),
        lag_topic: {
            let journey = topics.journey.clone();
            Box::new(move |topic| topic == journey)
        },
        revocations: Default::default(),
        processed: Default::default(),
        ends: Default::default(),
        stopping: Default::default(),
        announced_caught_up: Default::default(),
    };
    // Every assignment starts from the beginning of retention, whatever
    // is committed (RoleContext::rebalance): that is the replay that
    // rebuilds the partition's journeys. Positions are committed only so
    // that Kafka's tools (kafka-consumer-groups, Strimzi's exporter, Burrow)
    // show the join group's lag.
    let client_id = settings.client_id("icsflow-join");
    let config = settings.consumer_config(&[
        ("client.id", &client_id),
        ("group.id", &settings.join_group_id),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
        // A fetch waits for 64 KiB (or `fetch.wait.max.ms`, 20 ms) instead
        // of returning with the first journey record: while ingest
        // produces, that was thousands of small fetches a second, each
        // costing the broker as much as a full one (BENCHMARKS.md).
        ("fetch.min.bytes", "65536"),
    ]);
    let consumer: Arc<StreamConsumer<RoleContext>> = Arc::new(config.create_with_context(context)?);
    consumer.subscribe(&[topics.journey.as_str()])?;
    info!(topic = %topics.journey, "join started");

    let mut housekeeping = tokio::time::interval(Duration::from_secs(5));
    // While replaying: how often the consumer's positions are read, for
    // partitions whose last offsets hold no record handed out.
    let mut replay_check = tokio::time::interval(Duration::from_millis(200));
    let health = Arc::clone(events.health());
    health.set_caught_up(false);
    let shared = Shared {
        consumer: &consumer,
        topic: &topics.journey,
        engines: &engines,
        engine_config,
        events: &events,
        health: &health,
    };
    // Metric handles looked up once, not per record.
    let outcomes: OutcomeCounters =
        PerKind::new(|outcome: &Outcome| events.counter(Counter::EngineEvents, &[outcome.label()]));
    let mut join = Join {
        consumed: events.counter(Counter::Consumed, &["join", &topics.journey]),
        applier: Applier::start(Arc::clone(&engines), now, outcomes.clone(), events.clone())?,
        outcomes,
        shared,
        // For journey records written before the topic had an encoding of
        // its own (partner Avro); see `decode_journey`.
        decoder: EventDecoder::new(Arc::new(icsflow_avro::SchemaCatalogue::embedded())),
        reference,
        as_of,
        replays: BTreeMap::new(),
        summary: JoinSummary::default(),
        batch: Vec::with_capacity(BATCH),
        counted: 0,
        replay_progress: None,
    };
    // One stream for the role's life: `recv()` makes one per record.
    let mut messages = consumer.stream();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => {
                // Not waited for: a synchronous commit blocks without limit
                // while no coordinator answers (the positions are for
                // monitoring only).
                join.commit_positions(CommitMode::Async);
                break;
            }
            Some(event) = rebalances.recv() => join.rebalanced(event).await,
            _ = housekeeping.tick() => join.housekeeping().await,
            _ = replay_check.tick(), if !health.caught_up() => join.check_positions().await,
            Some(received) = next_message(&mut messages) => join.received(received, &mut rebalances, &mut messages).await,
        }
        if join.applier.stopped {
            error!("the thread applying events to the engines stopped; the join role stops");
            return Err(RoleError::ApplyStopped);
        }
    }
    let mut summary = join.summary;
    summary.applied = join.applier.finish();
    info!(
        consumed = summary.consumed,
        applied = summary.applied,
        "join stopped"
    );
    Ok(summary)
}

/// The join loop's state, shaped as ingest's: one method per thing the
/// loop waits for.
struct Join<'a> {
    reference: Arc<icsflow_core::Reference>,
    shared: Shared<'a>,
    decoder: EventDecoder,
    /// What eviction is computed as of.
    as_of: Clock,
    /// Applies the decoded batches on its own thread.
    applier: Applier,
    /// One per owned partition: how far its replay has come.
    replays: BTreeMap<i32, Replay>,
    summary: JoinSummary,
    /// Decoded records waiting to be applied under one lock.
    batch: Vec<(i32, Event)>,
    /// Records consumed already added to the consumed counter.
    counted: u64,
    /// The replay under way, for its progress and summary in the log.
    replay_progress: Option<ReplayProgress>,
    consumed: CounterHandle,
    outcomes: OutcomeCounters,
}

impl<'a> Join<'a> {
    async fn rebalanced(&mut self, event: RebalanceEvent) {
        // The engines change: what was consumed before goes in first.
        self.applier.flush().await;
        apply_rebalance(&self.shared, &mut self.replays, event).await;
        self.settle_replayed().await;
        if self.shared.health.caught_up() {
            self.replay_progress = None;
        }
    }

    /// While replaying, moves each partition's next offset up to the
    /// consumer's position. Transaction markers (exactly-once ingest ends
    /// every transaction with one) and aborted records take offsets that a
    /// `read_committed` consumer is never given, so a partition whose last
    /// offsets are such reaches its high watermark only by its position,
    /// which librdkafka moves past them in order with the records.
    async fn check_positions(&mut self) {
        if self.shared.health.caught_up() {
            return;
        }
        let Ok(positions) = self.shared.consumer.position() else {
            return;
        };
        for element in positions.elements_for_topic(self.shared.topic) {
            if let (Some(replay), rdkafka::Offset::Offset(offset)) =
                (self.replays.get_mut(&element.partition()), element.offset())
            {
                replay.next_offset = replay.next_offset.max(offset);
            }
        }
        self.finish_replays().await;
    }

    /// Tells the engines of partitions whose replay has reached its target
    /// to settle, after what was sent before: from then on their events are
    /// derived as they come.
    async fn settle_replayed(&mut self) {
        let replayed: Vec<i32> = self
            .replays
            .iter_mut()
            .filter(|(_, replay)| !replay.settled && replay.remaining() == Some(0))
            .map(|(partition, replay)| {
                replay.settled = true;
                *partition
            })
            .collect();
        if !replayed.is_empty() {
            self.applier.settle(replayed).await;
        }
    }

    /// Commits the consumer's positions, for monitoring only (replay never
    /// starts from them), and measures the lag from them as Kafka's tools
    /// do.
    fn commit_positions(&self, mode: CommitMode) {
        let Ok(positions) = self.shared.consumer.position() else {
            return;
        };
        let mut committed = rdkafka::TopicPartitionList::new();
        for element in positions.elements_for_topic(self.shared.topic) {
            if let rdkafka::Offset::Offset(offset) = element.offset() {
                let _ = committed.add_partition_offset(
                    self.shared.topic,
                    element.partition(),
                    rdkafka::Offset::Offset(offset),
                );
                self.shared.consumer.context().processed(
                    self.shared.topic,
                    element.partition(),
                    offset,
                );
            }
        }
        if committed.count() > 0 {
            if let Err(error) = self.shared.consumer.commit(&committed, mode) {
                debug!(%error, "join's positions not committed (they are for monitoring only)");
            }
        }
    }

    async fn housekeeping(&mut self) {
        self.commit_positions(CommitMode::Async);
        let (engines, health) = (self.shared.engines, self.shared.health);
        // Not while replaying: eviction sets the horizon before which
        // events of unknown patients are refused, and a replay is made of
        // exactly such events.
        let evicted = if health.caught_up() {
            engines.evict((self.as_of)())
        } else {
            0
        };
        let events = self.shared.events;
        events.emit(JourneysEvicted { count: evicted });
        events.emit(JoinHolds {
            journeys: engines.journeys(),
        });
        if ask_unknown_targets(&self.shared, &mut self.replays).await {
            self.finish_replays().await;
        }
        if let Some(progress) = self
            .replay_progress
            .as_mut()
            .filter(|_| !health.caught_up())
        {
            progress.report(&self.replays, Read::of(&self.summary));
        }
    }

    /// Takes what else librdkafka already holds, up to a batch, without
    /// waiting: the batch is decoded record by record and applied under
    /// one lock of the engines.
    async fn received(
        &mut self,
        received: KafkaResult<BorrowedMessage<'a>>,
        rebalances: &mut mpsc::UnboundedReceiver<RebalanceEvent>,
        messages: &mut MessageStream<'a, RoleContext>,
    ) {
        let decoded_before = self.summary.decoded;
        let mut next = Some(received);
        while let Some(received) = next.take() {
            let message = match received {
                Ok(message) => message,
                Err(error) => {
                    self.shared.consumer.context().consume_failed(&error);
                    break;
                }
            };
            self.summary.consumed += 1;
            let partition = message.partition();
            // librdkafka reports an assignment before it delivers the
            // partition's first message: apply any pending one first,
            // after what is already decoded.
            if !self.replays.contains_key(&partition) {
                self.applier.apply(&mut self.batch).await;
                self.applier.flush().await;
                while let Ok(event) = rebalances.try_recv() {
                    apply_rebalance(&self.shared, &mut self.replays, event).await;
                }
            }
            if let Some(replay) = self.replays.get_mut(&partition) {
                replay.next_offset = replay.next_offset.max(message.offset() + 1);
                let before = self.batch.len();
                let mut outside = 0;
                let (batch, reference) = (&mut self.batch, &self.reference);
                let decoded = decode_journey(
                    &self.decoder,
                    message.payload().unwrap_or_default(),
                    |event| match reference.counted(&event) {
                        Some(counted) => batch.push((partition, counted)),
                        None => outside += 1,
                    },
                );
                match decoded {
                    Ok(()) => {
                        self.summary.decoded += (self.batch.len() - before) as u64;
                        if outside > 0 {
                            // Written before ingest checked organisations
                            // against the reference data, or the reference
                            // data lost a partner since.
                            self.outcomes[Outcome::NotInReference].add(outside);
                            tracing::debug!(
                                partition,
                                offset = message.offset(),
                                events = outside,
                                "events of an organisation no partner speaks for; skipped"
                            );
                        }
                    }
                    Err(error) => {
                        // Nothing of a record that is not whole is applied.
                        self.batch.truncate(before);
                        self.summary.undecodable += 1;
                        self.outcomes[Outcome::Undecodable].add(1);
                        // Counted above; logged once per 10 s with how many
                        // were left out (a topic of them logged each).
                        if let Some(suppressed) = self
                            .shared
                            .events
                            .lines()
                            .allow("undecodable journey record")
                        {
                            warn!(partition, offset = message.offset(), %error, suppressed, "journey topic record could not be decoded; skipped");
                        }
                    }
                }
            } else if let Some(suppressed) = self
                .shared
                .events
                .lines()
                .allow("record of a partition not owned")
            {
                warn!(
                    partition,
                    suppressed, "record from a partition this replica does not own; skipped"
                );
            }
            if self.batch.len() < BATCH {
                next = ready_now(next_message(messages)).flatten();
            }
        }
        self.consumed.add(self.summary.consumed - self.counted);
        if !self.shared.health.caught_up() && self.replay_progress.is_none() {
            self.replay_progress = Some(ReplayProgress::start(Read {
                records: self.counted,
                events: decoded_before,
            }));
        }
        self.counted = self.summary.consumed;
        self.applier.apply(&mut self.batch).await;
        self.finish_replays().await;
    }

    /// Updates the replay gauges and, once every owned partition has
    /// reached its target, waits until all of it is applied and declares
    /// the replica ready.
    async fn finish_replays(&mut self) {
        self.settle_replayed().await;
        let reached = !self.replays.is_empty()
            && self
                .replays
                .values()
                .all(|replay| replay.remaining() == Some(0));
        if reached && !self.shared.health.caught_up() {
            self.applier.flush().await;
        }
        finish_replays(
            &mut self.replays,
            self.shared.health,
            &mut self.replay_progress,
            Read::of(&self.summary),
        );
    }
}

/// A journey topic record, its events handed to `each`: icsflow's own
/// encoding (validated by ingest, so read without partner validation), or a
/// record from before that encoding existed, read as partner Avro with no
/// wall clock (replay must not refuse an event for being old).
fn decode_journey(
    decoder: &EventDecoder,
    bytes: &[u8],
    each: impl FnMut(Event),
) -> Result<(), String> {
    if icsflow_journeys::record::is_journey_record(bytes) {
        icsflow_journeys::record::decode_each(bytes, each).map_err(|error| error.to_string())
    } else {
        decoder
            .decode(bytes, &TimestampPolicy::without_clock())
            .map(each)
            .map_err(|error| error.to_string())
    }
}

/// Events decoded before they are applied under one lock (the record that
/// reaches it is decoded whole, so a batch may pass it by one record).
pub(super) const BATCH: usize = 512;

/// What applying a rebalance needs.
pub(super) struct Shared<'a> {
    pub(super) consumer: &'a Arc<StreamConsumer<RoleContext>>,
    pub(super) topic: &'a str,
    pub(super) engines: &'a PartitionEngines,
    pub(super) engine_config: EngineConfig,
    pub(super) events: &'a Events,
    pub(super) health: &'a Health,
}
