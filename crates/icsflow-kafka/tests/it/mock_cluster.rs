use std::sync::Arc;
use std::time::{Duration, Instant};

use icsflow_avro::{encode_single_object, EventDecoder, SchemaCatalogue};
use icsflow_core::{one_event_of_each_type, RejectReason, Timestamp};
use icsflow_engine::{Engine, EngineConfig};
use icsflow_kafka::{
    run_ingest, run_join, JoinOptions, KafkaSettings, PartitionEngines, Topics, HEADER_OFFSET,
    HEADER_REASON, HEADER_TOPIC,
};
use icsflow_telemetry::{Health, PipelineMetrics, Registry};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

fn topics() -> Topics {
    Topics {
        discharge: "discharge".to_owned(),
        social_care: "social_care".to_owned(),
        primary_care: "primary_care".to_owned(),
        journey: "journey".to_owned(),
        dead_letter: "dead_letter".to_owned(),
    }
}

fn settings(bootstrap_servers: String) -> KafkaSettings {
    KafkaSettings {
        bootstrap_servers,
        ingest_group_id: "ingest".to_owned(),
        join_group_id: "join".to_owned(),
        session_timeout_ms: 6000,
        librdkafka: Default::default(),
    }
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
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topics = topics();
    for (topic, partitions) in [
        ("discharge", 2),
        ("social_care", 2),
        ("primary_care", 2),
        ("journey", 4),
        ("dead_letter", 1),
    ] {
        cluster.create_topic(topic, partitions, 1).expect("topic");
    }
    let settings = settings(cluster.bootstrap_servers());

    // Publish one event of every type on its feed's topic, and three bad
    // records: garbage, an NHS number in a field, and a primary care record
    // on the discharge topic.
    let catalogue = SchemaCatalogue::embedded();
    let events = one_event_of_each_type();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .create()
        .expect("producer");
    for event in &events {
        let topic = match event.feed() {
            icsflow_core::Feed::Discharge => "discharge",
            icsflow_core::Feed::SocialCare => "social_care",
            icsflow_core::Feed::PrimaryCare => "primary_care",
        };
        let payload = encode_single_object(&catalogue, event);
        producer
            .send(BaseRecord::to(topic).key("partner-key").payload(&payload))
            .expect("queued");
    }
    let mut with_nhs_number = encode_single_object(&catalogue, &events[4]);
    let position = with_nhs_number
        .windows(8)
        .position(|window| window == b"CAP.domi")
        .expect("reason code bytes");
    with_nhs_number[position..position + 11].copy_from_slice(b"9434765919.");
    let primary_care_record = encode_single_object(&catalogue, &events[15]);
    for bad in [b"not avro".to_vec(), with_nhs_number, primary_care_record] {
        producer
            .send(BaseRecord::to("discharge").key("partner-key").payload(&bad))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let registry = Registry::new();
    let metrics = PipelineMetrics::register(&registry).expect("metrics");
    let health = Arc::new(Health::new(None));
    let engines = Arc::new(PartitionEngines::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // A failing assertion must still stop the roles, or the test hangs.
    let stop = StopOnDrop(stop);
    let decoder = EventDecoder::new(Arc::new(SchemaCatalogue::embedded()));
    let ingest = {
        let (settings, topics, metrics, health, shutdown) = (
            settings.clone(),
            topics.clone(),
            metrics.clone(),
            Arc::clone(&health),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            run_ingest(
                &settings,
                &topics,
                decoder,
                icsflow_kafka::wall_clock(),
                metrics,
                health,
                shutdown,
            )
            .await
        })
    };
    let join = {
        let (settings, topics, metrics, engines, shutdown) = (
            settings.clone(),
            topics.clone(),
            metrics.clone(),
            Arc::clone(&engines),
            shutdown.clone(),
        );
        let join_health = Arc::new(Health::new(None));
        tokio::spawn(async move {
            let options = JoinOptions {
                engine_config: EngineConfig::default(),
                clock: Arc::new(as_of),
            };
            run_join(
                &settings,
                &topics,
                options,
                engines,
                metrics,
                join_health,
                shutdown,
            )
            .await
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
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("reader");
    reader.subscribe(&["dead_letter"]).expect("subscribe");
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
        // The NHS number is never copied: the identifiable record's value is empty.
        assert_eq!(
            *value_length == 0,
            reason.as_deref() == Some("identifiable_data"),
            "{reason:?}"
        );
    }
    // Counted per feed, publishing organisation (when it could be read) and reason.
    let rejected = |organisation: &str, reason: RejectReason| {
        metrics
            .rejected
            .with_label_values(&["discharge", organisation, reason.as_str()])
            .get()
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
