//! The ingest role: partner topics in; journey topic and dead-letter topic
//! out; at-least-once.
//!
//! Records are taken from librdkafka in batches of what it already holds,
//! each routed and handed to the producer without waiting for the broker.
//! Delivery reports arrive on the producer's own thread and are recorded in
//! `acknowledgements::InFlight`; once per batch (and every 100 ms when
//! idle) the loop stores the partner offsets that became storable, so no
//! task is woken per record.

use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::{encode_single_object, DecodeError, EventDecoder};
use icsflow_core::{Feed, RejectReason, Rejection, Timestamp, TimestampPolicy};
use icsflow_telemetry::{Health, PipelineMetrics, OTHER_ORGANISATION};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use tracing::{debug, info, warn};

use crate::acknowledgements::{IngestDeliveries, OutputKind, Source};
use crate::context::RoleContext;
use crate::dead_letter::DeadLetterHeaders;
use crate::{ready_now, stopped, KafkaSettings, RoleError, Shutdown, Topics};

/// What an ingest run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub consumed: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// How long to wait before asking an unavailable schema registry again.
const REGISTRY_RETRY: Duration = Duration::from_secs(2);

/// Most records taken from librdkafka before offsets are stored.
const BATCH: usize = 512;

/// Runs the ingest role until `shutdown` is raised or a produced record
/// cannot be delivered (then the process should exit and restart from the
/// last stored offsets).
pub async fn run_ingest(
    settings: &KafkaSettings,
    topics: &Topics,
    decoder: EventDecoder,
    clock: crate::Clock,
    metrics: PipelineMetrics,
    health: Arc<Health>,
    mut shutdown: Shutdown,
) -> Result<IngestSummary, RoleError> {
    let context = RoleContext {
        role: "ingest",
        health: Arc::clone(&health),
        metrics: metrics.clone(),
        rebalances: None,
        lag_topics: topics
            .partner_topics()
            .iter()
            .map(|(topic, _)| topic.to_string())
            .collect(),
    };
    // Offsets are stored by hand once outputs are acknowledged, and
    // committed from the store every second.
    let consumer_config = settings.consumer_config(&[
        ("group.id", &settings.ingest_group_id),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]);
    let consumer: StreamConsumer<RoleContext> = consumer_config.create_with_context(context)?;
    let producer: ThreadedProducer<IngestDeliveries> = settings
        .producer_config()
        .create_with_context(IngestDeliveries::default())?;
    let partner_topics: Vec<&str> = topics
        .partner_topics()
        .iter()
        .map(|(topic, _)| *topic)
        .collect();
    consumer.subscribe(&partner_topics)?;
    // Ready once partitions are assigned (the context's rebalance hook).
    health.set_consuming(false);
    info!(topics = ?partner_topics, journey_topic = %topics.journey, dead_letter_topic = %topics.dead_letter, "ingest started");

    let mut ingest = Ingest {
        producer: &producer,
        topics,
        decoder: &decoder,
        clock,
        // Metric handles looked up once, not per record.
        consumed: Feed::ALL.map(|feed| {
            let topic = topics.partner_topics()[feed as usize].0;
            metrics.consumed.with_label_values(&["ingest", topic])
        }),
        produced: [&topics.journey, &topics.dead_letter]
            .map(|topic| metrics.produced.with_label_values(&["ingest", topic])),
        metrics: &metrics,
        freshness: Freshness::default(),
        outputs: OutputTopics {
            journey: Arc::from(topics.journey.as_str()),
            dead_letter: Arc::from(topics.dead_letter.as_str()),
        },
        summary: IngestSummary::default(),
    };
    // Offsets become storable on the producer's thread; they are stored
    // after each batch, and on this tick when no record arrives.
    let mut store_tick = tokio::time::interval(Duration::from_millis(100));
    store_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome: Result<(), RoleError> = 'records: loop {
        let received = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break Ok(()),
            _ = store_tick.tick() => {
                if let Err(error) = ingest.store_acknowledged(&consumer) {
                    break Err(error);
                }
                continue;
            }
            received = consumer.recv() => received,
        };
        // Take what else librdkafka already holds, up to a batch, without
        // waiting.
        let mut next = Some(received);
        let mut taken = 0;
        while let Some(received) = next.take() {
            match received {
                Ok(message) => match ingest.handle(&message, &mut shutdown).await {
                    Ok(Handled::Produced) => {}
                    Ok(Handled::Stopped) => break 'records Ok(()),
                    Err(error) => break 'records Err(error),
                },
                Err(error) => {
                    warn!(%error, "consume failed; retrying");
                    break;
                }
            }
            taken += 1;
            if taken < BATCH {
                next = ready_now(consumer.recv());
            }
        }
        if let Err(error) = ingest.store_acknowledged(&consumer) {
            break Err(error);
        }
    };

    // Finish in-flight work: every produced record acknowledged and its
    // offset stored, then commit.
    if let Err(error) = producer.flush(Duration::from_secs(10)) {
        warn!(%error, unacknowledged = producer.context().lock().pending(), "not every produced record was acknowledged in time; their partner records will be read again");
    }
    let stored = ingest.store_acknowledged(&consumer);
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored yet is not a failure.
        if !matches!(
            error,
            KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)
        ) {
            warn!(%error, "final commit failed");
        }
    }
    let summary = ingest.summary;
    info!(
        consumed = summary.consumed,
        accepted = summary.accepted,
        rejected = summary.rejected,
        "ingest stopped"
    );
    outcome.and(stored).map(|()| summary)
}

