//! The ingest role: partner topics in; journey topic and dead-letter topic
//! out; at-least-once.

use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::{encode_single_object, DecodeError, EventDecoder};
use icsflow_core::{Feed, RejectReason, Rejection, Timestamp, TimestampPolicy};
use icsflow_telemetry::{Health, PipelineMetrics};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::context::RoleContext;
use crate::dead_letter::DeadLetterHeaders;
use crate::{stopped, KafkaSettings, RoleError, Shutdown, Topics};

/// What an ingest run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub consumed: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// A produced record waiting for the broker's acknowledgement before the
/// partner offset it came from may be stored.
struct PendingAcknowledgement {
    delivery: DeliveryFuture,
    /// The partner topic the record came from.
    feed: Feed,
    partition: i32,
    offset: i64,
    kind: OutputKind,
}

/// How long to wait before asking an unavailable schema registry again.
const REGISTRY_RETRY: Duration = Duration::from_secs(2);

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
    let consumer_config = settings.client_config(&[
        ("group.id", &settings.ingest_group_id),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]);
    let consumer: Arc<StreamConsumer<RoleContext>> =
        Arc::new(consumer_config.create_with_context(context)?);
    let producer: FutureProducer = settings.producer_config().create()?;
    let partner_topics: Vec<&str> = topics
        .partner_topics()
        .iter()
        .map(|(topic, _)| *topic)
        .collect();
    consumer.subscribe(&partner_topics)?;
    // Ingest has nothing to replay: it is ready once it can reach a broker.
    health.set_caught_up(true);
    info!(topics = ?partner_topics, journey_topic = %topics.journey, dead_letter_topic = %topics.dead_letter, "ingest started");

    let (acknowledgements, pending) = mpsc::channel::<PendingAcknowledgement>(50_000);
    let acknowledger = tokio::spawn(store_offsets_when_acknowledged(
        pending,
        Arc::clone(&consumer),
        Acknowledged {
            partner_topics: topics.partner_topics().map(|(topic, _)| topic.to_owned()),
            outputs: [
                (
                    topics.journey.clone(),
                    metrics
                        .produced
                        .with_label_values(&["ingest", &topics.journey]),
                ),
                (
                    topics.dead_letter.clone(),
                    metrics
                        .produced
                        .with_label_values(&["ingest", &topics.dead_letter]),
                ),
            ],
        },
    ));

    let mut summary = IngestSummary::default();
    // Metric handles looked up once, not per record.
    let consumed = Feed::ALL.map(|feed| {
        let topic = topics.partner_topics()[feed as usize].0;
        metrics.consumed.with_label_values(&["ingest", topic])
    });
    let mut freshness = Freshness::default();
    let outputs = OutputTopics {
        journey: Arc::from(topics.journey.as_str()),
        dead_letter: Arc::from(topics.dead_letter.as_str()),
    };
    let outcome: Result<(), RoleError> = loop {
        let message = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break Ok(()),
            received = consumer.recv() => received,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                warn!(%error, "consume failed; retrying");
                continue;
            }
        };
        summary.consumed += 1;
        let Some(feed) = topics.feed_of(message.topic()) else {
            continue;
        };
        consumed[feed as usize].inc();
        let produced = loop {
            match route(
                &message,
                feed,
                clock(),
                &decoder,
                &metrics,
                &mut freshness,
                &outputs,
            ) {
                Routed::Ready(routed) => break routed,
                Routed::RegistryUnavailable(detail) => {
                    metrics
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
                        () = stopped(&mut shutdown) => break None,
                    }
                }
            }
        };
        let Some(output) = produced else { break Ok(()) };
        match output.kind {
            OutputKind::Accepted => summary.accepted += 1,
            OutputKind::Rejected => summary.rejected += 1,
        }
        let delivery = match send_with_backpressure(&producer, output.record()).await {
            Ok(delivery) => delivery,
            Err(error) => break Err(RoleError::Kafka(error)),
        };
        let acknowledgement = PendingAcknowledgement {
            delivery,
            feed,
            partition: message.partition(),
            offset: message.offset(),
            kind: output.kind,
        };
        if acknowledgements.send(acknowledgement).await.is_err() {
            break Err(RoleError::DeliveryFailed(
                "the acknowledgement task stopped".to_owned(),
            ));
        }
    };

    // Finish in-flight work: every produced record acknowledged and its
    // offset stored, then commit.
    drop(acknowledgements);
    let acknowledged = acknowledger
        .await
        .unwrap_or_else(|error| Err(RoleError::DeliveryFailed(error.to_string())));
    let _ = producer.flush(Duration::from_secs(10));
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored yet is not a failure.
        if !matches!(
            error,
            KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)
        ) {
            warn!(%error, "final commit failed");
        }
    }
    info!(
        consumed = summary.consumed,
        accepted = summary.accepted,
        rejected = summary.rejected,
        "ingest stopped"
    );
    outcome.and(acknowledged).map(|()| summary)
}

