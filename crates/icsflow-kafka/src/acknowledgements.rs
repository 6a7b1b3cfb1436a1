//! Which partner offsets the ingest role may store: a partner record's
//! offset becomes storable once the broker acknowledged what was produced
//! for it and for every record before it in its partition.
//!
//! A journey record carries the events of many partner records (a batch
//! per journey partition), a dead letter one partner record. librdkafka
//! reports deliveries on its own polling thread, in order within one output
//! partition but not across them, so the records of one partner partition
//! (which fan out to every journey partition) are acknowledged out of
//! order. The producer's context records each report here; the ingest
//! loop takes what became storable once per batch. Nothing here waits, wakes
//! a task or does I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use icsflow_core::PerKind;
use rdkafka::client::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::statistics::Statistics;
use tracing::error;

use crate::sources::TopicId;

icsflow_core::kinds! {
    /// Where a produced record went.
    pub(crate) enum OutputKind {
        /// To the journey topic.
        Accepted => "accepted",
        /// To the dead-letter topic.
        Rejected => "rejected",
    }
}

/// A partner record whose output is being produced.
#[derive(Debug)]
pub(crate) struct Source {
    topic: TopicId,
    partition: i32,
    /// The record's place in its partner partition's production order.
    sequence: u64,
}

/// What a produced record carries out: handed to librdkafka with the
/// record and back with its delivery report.
#[derive(Debug)]
pub(crate) struct Delivered {
    pub(crate) kind: OutputKind,
    /// The partner records whose output it is.
    pub(crate) sources: Vec<Source>,
}

/// What became known since the ingest loop last asked.
#[derive(Debug, Default)]
pub(crate) struct Acknowledged {
    /// Records acknowledged (a journey record per batch), by where they
    /// went.
    pub(crate) produced: PerKind<OutputKind, u64>,
    /// Per partner partition, the highest offset whose record and every
    /// earlier one were acknowledged.
    pub(crate) storable: BTreeMap<(TopicId, i32), i64>,
    /// The first delivery the broker refused, if any.
    pub(crate) failure: Option<String>,
}

/// Partner records produced and not yet acknowledged, per partner
/// partition, in production order.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    partitions: HashMap<(TopicId, i32), PartitionInFlight>,
    acknowledged: Acknowledged,
}

#[derive(Debug, Default)]
struct PartitionInFlight {
    /// The sequence number of the front entry.
    first_sequence: u64,
    /// Offset and whether it was acknowledged, in production order.
    entries: VecDeque<(i64, bool)>,
}

impl InFlight {
    /// Records that the partner record at `offset` is about to be produced;
    /// the returned source goes with the produced record.
    pub(crate) fn track(&mut self, topic: TopicId, partition: i32, offset: i64) -> Source {
        let in_flight = self.partitions.entry((topic, partition)).or_default();
        let sequence = in_flight.first_sequence + in_flight.entries.len() as u64;
        in_flight.entries.push_back((offset, false));
        Source {
            topic,
            partition,
            sequence,
        }
    }

    /// A delivery report: the record carrying the outputs of `delivered`
    /// was written.
    pub(crate) fn acknowledge(&mut self, delivered: &Delivered) {
        self.acknowledged.produced[delivered.kind] += 1;
        for source in &delivered.sources {
            self.acknowledge_source(source);
        }
    }

    fn acknowledge_source(&mut self, source: &Source) {
        let Some(in_flight) = self.partitions.get_mut(&(source.topic, source.partition)) else {
            return;
        };
        let Some(index) = source
            .sequence
            .checked_sub(in_flight.first_sequence)
            .and_then(|index| usize::try_from(index).ok())
        else {
            return;
        };
        if let Some(entry) = in_flight.entries.get_mut(index) {
            entry.1 = true;
        }
        while let Some(&(offset, true)) = in_flight.entries.front() {
            in_flight.entries.pop_front();
            in_flight.first_sequence += 1;
            self.acknowledged
                .storable
                .insert((source.topic, source.partition), offset);
        }
    }

    /// A delivery report: the broker refused the record.
    pub(crate) fn fail(&mut self, detail: String) {
        self.acknowledged.failure.get_or_insert(detail);
    }

    /// Releases the partner records of a delivery that failed, as if
    /// acknowledged, without counting it as produced. Only for exactly-once
    /// delivery, where offsets go in each transaction and never come from
    /// here: an abort purges its transaction's records, each reported as
    /// failed, and an entry never released would hold every later entry of
    /// its partition for ever (memory that grew with every abort). At least
    /// once, a failure stops the role, and releasing it would make the
    /// offsets after it storable.
    pub(crate) fn release(&mut self, delivered: &Delivered) {
        for source in &delivered.sources {
            self.acknowledge_source(source);
        }
    }

    /// What became known since the last call.
    pub(crate) fn take(&mut self) -> Acknowledged {
        std::mem::take(&mut self.acknowledged)
    }

    /// Records produced and not yet acknowledged.
    pub(crate) fn pending(&self) -> usize {
        self.partitions
            .values()
            .map(|in_flight| in_flight.entries.len())
            .sum()
    }
}

