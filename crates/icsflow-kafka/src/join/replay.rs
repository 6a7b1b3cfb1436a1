//! Replay: an assigned partition gets a fresh engine and is read from its
//! first retained record up to the end seen at assignment; the replica is
//! ready once every assigned partition got there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use icsflow_engine::Engine;
use icsflow_events::events::WatermarkUnknown;
use icsflow_events::{Gauge, GaugeHandle, Health};
use rdkafka::consumer::Consumer;
use tracing::{info, warn};

use super::{JoinSummary, Shared};
use crate::context::RebalanceEvent;

/// Replay state of one assigned partition.
#[derive(Clone, Debug)]
pub(super) struct Replay {
    /// The high watermark seen at assignment; ready once reached. `None`
    /// while the broker has not told it: the partition is then not ready,
    /// and it is asked again on every housekeeping tick.
    pub(super) target: Option<i64>,
    pub(super) next_offset: i64,
    /// Whether the replay gauge already shows 0.
    reported_done: bool,
    /// Whether the partition's engine was told to settle: it defers
    /// deriving while it replays, and derives as events come once its
    /// replay is applied.
    pub(super) settled: bool,
    /// `icsflow_join_replay_remaining_records` for this partition.
    gauge: GaugeHandle,
}

impl Replay {
    /// Records left to replay; `None` while the target is unknown.
    pub(super) fn remaining(&self) -> Option<i64> {
        self.target.map(|target| (target - self.next_offset).max(0))
    }
}

/// A replay under way: when it began, for a progress line on each
/// housekeeping tick and a summary when it ends.
pub(super) struct ReplayProgress {
    started: Instant,
    /// Records and events the role had read when the replay began.
    at_start: Read,
    /// When progress was last reported, and what had been read then.
    last_report: (Instant, Read),
}

/// Records consumed and the events they held (a journey record of the
/// current version holds a batch).
#[derive(Clone, Copy, Debug)]
pub(super) struct Read {
    pub(super) records: u64,
    pub(super) events: u64,
}

impl Read {
    pub(super) fn of(summary: &JoinSummary) -> Read {
        Read {
            records: summary.consumed,
            events: summary.decoded,
        }
    }
}

impl ReplayProgress {
    pub(super) fn start(read: Read) -> ReplayProgress {
        let now = Instant::now();
        ReplayProgress {
            started: now,
            at_start: read,
            last_report: (now, read),
        }
    }

    /// Logs the records left to replay and the rate since the last report.
    pub(super) fn report(&mut self, replays: &BTreeMap<i32, Replay>, read: Read) {
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
    pub(super) fn finished(self, read: Read) -> (Read, f64) {
        (
            Read {
                records: read.records - self.at_start.records,
                events: read.events - self.at_start.events,
            },
            self.started.elapsed().as_secs_f64(),
        )
    }
}

/// An assigned partition gets a fresh engine and a replay target; a revoked
/// one loses its engine.
pub(super) async fn apply_rebalance(
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
                shared.engines.insert(partition, engine);
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
                            .events
                            .gauge(Gauge::ReplayRemaining, &[&partition.to_string()]),
                    },
                );
                match watermarks {
                    Some((first, target)) => {
                        shared
                            .events
                            .gauge(Gauge::ReplayRemaining, &[&partition.to_string()])
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
                        shared
                            .events
                            .forget(Gauge::ReplayRemaining, &[&partition.to_string()]);
                        warn!(partition, "partition assigned; replaying from the start, but its end is unknown: not ready until the broker tells it");
                    }
                }
            }
        }
        RebalanceEvent::Revoked(partitions) => {
            for partition in partitions {
                shared.engines.remove(partition);
                replays.remove(&partition);
                shared
                    .events
                    .gauge(Gauge::ReplayRemaining, &[&partition.to_string()])
                    .set(0);
                info!(partition, "partition revoked; its journeys dropped");
            }
        }
    }
    shared
        .events
        .gauge(Gauge::OwnedPartitions, &[])
        .set(replays.len() as i64);
    shared.health.set_caught_up(
        !replays.is_empty() && replays.values().all(|replay| replay.remaining() == Some(0)),
    );
}

/// Moves the replay gauges, and reports ready (with a summary line) once
/// every assigned partition reached its target.
pub(super) fn finish_replays(
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
pub(super) async fn ask_unknown_targets(
    shared: &Shared<'_>,
    replays: &mut BTreeMap<i32, Replay>,
) -> bool {
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
            Ok(Err(error)) => shared.events.emit(WatermarkUnknown {
                partition,
                attempt,
                error: &error,
            }),
            Err(error) => shared.events.emit(WatermarkUnknown {
                partition,
                attempt,
                error: &error,
            }),
        }
        if attempt < attempts {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    None
}