#[derive(Clone, Copy)]
enum OutputKind {
    /// To the journey topic.
    Accepted = 0,
    /// To the dead-letter topic.
    Rejected = 1,
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
    fn record(&self) -> FutureRecord<'_, str, [u8]> {
        let mut record = FutureRecord::to(&self.topic).payload(self.value.as_slice());
        if let Some(key) = &self.key {
            record = record.key(key.as_str());
        }
        if let Some(headers) = &self.headers {
            record = record.headers(headers.clone());
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
    Ready(Option<Output>),
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
            Routed::Ready(Some(Output {
                kind: OutputKind::Accepted,
                topic: Arc::clone(&outputs.journey),
                key: Some(event.envelope.patient.hex()),
                value: encode_single_object(decoder.catalogue(), &event),
                headers: None,
            }))
        }
        Err(DecodeError::Rejected(rejection)) => {
            let organisation = rejection.organisation.map_or_else(
                || "unknown".to_owned(),
                |organisation| organisation.to_string(),
            );
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
            Routed::Ready(Some(Output {
                kind: OutputKind::Rejected,
                topic: Arc::clone(&outputs.dead_letter),
                key: None,
                value: headers
                    .value(message.payload().unwrap_or_default())
                    .to_vec(),
                headers: Some(headers.to_kafka()),
            }))
        }
        Err(DecodeError::RegistryUnavailable { detail, .. }) => Routed::RegistryUnavailable(detail),
    }
}

/// Hands a record to librdkafka, waiting while its queue is full.
async fn send_with_backpressure(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, str, [u8]>,
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// The newest `occurred_at` seen per partner feed, with its gauge handle.
#[derive(Default)]
struct Freshness {
    newest: std::collections::HashMap<
        (Feed, icsflow_core::OdsCode),
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
        let (gauge, newest) = self.newest.entry((feed, organisation)).or_insert_with(|| {
            (
                metrics
                    .last_event
                    .with_label_values(&[feed.as_str(), organisation.as_str()]),
                i64::MIN,
            )
        });
        if seconds > *newest {
            *newest = seconds;
            gauge.set(seconds);
        }
    }
}

/// What the acknowledger needs to name topics and count what was produced.
struct Acknowledged {
    /// By `Feed as usize`.
    partner_topics: [String; 3],
    /// By `OutputKind as usize`: the topic and its produced counter.
    outputs: [(String, icsflow_telemetry::IntCounter); 2],
}

/// Awaits acknowledgements in the order records were produced and stores
/// each partner offset only once its output is acknowledged. What is
/// already acknowledged is taken in a batch, and each partition's offset
/// stored once per batch: the highest, since everything before it in the
/// partition was acknowledged first.
async fn store_offsets_when_acknowledged(
    mut pending: mpsc::Receiver<PendingAcknowledgement>,
    consumer: Arc<StreamConsumer<RoleContext>>,
    acknowledged: Acknowledged,
) -> Result<(), RoleError> {
    let mut highest: std::collections::BTreeMap<(Feed, i32), i64> = Default::default();
    while let Some(first) = pending.recv().await {
        let mut produced = [0_u64; 2];
        let mut next = Some(first);
        while let Some(acknowledgement) = next.take() {
            match acknowledgement.delivery.await {
                Ok(Ok(_)) => {
                    produced[acknowledgement.kind as usize] += 1;
                    highest.insert(
                        (acknowledgement.feed, acknowledgement.partition),
                        acknowledgement.offset,
                    );
                }
                Ok(Err((error, _))) => {
                    let topic = &acknowledged.outputs[acknowledgement.kind as usize].0;
                    error!(%error, topic, "the broker refused a produced record; stopping so that a restart re-consumes from the last stored offset");
                    return Err(RoleError::DeliveryFailed(error.to_string()));
                }
                Err(_) => {
                    return Err(RoleError::DeliveryFailed(
                        "the producer was dropped".to_owned(),
                    ))
                }
            }
            if produced.iter().sum::<u64>() < 4096 {
                next = match pending.try_recv() {
                    Ok(acknowledgement) => Some(acknowledgement),
                    Err(_) => None,
                };
            }
        }
        for ((_, counter), count) in acknowledged.outputs.iter().zip(produced) {
            counter.inc_by(count);
        }
        for ((feed, partition), offset) in std::mem::take(&mut highest) {
            let topic = &acknowledged.partner_topics[feed as usize];
            // librdkafka stores this offset + 1, the next one to read.
            if let Err(error) = consumer.store_offset(topic, partition, offset) {
                // A revoked partition: its next owner starts from the
                // last committed offset and re-produces (at-least-once).
                debug!(%error, topic, partition, "offset not stored");
            }
        }
    }
    Ok(())
}
