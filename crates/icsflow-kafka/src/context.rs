//! rdkafka client contexts: librdkafka's statistics turned into broker
//! reachability and consumer lag; rebalances turned into messages for the
//! role's loop (never handled inside the callback).

use icsflow_events::events::{
    BrokerReachability, CaughtUp, IngestAssignment, LagMeasured, PartitionReleased, Role,
};
use icsflow_events::{Events, RateLimit};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

/// A line of librdkafka's own log, through `tracing` with its level and
/// facility under the target `librdkafka` (so `RUST_LOG=librdkafka=debug`
/// and `kafka.librdkafka.debug` select them). Warnings and errors are rate
/// limited per facility: an unreachable broker makes librdkafka log every
/// connection attempt to every broker.
pub(crate) fn librdkafka_log(
    role: &'static str,
    limit: &RateLimit,
    level: rdkafka::config::RDKafkaLogLevel,
    facility: &str,
    message: &str,
) {
    use rdkafka::config::RDKafkaLogLevel::{
        Alert, Critical, Debug, Emerg, Error, Info, Notice, Warning,
    };
    match level {
        Emerg | Alert | Critical | Error => {
            if let Some(suppressed) = limit.allow(&format!("log {facility}")) {
                tracing::error!(target: "librdkafka", role, facility, suppressed, "{message}");
            }
        }
        Warning => {
            if let Some(suppressed) = limit.allow(&format!("log {facility}")) {
                tracing::warn!(target: "librdkafka", role, facility, suppressed, "{message}");
            }
        }
        Notice | Info => tracing::info!(target: "librdkafka", role, facility, "{message}"),
        Debug => tracing::debug!(target: "librdkafka", role, facility, "{message}"),
    }
}

/// The level librdkafka is asked to log at: what the log filter lets
/// through for the target `librdkafka`. librdkafka formats nothing below
/// it, so a debug context costs nothing unless its lines are shown.
pub(crate) fn librdkafka_log_level() -> rdkafka::config::RDKafkaLogLevel {
    use rdkafka::config::RDKafkaLogLevel;
    if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
        RDKafkaLogLevel::Info
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::WARN) {
        RDKafkaLogLevel::Warning
    } else {
        RDKafkaLogLevel::Error
    }
}

/// The context of icsflow's other clients (publish, simulate and the demo's
/// partner producer, `rejections`, `topics`): librdkafka's log and client
/// errors as the roles have them, statistics ignored (only the roles read
/// them; rdkafka's default logged each in full).
#[derive(Debug)]
pub(crate) struct ToolContext {
    name: &'static str,
    limit: RateLimit,
}

impl ToolContext {
    pub(crate) fn new(name: &'static str) -> ToolContext {
        ToolContext {
            name,
            limit: RateLimit::default(),
        }
    }
}

impl ClientContext for ToolContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        librdkafka_log(self.name, &self.limit, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(self.name, &self.limit, &error, reason);
    }

    fn stats_raw(&self, _statistics: &[u8]) {}
}

impl ConsumerContext for ToolContext {}

/// A change of the join replica's assignment, sent to its loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub(crate) struct RoleContext {
    pub(crate) role: Role,
    pub(crate) events: Events,
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
    /// Per partition, an end read from the broker by the role itself
    /// (ingest, for partitions it holds paused: librdkafka's statistics
    /// keep a paused partition's end as it was when it was paused).
    pub(crate) ends: std::sync::Mutex<std::collections::HashMap<(String, i32), i64>>,
    /// Rebalances that revoked partitions so far. Rebalance callbacks run
    /// inside the role's own poll, so exactly-once ingest compares this
    /// before and after a batch: a batch across a revocation must not
    /// commit offsets of partitions it no longer owns.
    pub(crate) revocations: std::sync::atomic::AtomicU64,
    /// The role is stopping: partitions it gives up are no fault.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Whether "caught up" was logged (once per process).
    pub(crate) announced_caught_up: std::sync::atomic::AtomicBool,
}

