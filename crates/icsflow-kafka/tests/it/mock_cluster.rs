use std::sync::Arc;
use std::time::{Duration, Instant};

use icsflow_avro::{encode_single_object, EventDecoder, SchemaCatalogue};
use icsflow_core::{one_event_of_each_type, sample_pseudonym, Pseudonym, RejectReason, Timestamp};
use icsflow_engine::{Engine, EngineConfig};
use icsflow_events::metrics::Tally;
use icsflow_events::{Counter, Events};
use icsflow_journeys::{JourneyBatch, PartitionEngines};
use icsflow_kafka::{
    run_ingest, run_join, JoinOptions, KafkaSettings, Topics, HEADER_OFFSET, HEADER_REASON,
    HEADER_TOPIC,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::ClientConfig;

fn topics() -> Topics {
    Topics {
        discharge: "discharge".to_owned(),
        social_care: "social_care".to_owned(),
        primary_care: "primary_care".to_owned(),
        journey: "journey".to_owned(),
        dead_letter: "dead_letter".to_owned(),
        layout: Default::default(),
    }
}

fn settings(bootstrap_servers: String) -> KafkaSettings {
    KafkaSettings::for_broker(&bootstrap_servers, "test")
}

/// The mock cluster with the partner topics (2 partitions each), the
/// journey topic and the dead-letter topic, and settings to reach it.
fn cluster_with_topics(
    journey_partitions: i32,
) -> (MockCluster<'static, DefaultProducerContext>, KafkaSettings) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for (topic, partitions) in [
        ("discharge", 2),
        ("social_care", 2),
        ("primary_care", 2),
        ("journey", journey_partitions),
        ("dead_letter", 1),
    ] {
        cluster.create_topic(topic, partitions, 1).expect("topic");
    }
    let settings = settings(cluster.bootstrap_servers());
    (cluster, settings)
}

fn partner_topic(feed: icsflow_core::Feed) -> &'static str {
    match feed {
        icsflow_core::Feed::Discharge => "discharge",
        icsflow_core::Feed::SocialCare => "social_care",
        icsflow_core::Feed::PrimaryCare => "primary_care",
    }
}

/// A producer placing keyed records as ingest always has (murmur2).
fn producer(settings: &KafkaSettings) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer")
}

/// Events recorded in memory, and the tally to read them from.
fn recorded() -> (Arc<Tally>, Events) {
    let tally = Arc::new(Tally::default());
    (Arc::clone(&tally), Events::new(tally))
}

/// The ingest role on its own task, with the wall clock.
fn spawn_ingest(
    settings: &KafkaSettings,
    topics: &Topics,
    events: &Events,
    shutdown: icsflow_kafka::Shutdown,
) -> tokio::task::JoinHandle<Result<icsflow_kafka::IngestSummary, icsflow_kafka::RoleError>> {
    let (settings, topics, events) = (settings.clone(), topics.clone(), events.clone());
    tokio::spawn(async move {
        run_ingest(
            &settings,
            &topics,
            Arc::new(icsflow_core::samples_reference()),
            EventDecoder::new(Arc::new(SchemaCatalogue::embedded())),
            icsflow_journeys::wall_clock(),
            events,
            shutdown,
        )
        .await
    })
}

/// Runs ingest until it has consumed `records` partner records, then stops
/// it: what it counted, and its summary.
async fn ingest_until_consumed(
    settings: &KafkaSettings,
    topics: &Topics,
    records: u64,
) -> (Arc<Tally>, icsflow_kafka::IngestSummary) {
    let (metrics, sink) = recorded();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stop = StopOnDrop(stop);
    let ingest = spawn_ingest(settings, topics, &sink, shutdown);
    let consumed = |topic: &str| metrics.count(Counter::Consumed, &["ingest", topic]);
    eventually("every record consumed", Duration::from_secs(60), || {
        consumed("discharge") + consumed("social_care") + consumed("primary_care") == records
    })
    .await;
    stop.0.send(true).expect("stop");
    let summary = ingest
        .await
        .expect("ingest task")
        .expect("ingest stops cleanly");
    (metrics, summary)
}