/// What became of one partner record.
enum Handled {
    /// Its output was handed to the producer.
    Produced,
    /// Shutdown was raised while it waited for the schema registry.
    Stopped,
}

/// The ingest loop's state and what it needs per record.
struct Ingest<'a> {
    producer: &'a ThreadedProducer<IngestDeliveries>,
    topics: &'a Topics,
    decoder: &'a EventDecoder,
    clock: crate::Clock,
    /// By `Feed as usize`.
    consumed: [icsflow_telemetry::IntCounter; 3],
    /// By `OutputKind as usize`.
    produced: [icsflow_telemetry::IntCounter; 2],
    metrics: &'a PipelineMetrics,
    freshness: Freshness,
    outputs: OutputTopics,
    summary: IngestSummary,
}

impl Ingest<'_> {
    /// Routes one partner record and hands its output to the producer.
    async fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        shutdown: &mut Shutdown,
    ) -> Result<Handled, RoleError> {
        self.summary.consumed += 1;
        let Some(feed) = self.topics.feed_of(message.topic()) else {
            return Ok(Handled::Produced);
        };
        self.consumed[feed as usize].inc();
        let mut output = loop {
            match route(
                message,
                feed,
                (self.clock)(),
                self.decoder,
                self.metrics,
                &mut self.freshness,
                &self.outputs,
            ) {
                Routed::Ready(output) => break output,
                Routed::RegistryUnavailable(detail) => {
                    self.metrics
                        .registry_unavailable
                        .with_label_values(&[feed.as_str()])
                        .inc();
                    warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        detail,
                        "schema registry unavailable; holding the record and retrying"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(REGISTRY_RETRY) => {}
                        () = stopped(shutdown) => return Ok(Handled::Stopped),
                    }
                }
            }
        };
        match output.kind {
            OutputKind::Accepted => self.summary.accepted += 1,
            OutputKind::Rejected => self.summary.rejected += 1,
        }
        let source = self.producer.context().lock().track(
            feed,
            message.partition(),
            message.offset(),
            output.kind,
        );
        send_with_backpressure(self.producer, output.record(Box::new(source))).await?;
        Ok(Handled::Produced)
    }

    /// Counts what the broker acknowledged and stores the partner offsets
    /// that became storable; a refused delivery stops the role.
    fn store_acknowledged(&self, consumer: &StreamConsumer<RoleContext>) -> Result<(), RoleError> {
        let acknowledged = self.producer.context().lock().take();
        for (counter, count) in self.produced.iter().zip(acknowledged.produced) {
            if count > 0 {
                counter.inc_by(count);
            }
        }
        for ((feed, partition), offset) in acknowledged.storable {
            let topic = self.topics.partner_topics()[feed as usize].0;
            // librdkafka stores this offset + 1, the next one to read.
            if let Err(error) = consumer.store_offset(topic, partition, offset) {
                // A revoked partition: its next owner starts from the
                // last committed offset and re-produces (at-least-once).
                debug!(%error, topic, partition, "offset not stored");
            }
        }
        match acknowledged.failure {
            Some(failure) => Err(RoleError::DeliveryFailed(failure)),
            None => Ok(()),
        }
    }
}

/// What to produce for one partner record.
struct Output {
    kind: OutputKind,
    topic: Arc<str>,
    key: Option<icsflow_core::PseudonymHex>,
    value: Vec<u8>,
    headers: Option<rdkafka::message::OwnedHeaders>,
}