impl ClientContext for RoleContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        librdkafka_log(
            self.role.as_str(),
            self.events.lines(),
            level,
            facility,
            message,
        );
    }

    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<Statistics>(statistics) {
            Ok(statistics) => self.stats(statistics),
            Err(error) => {
                warn!(role = self.role.as_str(), %error, "librdkafka statistics could not be read")
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        let reachable = statistics
            .brokers
            .values()
            .any(|broker| broker.state == "UP");
        self.set_broker_reachable(reachable);
        // Partitions with a lag figure, and whether any owned one is behind
        // or has no figure yet (caught up means every one's lag is 0).
        let (mut measured, mut behind) = (0_usize, false);
        for (name, topic) in &statistics.topics {
            if !(self.lag_topic)(name) {
                continue;
            }
            for (partition, partition_statistics) in &topic.partitions {
                // -1 is "unknown" (not assigned or not yet fetched). Where
                // the role knows the first record whose outcome is not yet
                // final (`processed`: ingest's stored or committed offsets,
                // join's committed positions), the lag counts from it, as
                // Kafka's tools count from the committed offset.
                let processed = self
                    .lock_processed()
                    .get(&(name.clone(), *partition))
                    .copied();
                let known_end = self
                    .lock_ends()
                    .get(&(name.clone(), *partition))
                    .copied()
                    .unwrap_or(-1);
                let end = partition_statistics.hi_offset.max(known_end);
                // Records past the end librdkafka knows (a paused partition).
                let unseen = if partition_statistics.hi_offset >= 0 {
                    end - partition_statistics.hi_offset
                } else {
                    0
                };
                let lag = if let (Some(processed), true) = (processed, end >= 0) {
                    (end - processed).max(0)
                } else if partition_statistics.consumer_lag >= 0 {
                    partition_statistics.consumer_lag + unseen
                } else if partition_statistics.app_offset >= 0 && end >= 0 {
                    (end - partition_statistics.app_offset).max(0)
                } else if partition_statistics.fetch_state == "active"
                    && partition_statistics.hi_offset >= 0
                    && partition_statistics.hi_offset == partition_statistics.lo_offset
                {
                    // Owned and empty: nothing to wait for (Kafka's tools
                    // show 0 too), rather than no figure at all.
                    0
                } else {
                    -1
                };
                if *partition >= 0 && lag >= 0 {
                    self.events.emit(LagMeasured {
                        role: self.role,
                        topic: name,
                        partition: *partition,
                        lag,
                    });
                    measured += 1;
                    behind |= lag > 0;
                } else if *partition >= 0 && partition_statistics.fetch_state != "none" {
                    // Owned, its end not known yet.
                    behind = true;
                }
            }
        }
        self.report_caught_up(measured > 0 && !behind);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.set_broker_reachable(false);
        }
        client_error(self.role.as_str(), self.events.lines(), &error, reason);
    }
}

/// A client error (librdkafka's error callback) in the log. librdkafka
/// reports a broker that is down once per connection attempt and per broker
/// (37 lines a second were seen): one line per kind of error every 10 s,
/// with how many were left out.
pub(crate) fn client_error(
    role: &'static str,
    limit: &RateLimit,
    error: &KafkaError,
    reason: &str,
) {
    let kind = format!("error {:?}", error.rdkafka_error_code());
    if let Some(suppressed) = limit.allow(&kind) {
        warn!(role, %error, reason, suppressed, "kafka client error");
    }
}

impl RoleContext {
    /// `icsflow_pipeline_caught_up`, and a log line the first time: the
    /// signal a script waits on to know a run has taken all its input.
    fn report_caught_up(&self, lag_zero: bool) {
        let caught_up = lag_zero && (self.role != Role::Join || self.events.health().caught_up());
        let first = caught_up
            && !self
                .announced_caught_up
                .swap(true, std::sync::atomic::Ordering::Relaxed);
        self.events.emit(CaughtUp {
            role: self.role,
            caught_up,
            first,
        });
    }

    /// A consumer poll that returned an error instead of a record (the
    /// same broker problems the error callback reports, as often), rate
    /// limited as they are.
    pub(crate) fn consume_failed(&self, error: &KafkaError) {
        let kind = format!("consume {:?}", error.rdkafka_error_code());
        if let Some(suppressed) = self.events.lines().allow(&kind) {
            warn!(role = self.role.as_str(), %error, suppressed, "consume failed; retrying");
        }
    }

