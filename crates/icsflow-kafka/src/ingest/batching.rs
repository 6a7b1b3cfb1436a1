//! Batching: the events of a batch of partner records go to the journey
//! topic as one record per journey partition, and every record is handed to
//! librdkafka with back-pressure when its queue is full.

use std::time::Duration;

use icsflow_journeys::{partition_of, JourneyBatch};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::acknowledgements::{Delivered, IngestDeliveries, OutputKind, Source};
use crate::common::RoleError;
use tracing::{debug, error, info, warn};

/// Most bytes of events in one journey record: it is sent once it holds
/// this many, well under the broker's default limit of 1 MB a record.
const JOURNEY_RECORD_BYTES: usize = 64 * 1024;

/// The journey records being filled, one per journey partition: the events
/// of a batch of partner records go out as one record per partition when
/// the batch ends (or once a record is full), not one record per event.
pub(super) struct JourneyBatches {
    topic: String,
    /// The journey topic's partition count, when known. Until it is, each
    /// event is a record of its own keyed by its pseudonym, which
    /// librdkafka's partitioner places where `partition_of` would.
    partitions: Option<i32>,
    /// By partition: the record being filled and whose outputs it carries.
    open: Vec<(JourneyBatch, Vec<Source>)>,
}

impl JourneyBatches {
    pub(super) fn new(topic: &str) -> JourneyBatches {
        JourneyBatches {
            topic: topic.to_owned(),
            partitions: None,
            open: Vec::new(),
        }
    }

    /// Asks the broker for the journey topic's partition count: once, as
    /// the role starts (later changes come from librdkafka's statistics,
    /// [`JourneyBatches::follow_partitions`]).
    pub(super) fn ask_partitions(&mut self, producer: &ThreadedProducer<IngestDeliveries>) {
        let topic = self.topic.as_str();
        let answer = tokio::task::block_in_place(|| {
            producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))
        });
        let partitions = match answer {
            Ok(metadata) => metadata
                .topics()
                .iter()
                .find(|found| found.name() == topic && found.error().is_none())
                .and_then(|found| i32::try_from(found.partitions().len()).ok())
                .filter(|count| *count > 0),
            Err(error) => {
                debug!(%error, topic, "the journey topic's partitions could not be listed");
                None
            }
        };
        match partitions {
            Some(count) => self.set_partitions(count),
            None => {
                warn!(topic, "the journey topic's partition count is unknown (does it exist?): each event is produced as a record of its own until librdkafka's statistics give it");
            }
        }
    }

    /// Takes a partition count from librdkafka's statistics when it
    /// changed; called between batches, when no record is being filled.
    pub(super) fn follow_partitions(&mut self, producer: &ThreadedProducer<IngestDeliveries>) {
        if let Some(count) = producer.context().journey_partitions() {
            if let Some(known) = self.partitions.filter(|known| *known != count) {
                error!(
                    topic = self.topic,
                    was = known,
                    now = count,
                    "the journey topic's partition count changed: patients' new events now go to other partitions than their history, which splits their journeys; never add partitions to the journey topic in place (README, the join role; runbook, IcsflowConsumerLagGrowing)"
                );
            }
            if self.partitions != Some(count) {
                self.set_partitions(count);
            }
        }
    }

    fn set_partitions(&mut self, count: i32) {
        info!(
            topic = self.topic,
            partitions = count,
            "journey records batched per partition"
        );
        self.partitions = Some(count);
        // Grows or shrinks: called only when every record was sent.
        self.open.resize_with(count as usize, || {
            (
                JourneyBatch::with_capacity(JOURNEY_RECORD_BYTES),
                Vec::new(),
            )
        });
    }

    /// Adds a validated event to its partition's record, sending the record
    /// if it is full.
    pub(super) async fn add(
        &mut self,
        producer: &ThreadedProducer<IngestDeliveries>,
        event: &icsflow_core::Event,
        source: Source,
    ) -> Result<(), RoleError> {
        let Some(partitions) = self.partitions else {
            let payload = icsflow_journeys::record::encode(event);
            let key = event.envelope.patient.hex();
            let delivered = Box::new(Delivered {
                kind: OutputKind::Accepted,
                sources: vec![source],
            });
            let record = BaseRecord::with_opaque_to(&self.topic, delivered)
                .key(key.as_str())
                .payload(payload.as_slice());
            return send_with_backpressure(producer, record).await;
        };
        let partition = partition_of(&event.envelope.patient, partitions) as usize;
        let (batch, sources) = &mut self.open[partition];
        batch.push(event);
        sources.push(source);
        if batch.as_bytes().len() >= JOURNEY_RECORD_BYTES {
            self.send_partition(producer, partition).await?;
        }
        Ok(())
    }

    /// Sends every record being filled.
    pub(super) async fn send(
        &mut self,
        producer: &ThreadedProducer<IngestDeliveries>,
    ) -> Result<(), RoleError> {
        for partition in 0..self.open.len() {
            if !self.open[partition].0.is_empty() {
                self.send_partition(producer, partition).await?;
            }
        }
        Ok(())
    }

    async fn send_partition(
        &mut self,
        producer: &ThreadedProducer<IngestDeliveries>,
        partition: usize,
    ) -> Result<(), RoleError> {
        let (batch, sources) = &mut self.open[partition];
        let delivered = Box::new(Delivered {
            kind: OutputKind::Accepted,
            sources: std::mem::take(sources),
        });
        // librdkafka copies the payload, so the buffer is reused.
        let record = BaseRecord::with_opaque_to(&self.topic, delivered)
            .partition(partition as i32)
            .payload(batch.as_bytes());
        let sent = send_with_backpressure(producer, record).await;
        batch.clear();
        sent
    }
}

/// Hands a record to librdkafka, waiting while its queue is full.
pub(super) async fn send_with_backpressure(
    producer: &ThreadedProducer<IngestDeliveries>,
    mut record: BaseRecord<'_, str, [u8], Box<Delivered>>,
) -> Result<(), RoleError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(RoleError::Kafka(error)),
        }
    }
}