impl Output {
    fn record(&mut self, source: Box<Source>) -> BaseRecord<'_, str, [u8], Box<Source>> {
        let mut record =
            BaseRecord::with_opaque_to(&self.topic, source).payload(self.value.as_slice());
        if let Some(key) = &self.key {
            record = record.key(key.as_str());
        }
        if let Some(headers) = self.headers.take() {
            record = record.headers(headers);
        }
        record
    }
}

/// Where ingest writes: events to the journey topic, rejects to the
/// dead-letter topic.
struct OutputTopics {
    journey: Arc<str>,
    dead_letter: Arc<str>,
}

enum Routed {
    Ready(Output),
    RegistryUnavailable(String),
}

fn route(
    message: &BorrowedMessage<'_>,
    feed: Feed,
    now: Timestamp,
    decoder: &EventDecoder,
    metrics: &PipelineMetrics,
    freshness: &mut Freshness,
    outputs: &OutputTopics,
) -> Routed {
    let payload = message.payload().unwrap_or_default();
    let decoded = decoder
        .decode(payload, &TimestampPolicy::wall_clock(now))
        .and_then(|event| {
            if event.feed() == feed {
                Ok(event)
            } else {
                Err(DecodeError::Rejected(
                    Rejection::new(
                        RejectReason::IncompatibleSchema,
                        "the record belongs to another feed than its topic",
                    )
                    .from_organisation(Some(event.envelope.source_organisation)),
                ))
            }
        });
    match decoded {
        Ok(event) => {
            freshness.record(
                metrics,
                feed,
                event.envelope.source_organisation,
                event.envelope.occurred_at,
            );
            Routed::Ready(Output {
                kind: OutputKind::Accepted,
                topic: Arc::clone(&outputs.journey),
                key: Some(event.envelope.patient.hex()),
                value: encode_single_object(decoder.catalogue(), &event),
                headers: None,
            })
        }
        Err(DecodeError::Rejected(rejection)) => {
            let organisation = metrics.organisation_label(rejection.organisation);
            metrics
                .rejected
                .with_label_values(&[feed.as_str(), &organisation, rejection.reason.as_str()])
                .inc();
            // The explanation names a field and a rule, never a value.
            debug!(topic = message.topic(), partition = message.partition(), offset = message.offset(), reason = %rejection.reason, field = rejection.field.unwrap_or("-"), "record rejected");
            let headers = DeadLetterHeaders {
                reason: rejection.reason,
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                feed,
                organisation: rejection.organisation,
                rejected_at_millis: now.as_millis(),
            };
            Routed::Ready(Output {
                kind: OutputKind::Rejected,
                topic: Arc::clone(&outputs.dead_letter),
                key: None,
                value: headers
                    .value(message.payload().unwrap_or_default())
                    .to_vec(),
                headers: Some(headers.to_kafka(message.payload().unwrap_or_default())),
            })
        }
        Err(DecodeError::RegistryUnavailable { detail, .. }) => Routed::RegistryUnavailable(detail),
    }
}

/// Hands a record to librdkafka, waiting while its queue is full.
async fn send_with_backpressure(
    producer: &ThreadedProducer<IngestDeliveries>,
    mut record: BaseRecord<'_, str, [u8], Box<Source>>,
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

/// The newest `occurred_at` seen per partner feed, with its gauge handle.
/// Keyed by organisation while the organisation label takes new values;
/// every organisation past its limit shares the `None` entry (`other`), so
/// that record content cannot grow this map either.
#[derive(Default)]
struct Freshness {
    newest: std::collections::HashMap<
        (Feed, Option<icsflow_core::OdsCode>),
        (icsflow_telemetry::IntGauge, i64),
    >,
}

impl Freshness {
    fn record(
        &mut self,
        metrics: &PipelineMetrics,
        feed: Feed,
        organisation: icsflow_core::OdsCode,
        occurred_at: Timestamp,
    ) {
        let seconds = occurred_at.as_millis() / 1000;
        let key = if self.newest.contains_key(&(feed, Some(organisation))) {
            (feed, Some(organisation))
        } else {
            let label = metrics.organisation_label(Some(organisation));
            let key = (feed, (label != OTHER_ORGANISATION).then_some(organisation));
            self.newest.entry(key).or_insert_with(|| {
                (
                    metrics
                        .last_event
                        .with_label_values(&[feed.as_str(), &label]),
                    i64::MIN,
                )
            });
            key
        };
        if let Some((gauge, newest)) = self.newest.get_mut(&key) {
            if seconds > *newest {
                *newest = seconds;
                gauge.set(seconds);
            }
        }
    }
}
