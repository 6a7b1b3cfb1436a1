//! Pipeline benchmarks against a baseline measured in the same run, on the
//! same broker and data (see BENCHMARKS.md):
//!
//! 1. end-to-end throughput, partner topics to gauges, against a consumer
//!    that only counts the partner records, and against a pass-through that
//!    copies them to another topic unchanged (the Kafka work alone);
//! 2. publish-to-gauge latency, one event at a time;
//! 3. rebuilding state on assignment (replay) against a consumer that only
//!    counts the journey topic's records.
//!
//! Each throughput phase also reports its CPU time per record (this
//! process and the broker's) and the cores it kept busy.
//!
//! On Apache Kafka, the at-least-once end-to-end run is followed by the
//! same job done by a Kafka Streams application (bench/kafka-streams, built
//! by `make kafka-streams-bench-app`; skipped when its jar is missing) on
//! the same broker and partner records, compared with it.
//!
//! `cargo bench -p icsflow-kafka --bench pipeline -- [mock|kafka] [EVENTS]`;
//! set `RUST_LOG=info` to see the roles' log lines as well.
//! `-- kafka-replay EVENTS` measures only the rebuild: EVENTS journey
//! records produced straight to the journey topic, then phase 3.
//! `kafka` starts an Apache Kafka broker on loopback ports from the jars
//! `make kafka` fetches (the test kit's broker).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use icsflow_avro::{encode_single_object, EventDecoder, SchemaCatalogue};
use icsflow_core::{one_event_of_each_type, sample_pseudonym, Event, EventId, Feed, Timestamp};
use icsflow_engine::{EngineConfig, MetricKey};
use icsflow_events::{Counter, Events};
use icsflow_journeys::PartitionEngines;
use icsflow_kafka::{run_ingest, run_join, IngestDelivery, JoinOptions, KafkaSettings, Topics};
use icsflow_telemetry::{PrometheusRecorder, Registry};
use icsflow_testkit::{Broker, KAFKA_VERSION};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DefaultProducerContext, Producer, ThreadedProducer,
};
use rdkafka::ClientConfig;

const PARTITIONS: i32 = 8;

/// The instant the join runs read their gauges as of (2096: after every
/// journey of the workload, which ends yesterday); the Kafka Streams
/// comparison reads its counts as of the same instant.
const AS_OF_MILLIS: i64 = 4_000_000_000_000;

/// CPU time used so far by this process and the broker's (Kafka runs in
/// its own process; the mock cluster runs in this one), so that each phase
/// can say how busy it kept the machine's cores.
#[derive(Clone, Copy)]
struct CpuMeter {
    broker_pid: Option<u32>,
}

impl CpuMeter {
    /// Seconds of CPU (user and system, every thread, living or exited) of
    /// this process, and of the broker's.
    fn split(self) -> (f64, f64) {
        let of = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command name, which is in parentheses and may
            // hold spaces; utime and stime are fields 14 and 15, counted in
            // USER_HZ (100 per second on Linux).
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            let ticks = |index: usize| {
                fields
                    .get(index)
                    .and_then(|field| field.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            (ticks(11) + ticks(12)) / 100.0
        };
        (of(std::process::id()), self.broker_pid.map_or(0.0, of))
    }
}

/// Wall time and CPU time of one measured phase.
struct Span {
    wall: Instant,
    /// CPU seconds of this process and of the broker at the start.
    cpu: (f64, f64),
}

impl Span {
    fn start(meter: CpuMeter) -> Span {
        Span {
            wall: Instant::now(),
            cpu: meter.split(),
        }
    }

    /// CPU seconds since the start: this process's and the broker's.
    fn cpu_since(&self, meter: CpuMeter) -> (f64, f64) {
        let (process, broker) = meter.split();
        (process - self.cpu.0, broker - self.cpu.1)
    }