/// A consumer of `topic` from its first record, in a group of its own.
fn reader_from_start(settings: &KafkaSettings, topic: &str) -> BaseConsumer {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("reader");
    reader.subscribe(&[topic]).expect("subscribe");
    reader
}

fn as_of() -> Timestamp {
    Timestamp::from_millis(1_780_000_000_000)
}

struct StopOnDrop(tokio::sync::watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Waits for `condition` with a deadline, instead of sleeping a guess.
async fn eventually(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_records_become_gauges_and_bad_ones_dead_letters() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    let (_cluster, settings) = cluster_with_topics(4);
    let topics = topics();

    // Publish one event of every type on its feed's topic, and three bad
    // records: garbage, an NHS number in a field, and a primary care record
    // on the discharge topic.
    let catalogue = SchemaCatalogue::embedded();
    let events = one_event_of_each_type();
    let producer = producer(&settings);
    for event in &events {
        let topic = partner_topic(event.feed());
        let payload = encode_single_object(&catalogue, event);
        producer
            .send(BaseRecord::to(topic).key("partner-key").payload(&payload))
            .expect("queued");
    }
    let mut with_nhs_number = encode_single_object(&catalogue, &events[4]);
    let position = with_nhs_number
        .windows(11)
        .position(|window| window == b"CAP_P1_HOME")
        .expect("reason code bytes");
    with_nhs_number[position..position + 11].copy_from_slice(b"9434765919.");
    let primary_care_record = encode_single_object(&catalogue, &events[15]);
    for bad in [b"not avro".to_vec(), with_nhs_number, primary_care_record] {
        producer
            .send(BaseRecord::to("discharge").key("partner-key").payload(&bad))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let (metrics, sink) = recorded();
    let engines = Arc::new(PartitionEngines::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // A failing assertion must still stop the roles, or the test hangs.
    let stop = StopOnDrop(stop);
    let decoder = EventDecoder::new(Arc::new(SchemaCatalogue::embedded()));
    let ingest = {
        let (settings, topics, events, shutdown) = (
            settings.clone(),
            topics.clone(),
            sink.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            run_ingest(
                &settings,
                &topics,
                Arc::new(icsflow_core::samples_reference()),
                decoder,
                icsflow_journeys::wall_clock(),
                events,
                shutdown,
            )
            .await
        })
    };
    let join = {
        let (settings, topics, events, engines, shutdown) = (
            settings.clone(),
            topics.clone(),
            sink.clone(),
            Arc::clone(&engines),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let options = JoinOptions {
                engine_config: EngineConfig::default(),
                as_of: Arc::new(as_of),
                now: icsflow_journeys::wall_clock(),
                reference: Arc::new(icsflow_core::samples_reference()),
            };
            run_join(&settings, &topics, options, engines, events, shutdown).await
        })
    };

    // What the gauges must show: an engine fed the same events directly.
    let mut reference = Engine::new(EngineConfig::default());
    for event in &events {
        reference.apply(event);
    }
    // Series that are zero depend on the order events arrived in (a label
    // set once used keeps reporting 0); the values do not.
    let non_zero = |metrics: Vec<(icsflow_engine::MetricKey, i64)>| {
        metrics
            .into_iter()
            .filter(|(_, value)| *value != 0)
            .collect::<Vec<_>>()
    };
    let expected = non_zero(reference.metrics(as_of()));
    assert!(!expected.is_empty(), "the sample produces gauges");
    eventually("the journey gauges", Duration::from_secs(60), || {
        non_zero(engines.metrics(as_of())) == expected
    })
    .await;

    // The dead-letter topic holds the three bad records with their reasons.
    let reader = reader_from_start(&settings, "dead_letter");
    let mut dead_letters = Vec::new();
    let started = Instant::now();
    while dead_letters.len() < 3 && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(200)) {
            let headers = message.headers().expect("headers");
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
            };
            dead_letters.push((
                header(HEADER_REASON),
                header(HEADER_TOPIC),
                header(HEADER_OFFSET).is_some(),
                message.key().is_none(),
                message.payload().map_or(0, <[u8]>::len),
            ));
        }
    }
    dead_letters.sort();
    let reasons: Vec<Option<String>> = dead_letters.iter().map(|letter| letter.0.clone()).collect();
    assert_eq!(
        reasons,
        [
            RejectReason::IdentifiableData,
            RejectReason::IncompatibleSchema,
            RejectReason::Malformed
        ]
        .map(|reason| Some(reason.as_str().to_owned()))
    );
    for (reason, topic, has_offset, no_key, value_length) in &dead_letters {
        assert_eq!(topic.as_deref(), Some("discharge"));
        assert!(*has_offset && *no_key, "{reason:?}");
        // No partner byte is ever copied: every dead letter's value is empty.
        assert_eq!(*value_length, 0, "{reason:?}");
    }
    // Counted per feed, publishing organisation (when it could be read) and reason.
    let rejected = |organisation: &str, reason: RejectReason| {
        metrics.count(
            Counter::Rejected,
            &["discharge", organisation, reason.as_str()],
        )
    };
    assert_eq!(rejected("RVW", RejectReason::IdentifiableData), 1);
    assert_eq!(rejected("M83670", RejectReason::IncompatibleSchema), 1);
    assert_eq!(rejected("unknown", RejectReason::Malformed), 1);

    stop.0.send(true).expect("stop");
    let ingest_summary = ingest
        .await
        .expect("ingest task")
        .expect("ingest stops cleanly");
    assert_eq!(
        (ingest_summary.accepted, ingest_summary.rejected),
        (events.len() as u64, 3)
    );
    join.await.expect("join task").expect("join stops cleanly");
}