/// The ingest producer's context: delivery reports go to [`InFlight`], and
/// librdkafka's statistics (every 5 s) say how many partitions the journey
/// topic has, without a request on the ingest loop.
#[derive(Debug)]
pub(crate) struct IngestDeliveries {
    in_flight: Mutex<InFlight>,
    /// Exactly-once delivery: a failed delivery's records are released
    /// ([`InFlight::release`]).
    exactly_once: bool,
    journey_topic: String,
    /// The journey topic's partition count in the last statistics; 0
    /// before they had one.
    journey_partitions: AtomicI32,
    /// Rate limit of the producer's warning and error lines.
    log_lines: icsflow_events::RateLimit,
}

impl IngestDeliveries {
    pub(crate) fn new(journey_topic: &str, exactly_once: bool) -> IngestDeliveries {
        IngestDeliveries {
            in_flight: Mutex::default(),
            exactly_once,
            journey_topic: journey_topic.to_owned(),
            journey_partitions: AtomicI32::new(0),
            log_lines: Default::default(),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The journey topic's partition count, once statistics have told it.
    pub(crate) fn journey_partitions(&self) -> Option<i32> {
        Some(self.journey_partitions.load(Ordering::Relaxed)).filter(|count| *count > 0)
    }
}

impl ClientContext for IngestDeliveries {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        crate::context::librdkafka_log("ingest", &self.log_lines, level, facility, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        crate::context::client_error("ingest", &self.log_lines, &error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.journey_topic) else {
            return;
        };
        // Partition -1 is librdkafka's "not yet assigned" queue.
        let count = topic.partitions.keys().filter(|id| **id >= 0).count();
        if let Ok(count @ 1..) = i32::try_from(count) {
            self.journey_partitions.store(count, Ordering::Relaxed);
        }
    }
}

impl ProducerContext for IngestDeliveries {
    type DeliveryOpaque = Box<Delivered>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivered: Box<Delivered>) {
        match result {
            Ok(_) => self.lock().acknowledge(&delivered),
            Err((error, message)) => {
                use rdkafka::message::Message;
                let topic = message.topic();
                let mut in_flight = self.lock();
                if self.exactly_once {
                    // Purged by an abort, or failing its transaction's
                    // commit, which decides what is read again.
                    in_flight.release(&delivered);
                } else {
                    error!(%error, topic, "the broker refused a produced record; stopping so that a restart re-consumes from the last stored offset");
                }
                in_flight.fail(format!("{topic}: {error}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(acknowledged: &Acknowledged) -> Vec<u64> {
        acknowledged
            .produced
            .iter()
            .map(|(_, count)| *count)
            .collect()
    }

    const DISCHARGE: TopicId = TopicId::new(0);
    const SOCIAL_CARE: TopicId = TopicId::new(1);
    const PRIMARY_CARE: TopicId = TopicId::new(2);

    fn storable(in_flight: &mut InFlight) -> Vec<((TopicId, i32), i64)> {
        in_flight.take().storable.into_iter().collect()
    }

    /// Tracks the partner record at `offset` and produces its output alone.
    fn track(
        in_flight: &mut InFlight,
        topic: TopicId,
        partition: i32,
        offset: i64,
        kind: OutputKind,
    ) -> Delivered {
        Delivered {
            kind,
            sources: vec![in_flight.track(topic, partition, offset)],
        }
    }

    /// Regression: under exactly-once delivery an abort purges its
    /// transaction's records, each reported as failed and never released,
    /// so every later entry of the partition was held for ever. Released,
    /// nothing stays in flight; at least once, a failed record still holds
    /// the offsets after it (the role stops and reads it again).
    #[test]
    fn a_failed_delivery_is_released_only_under_exactly_once() {
        let mut in_flight = InFlight::default();
        let purged = track(&mut in_flight, DISCHARGE, 0, 10, OutputKind::Accepted);
        let later: Vec<Delivered> = (11..1_000)
            .map(|offset| track(&mut in_flight, DISCHARGE, 0, offset, OutputKind::Accepted))
            .collect();
        for delivered in &later {
            in_flight.acknowledge(delivered);
        }
        in_flight.fail("purged".to_owned());
        assert_eq!(
            in_flight.pending(),
            990,
            "at least once: held behind the failure"
        );
        assert_eq!(storable(&mut in_flight), []);
        in_flight.release(&purged);
        assert_eq!(in_flight.pending(), 0, "exactly once: released");
    }

    #[test]
    fn an_offset_is_storable_only_once_every_earlier_record_is_acknowledged() {
        let mut in_flight = InFlight::default();
        let sources: Vec<Delivered> = (10..15)
            .map(|offset| track(&mut in_flight, DISCHARGE, 0, offset, OutputKind::Accepted))
            .collect();
        // Acknowledged out of order: 12 and 11 before 10.
        in_flight.acknowledge(&sources[2]);
        in_flight.acknowledge(&sources[1]);
        assert_eq!(storable(&mut in_flight), []);
        in_flight.acknowledge(&sources[0]);
        assert_eq!(storable(&mut in_flight), [((DISCHARGE, 0), 12)]);
        in_flight.acknowledge(&sources[4]);
        assert_eq!(storable(&mut in_flight), []);
        assert_eq!(in_flight.pending(), 2);
        in_flight.acknowledge(&sources[3]);
        assert_eq!(storable(&mut in_flight), [((DISCHARGE, 0), 14)]);
        assert_eq!(in_flight.pending(), 0);
    }

    #[test]
    fn partitions_and_feeds_are_tracked_apart_and_outputs_counted() {
        let mut in_flight = InFlight::default();
        let discharge = track(&mut in_flight, DISCHARGE, 3, 7, OutputKind::Accepted);
        let blocked = track(&mut in_flight, SOCIAL_CARE, 3, 1, OutputKind::Rejected);
        let social_care = track(&mut in_flight, SOCIAL_CARE, 3, 2, OutputKind::Accepted);
        in_flight.acknowledge(&discharge);
        in_flight.acknowledge(&social_care);
        let acknowledged = in_flight.take();
        assert_eq!(produced(&acknowledged), [2, 0]);
        assert_eq!(
            acknowledged.storable.into_iter().collect::<Vec<_>>(),
            [((DISCHARGE, 3), 7)]
        );
        in_flight.acknowledge(&blocked);
        let acknowledged = in_flight.take();
        assert_eq!(produced(&acknowledged), [0, 1]);
        assert_eq!(
            acknowledged.storable.into_iter().collect::<Vec<_>>(),
            [((SOCIAL_CARE, 3), 2)]
        );
    }

    #[test]
    fn a_partition_read_again_from_an_earlier_offset_stores_in_production_order() {
        // After a rebalance the same partition may be consumed again from its
        // last committed offset while later records are still in flight.
        let mut in_flight = InFlight::default();
        let later = track(&mut in_flight, PRIMARY_CARE, 0, 50, OutputKind::Accepted);
        let again = track(&mut in_flight, PRIMARY_CARE, 0, 40, OutputKind::Accepted);
        in_flight.acknowledge(&again);
        assert_eq!(storable(&mut in_flight), []);
        in_flight.acknowledge(&later);
        assert_eq!(storable(&mut in_flight), [((PRIMARY_CARE, 0), 40)]);
    }

    #[test]
    fn a_journey_record_acknowledges_every_partner_record_it_carries() {
        let mut in_flight = InFlight::default();
        // Offsets 0-3 of one partner partition: 0 and 2 went into one
        // journey batch, 1 was rejected, 3 into another batch.
        let [zero, one, two, three] =
            [0, 1, 2, 3].map(|offset| in_flight.track(DISCHARGE, 0, offset));
        let first_batch = Delivered {
            kind: OutputKind::Accepted,
            sources: vec![zero, two],
        };
        let rejected = Delivered {
            kind: OutputKind::Rejected,
            sources: vec![one],
        };
        let second_batch = Delivered {
            kind: OutputKind::Accepted,
            sources: vec![three],
        };
        in_flight.acknowledge(&second_batch);
        in_flight.acknowledge(&first_batch);
        assert_eq!(storable(&mut in_flight), [((DISCHARGE, 0), 0)]);
        in_flight.acknowledge(&rejected);
        let acknowledged = in_flight.take();
        assert_eq!(produced(&acknowledged), [0, 1]);
        assert_eq!(
            acknowledged.storable.into_iter().collect::<Vec<_>>(),
            [((DISCHARGE, 0), 3)]
        );
        assert_eq!(in_flight.pending(), 0);
    }

    /// The journey topic's partition count comes from librdkafka's own
    /// statistics of the producer (here every 100 ms, on the mock cluster).
    #[test]
    fn the_producer_statistics_give_the_journey_topics_partitions() {
        use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
        let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("journey", 7, 1).expect("topic");
        let producer: ThreadedProducer<IngestDeliveries> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("statistics.interval.ms", "100")
            .create_with_context(IngestDeliveries::new("journey", false))
            .expect("producer");
        assert_eq!(producer.context().journey_partitions(), None);
        let delivered = Box::new(Delivered {
            kind: OutputKind::Accepted,
            sources: Vec::new(),
        });
        producer
            .send(
                BaseRecord::<(), str, _>::with_opaque_to("journey", delivered)
                    .partition(0)
                    .payload("x"),
            )
            .map_err(|(error, _)| error)
            .expect("queued");
        producer
            .flush(std::time::Duration::from_secs(10))
            .expect("flushed");
        let started = std::time::Instant::now();
        while producer.context().journey_partitions().is_none()
            && started.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(producer.context().journey_partitions(), Some(7));
        assert_eq!(produced(&producer.context().lock().take()), [1, 0]);
    }

    #[test]
    fn the_first_refusal_is_kept() {
        let mut in_flight = InFlight::default();
        in_flight.fail("journey: message too large".to_owned());
        in_flight.fail("journey: second".to_owned());
        assert_eq!(
            in_flight.take().failure.as_deref(),
            Some("journey: message too large")
        );
        assert_eq!(in_flight.take().failure, None);
    }
}
