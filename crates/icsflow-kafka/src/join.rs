//! The join role: the journey topic in, journeys and metrics out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use icsflow_avro::EventDecoder;
use icsflow_core::{Event, Timestamp, TimestampPolicy};
use icsflow_engine::{Applied, Engine, EngineConfig, MetricKey};
use icsflow_telemetry::{Health, PipelineMetrics};
use rdkafka::consumer::{CommitMode, Consumer, MessageStream, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::common::next_message;
use crate::context::{RebalanceEvent, RoleContext};
use crate::{ready_now, stopped, KafkaSettings, RoleError, Shutdown, Topics};

/// The engines of the partitions this replica owns, one per partition so
/// that a revoked partition's journeys can be dropped whole.
#[derive(Debug)]
pub struct PartitionEngines {
    engines: Mutex<BTreeMap<i32, Engine>>,
    /// `occurred_at` of the newest event applied that was not in the
    /// future, in milliseconds (`i64::MIN` before the first).
    latest_event: AtomicI64,
    /// Events applied that were dated after the clock (plus the usual
    /// clock-skew tolerance): they never move `latest_event`.
    future_events: std::sync::atomic::AtomicU64,
}

impl Default for PartitionEngines {
    fn default() -> PartitionEngines {
        PartitionEngines {
            engines: Mutex::default(),
            latest_event: AtomicI64::new(i64::MIN),
            future_events: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl PartitionEngines {
    /// Applies each `(partition, event)` under one lock, giving `outcome`
    /// each result; events of partitions this replica does not own are
    /// skipped. `now` is the role's clock (the wall clock, or the demo's
    /// simulated one).
    pub fn apply_all(
        &self,
        events: impl IntoIterator<Item = (i32, Event)>,
        now: icsflow_core::Timestamp,
        mut outcome: impl FnMut(Applied),
    ) {
        // One record dated 2099 must not become "now" for `latest_event`
        // (every journey would be evicted and every delay grow by decades):
        // only events up to the clock, with the tolerance ingest allows for
        // clock skew, count as the newest.
        let limit = now.as_millis() + icsflow_core::TimestampPolicy::DEFAULT_TOLERANCE_MILLIS;
        let mut engines = self.lock();
        let mut latest = i64::MIN;
        let mut future = 0;
        for (partition, event) in events {
            if let Some(engine) = engines.get_mut(&partition) {
                outcome(engine.apply(&event));
                let occurred_at = event.envelope.occurred_at.as_millis();
                if occurred_at <= limit {
                    latest = latest.max(occurred_at);
                } else {
                    future += 1;
                }
            }
        }
        drop(engines);
        self.latest_event.fetch_max(latest, Ordering::Relaxed);
        if future > 0 {
            self.future_events.fetch_add(future, Ordering::Relaxed);
        }
    }

    /// How many events applied were dated in the future (they never move
    /// [`PartitionEngines::latest_event`]).
    pub fn future_events(&self) -> u64 {
        self.future_events.load(Ordering::Relaxed)
    }

    /// When the newest event applied occurred; `None` before the first.
    pub fn latest_event(&self) -> Option<Timestamp> {
        match self.latest_event.load(Ordering::Relaxed) {
            i64::MIN => None,
            millis => Some(Timestamp::from_millis(millis)),
        }
    }

    /// Every series of every owned partition, summed, as of `as_of`.
    pub fn metrics(&self, as_of: Timestamp) -> Vec<(MetricKey, i64)> {
        let engines = self.lock();
        let mut summed: BTreeMap<MetricKey, i64> = BTreeMap::new();
        for engine in engines.values() {
            for (key, value) in engine.metrics(as_of) {
                *summed.entry(key).or_insert(0) += value;
            }
        }
        summed.into_iter().collect()
    }

    pub fn journeys(&self) -> usize {
        self.lock()
            .values()
            .map(|engine| engine.statistics().journeys)
            .sum()
    }

    /// Ends deferred deriving in these partitions' engines (their replay
    /// is applied): each journey is derived once, and the metrics move.
    pub fn settle(&self, partitions: &[i32]) {
        let started = Instant::now();
        let mut engines = self.lock();
        let (mut settled, mut journeys) = (0, 0);
        for partition in partitions {
            if let Some(engine) = engines
                .get_mut(partition)
                .filter(|engine| engine.is_deferred())
            {
                engine.settle();
                settled += 1;
                journeys += engine.statistics().journeys;
            }
        }
        drop(engines);
        if settled == 0 {
            return;
        }
        info!(
            ?partitions,
            journeys,
            seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            "replayed journeys derived"
        );
    }

    /// Evicts complete journeys older than the horizon in every partition.
    pub fn evict(&self, as_of: Timestamp) -> usize {
        self.lock()
            .values_mut()
            .map(|engine| engine.evict(as_of))
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Engine>> {
        self.engines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What became of one journey record: `icsflow_engine_events_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Applied,
    Duplicate,
    BeyondHorizon,
    Undecodable,
    TooManyLabelValues,
    JourneyFull,
    /// Its organisation is no partner's in the reference data.
    NotInReference,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Applied,
        Outcome::Duplicate,
        Outcome::BeyondHorizon,
        Outcome::Undecodable,
        Outcome::TooManyLabelValues,
        Outcome::JourneyFull,
        Outcome::NotInReference,
    ];

    const fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::BeyondHorizon => "beyond_horizon",
            Outcome::Undecodable => "undecodable",
            Outcome::TooManyLabelValues => "too_many_label_values",
            Outcome::JourneyFull => "journey_full",
            Outcome::NotInReference => "not_in_reference",
        }
    }

    const fn of(applied: Applied) -> Outcome {
        match applied {
            Applied::Applied => Outcome::Applied,
            Applied::Duplicate => Outcome::Duplicate,
            Applied::BeyondHorizon => Outcome::BeyondHorizon,
            Applied::TooManyLabelValues => Outcome::TooManyLabelValues,
            Applied::JourneyFull => Outcome::JourneyFull,
        }
    }
}

/// The outcome counters, by `Outcome as usize`.
type OutcomeCounters = [icsflow_telemetry::IntCounter; Outcome::ALL.len()];

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

/// Replay state of one assigned partition.
#[derive(Clone, Debug)]
struct Replay {
    /// The high watermark seen at assignment; ready once reached. `None`
    /// while the broker has not told it: the partition is then not ready,
    /// and it is asked again on every housekeeping tick.
    target: Option<i64>,
    next_offset: i64,
    /// Whether the replay gauge already shows 0.
    reported_done: bool,
    /// Whether the partition's engine was told to settle: it defers
    /// deriving while it replays, and derives as events come once its
    /// replay is applied.
    settled: bool,
    /// `icsflow_join_replay_remaining_records` for this partition.
    gauge: icsflow_telemetry::IntGauge,
}

impl Replay {
    /// Records left to replay; `None` while the target is unknown.
    fn remaining(&self) -> Option<i64> {
        self.target.map(|target| (target - self.next_offset).max(0))
    }
}

/// How the join role's engines are built and what time they read.
#[derive(Clone)]
pub struct JoinOptions {
    pub engine_config: EngineConfig,
    /// The instant eviction is computed as of (the wall clock, simulated
    /// time, or the newest event).
    pub clock: crate::Clock,
    /// Now: the wall clock, or the demo's simulated one. An event dated
    /// after it (beyond the clock-skew tolerance) is applied but never
    /// becomes the engines' latest event.
    pub now: crate::Clock,
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
    metrics: PipelineMetrics,
    health: Arc<Health>,
    mut shutdown: Shutdown,
) -> Result<JoinSummary, RoleError> {
    let JoinOptions {
        engine_config,
        clock,
        now,
        reference,
    } = options;
    let (rebalance_sender, mut rebalances) = mpsc::unbounded_channel();
    let context = RoleContext {
        role: "join",
        health: Arc::clone(&health),
        metrics: metrics.clone(),
        rebalances: Some(rebalance_sender),
        lag_topic: {
            let journey = topics.journey.clone();
            Box::new(move |topic| topic == journey)
        },
        revocations: Default::default(),
        processed: Default::default(),
        ends: Default::default(),
        error_lines: Default::default(),
        replay_assigned: true,
        stopping: Default::default(),
        announced_caught_up: Default::default(),
    };
    // Every assignment starts from the beginning of retention, whatever
    // is committed (RoleContext::replay_assigned): that is the replay that
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
    health.set_caught_up(false);
    let shared = Shared {
        consumer: &consumer,
        topic: &topics.journey,
        engines: &engines,
        engine_config,
        metrics: &metrics,
        health: &health,
    };
    // Metric handles looked up once, not per record.
    let outcomes: OutcomeCounters =
        Outcome::ALL.map(|outcome| metrics.engine_events.with_label_values(&[outcome.label()]));
    let mut join = Join {
        consumed: metrics
            .consumed
            .with_label_values(&["join", &topics.journey]),
        applier: Applier::start(Arc::clone(&engines), now, outcomes.clone())?,
        outcomes,
        shared,
        // For journey records written before the topic had an encoding of
        // its own (partner Avro); see `decode_journey`.
        decoder: EventDecoder::new(Arc::new(icsflow_avro::SchemaCatalogue::embedded())),
        reference,
        clock,
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
    clock: crate::Clock,
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
    consumed: icsflow_telemetry::IntCounter,
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
            engines.evict((self.clock)())
        } else {
            0
        };
        if evicted > 0 {
            self.shared
                .metrics
                .evicted
                .with_label_values::<&str>(&[])
                .inc_by(evicted as u64);
            info!(evicted, "complete journeys evicted");
        }
        self.shared.metrics.journeys.set(engines.journeys() as i64);
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
                            self.outcomes[Outcome::NotInReference as usize].inc_by(outside);
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
                        self.outcomes[Outcome::Undecodable as usize].inc();
                        // Counted above; logged once per 10 s with how many
                        // were left out (a topic of them logged each).
                        if let Some(suppressed) = self
                            .shared
                            .consumer
                            .context()
                            .error_lines
                            .allow("undecodable journey record")
                        {
                            warn!(partition, offset = message.offset(), %error, suppressed, "journey topic record could not be decoded; skipped");
                        }
                    }
                }
            } else if let Some(suppressed) = self
                .shared
                .consumer
                .context()
                .error_lines
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
        self.consumed.inc_by(self.summary.consumed - self.counted);
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

/// What the apply thread is sent, in order.
enum ApplyWork {
    Batch(Vec<(i32, Event)>),
    /// These partitions' replays are applied: their engines settle.
    Settle(Vec<i32>),
    /// Answered once everything sent before it is applied.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Applies decoded batches on a thread of its own, so that consuming and
/// decoding the next records overlaps applying the last ones (the engines
/// were half of the consumer loop's time). Batches are applied in the order
/// sent; [`Applier::flush`] waits until everything sent is applied, which
/// the loop does before the engines change (a rebalance) and before it
/// declares a replay done.
struct Applier {
    work: Option<mpsc::Sender<ApplyWork>>,
    /// Set when the thread could not be reached: it has ended.
    stopped: bool,
    /// Emptied batches coming back, so that their buffers are reused.
    spare: std::sync::mpsc::Receiver<Vec<(i32, Event)>>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Applier {
    /// Batches queued before the loop waits: enough to keep the thread
    /// busy, few enough that a flush is quick.
    const QUEUED: usize = 4;

    fn start(
        engines: Arc<PartitionEngines>,
        now: crate::Clock,
        outcomes: OutcomeCounters,
    ) -> Result<Applier, RoleError> {
        let (work, mut received) = mpsc::channel(Self::QUEUED);
        let (spare_sender, spare) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("icsflow-apply".to_owned())
            .spawn(move || {
                let mut summary = JoinSummary::default();
                while let Some(work) = received.blocking_recv() {
                    match work {
                        ApplyWork::Batch(mut batch) => {
                            apply_batch(&engines, &mut batch, now(), &outcomes, &mut summary);
                            let _ = spare_sender.send(batch);
                        }
                        ApplyWork::Settle(partitions) => engines.settle(&partitions),
                        ApplyWork::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
                summary.applied
            })?;
        Ok(Applier {
            stopped: false,
            work: Some(work),
            spare,
            thread: Some(thread),
        })
    }

    /// Hands the batch over (waiting while the thread has enough queued)
    /// and leaves an empty buffer in its place.
    async fn apply(&mut self, batch: &mut Vec<(i32, Event)>) {
        if batch.is_empty() {
            return;
        }
        let empty = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(batch, empty);
        if let Some(work) = &self.work {
            self.stopped |= work.send(ApplyWork::Batch(full)).await.is_err();
        }
    }

    /// Has the engines of `partitions` settle once every batch sent so far
    /// is applied.
    async fn settle(&mut self, partitions: Vec<i32>) {
        if let Some(work) = &self.work {
            self.stopped |= work.send(ApplyWork::Settle(partitions)).await.is_err();
        }
    }

    /// Waits until every batch sent so far is applied.
    async fn flush(&mut self) {
        let Some(work) = &self.work else {
            return;
        };
        let (done, applied) = tokio::sync::oneshot::channel();
        let answered = match work.send(ApplyWork::Flush(done)).await {
            Ok(()) => applied.await.is_ok(),
            Err(_) => false,
        };
        self.stopped |= !answered;
    }

    /// Stops the thread once it has applied everything sent; the events
    /// it applied.
    fn finish(&mut self) -> u64 {
        drop(self.work.take());
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or(0)
    }
}

/// A replay under way: when it began, for a progress line on each
/// housekeeping tick and a summary when it ends.
struct ReplayProgress {
    started: Instant,
    /// Records and events the role had read when the replay began.
    at_start: Read,
    /// When progress was last reported, and what had been read then.
    last_report: (Instant, Read),
}

/// Records consumed and the events they held (a journey record of the
/// current version holds a batch).
#[derive(Clone, Copy, Debug)]
struct Read {
    records: u64,
    events: u64,
}

impl Read {
    fn of(summary: &JoinSummary) -> Read {
        Read {
            records: summary.consumed,
            events: summary.decoded,
        }
    }
}

impl ReplayProgress {
    fn start(read: Read) -> ReplayProgress {
        let now = Instant::now();
        ReplayProgress {
            started: now,
            at_start: read,
            last_report: (now, read),
        }
    }

    /// Logs the records left to replay and the rate since the last report.
    fn report(&mut self, replays: &BTreeMap<i32, Replay>, read: Read) {
        // Nothing assigned yet (no broker, or waiting for the group): no
        // replay to report on.
        if replays.is_empty() {
            return;
        }
        let remaining: i64 = replays.values().filter_map(Replay::remaining).sum();
        let (at, then) = self.last_report;
        let seconds = at.elapsed().as_secs_f64().max(1e-3);
        info!(
            partitions = replays.len(),
            remaining_records = remaining,
            events_per_second = ((read.events - then.events) as f64 / seconds) as u64,
            records_per_second = ((read.records - then.records) as f64 / seconds) as u64,
            "replaying"
        );
        self.last_report = (Instant::now(), read);
    }

    /// Records and events replayed, and seconds taken.
    fn finished(self, read: Read) -> (Read, f64) {
        (
            Read {
                records: read.records - self.at_start.records,
                events: read.events - self.at_start.events,
            },
            self.started.elapsed().as_secs_f64(),
        )
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
    if crate::journey_record::is_journey_record(bytes) {
        crate::journey_record::decode_each(bytes, each).map_err(|error| error.to_string())
    } else {
        decoder
            .decode(bytes, &TimestampPolicy::without_clock())
            .map(each)
            .map_err(|error| error.to_string())
    }
}

/// Events decoded before they are applied under one lock (the record that
/// reaches it is decoded whole, so a batch may pass it by one record).
const BATCH: usize = 512;

/// Applies the decoded batch to the engines and counts the outcomes.
fn apply_batch(
    engines: &PartitionEngines,
    batch: &mut Vec<(i32, Event)>,
    now: icsflow_core::Timestamp,
    outcomes: &OutcomeCounters,
    summary: &mut JoinSummary,
) {
    if batch.is_empty() {
        return;
    }
    let mut counts = [0_u64; Outcome::ALL.len()];
    let future_before = engines.future_events();
    engines.apply_all(batch.drain(..), now, |applied| {
        counts[Outcome::of(applied) as usize] += 1;
    });
    let future = engines.future_events() - future_before;
    if future > 0 {
        warn!(
            events = future,
            "events dated after the clock applied; they never become the engines' latest event"
        );
    }
    if counts[Outcome::TooManyLabelValues as usize] > 0 {
        warn!(
            events = counts[Outcome::TooManyLabelValues as usize],
            "events ignored: they name more distinct places or organisations than an engine's tables can index"
        );
    }
    if counts[Outcome::JourneyFull as usize] > 0 {
        warn!(
            events = counts[Outcome::JourneyFull as usize],
            events_per_journey = icsflow_engine::JOURNEY_EVENT_LIMIT,
            references_per_journey = icsflow_engine::JOURNEY_REFERENCE_LIMIT,
            "events ignored: their patient's journey is full (a feed sending one pseudonym far more events than any journey has)"
        );
    }
    summary.applied += counts[Outcome::Applied as usize];
    for (counter, count) in outcomes.iter().zip(counts) {
        if count > 0 {
            counter.inc_by(count);
        }
    }
}

/// What applying a rebalance needs.
struct Shared<'a> {
    consumer: &'a Arc<StreamConsumer<RoleContext>>,
    topic: &'a str,
    engines: &'a PartitionEngines,
    engine_config: EngineConfig,
    metrics: &'a PipelineMetrics,
    health: &'a Health,
}

/// An assigned partition gets a fresh engine and a replay target; a revoked
/// one loses its engine.
async fn apply_rebalance(
    shared: &Shared<'_>,
    replays: &mut BTreeMap<i32, Replay>,
    event: RebalanceEvent,
) {
    match event {
        RebalanceEvent::Assigned(partitions) => {
            for partition in partitions {
                let watermarks = watermarks(shared, partition, ATTEMPTS_AT_ASSIGNMENT).await;
                let target = watermarks.map(|(_, high)| high);
                // A replay derives each journey once, when it is applied
                // (`Join::settle_replayed`), not twice per event.
                let mut engine = Engine::new(shared.engine_config);
                engine.defer();
                shared.engines.lock().insert(partition, engine);
                replays.insert(
                    partition,
                    Replay {
                        target,
                        // Retention may have deleted the partition's first
                        // records: its replay starts at the oldest kept (and
                        // is done at once when none are).
                        next_offset: watermarks.map_or(0, |(low, _)| low),
                        reported_done: false,
                        settled: false,
                        gauge: shared
                            .metrics
                            .replay_remaining
                            .with_label_values(&[&partition.to_string()]),
                    },
                );
                match watermarks {
                    Some((first, target)) => {
                        shared
                            .metrics
                            .replay_remaining
                            .with_label_values(&[&partition.to_string()])
                            .set(target - first);
                        // `end`, not `target`: a JSON log line already has a
                        // `target` key (the module), and two would collide.
                        info!(
                            partition,
                            first,
                            end = target,
                            "partition assigned; replaying from the start"
                        );
                    }
                    None => {
                        // Unknown is not zero: no gauge until it is known.
                        let _ = shared
                            .metrics
                            .replay_remaining
                            .remove_label_values(&[&partition.to_string()]);
                        warn!(partition, "partition assigned; replaying from the start, but its end is unknown: not ready until the broker tells it");
                    }
                }
            }
        }
        RebalanceEvent::Revoked(partitions) => {
            for partition in partitions {
                shared.engines.lock().remove(&partition);
                replays.remove(&partition);
                shared
                    .metrics
                    .replay_remaining
                    .with_label_values(&[&partition.to_string()])
                    .set(0);
                info!(partition, "partition revoked; its journeys dropped");
            }
        }
    }
    shared.metrics.owned_partitions.set(replays.len() as i64);
    shared.health.set_caught_up(
        !replays.is_empty() && replays.values().all(|replay| replay.remaining() == Some(0)),
    );
}

/// Moves the replay gauges, and reports ready (with a summary line) once
/// every assigned partition reached its target.
fn finish_replays(
    replays: &mut BTreeMap<i32, Replay>,
    health: &Health,
    replay_progress: &mut Option<ReplayProgress>,
    read: Read,
) {
    let mut all_replayed = true;
    for replay in replays.values_mut() {
        let Some(remaining) = replay.remaining() else {
            all_replayed = false;
            continue;
        };
        // The gauge moves while the partition is replaying (a scrape every
        // few seconds sees it move).
        if !replay.reported_done {
            replay.gauge.set(remaining);
            replay.reported_done = remaining == 0;
        }
        all_replayed &= remaining == 0;
    }
    if all_replayed && !replays.is_empty() && !health.caught_up() {
        let (replayed, seconds) = replay_progress.take().map_or(
            (
                Read {
                    records: 0,
                    events: 0,
                },
                0.0,
            ),
            |progress| progress.finished(read),
        );
        info!(
            partitions = replays.len(),
            records = replayed.records,
            events = replayed.events,
            seconds = (seconds * 10.0).round() / 10.0,
            events_per_second = (replayed.events as f64 / seconds.max(1e-3)) as u64,
            "assigned partitions replayed; ready"
        );
        health.set_caught_up(true);
    }
}

/// Asks again for the high watermark of partitions whose replay target is
/// still unknown (one attempt each); whether any became known.
async fn ask_unknown_targets(shared: &Shared<'_>, replays: &mut BTreeMap<i32, Replay>) -> bool {
    let mut learned = false;
    let unknown: Vec<i32> = replays
        .iter()
        .filter(|(_, replay)| replay.target.is_none())
        .map(|(partition, _)| *partition)
        .collect();
    for partition in unknown {
        if let Some((low, target)) = watermarks(shared, partition, 1).await {
            info!(partition, end = target, "replay end known");
            if let Some(replay) = replays.get_mut(&partition) {
                replay.target = Some(target);
                replay.next_offset = replay.next_offset.max(low);
                learned = true;
            }
        }
    }
    learned
}

/// Attempts at assignment before the target is left unknown (and asked for
/// again on each housekeeping tick).
const ATTEMPTS_AT_ASSIGNMENT: u32 = 3;

/// The partition's low and high watermarks now (the oldest offset
/// retention kept, and the end), asked of the broker off the async
/// reactor, in up to `attempts` tries a second apart; `None` (counted, and
/// logged) when the broker did not answer. Never 0 for "unknown": that
/// would report the replica ready before its replay.
async fn watermarks(shared: &Shared<'_>, partition: i32, attempts: u32) -> Option<(i64, i64)> {
    for attempt in 1..=attempts {
        let (consumer, topic_name) = (Arc::clone(shared.consumer), shared.topic.to_owned());
        let answer = tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic_name, partition, Duration::from_secs(5))
        })
        .await;
        match answer {
            Ok(Ok(watermarks)) => return Some(watermarks),
            Ok(Err(error)) => {
                warn!(partition, attempt, %error, "high watermark not available")
            }
            Err(error) => {
                warn!(partition, attempt, %error, "high watermark query failed")
            }
        }
        shared.metrics.watermark_failures.inc();
        if attempt < attempts {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> OutcomeCounters {
        Outcome::ALL.map(|outcome| {
            icsflow_telemetry::IntCounter::new(format!("test_{}", outcome.label()), "test")
                .expect("a counter")
        })
    }

    /// What the loop relies on: batches are applied in the order sent, a
    /// flush returns only once everything sent before it is applied, and
    /// finishing reports every event applied.
    #[tokio::test]
    async fn the_applier_applies_in_order_and_a_flush_waits_for_all_of_it() {
        let engines = Arc::new(PartitionEngines::default());
        engines
            .lock()
            .insert(0, Engine::new(EngineConfig::default()));
        let outcomes = counters();
        let mut applier =
            Applier::start(Arc::clone(&engines), crate::wall_clock(), outcomes.clone())
                .expect("the apply thread starts");
        let events = icsflow_core::one_event_of_each_type();
        let mut sent = 0;
        for round in 0..50_u128 {
            let mut batch: Vec<(i32, Event)> = events
                .iter()
                .map(|event| {
                    let mut event = *event;
                    event.envelope.event_id = icsflow_core::EventId::from_u128(
                        event.envelope.event_id.as_u128() ^ (round << 64),
                    );
                    (0, event)
                })
                .collect();
            sent += batch.len() as u64;
            applier.apply(&mut batch).await;
            assert!(batch.is_empty(), "the loop gets an empty buffer back");
        }
        // The same events again, last: every one a duplicate only if the
        // first copies were applied before them.
        let mut again: Vec<(i32, Event)> = events.iter().map(|event| (0, *event)).collect();
        applier.apply(&mut again).await;
        applier.flush().await;
        let applied = outcomes[Outcome::Applied as usize].get();
        let duplicates = outcomes[Outcome::Duplicate as usize].get();
        assert_eq!(applied, sent, "everything sent before the flush is applied");
        assert_eq!(duplicates, events.len() as u64);
        assert!(!applier.stopped);
        assert_eq!(applier.finish(), sent);
    }

    /// A replaying partition's engine derives nothing until the loop says
    /// its replay is applied; then it shows what applying each event as it
    /// came would have shown, and derives later events as they come.
    #[tokio::test]
    async fn a_replayed_partition_settles_after_what_was_sent_before() {
        let events = icsflow_core::one_event_of_each_type();
        let latest = events
            .iter()
            .map(|event| event.envelope.occurred_at.as_millis())
            .max();
        let as_of = icsflow_core::Timestamp::from_millis(latest.unwrap_or(0) + 86_400_000);
        let mut expected = Engine::new(EngineConfig::default());
        for event in &events {
            expected.apply(event);
        }
        let engines = Arc::new(PartitionEngines::default());
        let mut replaying = Engine::new(EngineConfig::default());
        replaying.defer();
        engines.lock().insert(0, replaying);
        let mut applier = Applier::start(Arc::clone(&engines), crate::wall_clock(), counters())
            .expect("the apply thread starts");
        let (first, rest) = events.split_at(events.len() / 2);
        applier
            .apply(&mut first.iter().map(|event| (0, *event)).collect())
            .await;
        applier.flush().await;
        assert!(
            engines.metrics(as_of).iter().all(|(_, value)| *value == 0),
            "nothing derived while replaying"
        );
        applier.settle(vec![0]).await;
        applier
            .apply(&mut rest.iter().map(|event| (0, *event)).collect())
            .await;
        applier.flush().await;
        let non_zero = |metrics: Vec<(MetricKey, i64)>| -> Vec<(MetricKey, i64)> {
            metrics
                .into_iter()
                .filter(|(_, value)| *value != 0)
                .collect()
        };
        assert!(!engines.lock()[&0].is_deferred());
        let settled = non_zero(engines.metrics(as_of));
        assert!(!settled.is_empty());
        assert_eq!(settled, non_zero(expected.metrics(as_of)));
        applier.finish();
    }
}
