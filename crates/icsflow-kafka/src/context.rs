//! rdkafka client contexts: librdkafka's statistics turned into broker
//! reachability and consumer lag; rebalances turned into messages for the
//! join loop (never handled inside the callback).

use std::sync::Arc;

use icsflow_telemetry::{Health, PipelineMetrics};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

/// At most one log line per kind of client error every
/// [`ErrorLines::INTERVAL`], counting the ones left out.
#[derive(Debug, Default)]
pub(crate) struct ErrorLines {
    /// By error code: when one was last logged, and how many since.
    seen: std::sync::Mutex<std::collections::HashMap<Option<i32>, (std::time::Instant, u64)>>,
}

impl ErrorLines {
    const INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

    /// `Some(left out since the last line)` when a line may be logged now.
    fn allow(&self, code: Option<RDKafkaErrorCode>) -> Option<u64> {
        let code = code.map(|code| code as i32);
        let now = std::time::Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get_mut(&code) {
            Some((last, suppressed)) if now.duration_since(*last) < Self::INTERVAL => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let left_out = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(left_out)
            }
            None => {
                seen.insert(code, (now, 0));
                Some(0)
            }
        }
    }
}

/// A change of the join replica's assignment, sent to its loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub(crate) struct RoleContext {
    pub(crate) role: &'static str,
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: PipelineMetrics,
    /// Where rebalances are sent to the role's loop (join: to drop and
    /// replay partitions; ingest: to forget held partitions it lost).
    pub(crate) rebalances: Option<UnboundedSender<RebalanceEvent>>,
    /// Whether this role reports the lag of a topic (join: the journey
    /// topic; ingest: the partner topics, met by name or by pattern).
    pub(crate) lag_topic: Box<dyn Fn(&str) -> bool + Send + Sync>,
    /// Per partition, the next offset whose record's outcome is final
    /// (ingest: stored at least once, or committed in a transaction exactly
    /// once). The lag is measured from it when known: librdkafka's
    /// `consumer_lag` follows offsets committed by the consumer, which
    /// transactional commits never move, so under exactly-once it showed
    /// everything consumed since start.
    pub(crate) processed: std::sync::Mutex<std::collections::HashMap<(String, i32), i64>>,
    /// Rate limit of the client error lines.
    pub(crate) error_lines: ErrorLines,
    /// Rebalances that revoked partitions so far. Rebalance callbacks run
    /// inside the role's own poll, so exactly-once ingest compares this
    /// before and after a batch: a batch across a revocation must not
    /// commit offsets of partitions it no longer owns.
    pub(crate) revocations: std::sync::atomic::AtomicU64,
}