    /// "N µs of CPU per record (B of them the broker's), C cores busy" for
    /// `records` records.
    fn describe(&self, meter: CpuMeter, records: usize) -> String {
        let wall = self.wall.elapsed().as_secs_f64();
        let (process, broker) = self.cpu_since(meter);
        let cpu = process + broker;
        format!(
            "{:.2} µs CPU per record ({:.2} the broker's), {:.2} cores busy",
            1e6 * cpu / records as f64,
            1e6 * broker / records as f64,
            cpu / wall.max(1e-9)
        )
    }
}

/// The topics of `topics()`, created before a run.
const TOPIC_NAMES: [&str; 8] = [
    "discharge",
    "social_care",
    "primary_care",
    "journey",
    "dead_letter",
    PASS_THROUGH,
    "journey_exactly_once",
    "dead_letter_exactly_once",
];

/// Where the pass-through floor copies the partner records.
const PASS_THROUGH: &str = "pass_through";

const PARTNER_TOPICS: [&str; 3] = ["discharge", "social_care", "primary_care"];

fn main() {
    // The roles' own log lines (replay progress, summaries) with RUST_LOG set.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with("--"))
        .collect();
    let broker_kind = arguments.first().map_or("mock", String::as_str).to_owned();
    let event_count: usize = arguments
        .get(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match broker_kind.as_str() {
        "kafka-replay" => {
            let kafka = Broker::start();
            kafka.create_topics(&[("journey", PARTITIONS as u32)]);
            let meter = CpuMeter {
                broker_pid: Some(kafka.pid()),
            };
            let samples_per_patient = one_event_of_each_type().len();
            let published = Instant::now();
            let count =
                publish_journey_records(&kafka.address, event_count.div_ceil(samples_per_patient));
            println!(
                "Apache Kafka {KAFKA_VERSION}: {count} events as journey records, {PARTITIONS} partitions, produced in {:.2?}",
                published.elapsed()
            );
            runtime.block_on(measure_replay(&kafka.address, count, meter));
        }
        "kafka" => {
            let kafka = Broker::start();
            let topics: Vec<(&str, u32)> = TOPIC_NAMES
                .iter()
                .map(|topic| (*topic, PARTITIONS as u32))
                .collect();
            kafka.create_topics(&topics);
            let meter = CpuMeter {
                broker_pid: Some(kafka.pid()),
            };
            let name = format!("Apache Kafka {KAFKA_VERSION}");
            runtime.block_on(measure(&name, &kafka.address, event_count, meter));
        }
        _ => {
            let cluster = MockCluster::new(1).expect("mock cluster");
            for topic in TOPIC_NAMES {
                cluster.create_topic(topic, PARTITIONS, 1).expect("topic");
            }
            runtime.block_on(measure(
                "librdkafka mock cluster",
                &cluster.bootstrap_servers(),
                event_count,
                CpuMeter { broker_pid: None },
            ));
        }
    }
}

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

fn kafka_settings(bootstrap_servers: &str, suffix: &str) -> KafkaSettings {
    KafkaSettings {
        // `BENCH_LIBRDKAFKA=key=value,key=value` passes settings to every
        // client of the roles, as `kafka.librdkafka` does: an A/B run of a
        // tuning without a rebuild.
        librdkafka: std::env::var("BENCH_LIBRDKAFKA")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
        ..KafkaSettings::for_broker(bootstrap_servers, suffix)
    }
}

/// The sample journey (one event of every type) for `patients` patients,
/// with distinct ids, moved to end yesterday so none is beyond the horizon.
fn workload(patients: usize) -> Vec<Event> {
    workload_range(0..patients)
}

/// The workload's events of patients `range`.
fn workload_range(range: std::ops::Range<usize>) -> Vec<Event> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let samples =
        icsflow_core::shifted_to_end_before(one_event_of_each_type(), Timestamp::from_millis(now));
    let mut events = Vec::with_capacity(range.len() * samples.len());
    for patient in range {
        for mut event in samples.iter().copied() {
            let mut bytes = *sample_pseudonym(1).as_bytes();
            bytes[..8].copy_from_slice(&(patient as u64).to_le_bytes());
            event.envelope.patient = icsflow_core::Pseudonym::from_bytes(bytes);
            event.envelope.event_id =
                EventId::from_u128(event.envelope.event_id.as_u128() ^ ((patient as u128) << 64));
            event.envelope.corrects_event_id = event
                .envelope
                .corrects_event_id
                .map(|id| EventId::from_u128(id.as_u128() ^ ((patient as u128) << 64)));
            events.push(event);
        }
    }
    events
}

fn topic_of(feed: Feed) -> &'static str {
    match feed {
        Feed::Discharge => "discharge",
        Feed::SocialCare => "social_care",
        Feed::PrimaryCare => "primary_care",
    }
}

/// A producer for filling topics before a phase (not timed).
fn bulk_producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

/// Sends `record`, serving delivery reports while the queue is full.
fn send_when_queued(producer: &BaseProducer, mut record: BaseRecord<'_, String, Vec<u8>>) {
    while let Err((_, returned)) = producer.send(record) {
        record = returned;
        producer.poll(Duration::from_millis(5));
    }
}