/// A small deterministic generator (xorshift64*), so a failing sample can be
/// reproduced from its seed.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A valid record changed the ways partners' records go wrong: bytes
    /// flipped, cut short, grown, spliced, or left alone.
    fn mutate(&mut self, mut record: Vec<u8>) -> Vec<u8> {
        match self.below(6) {
            0 => {}
            1 => {
                for _ in 0..=self.below(3) {
                    let at = self.below(record.len());
                    record[at] ^= 1 << self.below(8);
                }
            }
            2 => record.truncate(self.below(record.len())),
            3 => {
                let extra = self.below(16) + 1;
                for _ in 0..extra {
                    record.push(self.next() as u8);
                }
            }
            4 => {
                let at = self.below(record.len());
                record.insert(at, self.next() as u8);
            }
            _ => {
                // Past the header, any byte may become any other.
                let at = 10 + self.below(record.len() - 10);
                record[at] = self.next() as u8;
            }
        }
        record
    }
}

/// Property: whatever is done to a partner record, it ends exactly once,
/// either as an event on the journey topic or as a dead letter with a known
/// reason, and the counts add up. 600 mutated records per run, the seed
/// printed for reproduction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutated_record_ends_as_one_journey_event_or_one_dead_letter() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    println!("mutation seed {seed}");
    let mut mutator = Mutator(seed);
    let (_cluster, settings) = cluster_with_topics(2);
    let topics = topics();
    let catalogue = SchemaCatalogue::embedded();
    let events = one_event_of_each_type();
    let producer = producer(&settings);
    const RECORDS: usize = 600;
    for index in 0..RECORDS {
        let event = &events[index % events.len()];
        let topic = partner_topic(event.feed());
        let payload = mutator.mutate(encode_single_object(&catalogue, event));
        producer
            .send(BaseRecord::to(topic).key("partner-key").payload(&payload))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let (metrics, summary) = ingest_until_consumed(&settings, &topics, RECORDS as u64).await;
    assert_eq!(
        summary.accepted + summary.rejected,
        RECORDS as u64,
        "seed {seed}"
    );
    assert!(
        summary.rejected > 0 && summary.accepted > 0,
        "seed {seed}: {summary:?}"
    );

    // What the two topics hold, read to their ends.
    let count = |topic: &str, partitions: i32| -> Vec<(Option<String>, Vec<u8>)> {
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", format!("reader-{topic}"))
            .create()
            .expect("reader");
        let mut assignment = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
                .expect("partition");
        }
        reader.assign(&assignment).expect("assign");
        let mut found = Vec::new();
        let mut idle = 0;
        while idle < 15 {
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    idle = 0;
                    found.push((
                        message.headers().and_then(|headers| {
                            headers
                                .iter()
                                .find(|header| header.key == HEADER_REASON)
                                .and_then(|header| header.value)
                                .map(|value| String::from_utf8_lossy(value).into_owned())
                        }),
                        message.payload().unwrap_or_default().to_vec(),
                    ));
                }
                _ => idle += 1,
            }
        }
        found
    };
    // A journey record carries a batch of events.
    let journey_events: usize = count("journey", 2)
        .iter()
        .map(|(_, payload)| {
            icsflow_journeys::record::decode(payload)
                .expect("a journey record")
                .len()
        })
        .sum();
    let dead_letters: Vec<Option<String>> = count("dead_letter", 1)
        .into_iter()
        .map(|(reason, _)| reason)
        .collect();
    assert_eq!(journey_events as u64, summary.accepted, "seed {seed}");
    assert_eq!(dead_letters.len() as u64, summary.rejected, "seed {seed}");
    let known: Vec<&str> = RejectReason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .collect();
    for reason in &dead_letters {
        let reason = reason.as_deref().unwrap_or("none");
        assert!(known.contains(&reason), "seed {seed}: reason {reason}");
    }
    let counted: u64 = metrics
        .counts(Counter::Rejected)
        .iter()
        .map(|(_, value)| value)
        .sum();
    assert_eq!(counted, summary.rejected, "seed {seed}: counters");
}

