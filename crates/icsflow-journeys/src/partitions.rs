//! One journey engine per journey partition a replica owns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use icsflow_core::{Event, Timestamp, TimestampPolicy};
use icsflow_engine::{Applied, Engine, MetricKey};

/// What [`PartitionEngines::settle`] did: the journeys derived and how long
/// it took.
#[derive(Clone, Copy, Debug)]
pub struct Settled {
    pub journeys: usize,
    pub seconds: f64,
}

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
    future_events: AtomicU64,
}

impl Default for PartitionEngines {
    fn default() -> PartitionEngines {
        PartitionEngines {
            engines: Mutex::default(),
            latest_event: AtomicI64::new(i64::MIN),
            future_events: AtomicU64::new(0),
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
        now: Timestamp,
        mut outcome: impl FnMut(Applied),
    ) {
        // One record dated 2099 must not become "now" for `latest_event`
        // (every journey would be evicted and every delay grow by decades):
        // only events up to the clock, with the tolerance ingest allows for
        // clock skew, count as the newest.
        let limit = now.as_millis() + TimestampPolicy::DEFAULT_TOLERANCE_MILLIS;
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

    /// Journeys held across the owned partitions.
    pub fn journeys(&self) -> usize {
        self.lock()
            .values()
            .map(|engine| engine.statistics().journeys)
            .sum()
    }

    /// Ends deferred deriving in these partitions' engines (their replay
    /// is applied): each journey is derived once, and the metrics move.
    /// `None` when none of them was deferred.
    pub fn settle(&self, partitions: &[i32]) -> Option<Settled> {
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
        (settled > 0).then(|| Settled {
            journeys,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Evicts complete journeys older than the horizon in every partition.
    pub fn evict(&self, as_of: Timestamp) -> usize {
        self.lock()
            .values_mut()
            .map(|engine| engine.evict(as_of))
            .sum()
    }

    /// Takes `partition`'s engine (assigned to this replica), replacing
    /// any it had.
    pub fn insert(&self, partition: i32, engine: Engine) {
        self.lock().insert(partition, engine);
    }

    /// Drops `partition`'s engine and its journeys (revoked).
    pub fn remove(&self, partition: i32) {
        self.lock().remove(&partition);
    }

    /// Whether `partition`'s engine is still deferring its deriving (its
    /// replay not yet settled).
    pub fn is_deferred(&self, partition: i32) -> Option<bool> {
        self.lock().get(&partition).map(Engine::is_deferred)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Engine>> {
        self.engines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