fn publish(bootstrap: &str, events: &[Event]) {
    let catalogue = SchemaCatalogue::embedded();
    let producer = bulk_producer(bootstrap);
    for event in events {
        let payload = encode_single_object(&catalogue, event);
        let key = event.envelope.patient.to_string();
        send_when_queued(
            &producer,
            BaseRecord::to(topic_of(event.feed()))
                .key(&key)
                .payload(&payload),
        );
    }
    producer.flush(Duration::from_secs(120)).expect("flushed");
}

/// Partner records ingest takes from librdkafka at a time under load, and
/// so batches into one journey record per partition (its `BATCH`).
const INGEST_BATCH: usize = 512;

/// Produces the workload of `patients` straight to the journey topic as
/// ingest writes it under load (the events of each 512 partner records as
/// one journey record per partition), a patient's events generated and sent
/// at a time so that ten million events need no ten-million-event vector.
/// Returns the events produced.
fn publish_journey_records(bootstrap: &str, patients: usize) -> usize {
    let producer = bulk_producer(bootstrap);
    let mut produced = 0;
    let mut batches: Vec<icsflow_journeys::JourneyBatch> =
        (0..PARTITIONS).map(|_| Default::default()).collect();
    let send = |batches: &mut Vec<icsflow_journeys::JourneyBatch>| {
        for (partition, batch) in batches.iter_mut().enumerate() {
            if !batch.is_empty() {
                let payload = batch.as_bytes().to_vec();
                send_when_queued(
                    &producer,
                    BaseRecord::to("journey")
                        .partition(partition as i32)
                        .payload(&payload),
                );
                batch.clear();
            }
        }
    };
    for first in (0..patients).step_by(10_000) {
        for chunk in workload_range(first..patients.min(first + 10_000)).chunks(INGEST_BATCH) {
            for event in chunk {
                let partition = icsflow_journeys::partition_of(&event.envelope.patient, PARTITIONS);
                batches[partition as usize].push(event);
                produced += 1;
            }
            send(&mut batches);
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flushed");
    produced
}

/// Records on `topic` (the sum of its partitions' high watermarks).
fn records_on(bootstrap: &str, topic: &str) -> usize {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    (0..PARTITIONS)
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("watermarks");
            (high - low) as usize
        })
        .sum()
}

/// A stream consumer with the roles' fetch settings, subscribed to
/// `topics` from their start.
fn stream_consumer(bootstrap: &str, group: &str, topics: &[&str]) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .expect("consumer");
    consumer.subscribe(topics).expect("subscribe");
    consumer
}

/// What a consumer that only counts reached on some topics: the same
/// stream consumer and fetch settings the roles use.
struct RawConsume {
    /// Records per second.
    rate: f64,
    /// Seconds from its first record to its last.
    seconds: f64,
    bytes: usize,
    /// CPU per record and cores busy.
    cpu: String,
}

impl RawConsume {
    fn describe(&self) -> String {
        format!(
            "{:.0} records/s, {:.1} MB/s, {:.2} s ({})",
            self.rate,
            self.bytes as f64 / self.seconds.max(1e-9) / 1e6,
            self.seconds,
            self.cpu
        )
    }
}

/// Counts `expected` records of `topics` with a consumer that does nothing
/// else.
async fn raw_consume_rate(
    bootstrap: &str,
    topics: &[&str],
    expected: usize,
    group: &str,
    meter: CpuMeter,
) -> RawConsume {
    let consumer = stream_consumer(bootstrap, group, topics);
    let mut messages = consumer.stream();
    let mut counted = 0;
    let mut bytes = 0;
    let mut started: Option<Span> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while counted < expected && Instant::now() < deadline {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(
            Duration::from_secs(1),
            icsflow_kafka::next_message(&mut messages),
        )
        .await
        {
            started.get_or_insert_with(|| Span::start(meter));
            counted += 1;
            bytes += message.payload_len();
        }
    }
    let Some(started) = started else {
        return RawConsume {
            rate: 0.0,
            seconds: 0.0,
            bytes: 0,
            cpu: "nothing consumed".to_owned(),
        };
    };
    let seconds = started.wall.elapsed().as_secs_f64().max(1e-9);
    RawConsume {
        rate: counted as f64 / seconds,
        seconds,
        bytes,
        cpu: started.describe(meter, counted),
    }
}

