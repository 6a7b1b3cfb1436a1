//! Exactly once: one Kafka transaction per batch (or per
//! [`TRANSACTION_INTERVAL`] of batches), its outputs and the partner offsets
//! after them committed together, and an aborted batch read again.

use std::time::Duration;

use icsflow_events::events::{AbortCause, TransactionAborted, TransactionCommitted};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{error, warn};

use super::Ingest;
use crate::acknowledgements::IngestDeliveries;
use crate::common::RoleError;
use crate::context::RoleContext;
use crate::settings::KafkaSettings;
use crate::sources::TopicId;

/// How long a transaction call may take before the role gives up on it.
pub(super) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What commit and abort may take: the transaction's remaining time (-1),
/// which librdkafka strongly recommends for both (other values risk its
/// state going out of step when a request fails).
const REMAINING_TRANSACTION_TIME: rdkafka::util::Timeout = rdkafka::util::Timeout::Never;

/// How long a transaction stays open under load, taking batch after batch,
/// before it is committed (Kafka Streams' exactly-once default). Each commit
/// costs a broker round trip or more, and librdkafka cannot begin the next
/// transaction's partitions until the last one's markers are written, so a
/// transaction per batch of a few hundred records commits a few thousand
/// records a second at most. When a batch empties what librdkafka holds,
/// the loop commits at once instead (`Commit::Now`): commits then come as
/// fast as the broker answers them, and the records arriving meanwhile make
/// the next transaction larger.
const TRANSACTION_INTERVAL: Duration = Duration::from_millis(100);

/// A commit that took longer (a broker failing over) does not stretch the
/// next transactions beyond three times this.
const MAX_MEASURED_COMMIT: Duration = Duration::from_millis(300);

/// Whether an open transaction is committed now, or only once it has been
/// open for [`TRANSACTION_INTERVAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Commit {
    Now,
    WhenDue,
}

/// The transactional id of this ingest process: stable per replica when
/// `kafka.group_instance_id` is set (a restarted replica fences its former
/// self), otherwise unique per process (KIP-447's group-generation check
/// then fences a stale one).
pub(super) fn transactional_id(settings: &KafkaSettings) -> String {
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
pub(super) struct Transaction {
    pub(super) open: bool,
    /// When it began.
    pub(super) began: Option<std::time::Instant>,
    /// The consumer's revocation count when the transaction began.
    pub(super) revocations_at_start: u64,
    /// The first offset of each partition in the batch: where to read
    /// again from when the transaction is aborted.
    pub(super) first: std::collections::BTreeMap<(TopicId, i32), i64>,
    pub(super) offsets: std::collections::BTreeMap<(TopicId, i32), i64>,
    /// How long the last commit took (the loop waits for it).
    pub(super) last_commit: Duration,
}

impl Transaction {
    /// How long a transaction stays open under load: the interval, or
    /// three times what the last commit took if that is longer, so that
    /// the loop spends at most a quarter of its time waiting for commits
    /// (a commit takes tens of milliseconds on a healthy broker, and more
    /// while one fails over).
    pub(super) fn open_for(&self) -> Duration {
        TRANSACTION_INTERVAL.max(self.last_commit * COMMIT_SHARE)
    }
}

/// See [`Transaction::open_for`]: a transaction is open this many times as
/// long as its commit takes.
const COMMIT_SHARE: u32 = 3;

/// How many revoking rebalances the consumer has been through.
pub(super) fn revocations(consumer: &StreamConsumer<RoleContext>) -> u64 {
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
    // rdkafka's commit_transaction flushes first, and its flush, finding
    // messages outstanding, waits 100 ms on an event queue that the
    // producer's own thread serves: every commit took 101-106 ms. Waiting
    // here for the outstanding messages, a millisecond at a time (each
    // zero-timeout flush also sends what lingers at once), leaves its flush
    // nothing to wait for.
    let waited = std::time::Instant::now();
    while producer.in_flight_count() > 0 && waited.elapsed() < TRANSACTION_TIMEOUT {
        let _ = producer.flush(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
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

impl Ingest<'_> {
    /// Exactly once: commits the outputs of the batches taken since the
    /// transaction began, and the partner offsets after them, once it is due
    /// (or `Commit::Now`). A failure aborts the transaction and reads its
    /// records again (a rebalance that took one of its partitions does
    /// this); a fatal one (this producer was fenced) stops the role.
    pub(super) fn commit_transaction(
        &mut self,
        consumer: &StreamConsumer<RoleContext>,
        when: Commit,
    ) -> Result<(), RoleError> {
        let Some(transaction) = &mut self.transaction else {
            return Ok(());
        };
        let due = transaction
            .began
            .is_some_and(|began| began.elapsed() >= transaction.open_for());
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
            let started = std::time::Instant::now();
            let outcome = tokio::task::block_in_place(|| commit(producer, consumer, &offsets));
            transaction.last_commit = started.elapsed().min(MAX_MEASURED_COMMIT);
            outcome
        };
        let aborted = match outcome {
            Outcome::Committed => {
                self.events.emit(TransactionCommitted);
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
        self.events.emit(TransactionAborted {
            cause: match &aborted {
                Aborted::Failed(error) => AbortCause::Failed(error),
                Aborted::Revoked => AbortCause::Revoked,
            },
            partitions: first.len(),
        });
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
    pub(super) fn abort_transaction(&mut self) {
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
}