/// A record the broker refuses to store (here: too large, a permanent
/// error) stops the ingest role with an error instead of skipping it, and
/// its partner offset is not committed: started again once the broker
/// accepts it, ingest reads the record again and produces it.
/// Timeliness per partner feed (docs/data-quality.md): every accepted
/// event is counted once by how late its partner recorded it and once by
/// how late it arrived, in bands; a refused record is counted in neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_are_counted_by_how_late_they_were_recorded_and_arrived() {
    let (_cluster, settings) = cluster_with_topics(2);
    let topics = topics();
    let catalogue = SchemaCatalogue::embedded();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let hour = 3_600_000;
    // (occurred, recorded) before now: the trust's event recorded 10 min
    // after it happened and arriving 20 min after that; the council's
    // recorded 30 h late, arriving 2 h later; the practice's recorded at
    // once, arriving 3 days later.
    let timings = [
        (hour / 2, hour / 3),
        (32 * hour, 2 * hour),
        (72 * hour, 72 * hour),
    ];
    let samples = one_event_of_each_type();
    let mut published = Vec::new();
    for (feed, (occurred, recorded)) in icsflow_core::Feed::ALL.into_iter().zip(timings) {
        let mut event = *samples
            .iter()
            .find(|event| event.feed() == feed)
            .expect("a sample of every feed");
        event.envelope.occurred_at = Timestamp::from_millis(now - occurred);
        event.envelope.recorded_at = Timestamp::from_millis(now - recorded);
        published.push(event);
    }
    let producer = producer(&settings);
    for event in &published {
        producer
            .send(
                BaseRecord::to(partner_topic(event.feed()))
                    .key("partner-key")
                    .payload(&encode_single_object(&catalogue, event)),
            )
            .expect("queued");
    }
    // And a refused one: counted as rejected, not by its delay.
    producer
        .send(
            BaseRecord::to("discharge")
                .key("partner-key")
                .payload(b"not avro".as_slice()),
        )
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let (metrics, summary) = ingest_until_consumed(&settings, &topics, 4).await;
    assert_eq!((summary.accepted, summary.rejected), (3, 1));

    let mut counted: Vec<(Vec<String>, u64)> = metrics
        .counts(Counter::EventsByDelay)
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect();
    counted.sort();
    let expected: Vec<(Vec<String>, u64)> = [
        ("discharge", "RVW", "arrived", "same_hour"),
        ("discharge", "RVW", "recorded", "same_hour"),
        ("primary_care", "M83670", "arrived", "later"),
        ("primary_care", "M83670", "recorded", "same_hour"),
        ("social_care", "702", "arrived", "same_day"),
        ("social_care", "702", "recorded", "next_day"),
    ]
    .iter()
    .map(|labels| {
        (
            [labels.0, labels.1, labels.2, labels.3]
                .iter()
                .map(|label| (*label).to_owned())
                .collect(),
            1,
        )
    })
    .collect();
    assert_eq!(counted, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delivery_stops_ingest_and_the_record_is_read_again_on_restart() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (cluster, settings) = cluster_with_topics(2);
    let topics = topics();
    let catalogue = SchemaCatalogue::embedded();
    let event = one_event_of_each_type()[0];
    let producer = producer(&settings);
    producer
        .send(
            BaseRecord::to(partner_topic(event.feed()))
                .key("partner-key")
                .payload(&encode_single_object(&catalogue, &event)),
        )
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let (_, sink) = recorded();

    // Every produce request refused as too large.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 50],
    );
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let refused = tokio::time::timeout(
        Duration::from_secs(60),
        spawn_ingest(&settings, &topics, &sink, shutdown),
    )
    .await
    .expect("ingest stops by itself")
    .expect("task");
    match refused {
        Err(icsflow_kafka::RoleError::DeliveryFailed(detail)) => {
            assert!(detail.starts_with("journey:"), "{detail}");
        }
        other => panic!("expected a refused delivery, got {other:?}"),
    }

    // The broker accepts records again: the same record is read and produced.
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stop = StopOnDrop(stop);
    let again = spawn_ingest(&settings, &topics, &sink, shutdown);
    let reader = reader_from_start(&settings, "journey");
    let started = Instant::now();
    let mut journey_records = 0;
    while journey_records == 0 && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(_)) = reader.poll(Duration::from_millis(200)) {
            journey_records += 1;
        }
    }
    drop(stop);
    let summary = again.await.expect("task").expect("ingest stops cleanly");
    assert_eq!(
        journey_records, 1,
        "the refused record reached the journey topic after the restart"
    );
    assert_eq!((summary.consumed, summary.accepted), (1, 1));
}

