//! The instants the engines read.

use std::sync::Arc;

use icsflow_core::Timestamp;

use crate::PartitionEngines;

/// An instant source: the wall clock in deployments, the simulated clock in
/// the demo, a fixed instant in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock as a [`Clock`].
pub fn wall_clock() -> Clock {
    Arc::new(|| {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        Timestamp::from_millis(millis)
    })
}

/// What the gauges and eviction are computed as of (`engine.as_of`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AsOf {
    /// Now: the process's clock (the wall clock, or the demo's simulated
    /// one).
    #[default]
    Now,
    /// The newest event applied that was not in the future (now until there
    /// is one): for replaying history, where now would age every journey.
    LatestEvent,
}

impl AsOf {
    /// The setting's values, as written in the configuration.
    pub const NAMES: [&'static str; 2] = ["wall_clock", "latest_event"];

    pub fn parse(text: &str) -> Option<AsOf> {
        match text {
            "wall_clock" => Some(AsOf::Now),
            "latest_event" => Some(AsOf::LatestEvent),
            _ => None,
        }
    }

    /// The clock the engines are read as of under this policy, given the
    /// process's `now`.
    pub fn clock(self, now: &Clock, engines: &Arc<PartitionEngines>) -> Clock {
        match self {
            AsOf::Now => Arc::clone(now),
            AsOf::LatestEvent => {
                let (engines, now) = (Arc::clone(engines), Arc::clone(now));
                Arc::new(move || engines.latest_event().unwrap_or_else(|| now()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_the_latest_event_is_now_until_an_event_is_applied_then_that_event() {
        let engines = Arc::new(PartitionEngines::default());
        let now: Clock = Arc::new(|| Timestamp::from_millis(1_000_000_000));
        let as_of = AsOf::LatestEvent.clock(&now, &engines);
        assert_eq!(as_of(), now());
        assert_eq!(AsOf::Now.clock(&now, &engines)(), now());
        assert_eq!(
            AsOf::NAMES.map(AsOf::parse),
            [Some(AsOf::Now), Some(AsOf::LatestEvent)]
        );
        assert_eq!(AsOf::parse("now"), None);
    }
}