    /// Records an end of `topic` `partition` read from the broker.
    pub(crate) fn known_end(&self, topic: &str, partition: i32, end: i64) {
        let mut ends = self.lock_ends();
        let entry = ends.entry((topic.to_owned(), partition)).or_insert(end);
        *entry = (*entry).max(end);
    }

    /// Records that the role holds `topic` `partition` at `offset` (a
    /// record waiting for its schema): unless more is known, the lag counts
    /// from it. librdkafka's own position is past it (the record was
    /// handed out before the partition was paused), one record short.
    pub(crate) fn held_at(&self, topic: &str, partition: i32, offset: i64) {
        self.lock_processed()
            .entry((topic.to_owned(), partition))
            .or_insert(offset);
    }

    /// Records that every record of `topic` `partition` before `next` has
    /// its final outcome.
    pub(crate) fn processed(&self, topic: &str, partition: i32, next: i64) {
        let mut processed = self.lock_processed();
        let entry = processed
            .entry((topic.to_owned(), partition))
            .or_insert(next);
        *entry = (*entry).max(next);
    }

    fn lock_ends(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, i32), i64>> {
        self.ends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        self.events.emit(BrokerReachability {
            role: self.role,
            reachable,
        });
    }
}

impl ConsumerContext for RoleContext {
    /// rdkafka's own rebalance, with join's assignments moved to the
    /// beginning of each partition first.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: rdkafka::bindings::rd_kafka_resp_err_t,
        list: &mut rdkafka::TopicPartitionList,
    ) {
        use rdkafka::bindings::rd_kafka_resp_err_t::{
            RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS as ASSIGN,
            RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS as REVOKE,
        };
        use rdkafka::consumer::RebalanceProtocol;
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let outcome = match error {
            ASSIGN => {
                // Join: every partition assigned is read from its first
                // offset, not from the one committed (join commits its
                // positions for monitoring only; its state is rebuilt by
                // replaying the partition).
                if self.role == Role::Join {
                    let _ = list.set_all_offsets(rdkafka::Offset::Beginning);
                }
                if cooperative {
                    consumer.incremental_assign(list)
                } else {
                    consumer.assign(list)
                }
            }
            _ if cooperative => consumer.incremental_unassign(list),
            _ => consumer.unassign(),
        };
        let rebalance = match error {
            ASSIGN => Rebalance::Assign(list),
            REVOKE => Rebalance::Revoke(list),
            other => Rebalance::Error(KafkaError::Rebalance(other.into())),
        };
        if let Err(error) = outcome {
            warn!(role = self.role.as_str(), %error, "applying a rebalance failed");
        }
        self.post_rebalance(consumer, &rebalance);
    }

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
                self.lock_ends()
                    .remove(&(element.topic().to_owned(), element.partition()));
                self.events.emit(PartitionReleased {
                    role: self.role,
                    topic: element.topic(),
                    partition: element.partition(),
                });
            }
        }
        if self.role == Role::Ingest && !matches!(rebalance, Rebalance::Error(_)) {
            // Ingest has nothing to replay: it is consuming, so ready, while
            // it owns partitions. A group that lost its partitions (a
            // session timed out against a stalled broker) is not ready,
            // whatever the broker connection says.
            // Not asked while stopping: closing the consumer revokes its
            // partitions from inside its own drop, where librdkafka's group
            // handler no longer answers `assignment()` and the call waited
            // forever (a test hung on it).
            let stopping = self.stopping.load(std::sync::atomic::Ordering::Relaxed);
            let partitions = if stopping {
                0
            } else {
                consumer.assignment().map_or(0, |list| list.count())
            };
            self.events.emit(IngestAssignment {
                partitions,
                stopping,
            });
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
                warn!(role = self.role.as_str(), %error, "rebalance failed");
                return;
            }
        };
        info!(role = self.role.as_str(), ?event, "rebalance");
        let _ = sender.send(event);
    }
}