/// The Kafka work of the two-stage design with none of icsflow's: the
/// partner records copied unchanged (key and payload) to another topic by a
/// stream consumer and a producer with the roles' producer settings, while a
/// counting consumer reads the copies. Its rate, from the first copy counted
/// to the last, is the most the pipeline could reach on this broker and
/// machine.
async fn pass_through_rate(bootstrap: &str, expected: usize, meter: CpuMeter) -> RawConsume {
    let consumer = stream_consumer(bootstrap, "pass-through-copy", &PARTNER_TOPICS);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let copier = tokio::spawn(async move {
        let mut messages = consumer.stream();
        let mut copied = 0;
        while copied < expected {
            let Some(Ok(message)) = icsflow_kafka::next_message(&mut messages).await else {
                continue;
            };
            let mut record = BaseRecord::<[u8], [u8]>::to(PASS_THROUGH)
                .payload(message.payload().unwrap_or_default());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            while let Err((_, returned)) = producer.send(record) {
                record = returned;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            copied += 1;
        }
        producer.flush(Duration::from_secs(60)).expect("flushed");
    });
    let measured = raw_consume_rate(
        bootstrap,
        &[PASS_THROUGH],
        expected,
        "pass-through-count",
        meter,
    )
    .await;
    copier.await.expect("copier");
    measured
}

/// The pipeline metrics in Prometheus, as a process records them.
fn recorded() -> (Arc<PrometheusRecorder>, Events) {
    let recorder = Arc::new(PrometheusRecorder::register(&Registry::new()).expect("metrics"));
    let events = Events::new(Arc::clone(&recorder) as Arc<dyn icsflow_events::Recorder>);
    (recorder, events)
}

fn applied(metrics: &PrometheusRecorder) -> u64 {
    ["applied", "duplicate", "beyond_horizon"]
        .iter()
        .map(|outcome| metrics.counter_value(Counter::EngineEvents, &[outcome]))
        .sum()
}

async fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while !condition() {
        if started.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Some(started.elapsed())
}

/// One end-to-end run: ingest and join from the partner topics to the
/// engines, then the publish-to-engine latency of `latency_events`; returns
/// what it reached (`EndToEndRun`).
#[derive(Clone)]
struct EndToEnd<'a> {
    bootstrap: &'a str,
    /// Partner records on the topics before the run.
    partner_records: usize,
    /// The raw consume rate of the partner topics and the pass-through
    /// floor, for the ratios.
    raw: f64,
    floor: f64,
    meter: CpuMeter,
    delivery: IngestDelivery,
    topics: Topics,
    suffix: &'a str,
    /// The at-least-once rate of the same run, for the exactly-once one.
    at_least_once: Option<f64>,
}

/// What an end-to-end run reached, for the comparison with Kafka Streams.
struct EndToEndRun {
    /// Latency events that reached the engines (each was published).
    latency_events: usize,
    /// Partner records per second from the first applied to the last, and
    /// CPU seconds per record of this process and of the broker over that
    /// time; `None` when the run did not finish.
    throughput: Option<(f64, f64, f64)>,
    /// Patients not meeting the criteria to reside per place, as of
    /// `AS_OF_MILLIS`, after the latency events (which the engines hold too).
    not_meeting_criteria: BTreeMap<String, i64>,
}