impl ClientContext for RoleContext {
    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<Statistics>(statistics) {
            Ok(statistics) => self.stats(statistics),
            Err(error) => {
                warn!(role = self.role, %error, "librdkafka statistics could not be read")
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        let reachable = statistics
            .brokers
            .values()
            .any(|broker| broker.state == "UP");
        self.set_broker_reachable(reachable);
        for (name, topic) in &statistics.topics {
            if !(self.lag_topic)(name) {
                continue;
            }
            for (partition, partition_statistics) in &topic.partitions {
                // -1 is "unknown" (not assigned or not yet fetched). The join
                // role never commits, so its lag is measured from the last
                // record handed to it instead of the committed offset.
                let processed = self
                    .lock_processed()
                    .get(&(name.clone(), *partition))
                    .copied();
                let lag = if let (Some(processed), true) =
                    (processed, partition_statistics.hi_offset >= 0)
                {
                    (partition_statistics.hi_offset - processed).max(0)
                } else if partition_statistics.consumer_lag >= 0 {
                    partition_statistics.consumer_lag
                } else if partition_statistics.app_offset >= 0
                    && partition_statistics.hi_offset >= 0
                {
                    (partition_statistics.hi_offset - partition_statistics.app_offset).max(0)
                } else {
                    -1
                };
                if *partition >= 0 && lag >= 0 {
                    self.metrics
                        .lag
                        .with_label_values(&[self.role, name.as_str(), &partition.to_string()])
                        .set(lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.set_broker_reachable(false);
        }
        // librdkafka reports a broker that is down once per connection
        // attempt and per broker (37 lines a second were seen): one line per
        // kind of error every 10 s, with how many were left out.
        if let Some(suppressed) = self.error_lines.allow(error.rdkafka_error_code()) {
            warn!(role = self.role, %error, reason, suppressed, "kafka client error");
        }
    }
}

impl RoleContext {
    /// Records that every record of `topic` `partition` before `next` has
    /// its final outcome.
    pub(crate) fn processed(&self, topic: &str, partition: i32, next: i64) {
        let mut processed = self.lock_processed();
        let entry = processed
            .entry((topic.to_owned(), partition))
            .or_insert(next);
        *entry = (*entry).max(next);
    }

    fn lock_processed(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, i32), i64>> {
        self.processed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records whether a broker is reachable, saying so when it changes.
    fn set_broker_reachable(&self, reachable: bool) {
        if reachable != self.health.broker_reachable() {
            if reachable {
                info!(role = self.role, "broker reachable");
            } else {
                warn!(
                    role = self.role,
                    "no broker reachable; /readyz reports not ready until one is"
                );
            }
        }
        self.health.set_broker_reachable(reachable);
    }
}

impl ConsumerContext for RoleContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // An assignment comes from the group coordinator: a broker answers.
        // Said now rather than at librdkafka's first statistics, up to 5 s
        // later, which held readiness back for that long at every start.
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.set_broker_reachable(true);
        }
        if let Rebalance::Revoke(list) = rebalance {
            self.revocations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The lag of a partition no longer owned is unknown here, not
            // its last value: the series goes.
            for element in list.elements() {
                self.lock_processed()
                    .remove(&(element.topic().to_owned(), element.partition()));
                let _ = self.metrics.lag.remove_label_values(&[
                    self.role,
                    element.topic(),
                    &element.partition().to_string(),
                ]);
            }
        }
        if self.role == "ingest" && !matches!(rebalance, Rebalance::Error(_)) {
            // Ingest has nothing to replay: it is consuming, so ready, while
            // it owns partitions. A group that lost its partitions (a
            // session timed out against a stalled broker) is not ready,
            // whatever the broker connection says.
            let owned = consumer.assignment().map_or(0, |list| list.count());
            if (owned > 0) != self.health.consuming() {
                if owned > 0 {
                    info!(
                        role = self.role,
                        partitions = owned,
                        "partitions assigned: consuming"
                    );
                } else {
                    warn!(
                        role = self.role,
                        "no partitions owned; /readyz reports not ready until some are assigned"
                    );
                }
            }
            self.health.set_consuming(owned > 0);
        }
        let Some(sender) = &self.rebalances else {
            return;
        };
        let partitions = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|element| element.partition())
                .collect()
        };
        let event = match rebalance {
            Rebalance::Assign(list) => RebalanceEvent::Assigned(partitions(list)),
            Rebalance::Revoke(list) => RebalanceEvent::Revoked(partitions(list)),
            Rebalance::Error(error) => {
                warn!(role = self.role, %error, "rebalance failed");
                return;
            }
        };
        info!(role = self.role, ?event, "rebalance");
        let _ = sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: with the broker unreachable each process logged 37
    /// client error lines a second.
    #[test]
    fn client_errors_are_logged_once_per_kind_per_interval() {
        let lines = ErrorLines::default();
        let down = Some(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(lines.allow(down), Some(0));
        for _ in 0..36 {
            assert_eq!(lines.allow(down), None);
        }
        assert_eq!(
            lines.allow(Some(RDKafkaErrorCode::BrokerTransportFailure)),
            Some(0)
        );
    }
}
