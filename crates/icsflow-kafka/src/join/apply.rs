//! Applying: decoded batches go to the engines on a thread of their own,
//! in order, and each event's outcome is counted.

use std::sync::Arc;

use icsflow_core::{Event, PerKind};
use icsflow_engine::Applied;
use icsflow_events::events::ReplayDerived;
use icsflow_events::{CounterHandle, Events};
use icsflow_journeys::{Clock, PartitionEngines};
use tokio::sync::mpsc;
use tracing::warn;

use super::{JoinSummary, BATCH};
use crate::common::RoleError;

icsflow_core::kinds! {
    /// What became of one journey record: `icsflow_engine_events_total{outcome}`.
    pub(super) enum Outcome {
        Applied => "applied",
        Duplicate => "duplicate",
        BeyondHorizon => "beyond_horizon",
        Undecodable => "undecodable",
        TooManyLabelValues => "too_many_label_values",
        JourneyFull => "journey_full",
        /// Its organisation is no partner's in the reference data.
        NotInReference => "not_in_reference",
    }
}

impl Outcome {
    pub(super) const fn of(applied: Applied) -> Outcome {
        match applied {
            Applied::Applied => Outcome::Applied,
            Applied::Duplicate => Outcome::Duplicate,
            Applied::BeyondHorizon => Outcome::BeyondHorizon,
            Applied::TooManyLabelValues => Outcome::TooManyLabelValues,
            Applied::JourneyFull => Outcome::JourneyFull,
        }
    }
}

/// The outcome counters.
pub(super) type OutcomeCounters = PerKind<Outcome, CounterHandle>;

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
pub(super) struct Applier {
    work: Option<mpsc::Sender<ApplyWork>>,
    /// Set when the thread could not be reached: it has ended.
    pub(super) stopped: bool,
    /// Emptied batches coming back, so that their buffers are reused.
    spare: std::sync::mpsc::Receiver<Vec<(i32, Event)>>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Applier {
    /// Batches queued before the loop waits: enough to keep the thread
    /// busy, few enough that a flush is quick.
    const QUEUED: usize = 4;

    pub(super) fn start(
        engines: Arc<PartitionEngines>,
        now: Clock,
        outcomes: OutcomeCounters,
        events: Events,
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
                        ApplyWork::Settle(partitions) => {
                            if let Some(settled) = engines.settle(&partitions) {
                                events.emit(ReplayDerived {
                                    partitions: &partitions,
                                    journeys: settled.journeys,
                                    seconds: settled.seconds,
                                });
                            }
                        }
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
    pub(super) async fn apply(&mut self, batch: &mut Vec<(i32, Event)>) {
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
    pub(super) async fn settle(&mut self, partitions: Vec<i32>) {
        if let Some(work) = &self.work {
            self.stopped |= work.send(ApplyWork::Settle(partitions)).await.is_err();
        }
    }

    /// Waits until every batch sent so far is applied.
    pub(super) async fn flush(&mut self) {
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
    pub(super) fn finish(&mut self) -> u64 {
        drop(self.work.take());
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or(0)
    }
}

/// Applies the decoded batch to the engines and counts the outcomes.
pub(super) fn apply_batch(
    engines: &PartitionEngines,
    batch: &mut Vec<(i32, Event)>,
    now: icsflow_core::Timestamp,
    outcomes: &OutcomeCounters,
    summary: &mut JoinSummary,
) {
    if batch.is_empty() {
        return;
    }
    let mut counts: PerKind<Outcome, u64> = PerKind::default();
    let future_before = engines.future_events();
    engines.apply_all(batch.drain(..), now, |applied| {
        counts[Outcome::of(applied)] += 1;
    });
    let future = engines.future_events() - future_before;
    if future > 0 {
        warn!(
            events = future,
            "events dated after the clock applied; they never become the engines' latest event"
        );
    }
    if counts[Outcome::TooManyLabelValues] > 0 {
        warn!(
            events = counts[Outcome::TooManyLabelValues],
            "events ignored: they name more distinct places or organisations than an engine's tables can index"
        );
    }
    if counts[Outcome::JourneyFull] > 0 {
        warn!(
            events = counts[Outcome::JourneyFull],
            events_per_journey = icsflow_engine::JOURNEY_EVENT_LIMIT,
            references_per_journey = icsflow_engine::JOURNEY_REFERENCE_LIMIT,
            "events ignored: their patient's journey is full (a feed sending one pseudonym far more events than any journey has)"
        );
    }
    summary.applied += counts[Outcome::Applied];
    for (outcome, count) in counts.iter() {
        if *count > 0 {
            outcomes[outcome].add(*count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use icsflow_engine::{Engine, EngineConfig};
    use icsflow_events::metrics::Tally;
    use icsflow_events::Counter;

    fn recorded() -> (Arc<Tally>, Events) {
        let tally = Arc::new(Tally::default());
        (Arc::clone(&tally), Events::new(tally))
    }

    fn counters(events: &Events) -> OutcomeCounters {
        PerKind::new(|outcome: &Outcome| events.counter(Counter::EngineEvents, &[outcome.label()]))
    }

    /// What the loop relies on: batches are applied in the order sent, a
    /// flush returns only once everything sent before it is applied, and
    /// finishing reports every event applied.
    #[tokio::test]
    async fn the_applier_applies_in_order_and_a_flush_waits_for_all_of_it() {
        let engines = Arc::new(PartitionEngines::default());
        engines.insert(0, Engine::new(EngineConfig::default()));
        let (tally, sink) = recorded();
        let outcomes = counters(&sink);
        let mut applier = Applier::start(
            Arc::clone(&engines),
            icsflow_journeys::wall_clock(),
            outcomes.clone(),
            sink.clone(),
        )
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
        let applied = tally.count(Counter::EngineEvents, &[Outcome::Applied.label()]);
        let duplicates = tally.count(Counter::EngineEvents, &[Outcome::Duplicate.label()]);
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
        engines.insert(0, replaying);
        let (_, sink) = recorded();
        let mut applier = Applier::start(
            Arc::clone(&engines),
            icsflow_journeys::wall_clock(),
            counters(&sink),
            sink.clone(),
        )
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
        let non_zero = |metrics: Vec<(icsflow_engine::MetricKey, i64)>| -> Vec<(icsflow_engine::MetricKey, i64)> {
            metrics
                .into_iter()
                .filter(|(_, value)| *value != 0)
                .collect()
        };
        assert_eq!(engines.is_deferred(0), Some(false));
        let settled = non_zero(engines.metrics(as_of));
        assert!(!settled.is_empty());
        assert_eq!(settled, non_zero(expected.metrics(as_of)));
        applier.finish();
    }
}