impl EndToEnd<'_> {
    async fn run(&self, latency_events: &[Event]) -> EndToEndRun {
        let count = self.partner_records;
        let mode = match self.delivery {
            IngestDelivery::AtLeastOnce => "at least once",
            IngestDelivery::ExactlyOnce => "exactly once",
        };
        let (metrics, events) = recorded();
        let engines = Arc::new(PartitionEngines::default());
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let mut settings = kafka_settings(self.bootstrap, self.suffix);
        settings.ingest_delivery = self.delivery;
        let topics = self.topics.clone();
        let ingest = {
            let (settings, topics, events, shutdown) = (
                settings.clone(),
                topics.clone(),
                events.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                let decoder = EventDecoder::new(Arc::new(SchemaCatalogue::embedded()));
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
                events.clone(),
                Arc::clone(&engines),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                let options = JoinOptions {
                    engine_config: EngineConfig::default(),
                    as_of: Arc::new(|| Timestamp::from_millis(AS_OF_MILLIS)),
                    now: icsflow_journeys::wall_clock(),
                    reference: Arc::new(icsflow_core::samples_reference()),
                };
                run_join(&settings, &topics, options, engines, events, shutdown).await
            })
        };
        let started = Span::start(self.meter);
        let mut first: Option<Span> = None;
        let finished = wait_until(Duration::from_secs(900), || {
            let done = applied(&metrics);
            if done > 0 {
                first.get_or_insert_with(|| Span::start(self.meter));
            }
            done >= count as u64
        })
        .await;
        let first = first.unwrap_or(started);
        let throughput = match finished {
            Some(_) => {
                let rate = count as f64 / first.wall.elapsed().as_secs_f64();
                let (process, broker) = first.cpu_since(self.meter);
                println!(
                "  end to end ({mode}), partner topics to engines: {rate:.0} events/s = {:.0}% of raw consume (target at least once: 60%), {:.0}% of the floor ({})",
                100.0 * rate / self.raw,
                100.0 * rate / self.floor,
                first.describe(self.meter, count)
            );
                if let Some(at_least_once) = self.at_least_once {
                    println!(
                        "  exactly once = {:.0}% of at least once in this run (target: at least 70%); transactions committed {}, aborted {}",
                        100.0 * rate / at_least_once,
                        metrics.counter_value(Counter::Transactions, &["committed"]),
                        metrics.counter_value(Counter::Transactions, &["aborted"]),
                    );
                }
                Some((rate, process / count as f64, broker / count as f64))
            }
            None => {
                println!(
                    "  end to end: did not finish ({} of {count} applied)",
                    applied(&metrics)
                );
                None
            }
        };

        // Latency: one event at a time, from produce to applied.
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        let catalogue = SchemaCatalogue::embedded();
        let mut latencies = Vec::new();
        for event in latency_events.iter().take(300) {
            let before = applied(&metrics);
            let payload = encode_single_object(&catalogue, event);
            let key = event.envelope.patient.to_string();
            let sent = Instant::now();
            producer
                .send(
                    BaseRecord::to(topic_of(event.feed()))
                        .key(&key)
                        .payload(&payload),
                )
                .expect("queued");
            producer.poll(Duration::ZERO);
            if wait_until(Duration::from_secs(10), || {
                producer.poll(Duration::ZERO);
                applied(&metrics) > before
            })
            .await
            .is_some()
            {
                latencies.push(sent.elapsed());
            }
        }
        latencies.sort();
        if !latencies.is_empty() {
            let percentile = |fraction: f64| {
                latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)]
            };
            println!(
            "  publish to engine ({mode}), one at a time: p50 {:.1?}, p99 {:.1?} over {} events{}",
            percentile(0.5),
            percentile(0.99),
            latencies.len(),
            if self.delivery == IngestDelivery::ExactlyOnce { " (target p99: under 150 ms)" } else { "" }
        );
        }
        // Read before stopping: join gives its partitions' engines up.
        let not_meeting_criteria = not_meeting_criteria_by_place(&engines);
        let _ = stop.send(true);
        let _ = ingest.await;
        let _ = join.await;
        EndToEndRun {
            latency_events: latencies.len(),
            throughput,
            not_meeting_criteria,
        }
    }
}

/// Metric 1 (`MetricKey::NotMeetingCriteria`) of `engines` summed per
/// place (`out_of_area` included), as of `AS_OF_MILLIS`.
fn not_meeting_criteria_by_place(engines: &PartitionEngines) -> BTreeMap<String, i64> {
    let mut places = BTreeMap::new();
    for (key, value) in engines.metrics(Timestamp::from_millis(AS_OF_MILLIS)) {
        if let MetricKey::NotMeetingCriteria { place, .. } = key {
            *places.entry(place.as_str().to_owned()).or_insert(0) += value;
        }
    }
    places
}

/// The Kafka Streams application doing icsflow's job (bench/kafka-streams,
/// see its README): `BENCH_KAFKA_STREAMS_JAR`, or the jar
/// `make kafka-streams-bench-app` builds in the workspace.
fn kafka_streams_jar() -> PathBuf {
    std::env::var_os("BENCH_KAFKA_STREAMS_JAR").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../bench/kafka-streams/target/icsflow-kafka-streams.jar")
        },
        PathBuf::from,
    )
}