/// Regression: when the high-watermark query failed six times, the target
/// became 0 and the replica reported ready before its replay. It must stay
/// not ready, say so in a metric, and keep asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_replay_end_is_unknown_stays_not_ready_and_keeps_asking() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (cluster, settings) = cluster_with_topics(1);
    let topics = topics();
    // One journey record, so that a target of 0 would be wrong.
    let catalogue = SchemaCatalogue::embedded();
    let producer = producer(&settings);
    producer
        .send(
            BaseRecord::to("journey")
                .key("k")
                .payload(&encode_single_object(
                    &catalogue,
                    &one_event_of_each_type()[0],
                )),
        )
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("flushed");
    // Every offset query fails until cleared.
    cluster.request_errors(
        RDKafkaApiKey::ListOffsets,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 200],
    );

    let (metrics, sink) = recorded();
    let health = Arc::clone(sink.health());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stop = StopOnDrop(stop);
    let join = {
        let (settings, topics, events) = (settings.clone(), topics.clone(), sink.clone());
        tokio::spawn(async move {
            let options = JoinOptions {
                engine_config: EngineConfig::default(),
                as_of: icsflow_journeys::wall_clock(),
                now: icsflow_journeys::wall_clock(),
                reference: Arc::new(icsflow_core::samples_reference()),
            };
            run_join(
                &settings,
                &topics,
                options,
                Arc::new(PartitionEngines::default()),
                events,
                shutdown,
            )
            .await
        })
    };
    eventually(
        "watermark failures counted",
        Duration::from_secs(30),
        || metrics.count(Counter::WatermarkFailures, &[]) >= 3,
    )
    .await;
    assert!(
        !health.caught_up(),
        "ready before its replay's end was known"
    );
    cluster.clear_request_errors(RDKafkaApiKey::ListOffsets);
    eventually(
        "ready once the end is known",
        Duration::from_secs(30),
        || health.caught_up(),
    )
    .await;
    drop(stop);
    join.await.expect("join task").expect("join ran");
}