/// The most memory process `pid` has held resident so far (VmHWM), in
/// bytes.
fn peak_resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// "E06000047 0, out_of_area 1" over `places`, a place `counts` lacks read
/// as 0.
fn per_place_list(places: &[&String], counts: &BTreeMap<String, i64>) -> String {
    places
        .iter()
        .map(|place| format!("{place} {}", counts.get(*place).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Kafka Streams comparison: the application of bench/kafka-streams
/// run on the same broker and partner records (every record on the partner
/// topics, so the at-least-once run's latency events too), from their start
/// under an application id of its own, with nothing else running; its rate
/// and CPU per record against `icsflow`'s (the at-least-once run), and its
/// per-place counts against the engines' of that run, as of the same
/// instant.
async fn compare_kafka_streams(bootstrap: &str, icsflow: &EndToEndRun, meter: CpuMeter) {
    let jar = kafka_streams_jar();
    if !jar.is_file() {
        println!(
            "  Kafka Streams comparison skipped: {} is missing; build it with `make kafka-streams-bench-app` (mvn -q -f bench/kafka-streams/pom.xml package -DskipTests)",
            jar.display()
        );
        return;
    }
    let records: usize = PARTNER_TOPICS
        .iter()
        .map(|topic| records_on(bootstrap, topic))
        .sum();
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis()
    );
    let application_id = format!("icsflow-bench-streams-{unique}");
    let state_dir = std::env::temp_dir().join(format!("icsflow-bench-streams-{unique}"));
    let launched = Instant::now();
    let child = std::process::Command::new("java")
        .arg("-Xmx256m")
        .arg("-jar")
        .arg(&jar)
        .args(["--bootstrap", bootstrap])
        .args(["--records", &records.to_string()])
        .args(["--topics", &PARTNER_TOPICS.join(",")])
        .args(["--application-id", &application_id])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--as-of-millis", &AS_OF_MILLIS.to_string()])
        .args(["--timeout-seconds", "900"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            println!("  Kafka Streams comparison skipped: java did not start ({error})");
            return;
        }
    };
    let pid = child.id();
    // Its result line, when it was read and the broker's CPU then.
    let (results, result) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let stdout_reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with('{') {
                let _ = results.send((Instant::now(), meter.split().1, line));
            }
        }
    });
    // Its progress and Kafka's warnings, the last lines kept for a failure.
    let stderr = child.stderr.take().expect("piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut tail = std::collections::VecDeque::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        tail
    });
    // The broker's CPU sampled as it runs, so that its share from the
    // application's first record can be read once it says when that was.
    let mut samples: Vec<(Instant, f64)> = Vec::new();
    let mut peak = 0;
    let deadline = launched + Duration::from_secs(960);
    let status = loop {
        peak = peak.max(peak_resident(pid).unwrap_or(0));
        samples.push((Instant::now(), meter.split().1));
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let exited = Instant::now();
    let _ = stdout_reader.join();
    let tail = stderr_reader.join().unwrap_or_default();
    let _ = std::fs::remove_dir_all(&state_dir);
    let parsed = result.try_recv().ok().and_then(|(at, broker, line)| {
        serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .map(|json| (at, broker, json))
    });
    let (settled, broker_settled, json) = match (status, parsed) {
        (Some(status), Some(parsed)) if status.success() => parsed,
        (status, _) => {
            println!(
                "  Kafka Streams comparison failed: {}; the last lines it wrote to stderr:",
                status.map_or("killed after 960 s".to_owned(), |status| status.to_string())
            );
            for line in tail {
                println!("    {line}");
            }
            return;
        }
    };
    let number = |field: &str| json[field].as_f64().unwrap_or(f64::NAN);
    let streams_records = number("records");
    let from_start = number("seconds_from_start");
    let from_first = number("seconds_from_first_record");
    let jvm_cpu = number("cpu_seconds_from_first_record");
    // The broker's CPU from the sample nearest before the first record.
    let first_record = settled
        .checked_sub(Duration::from_secs_f64(from_first.max(0.0)))
        .unwrap_or(launched);
    let broker_at_first = samples
        .iter()
        .rev()
        .find(|(at, _)| *at <= first_record)
        .or(samples.first())
        .map_or(broker_settled, |(_, cpu)| *cpu);
    let broker_cpu = broker_settled - broker_at_first;
    let streams_rate = streams_records / from_first;
    let streams_process = jvm_cpu / streams_records;
    let streams_broker = broker_cpu / streams_records;
    println!(
        "  Kafka Streams {KAFKA_VERSION} (bench/kafka-streams, {}, {} stream threads), the same {} partner records from their start: {:.0} records/s from its start ({from_start:.2} s from its main, {:.2} s from launch), {streams_rate:.0} records/s from its first record ({from_first:.2} s), {} dead-lettered",
        json["processing_guarantee"].as_str().unwrap_or("?"),
        json["stream_threads"].as_u64().unwrap_or(0),
        json["records"].as_u64().unwrap_or(0),
        streams_records / from_start,
        (settled - launched).as_secs_f64(),
        json["dead_lettered"].as_u64().unwrap_or(0),
    );
    println!(
        "  Kafka Streams from its first record: {:.2} µs CPU per record ({:.2} the JVM's, {:.2} the broker's), {:.2} cores busy; {:.2} s of JVM CPU from its start; peak resident {} MB (-Xmx256m); exited {:.2} s after its result",
        1e6 * (streams_process + streams_broker),
        1e6 * streams_process,
        1e6 * streams_broker,
        (jvm_cpu + broker_cpu) / from_first,
        number("cpu_seconds"),
        peak / 1_000_000,
        (exited - settled).as_secs_f64(),
    );
    match icsflow.throughput {
        Some((rate, process, broker)) => println!(
            "  icsflow / Kafka Streams, at least once, from the first record: {:.2}x the records/s ({rate:.0} vs {streams_rate:.0}), {:.2}x the CPU per record with the broker's ({:.2} vs {:.2} µs), {:.2}x without ({:.2} µs this process vs {:.2} µs the JVM)",
            rate / streams_rate,
            (process + broker) / (streams_process + streams_broker),
            1e6 * (process + broker),
            1e6 * (streams_process + streams_broker),
            process / streams_process,
            1e6 * process,
            1e6 * streams_process,
        ),
        None => println!("  icsflow / Kafka Streams: no ratio, icsflow's at-least-once run did not finish"),
    }
    let streams_places: BTreeMap<String, i64> = json["per_place"]
        .as_object()
        .map(|places| {
            places
                .iter()
                .map(|(place, count)| (place.clone(), count.as_i64().unwrap_or(-1)))
                .collect()
        })
        .unwrap_or_default();
    let places: Vec<&String> = {
        let mut places: Vec<&String> = icsflow
            .not_meeting_criteria
            .keys()
            .chain(streams_places.keys())
            .collect();
        places.sort();
        places.dedup();
        places
    };
    let identical = places.iter().all(|place| {
        icsflow
            .not_meeting_criteria
            .get(*place)
            .copied()
            .unwrap_or(0)
            == streams_places.get(*place).copied().unwrap_or(0)
    });
    println!(
        "  patients not meeting the criteria to reside per place, as of {AS_OF_MILLIS} ms: icsflow {}; Kafka Streams {}: {}",
        per_place_list(&places, &icsflow.not_meeting_criteria),
        per_place_list(&places, &streams_places),
        if identical { "identical" } else { "DIFFERENT" }
    );
}

async fn measure(broker: &str, bootstrap: &str, event_count: usize, meter: CpuMeter) {
    let samples_per_patient = one_event_of_each_type().len();
    let events = workload(event_count.div_ceil(samples_per_patient));
    let count = events.len();
    println!("{broker}: {count} events, {PARTITIONS} partitions per topic");
    let published = Instant::now();
    publish(bootstrap, &events);
    println!("  published in {:.2?}", published.elapsed());

    // Baseline 1: count the partner records.
    let raw = raw_consume_rate(bootstrap, &PARTNER_TOPICS, count, "raw-partner", meter).await;
    println!(
        "  baseline, raw consume of the partner topics: {}",
        raw.describe()
    );
    let floor = pass_through_rate(bootstrap, count, meter).await;
    println!(
        "  floor, pass-through (consume, produce unchanged, consume again): {} = {:.0}% of raw consume",
        floor.describe(),
        100.0 * floor.rate / raw.rate
    );
    let raw = raw.rate;
    let floor = floor.rate;

    // 1, 2. End to end and latency, at least once, then exactly once (its
    // own output topics and groups; the latency events of the first run
    // are partner records the second also reads).
    let latency_events = workload(count / samples_per_patient + 800);
    let latency_events = &latency_events[count..];
    let at_least_once = EndToEnd {
        bootstrap,
        partner_records: count,
        raw,
        floor,
        meter,
        delivery: IngestDelivery::AtLeastOnce,
        topics: topics(),
        suffix: "first",
        at_least_once: None,
    };
    let icsflow = at_least_once
        .run(&latency_events[..latency_events.len() / 2])
        .await;
    let published = icsflow.latency_events;
    let journey_events = count + published;
    if meter.broker_pid.is_some() {
        compare_kafka_streams(bootstrap, &icsflow, meter).await;
    }
    let mut exactly_once_topics = topics();
    exactly_once_topics.journey = "journey_exactly_once".to_owned();
    exactly_once_topics.dead_letter = "dead_letter_exactly_once".to_owned();
    EndToEnd {
        partner_records: count + published,
        delivery: IngestDelivery::ExactlyOnce,
        topics: exactly_once_topics,
        suffix: "exactly-once",
        at_least_once: icsflow.throughput.map(|(rate, _, _)| rate),
        ..at_least_once
    }
    .run(&latency_events[latency_events.len() / 2..])
    .await;
    measure_replay(bootstrap, journey_events, meter).await;
}