/// The journey topic keeps records written before it had an encoding of its
/// own (partner Avro in single-object framing) and by its earlier versions
/// (version 2: one event per record, keyed by pseudonym): a replay over
/// those and the current batches together rebuilds the same journeys as an
/// engine fed the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reads_journey_records_of_every_encoding() {
    let (_cluster, settings) = cluster_with_topics(2);
    let topics = topics();
    let catalogue = SchemaCatalogue::embedded();
    let events = one_event_of_each_type();
    let version_2: Vec<Vec<u8>> =
        include_str!("../../../icsflow-journeys/testdata/journey-records-v2.hex")
            .lines()
            .map(|line| {
                (0..line.len())
                    .step_by(2)
                    .map(|at| u8::from_str_radix(&line[at..at + 2], 16).expect("hex"))
                    .collect()
            })
            .collect();
    let producer = producer(&settings);
    let mut batches = [JourneyBatch::default(), JourneyBatch::default()];
    for (index, event) in events.iter().enumerate() {
        let key = event.envelope.patient.hex();
        let payload = match index % 3 {
            0 => encode_single_object(&catalogue, event),
            1 => version_2[index].clone(),
            _ => {
                batches[icsflow_journeys::partition_of(&event.envelope.patient, 2) as usize]
                    .push(event);
                continue;
            }
        };
        producer
            .send(
                BaseRecord::to("journey")
                    .key(key.as_str())
                    .payload(&payload),
            )
            .expect("queued");
    }
    let mut records = events.len() - events.len() / 3;
    assert!(
        batches.iter().any(|batch| batch.len() > 1),
        "a batch of several events"
    );
    for (partition, batch) in batches.iter().enumerate() {
        if batch.is_empty() {
            continue;
        }
        producer
            .send(
                BaseRecord::<(), _>::to("journey")
                    .partition(partition as i32)
                    .payload(batch.as_bytes()),
            )
            .expect("queued");
        records += 1;
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let (metrics, sink) = recorded();
    let engines = Arc::new(PartitionEngines::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stop = StopOnDrop(stop);
    let join = {
        let (settings, topics, events, engines) = (
            settings.clone(),
            topics.clone(),
            sink.clone(),
            Arc::clone(&engines),
        );
        tokio::spawn(async move {
            let options = JoinOptions {
                engine_config: EngineConfig::default(),
                as_of: Arc::new(as_of),
                now: icsflow_journeys::wall_clock(),
                reference: Arc::new(icsflow_core::samples_reference()),
            };
            run_join(&settings, &topics, options, engines, events, shutdown).await
        })
    };
    let mut reference = Engine::new(EngineConfig::default());
    for event in &events {
        reference.apply(event);
    }
    let expected: Vec<_> = reference
        .metrics(as_of())
        .into_iter()
        .filter(|(_, value)| *value != 0)
        .collect();
    eventually(
        "the gauges of every record",
        Duration::from_secs(60),
        || {
            engines
                .metrics(as_of())
                .into_iter()
                .filter(|(_, value)| *value != 0)
                .collect::<Vec<_>>()
                == expected
        },
    )
    .await;
    assert_eq!(metrics.count(Counter::EngineEvents, &["undecodable"]), 0);
    drop(stop);
    let summary = join.await.expect("join task").expect("join ran");
    assert_eq!(summary.consumed, records as u64);
    assert_eq!(summary.applied, events.len() as u64);
}

/// Ingest batches a patient's events into the journey partition that
/// librdkafka's partitioner gives a record keyed by the pseudonym, so that
/// records written before batching and after it meet in one engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_events_go_where_keyed_records_went() {
    let (_cluster, settings) = cluster_with_topics(7);
    let producer = producer(&settings);
    let patients: Vec<Pseudonym> = (0..200_u64)
        .map(|patient| {
            let mut bytes = *sample_pseudonym(3).as_bytes();
            bytes[..8].copy_from_slice(&patient.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            Pseudonym::from_bytes(bytes)
        })
        .collect();
    for patient in &patients {
        let key = patient.hex();
        producer
            .send(BaseRecord::to("journey").key(key.as_str()).payload("x"))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    let reader = reader_from_start(&settings, "journey");
    let mut placed = 0;
    let mut partitions_used = std::collections::BTreeSet::new();
    let started = Instant::now();
    while placed < patients.len() && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(200)) {
            let key = message.key().expect("keyed");
            let patient = patients
                .iter()
                .find(|patient| patient.hex().as_str().as_bytes() == key)
                .expect("one of the patients");
            assert_eq!(
                icsflow_journeys::partition_of(patient, 7),
                message.partition()
            );
            partitions_used.insert(message.partition());
            placed += 1;
        }
    }
    assert_eq!(placed, patients.len());
    assert_eq!(partitions_used.len(), 7, "every partition was used");
}