/// Phase 3, replay: a new join replica rebuilds from the journey topic (holding
/// `journey_events` events), against a consumer that only counts its
/// records: both read the whole topic, so their rates compare as the
/// inverse of their times.
async fn measure_replay(bootstrap: &str, journey_events: usize, meter: CpuMeter) {
    let topics = topics();
    let journey_records = records_on(bootstrap, "journey");
    let raw_journey = raw_consume_rate(
        bootstrap,
        &["journey"],
        journey_records,
        "raw-journey",
        meter,
    )
    .await;
    println!(
        "  baseline, raw consume of the journey topic ({journey_records} records holding {journey_events} events): {}",
        raw_journey.describe()
    );
    let (metrics, events) = recorded();
    let health = Arc::clone(events.health());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let replay_settings = kafka_settings(bootstrap, "replay");
    let replay = {
        let (topics, events) = (topics.clone(), events.clone());
        tokio::spawn(async move {
            let options = JoinOptions {
                engine_config: EngineConfig::default(),
                as_of: Arc::new(|| Timestamp::from_millis(AS_OF_MILLIS)),
                now: icsflow_journeys::wall_clock(),
                reference: Arc::new(icsflow_core::samples_reference()),
            };
            run_join(
                &replay_settings,
                &topics,
                options,
                Arc::new(PartitionEngines::default()),
                events,
                shutdown,
            )
            .await
        })
    };
    let mut first: Option<Span> = None;
    let replayed = wait_until(Duration::from_secs(900), || {
        if applied(&metrics) > 0 {
            first.get_or_insert_with(|| Span::start(meter));
        }
        health.caught_up() && applied(&metrics) >= journey_events as u64
    })
    .await;
    let replay_rate = match (replayed, first) {
        (Some(_), Some(first)) => {
            let elapsed = first.wall.elapsed();
            let rate = journey_events as f64 / elapsed.as_secs_f64();
            println!(
                "  replay on assignment: {journey_events} events in {elapsed:.2?}: {rate:.0} events/s = {:.0}% of raw consume, which read the topic in {:.2} s ({})",
                100.0 * raw_journey.seconds / elapsed.as_secs_f64(),
                raw_journey.seconds,
                first.describe(meter, journey_events)
            );
            Some(rate)
        }
        _ => {
            println!("  replay did not finish ({} applied)", applied(&metrics));
            None
        }
    };
    let _ = stop.send(true);
    let _ = replay.await;
    let (events, seconds) = engine_alone(bootstrap, journey_records).await;
    let rate = events as f64 / seconds.max(1e-9);
    println!(
        "  engine alone, the same records decoded and applied from memory on one thread: {events} events in {seconds:.2} s, {rate:.0} events/s; replay reached {}",
        replay_rate.map_or("-".to_owned(), |replay| format!("{:.0}% of it", 100.0 * replay / rate))
    );
}

/// What replay would reach if Kafka cost nothing: the journey topic's
/// records read into memory first (not timed), then decoded and applied to
/// one engine per partition on this thread, deriving deferred until the end
/// as join's apply thread does in a replay, without its lock and counters.
/// Returns the events applied and the seconds it took.
async fn engine_alone(bootstrap: &str, records: usize) -> (usize, f64) {
    let consumer = stream_consumer(bootstrap, "engine-alone", &["journey"]);
    let mut messages = consumer.stream();
    let mut payloads: Vec<(i32, Vec<u8>)> = Vec::with_capacity(records);
    while payloads.len() < records {
        match tokio::time::timeout(
            Duration::from_secs(10),
            icsflow_kafka::next_message(&mut messages),
        )
        .await
        {
            Ok(Some(Ok(message))) => payloads.push((
                message.partition(),
                message.payload().unwrap_or_default().to_vec(),
            )),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    drop(messages);
    let mut engines: std::collections::BTreeMap<i32, icsflow_engine::Engine> = Default::default();
    let started = Instant::now();
    let mut events = 0;
    for (partition, payload) in &payloads {
        let engine = engines.entry(*partition).or_insert_with(|| {
            let mut engine = icsflow_engine::Engine::new(EngineConfig::default());
            engine.defer();
            engine
        });
        for event in icsflow_journeys::record::decode(payload).unwrap_or_default() {
            engine.apply(&event);
            events += 1;
        }
    }
    for engine in engines.values_mut() {
        engine.settle();
    }
    (events, started.elapsed().as_secs_f64())
}
