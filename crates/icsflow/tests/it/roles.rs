//! The consumer roles as an operator runs them: the built binary against a
//! real broker, read through its admin endpoint and the dead-letter topic.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use icsflow_avro::{encode_single_object, SchemaCatalogue};
use icsflow_core::{one_event_of_each_type, Event, Feed, Timestamp};
use icsflow_engine::{Engine, EngineConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use icsflow_testkit::{free_port, unique_name, Broker};

const JOURNEY_PARTITIONS: u32 = 4;

/// A test's Kafka: the test binary's shared broker, or one of the test's
/// own for tests that stop or freeze it; with topics and consumer groups
/// named for this test alone, created, and written into every
/// configuration the test's roles and tools read.
pub(crate) struct TestKafka {
    broker: BrokerHandle,
    discharge: String,
    social_care: String,
    primary_care: String,
    pub(crate) journey: String,
    pub(crate) dead_letter: String,
    pub(crate) ingest_group: String,
    join_group: String,
    folder: std::path::PathBuf,
}

enum BrokerHandle {
    Shared(&'static Broker),
    Own(Broker),
}

impl std::ops::Deref for TestKafka {
    type Target = Broker;

    fn deref(&self) -> &Broker {
        match &self.broker {
            BrokerHandle::Shared(broker) => broker,
            BrokerHandle::Own(broker) => broker,
        }
    }
}

impl TestKafka {
    fn with(broker: BrokerHandle) -> TestKafka {
        TestKafka::with_journey_partitions(broker, JOURNEY_PARTITIONS)
    }

    fn with_journey_partitions(broker: BrokerHandle, journey_partitions: u32) -> TestKafka {
        let prefix = unique_name("t");
        let folder = std::env::temp_dir().join(format!("icsflow-{prefix}"));
        std::fs::create_dir_all(&folder).expect("test folder");
        let kafka = TestKafka {
            broker,
            discharge: format!("{prefix}.discharge"),
            social_care: format!("{prefix}.social_care"),
            primary_care: format!("{prefix}.primary_care"),
            journey: format!("{prefix}.journey"),
            dead_letter: format!("{prefix}.deadletter"),
            ingest_group: format!("{prefix}.ingest"),
            join_group: format!("{prefix}.join"),
            folder,
        };
        kafka.create_topics(&[
            (kafka.discharge.as_str(), 2),
            (kafka.social_care.as_str(), 2),
            (kafka.primary_care.as_str(), 2),
            (kafka.journey.as_str(), journey_partitions),
            (kafka.dead_letter.as_str(), 1),
        ]);
        kafka
    }

    pub(crate) fn topic_of(&self, feed: Feed) -> &str {
        match feed {
            Feed::Discharge => &self.discharge,
            Feed::SocialCare => &self.social_care,
            Feed::PrimaryCare => &self.primary_care,
        }
    }

    /// The partner topics with their feeds.
    pub(crate) fn partner_topics(&self) -> [(&str, Feed); 3] {
        Feed::ALL.map(|feed| (self.topic_of(feed), feed))
    }

    /// A configuration file naming this broker, topics and groups, for a
    /// role or `icsflow simulate --config`.
    pub(crate) fn config_file(&self) -> std::path::PathBuf {
        let path = self.folder.join(format!("{}.toml", unique_name("config")));
        let reference = self.reference_file();
        std::fs::write(
            &path,
            format!(
                "[kafka]\nbootstrap_servers = \"{}\"\nsession_timeout_ms = 6000\n\
                 [topics]\ndischarge = \"{}\"\nsocial_care = \"{}\"\nprimary_care = \"{}\"\n\
                 journey = \"{}\"\ndead_letter = \"{}\"\n\
                 [ingest]\ngroup_id = \"{}\"\n[join]\ngroup_id = \"{}\"\n[log]\nlevel = \"info\"\n\
                 [reference]\nfile = \"{}\"\n",
                self.address,
                self.discharge,
                self.social_care,
                self.primary_care,
                self.journey,
                self.dead_letter,
                self.ingest_group,
                self.join_group,
                reference.display(),
            ),
        )
        .expect("config written");
        path
    }

    /// The tests' reference data: the demo ICS's (what `icsflow simulate`
    /// publishes for) and the partners of the sample events (trust RVW,
    /// local authority 702, practice M83670, in E06000047).
    pub(crate) fn reference_file(&self) -> std::path::PathBuf {
        let path = self.folder.join("roles-reference.toml");
        let demo =
            std::fs::read_to_string(crate::repository_root().join("deploy/config/reference.toml"))
                .expect("the demo reference data");
        let samples = [
            ("RVW", "acute_trust"),
            ("702", "local_authority"),
            ("M83670", "primary_care"),
        ]
        .iter()
        .map(|(code, kind)| {
            format!(
                "\n[[partners]]\ncode = \"{code}\"\nname = \"Sample {code}\"\nkind = \"{kind}\"\n\
                     place = \"E06000047\"\nprincipal = \"User:sample-{}\"\n",
                code.to_ascii_lowercase()
            )
        })
        .collect::<String>();
        std::fs::write(&path, demo + &samples).expect("reference data written");
        path
    }

    /// The folder of the test's files (removed when dropped).
    pub(crate) fn folder(&self) -> &std::path::Path {
        &self.folder
    }

    /// The test's own broker, to stop, restart or freeze.
    pub(crate) fn own(&mut self) -> &mut Broker {
        match &mut self.broker {
            BrokerHandle::Own(broker) => broker,
            BrokerHandle::Shared(_) => panic!("the shared broker is never stopped"),
        }
    }
}

impl Drop for TestKafka {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Topics and groups of the test's own on the broker this test binary
/// shares.
pub(crate) fn broker_with_topics() -> TestKafka {
    TestKafka::with(BrokerHandle::Shared(Broker::shared()))
}

/// The shared broker, with `journey_partitions` on the test's journey topic.
pub(crate) fn broker_with_journey_partitions(journey_partitions: u32) -> TestKafka {
    TestKafka::with_journey_partitions(BrokerHandle::Shared(Broker::shared()), journey_partitions)
}

/// A broker of the test's own that authenticates these SASL/SCRAM users
/// and authorizes by ACL ([`Broker::start_secured`]), with the test's
/// topics.
pub(crate) fn secured_broker_with_topics(users: &[(&str, &str)]) -> TestKafka {
    TestKafka::with(BrokerHandle::Own(Broker::start_secured(users)))
}

/// A broker of the test's own (for tests that stop, kill or freeze it),
/// with the test's topics.
pub(crate) fn own_broker_with_topics() -> TestKafka {
    TestKafka::with(BrokerHandle::Own(Broker::start()))
}

/// A running `icsflow` role, stopped with SIGINT when dropped.
pub(crate) struct Role {
    child: Child,
    admin: String,
    /// The role's log (stderr), for diagnosing a failure.
    pub(crate) log: std::path::PathBuf,
}

impl Role {
    pub(crate) fn start(role: &str, broker: &TestKafka) -> Role {
        Role::start_with(role, broker, &[])
    }

    pub(crate) fn start_with(role: &str, broker: &TestKafka, environment: &[(&str, &str)]) -> Role {
        Role::start_with_arguments(role, broker, environment, &[])
    }

    /// With extra command-line arguments after the role's own.
    pub(crate) fn start_with_arguments(
        role: &str,
        broker: &TestKafka,
        environment: &[(&str, &str)],
        arguments: &[&str],
    ) -> Role {
        let admin_port = free_port();
        let folder =
            std::env::temp_dir().join(format!("icsflow-role-{}-{admin_port}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("config folder");
        let config = broker.config_file();
        let mut child = Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .envs(environment.iter().copied())
            .args([role, "--config"])
            .arg(&config)
            .args(["--admin-addr", &format!("127.0.0.1:{admin_port}")])
            .args(arguments)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(folder.join("role.log")).expect("log file"))
            .spawn()
            .expect("icsflow starts");
        let admin = format!("127.0.0.1:{admin_port}");
        let started = Instant::now();
        while http_get(&admin, "/healthz").0 != 200 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{role} exited with {status}: {}",
                    std::fs::read_to_string(folder.join("role.log")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{role}: no admin endpoint at {admin}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Role {
            child,
            admin,
            log: folder.join("role.log"),
        }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.admin, path)
    }

    /// SIGINT, then the exit status, within a bound.
    pub(crate) fn interrupt(self) -> std::process::ExitStatus {
        self.signal("-INT")
    }

    /// Sends `signal` (for example `-TERM`), then waits for the exit
    /// status, within a bound.
    pub(crate) fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "role did not stop within 30 s of {signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Role {
    /// Waits for `/readyz`, stops the role with SIGINT (exit 0) and
    /// returns its log.
    pub(crate) fn log_once_ready(self, what: &str) -> String {
        eventually(what, Duration::from_secs(60), || {
            self.get("/readyz").0 == 200
        });
        let path = self.log.clone();
        assert_eq!(self.interrupt().code(), Some(0));
        std::fs::read_to_string(path).expect("log")
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn http_get(address: &str, path: &str) -> (u16, String) {
    icsflow_testkit::http_request(address, "GET", path, None)
}

pub(crate) fn publish(broker: &Broker, records: &[(&str, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .expect("producer");
    for (topic, payload) in records {
        producer
            .send(BaseRecord::to(topic).key("partner-key").payload(payload))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

/// The sample events moved to end yesterday: events older than the
/// eviction horizon are refused for patients the engine holds no journey
/// for, as a live stream's would be.
pub(crate) fn recent_samples() -> Vec<Event> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    icsflow_core::shifted_to_end_before(one_event_of_each_type(), Timestamp::from_millis(now))
}

pub(crate) fn sample_records(kafka: &TestKafka) -> Vec<(&str, Vec<u8>)> {
    let catalogue = SchemaCatalogue::embedded();
    recent_samples()
        .iter()
        .map(|event| {
            (
                kafka.topic_of(event.feed()),
                encode_single_object(&catalogue, event),
            )
        })
        .collect()
}

/// The gauge lines (`name{labels} value`) an engine fed `events` shows now,
/// non-zero only, as Prometheus renders them.
pub(crate) fn expected_gauge_lines(events: &[Event]) -> Vec<String> {
    let now = Timestamp::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64,
    );
    expected_gauge_lines_as_of(events, now)
}

/// The same, as of `as_of`.
pub(crate) fn expected_gauge_lines_as_of(events: &[Event], as_of: Timestamp) -> Vec<String> {
    let mut engine = Engine::new(EngineConfig::default());
    for event in events {
        engine.apply(event);
    }
    engine
        .metrics(as_of)
        .into_iter()
        .filter(|(_, value)| *value != 0)
        .map(|(key, value)| format!("{} {value}", icsflow_telemetry::series_text(&key)))
        .collect()
}

/// Engine gauge lines with a non-zero value in a /metrics body, summed
/// across bodies (replicas).
pub(crate) fn gauge_lines(bodies: &[String]) -> Vec<String> {
    let mut summed: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for body in bodies {
        for line in body.lines().filter(|line| {
            line.starts_with("icsflow_flow_") || line.starts_with("icsflow_quality_")
        }) {
            if let Some((series, value)) = line.rsplit_once(' ') {
                *summed.entry(series.to_owned()).or_insert(0.0) +=
                    value.parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    let mut lines: Vec<String> = summed
        .into_iter()
        .filter(|(_, value)| *value != 0.0)
        .map(|(series, value)| format!("{series} {value}"))
        .collect();
    lines.sort();
    lines
}

pub(crate) fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Waits until the replicas' summed engine gauges equal `expected`; on
/// timeout, shows what differs.
pub(crate) fn wait_for_gauges(what: &str, replicas: &[&Role], expected: &[String]) {
    let started = Instant::now();
    loop {
        let actual = gauge_lines(
            &replicas
                .iter()
                .map(|role| role.get("/metrics").1)
                .collect::<Vec<_>>(),
        );
        if actual == expected {
            return;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let missing: Vec<&String> = expected
                .iter()
                .filter(|line| !actual.contains(line))
                .collect();
            let unexpected: Vec<&String> = actual
                .iter()
                .filter(|line| !expected.contains(line))
                .collect();
            let logs: Vec<String> = replicas
                .iter()
                .map(|role| role.log.display().to_string())
                .collect();
            panic!("timed out waiting for {what}\nmissing: {missing:#?}\nunexpected: {unexpected:#?}\nrole logs: {logs:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `promtool check metrics` (Prometheus' own linter) accepts the exposition.
/// The values of the series of `body` that start with `prefix`, summed.
fn summed(body: &str, prefix: &str) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn assert_passes_promtool(body: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (`make test` installs Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("written");
    let output = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn eventually(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn run_serves_the_gauges_of_published_events_and_dead_letters_bad_records() {
    let broker = broker_with_topics();
    let role = Role::start("run", &broker);
    let mut records = sample_records(&broker);
    records.insert(
        3,
        (
            broker.topic_of(Feed::Discharge),
            b"\x00\x00\x00\x00\x07garbage".to_vec(),
        ),
    );
    records.insert(
        8,
        (
            broker.topic_of(Feed::SocialCare),
            b"{\"json\": \"not avro\"}".to_vec(),
        ),
    );
    publish(&broker, &records);

    let expected = sorted(expected_gauge_lines(&recent_samples()));
    wait_for_gauges("the gauges on /metrics", &[&role], &expected);
    let (status, body) = role.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("icsflow_ingest_rejected_records_total{feed=\"discharge\",organisation=\"unknown\",reason=\"unknown_schema\"} 1"), "{body}");
    assert!(body.contains("icsflow_ingest_rejected_records_total{feed=\"social_care\",organisation=\"unknown\",reason=\"malformed\"} 1"), "{body}");
    let build_info = body
        .lines()
        .find(|line| line.starts_with("icsflow_build_info{"))
        .expect("icsflow_build_info");
    for label in [
        "role=\"run\"",
        "version=\"",
        "revision=\"",
        "librdkafka=\"2.",
    ] {
        assert!(build_info.contains(label), "{label} in {build_info}");
    }
    // The process collector, as every Prometheus exporter has.
    let resident: f64 = body
        .lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
        .and_then(|value| value.parse().ok())
        .expect("process_resident_memory_bytes");
    assert!(resident > 1e6, "{resident}");
    for series in ["process_cpu_seconds_total ", "process_open_fds "] {
        assert!(body.contains(series), "{series}");
    }
    assert_passes_promtool(&body);
    assert_eq!(role.get("/healthz").0, 200);
    eventually("/readyz", Duration::from_secs(30), || {
        role.get("/readyz").0 == 200
    });

    // The dead-letter topic holds the two bad records, coordinates in headers.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", unique_name("dead-letter-reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("reader");
    reader
        .subscribe(&[broker.dead_letter.as_str()])
        .expect("subscribe");
    let mut reasons = Vec::new();
    let started = Instant::now();
    while reasons.len() < 2 && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(250)) {
            let headers = message.headers().expect("headers");
            let value = |name: &str| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            };
            assert!(
                value("icsflow.source.offset").is_some()
                    && value("icsflow.source.partition").is_some()
            );
            reasons.push((
                value("icsflow.reason"),
                value("icsflow.source.topic"),
                message.payload().map(<[u8]>::to_vec),
            ));
        }
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            (
                Some("malformed".to_owned()),
                Some(broker.topic_of(Feed::SocialCare).to_owned()),
                // A dead letter copies no partner byte: the record stays
                // on its topic, found by the headers' coordinates.
                Some(Vec::new())
            ),
            (
                Some("unknown_schema".to_owned()),
                Some(broker.topic_of(Feed::Discharge).to_owned()),
                Some(Vec::new())
            ),
        ]
    );

    assert_eq!(role.interrupt().code(), Some(0), "SIGINT exits 0");
}

/// Exactly-once ingest ends every transaction with a marker, which takes
/// an offset that no `read_committed` reader is given: a join replica
/// started after it wrote still reaches the end of each partition, is
/// ready, and shows the gauges.
#[test]
fn a_join_started_after_exactly_once_ingest_wrote_is_ready() {
    let broker = broker_with_topics();
    let ingest = Role::start_with(
        "ingest",
        &broker,
        &[("ICSFLOW__INGEST__DELIVERY", "exactly_once")],
    );
    let records = sample_records(&broker);
    publish(&broker, &records);
    eventually("the partner records taken", Duration::from_secs(60), || {
        let body = ingest.get("/metrics").1;
        let consumed = summed(
            &body,
            "icsflow_pipeline_consumed_records_total{role=\"ingest\"",
        );
        consumed as usize == records.len()
    });
    // Their transaction commits within 100 ms of the last; a second is
    // ample, and the marker is then in the high watermark join reads.
    std::thread::sleep(Duration::from_secs(1));
    let join = Role::start("join", &broker);
    eventually("/readyz", Duration::from_secs(30), || {
        join.get("/readyz").0 == 200
    });
    let expected = sorted(expected_gauge_lines(&recent_samples()));
    wait_for_gauges("the gauges", &[&join], &expected);
    // Regression: ingest's lag read librdkafka's `consumer_lag`, which
    // follows the committed offset it fetched at assignment and never the
    // transactional commits after it: after a restart it stayed at every
    // record consumed since while Kafka's own tools showed 0, so the lag
    // alert fired on every exactly-once deployment.
    assert_eq!(ingest.interrupt().code(), Some(0));
    let ingest = Role::start_with(
        "ingest",
        &broker,
        &[("ICSFLOW__INGEST__DELIVERY", "exactly_once")],
    );
    publish(&broker, &records);
    eventually("the second records taken", Duration::from_secs(60), || {
        let body = ingest.get("/metrics").1;
        summed(
            &body,
            "icsflow_pipeline_consumed_records_total{role=\"ingest\"",
        ) as usize
            == records.len()
    });
    eventually(
        "ingest's lag back to 0 once its transactions committed",
        Duration::from_secs(30),
        || {
            let body = ingest.get("/metrics").1;
            let lags: Vec<f64> = body
                .lines()
                .filter(|line| {
                    line.starts_with("icsflow_pipeline_consumer_lag_records{")
                        && line.contains("role=\"ingest\"")
                })
                .filter_map(|line| line.rsplit_once(' ')?.1.parse().ok())
                .collect();
            // Every partition of the three partner topics (owned and
            // empty ones count 0 too).
            lags.len() == 6 && lags.iter().all(|lag| *lag == 0.0)
        },
    );
    assert_eq!(ingest.interrupt().code(), Some(0));
}

/// The lag each role reports, partition by partition, is what Kafka's own
/// tools show for its group (log end offset minus the committed offset),
/// in both delivery modes; and join's group commits, so that they show it
/// at all. Regressions: under exactly-once ingest reported every record
/// consumed since start while kafka-consumer-groups showed 0; join never
/// committed, so the tools, Strimzi's exporter and Burrow showed nothing
/// for its group.
#[test]
fn each_roles_lag_is_the_brokers_view_of_its_group_in_both_delivery_modes() {
    for delivery in ["at_least_once", "exactly_once"] {
        let broker = broker_with_topics();
        let ingest = Role::start_with(
            "ingest",
            &broker,
            &[("ICSFLOW__INGEST__DELIVERY", delivery)],
        );
        let join = Role::start("join", &broker);
        let records = sample_records(&broker);
        publish(&broker, &records);
        wait_for_gauges(
            delivery,
            &[&join],
            &sorted(expected_gauge_lines(&recent_samples())),
        );
        let groups = [
            (
                "ingest",
                broker.ingest_group.clone(),
                broker
                    .partner_topics()
                    .map(|(topic, _)| topic.to_owned())
                    .to_vec(),
            ),
            (
                "join",
                broker.join_group.clone(),
                vec![broker.journey.clone()],
            ),
        ];
        let mut last = String::new();
        let started = Instant::now();
        let mut compare = || {
            last.clear();
            let mut agree = true;
            for ((role, group, topics), process) in groups.iter().zip([&ingest, &join]) {
                let body = process.get("/metrics").1;
                for topic in topics {
                    for (partition, on_broker) in
                        broker_lag(&broker, group, topic).into_iter().enumerate()
                    {
                        let reported = body
                                .lines()
                                .find(|line| {
                                    line.starts_with(&format!(
                                        "icsflow_pipeline_consumer_lag_records{{partition=\"{partition}\",role=\"{role}\",topic=\"{topic}\"}} "
                                    ))
                                })
                                .and_then(|line| line.rsplit_once(' ')?.1.parse::<i64>().ok());
                        last += &format!("{role} {topic}[{partition}]: reported {reported:?}, broker {on_broker:?}\n");
                        agree &= on_broker.is_some() && reported == on_broker;
                    }
                }
            }
            agree
        };
        while !compare() {
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "{delivery}: a role's lag is not its group's lag on the broker:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(
            last.lines().all(|line| line.ends_with("Some(0)")),
            "{delivery}:\n{last}"
        );
        // The signal a script waits on: a gauge per role and a log line.
        for (role, process) in [("ingest", &ingest), ("join", &join)] {
            eventually(
                &format!("{delivery}: {role} caught up"),
                Duration::from_secs(15),
                || {
                    process
                        .get("/metrics")
                        .1
                        .contains(&format!("icsflow_pipeline_caught_up{{role=\"{role}\"}} 1"))
                },
            );
            let log = std::fs::read_to_string(&process.log).expect("log");
            assert!(
                log.contains("caught up: every owned partition's lag is 0"),
                "{log}"
            );
        }
        assert_eq!(ingest.interrupt().code(), Some(0));
        assert_eq!(join.interrupt().code(), Some(0));
    }
}

/// Per partition of `topic`, its end offset.
pub(crate) fn end_offsets(broker: &TestKafka, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// Per partition of `topic`: its end offset minus `group`'s committed
/// offset, as `kafka-consumer-groups --describe` computes it: 0 for a
/// partition that never held a record, `None` where the group committed
/// nothing though there are records.
pub(crate) fn broker_lag(broker: &TestKafka, group: &str, topic: &str) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|partition| {
            let (_, end) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("watermarks");
            match committed.find_partition(topic, partition)?.offset() {
                rdkafka::Offset::Offset(offset) => Some(end - offset),
                _ if end == 0 => Some(0),
                _ => None,
            }
        })
        .collect()
}

/// `icsflow topics` is the one place that says how many partitions each
/// topic has: `--check` names what a broker lacks (exit 1), `--create`
/// creates it as planned, and `simulate` refuses to publish while a
/// partner topic is missing instead of creating it (it created any missing
/// topic, with 3 partitions, without a word).
#[test]
fn topics_are_created_from_the_plan_and_never_as_a_side_effect() {
    let broker = broker_with_topics();
    let config = broker.config_file();
    let run = |arguments: &[&str], environment: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .args(arguments)
            .arg("--config")
            .arg(&config)
            .envs(environment.iter().copied())
            .output()
            .expect("icsflow runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (status, text) = run(&["topics", "--check"], &[]);
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "exists   {} with 4 partitions, not the 6 planned",
            broker.journey
        )),
        "{text}"
    );

    let discharge = format!("{}.fresh", broker.topic_of(Feed::Discharge));
    let fresh = [("ICSFLOW__TOPICS__DISCHARGE", discharge.as_str())];
    let (status, text) = run(
        &["simulate", "--broker", &broker.address, "--days", "1"],
        &fresh,
    );
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains(&discharge) && text.contains("icsflow topics --create"),
        "{text}"
    );
    let (status, text) = run(&["topics", "--check"], &fresh);
    assert_eq!(
        status,
        Some(1),
        "still missing: simulate created nothing\n{text}"
    );
    assert!(
        text.contains(&format!("missing  {discharge} (6 partitions planned)")),
        "{text}"
    );

    let (status, text) = run(&["topics", "--create", "--replication-factor", "1"], &fresh);
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains(&format!("created  {discharge} (6 partitions, 30 days)")),
        "{text}"
    );
    let (status, text) = run(&["topics", "--check"], &fresh);
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains(&format!("exists   {discharge} (6 partitions)")),
        "{text}"
    );
}

/// Partitions added to the journey topic in place send patients' new
/// events to other partitions than their history: ingest says so, in an
/// error that says not to.
#[test]
fn ingest_reports_a_journey_partition_count_changed_under_it() {
    let broker = broker_with_topics();
    let ingest = Role::start_with(
        "ingest",
        &broker,
        // The producer learns of new partitions at its next metadata
        // refresh (5 minutes by default).
        &[(
            "ICSFLOW__KAFKA__LIBRDKAFKA__TOPIC_METADATA_REFRESH_INTERVAL_MS",
            "1000",
        )],
    );
    let log = |role: &Role| std::fs::read_to_string(&role.log).unwrap_or_default();
    eventually("the partition count known", Duration::from_secs(30), || {
        log(&ingest).contains(&format!("partitions={JOURNEY_PARTITIONS}"))
    });
    broker.add_partitions(&broker.journey, JOURNEY_PARTITIONS as usize + 2);
    eventually("the error", Duration::from_secs(30), || {
        log(&ingest).contains("the journey topic's partition count changed")
    });
    assert!(
        log(&ingest).contains(&format!(
            "was={JOURNEY_PARTITIONS} now={}",
            JOURNEY_PARTITIONS + 2
        )),
        "{}",
        log(&ingest)
    );
}

/// A journey partition whose every record retention deleted (its oldest
/// offset is its end, not 0) is replayed at once: the replica is ready,
/// instead of waiting for records that will never come, and applies what
/// arrives next.
#[test]
fn a_join_replica_is_ready_when_retention_deleted_every_record_of_a_partition() {
    let broker = broker_with_topics();
    let catalogue = SchemaCatalogue::embedded();
    let samples = recent_samples();
    let records: Vec<(&str, Vec<u8>)> = samples
        .iter()
        .map(|event| {
            (
                broker.journey.as_str(),
                encode_single_object(&catalogue, event),
            )
        })
        .collect();
    publish(&broker, &records);
    broker.delete_all_records(&broker.journey, JOURNEY_PARTITIONS as i32);
    let role = Role::start("join", &broker);
    eventually("/readyz", Duration::from_secs(30), || {
        role.get("/readyz").0 == 200
    });
    publish(&broker, &records[..1]);
    eventually("the next record applied", Duration::from_secs(30), || {
        role.get("/metrics")
            .1
            .contains("icsflow_engine_events_total{outcome=\"applied\"} 1")
    });
    let log = std::fs::read_to_string(&role.log).expect("role log");
    assert!(
        log.contains(&format!("first={} end={}", samples.len(), samples.len())),
        "{log}"
    );
}

#[test]
fn a_restarted_join_and_two_joins_in_one_group_show_the_same_gauges() {
    let broker = broker_with_topics();
    let ingest = Role::start("ingest", &broker);
    // Spread the journeys over partitions: the sample journey for several
    // patients.
    let catalogue = SchemaCatalogue::embedded();
    let mut events = Vec::new();
    for patient in 1..=8_u8 {
        for mut event in recent_samples() {
            event.envelope.patient = icsflow_core::sample_pseudonym(patient);
            event.envelope.event_id = icsflow_core::EventId::from_u128(
                event.envelope.event_id.as_u128() + (u128::from(patient) << 64),
            );
            if let Some(corrected) = event.envelope.corrects_event_id {
                event.envelope.corrects_event_id = Some(icsflow_core::EventId::from_u128(
                    corrected.as_u128() + (u128::from(patient) << 64),
                ));
            }
            events.push(event);
        }
    }
    publish(
        &broker,
        &events
            .iter()
            .map(|event| {
                (
                    broker.topic_of(event.feed()),
                    encode_single_object(&catalogue, event),
                )
            })
            .collect::<Vec<_>>(),
    );
    let expected = sorted(expected_gauge_lines(&events));

    let first = Role::start("join", &broker);
    wait_for_gauges("the first join's gauges", &[&first], &expected);
    assert_eq!(first.interrupt().code(), Some(0));

    // A restarted replica replays the journey topic and shows the same,
    // and its log says how much it replayed (in plain text: no colour codes
    // when the log is not a terminal).
    let second = Role::start("join", &broker);
    wait_for_gauges("the restarted join's gauges", &[&second], &expected);
    let log = std::fs::read_to_string(&second.log).expect("join log");
    let summary =
        format!("assigned partitions replayed; ready partitions={JOURNEY_PARTITIONS} records=");
    let line = log
        .lines()
        .find(|line| line.contains(&summary))
        .unwrap_or_else(|| panic!("no {summary:?} in:\n{log}"));
    let events_replayed = format!(" events={} ", events.len());
    assert!(
        line.contains(&events_replayed),
        "{events_replayed:?} not in {line:?}"
    );

    // A second replica in the group: the partitions are shared, each replica
    // reports its own, and the sums are the single replica's values.
    let third = Role::start("join", &broker);
    eventually(
        "both replicas owning partitions",
        Duration::from_secs(90),
        || {
            let owned = |role: &Role| {
                role.get("/metrics").1.lines().any(|line| {
                    line.starts_with("icsflow_join_owned_partitions ") && !line.ends_with(" 0")
                })
            };
            owned(&second) && owned(&third)
        },
    );
    wait_for_gauges(
        "summed gauges of two replicas",
        &[&second, &third],
        &expected,
    );
    assert_eq!(third.interrupt().code(), Some(0));
    assert_eq!(second.interrupt().code(), Some(0));
    assert_eq!(ingest.interrupt().code(), Some(0));
}

#[test]
fn a_configuration_with_several_mistakes_gets_one_message_and_exit_64() {
    let folder = std::env::temp_dir().join(format!("icsflow-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let config = folder.join("bad.toml");
    std::fs::write(&config, "[kafka]\nbootstrap_server = \"typo\"\nsession_timeout_ms = -5\n[log]\nformat = \"xml\"\n[nonsense]\nx = 1\n").expect("written");
    let admin_port = free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--admin-addr", &format!("127.0.0.1:{admin_port}")])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "4 problem(s)",
        "unknown key `kafka.bootstrap_server`",
        "`kafka.session_timeout_ms` is `-5`",
        "`log.format` is `xml`",
        "unknown key `nonsense.x`",
        "deploy/config/icsflow.example.toml",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // Nothing was bound.
    assert!(std::net::TcpListener::bind(("127.0.0.1", admin_port)).is_ok());

    // --check says the same without starting anything, and passes the
    // shipped example.
    let checked = Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .args(["join", "--check", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(checked.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&checked.stderr).contains("4 problem(s)"));
    // From the repository's root, where the example's reference file is.
    let example = Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .current_dir(crate::repository_root())
        .args([
            "join",
            "--check",
            "--published-addr",
            "127.0.0.1:9465",
            "--config",
        ])
        .arg(crate::repository_root().join("deploy/config/icsflow.example.toml"))
        .output()
        .expect("runs");
    assert_eq!(example.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&example.stdout).contains("the settings are valid"),
        "{example:?}"
    );
    let _ = std::fs::remove_dir_all(&folder);
}

/// SIGTERM (what Kubernetes sends) stops a role cleanly, and its JSON logs
/// hold neither a pseudonym nor an NHS number.
#[test]
fn sigterm_exits_zero_and_json_logs_hold_no_identifiers() {
    let broker = broker_with_topics();
    let role = Role::start_with(
        "run",
        &broker,
        &[
            ("ICSFLOW__LOG__FORMAT", "json"),
            ("ICSFLOW__LOG__LEVEL", "debug"),
        ],
    );
    let events = recent_samples();
    let mut records = sample_records(&broker);
    // A record with an NHS number in a field, which must be rejected
    // without the number reaching any log line.
    let catalogue = SchemaCatalogue::embedded();
    let mut identifiable = encode_single_object(&catalogue, &events[4]);
    let position = identifiable
        .windows(11)
        .position(|window| window == b"CAP_P1_HOME")
        .expect("reason code bytes");
    identifiable[position..position + 11].copy_from_slice(b"9434765919.");
    records.push((broker.topic_of(Feed::Discharge), identifiable));
    publish(&broker, &records);
    let expected = sorted(expected_gauge_lines(&events));
    wait_for_gauges("the gauges on /metrics", &[&role], &expected);
    let log_path = role.log.clone();
    assert_eq!(role.signal("-TERM").code(), Some(0), "SIGTERM exits 0");

    let log = std::fs::read_to_string(&log_path).expect("role log");
    assert!(log.lines().count() > 5, "the role logged: {log}");
    for line in log.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON line: {line}"
        );
    }
    assert!(
        log.contains("\"level\":\"DEBUG\"") && log.contains("record rejected"),
        "debug lines present"
    );
    assert!(!log.contains("9434765919"), "an NHS number reached the log");
    for event in &events {
        assert!(
            !log.contains(&event.envelope.patient.to_string()),
            "a pseudonym reached the log"
        );
    }
}

/// Regression: a non-UTF-8 variable anywhere in the environment made every
/// command panic; and `--check` passed settings that failed at start.
#[test]
fn check_builds_what_start_would_and_survives_a_non_utf8_environment() {
    use std::os::unix::ffi::OsStrExt;
    let junk = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let check = |environment: &[(&str, &std::ffi::OsStr)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_icsflow"));
        command.args(["join", "--check"]).env(
            "ICSFLOW__REFERENCE__FILE",
            crate::repository_root().join("deploy/config/reference.toml"),
        );
        for (name, value) in environment {
            command.env(name, value);
        }
        command.output().expect("runs")
    };
    let unrelated = check(&[("SOME_LEGACY_VARIABLE", junk)]);
    assert_eq!(unrelated.status.code(), Some(0), "{unrelated:?}");

    let own = check(&[("ICSFLOW__LOG__LEVEL", junk)]);
    assert_eq!(own.status.code(), Some(64), "{own:?}");
    assert!(
        String::from_utf8_lossy(&own.stderr)
            .contains("ICSFLOW__LOG__LEVEL: the value is not valid UTF-8"),
        "{own:?}"
    );

    let would_fail = check(&[
        (
            "ICSFLOW__KAFKA__LIBRDKAFKA__NO_SUCH_PROPERTY",
            std::ffi::OsStr::new("1"),
        ),
        ("ICSFLOW__JOIN__GROUP_ID", std::ffi::OsStr::new("")),
        ("ICSFLOW__ADMIN__ADDR", std::ffi::OsStr::new("0.0.0.0:9464")),
        (
            "ICSFLOW__ADMIN__PUBLISHED_ADDR",
            std::ffi::OsStr::new("127.0.0.1:9464"),
        ),
    ]);
    assert_eq!(would_fail.status.code(), Some(64), "{would_fail:?}");
    let stderr = String::from_utf8_lossy(&would_fail.stderr);
    for expected in [
        "3 problem(s)",
        "`kafka.librdkafka.no.such.property`",
        "`join.group_id` is empty",
        "`admin.published_addr` is `127.0.0.1:9464`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// Regression: SIGHUP ended a role at once, without the graceful shutdown
/// SIGTERM gets.
#[test]
fn sighup_stops_a_role_as_gracefully_as_sigterm() {
    let broker = broker_with_topics();
    let role = Role::start("ingest", &broker);
    eventually("ingest ready", Duration::from_secs(60), || {
        role.get("/readyz").0 == 200
    });
    let log_path = role.log.clone();
    assert_eq!(role.signal("-HUP").code(), Some(0), "SIGHUP exits 0");
    let log = std::fs::read_to_string(&log_path).expect("role log");
    assert!(
        log.contains("stop requested: finishing in-flight work"),
        "{log}"
    );
}

/// Regressions: 50,000 rejected records, each naming its own well-formed
/// ODS code, made as many `icsflow_ingest_rejected_records_total` series;
/// a cap of 500 values then let 510 made-up site codes of one trust fill
/// the label, so another trust's events and rejections were counted as
/// `other` and its quiet-feed alert went blind. The label's values are now
/// the reference data's organisations (a site counted as its trust), and
/// `other` for an organisation no partner speaks for: no record can add one.
#[test]
fn organisations_named_by_records_cannot_add_label_values() {
    let broker = broker_with_topics();
    let role = Role::start("ingest", &broker);
    let catalogue = SchemaCatalogue::embedded();
    let template = recent_samples()[0];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let tomorrow = Timestamp::from_millis(now + 86_400_000);
    let letters: Vec<char> = ('A'..='Z').collect();
    let records: Vec<(&str, Vec<u8>)> = (0..600)
        .map(|number| {
            let mut event = template;
            event.envelope.event_id = icsflow_core::EventId::from_u128(number as u128 | 5 << 100);
            if number < 510 {
                // A site of trust RVW: counted as RVW, accepted.
                let site = format!("RVW{}{}", letters[number / 26 % 26], letters[number % 26]);
                event.envelope.source_organisation =
                    icsflow_core::OdsCode::parse("o", &site).expect("a site code");
            } else {
                // Nobody's organisation, dated in the future: rejected, with
                // its organisation read.
                event.envelope.source_organisation =
                    icsflow_core::OdsCode::parse("o", &format!("Y{number:05}"))
                        .expect("ODS-shaped");
                event.envelope.occurred_at = tomorrow;
                event.envelope.recorded_at = tomorrow;
            }
            (
                broker.topic_of(event.feed()),
                encode_single_object(&catalogue, &event),
            )
        })
        .collect();
    publish(&broker, &records);
    let consumed = |body: &str| summed(body, "icsflow_pipeline_consumed_records_total{");
    let started = Instant::now();
    while consumed(&role.get("/metrics").1) < records.len() as f64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not every record consumed:\n{}",
            role.get("/metrics").1
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, body) = role.get("/metrics");
    let organisations: std::collections::BTreeSet<&str> = body
        .lines()
        .filter(|line| line.starts_with("icsflow_ingest_") || line.starts_with("icsflow_pipeline_"))
        .filter_map(|line| {
            let (_, rest) = line.split_once("organisation=\"")?;
            rest.split_once('"').map(|(value, _)| value)
        })
        .collect();
    assert_eq!(
        organisations,
        ["RVW", "other"].into_iter().collect(),
        "{body}"
    );
    assert!(
        body.contains("icsflow_pipeline_label_overflow_total{label=\"organisation\"} 90"),
        "the organisations no partner speaks for are counted"
    );
    assert_eq!(role.interrupt().code(), Some(0));
}

/// The Kafka client's own log goes through icsflow's, with its level and
/// facility: `-X debug=cgrp` shows the group protocol (it printed nothing
/// even at `RUST_LOG=trace`). A normal start logs no warning at all (it
/// logged "no broker reachable", "no partitions owned" and librdkafka's
/// complaint that a producer ignores `session.timeout.ms`). An unreachable
/// broker is logged once per kind of problem per 10 s, with a count of
/// those left out (37 lines a second were logged).
#[test]
fn kafka_client_logs_are_icsflows_quiet_when_well_and_rate_limited_when_not() {
    let broker = broker_with_topics();
    let json = [("ICSFLOW__LOG__FORMAT", "json")];
    let log = Role::start_with_arguments("run", &broker, &json, &["-X", "debug=cgrp"])
        .log_once_ready("run with -X debug=cgrp ready");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    let group = lines
        .iter()
        .find(|line| line["target"] == "librdkafka" && line["facility"] == "CGRPSTATE")
        .unwrap_or_else(|| panic!("librdkafka's group debug lines:\n{log}"));
    assert_eq!(group["level"], "DEBUG", "{group}");
    assert!(group["role"].is_string(), "{group}");

    let log = Role::start_with("run", &broker, &json).log_once_ready("run ready");
    assert!(
        !log.contains("\"level\":\"WARN\"") && !log.contains("\"level\":\"ERROR\""),
        "a normal start and stop warns of nothing:\n{log}"
    );
    assert!(!log.contains("\"target\":\"librdkafka\""), "{log}");

    let unreachable = Role::start_with(
        "run",
        &broker,
        &[
            ("ICSFLOW__LOG__FORMAT", "json"),
            ("ICSFLOW__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1"),
        ],
    );
    std::thread::sleep(Duration::from_secs(12));
    let log_path = unreachable.log.clone();
    assert_eq!(unreachable.interrupt().code(), Some(0));
    let log = std::fs::read_to_string(&log_path).expect("log");
    let problems: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .filter(|line| line["level"] == "WARN" || line["level"] == "ERROR")
        .collect();
    assert!(
        problems.len() <= 40,
        "{} warning lines in 12 s:\n{log}",
        problems.len()
    );
    assert!(
        problems.iter().any(|line| line["suppressed"]
            .as_u64()
            .is_some_and(|left_out| left_out > 0)),
        "the lines left out are counted:\n{log}"
    );
}

/// `RUST_LOG` overrides `log.level`, and `-q` overrides both; JSON log
/// lines are flat: the message and fields at the top level.
#[test]
fn log_level_from_rust_log_and_flags_and_flat_json_lines() {
    let broker = broker_with_topics();
    let json_debug = [
        ("ICSFLOW__LOG__FORMAT", "json"),
        ("RUST_LOG", "debug,rdkafka=info,librdkafka=info"),
    ];
    let role = Role::start_with("ingest", &broker, &json_debug);
    eventually("ingest ready", Duration::from_secs(60), || {
        role.get("/readyz").0 == 200
    }); // A bad record: its rejection is logged at debug level.
    publish(
        &broker,
        &[(broker.topic_of(Feed::Discharge), b"not a record".to_vec())],
    );
    eventually("the bad record rejected", Duration::from_secs(60), || {
        role.get("/metrics")
            .1
            .contains("icsflow_ingest_rejected_records_total{")
    });

    let log_path = role.log.clone();
    assert_eq!(role.interrupt().code(), Some(0));
    let log = std::fs::read_to_string(&log_path).expect("log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    assert!(
        lines.iter().any(|line| line["level"] == "DEBUG"),
        "RUST_LOG=debug over log.level = info:\n{log}"
    );
    let admin = lines
        .iter()
        .find(|line| line["message"] == "admin endpoint (also /healthz, /readyz)")
        .expect("the start-up banner goes through the logger");
    assert!(
        admin["url"]
            .as_str()
            .is_some_and(|url| url.ends_with("/metrics")),
        "{admin}"
    );
    let started = lines
        .iter()
        .find(|line| line["message"] == "ingest started")
        .expect("a flat `message` field");
    assert!(
        started["journey_topic"].is_string(),
        "fields at the top level: {started}"
    );
    assert!(started.get("fields").is_none(), "{started}");

    let quiet_log = Role::start_with_arguments("ingest", &broker, &json_debug, &["-q"])
        .log_once_ready("quiet ingest ready");
    assert!(
        !quiet_log.contains("\"level\":\"INFO\"") && !quiet_log.contains("\"level\":\"DEBUG\""),
        "-q leaves warnings and errors only:\n{quiet_log}"
    );
}

/// Regression: places were not checked against the reference data, so 70
/// made-up place codes on one trust's records filled an engine's place
/// table and another trust's genuine admissions were then ignored
/// (`too_many_label_values`). A place outside the ICS now counts as
/// `out_of_area`, whatever its code: patients resident elsewhere still
/// count, and no record adds a place.
#[test]
fn places_outside_the_reference_data_count_as_out_of_area_and_crowd_out_nobody() {
    let broker = broker_with_topics();
    let role = Role::start("run", &broker);
    let catalogue = SchemaCatalogue::embedded();
    let samples = recent_samples();
    let (admitted, not_meeting) = (samples[0], samples[2]);
    let mut records = Vec::new();
    for number in 0..71_u32 {
        let place = if number == 70 {
            "E06000047".to_owned()
        } else {
            format!("E06{:06}", 900_000 + number)
        };
        let mut bytes = [0x5a_u8; 32];
        bytes[..4].copy_from_slice(&number.to_be_bytes());
        for (index, template) in [admitted, not_meeting].into_iter().enumerate() {
            let mut event = template;
            event.envelope.patient = icsflow_core::Pseudonym::from_bytes(bytes);
            event.envelope.event_id = icsflow_core::EventId::from_u128(
                u128::from(number) << 8 | index as u128 | 3 << 100,
            );
            event.envelope.place =
                icsflow_core::PlaceCode::parse("place", &place).expect("a GSS-shaped code");
            records.push((
                broker.topic_of(event.feed()),
                encode_single_object(&catalogue, &event),
            ));
        }
    }
    publish(&broker, &records);
    let nctr = |body: &str, place: &str| {
        summed(
            body,
            &format!("icsflow_flow_not_meeting_criteria_patients{{place=\"{place}\""),
        )
    };
    let started = Instant::now();
    loop {
        let (_, body) = role.get("/metrics");
        if nctr(&body, "out_of_area") == 70.0 && nctr(&body, "E06000047") == 1.0 {
            assert!(!body.contains("place=\"E06900"), "{body}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "out_of_area {} (70 expected), E06000047 {} (1 expected)",
            nctr(&body, "out_of_area"),
            nctr(&body, "E06000047")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(role.interrupt().code(), Some(0));
}

/// Regressions: a registry URL `http://user:pw@host` passed `--check` and
/// sent the password over plain HTTP, `publish` printed that URL, a TOML
/// syntax error printed the whole offending line, and librdkafka's message
/// for a bad `security.protocol` repeated the value. A sentinel in every
/// secret-bearing place, beside a syntax error, appears nowhere in what
/// the commands print, at any verbosity.
#[test]
fn secrets_are_never_printed() {
    const SENTINEL: &str = "S3NTINEL-7f3a";
    let folder = std::env::temp_dir().join(format!("icsflow-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let broken = folder.join("broken.toml");
    std::fs::write(
        &broken,
        format!("[schema_registry]\npassword = \"{SENTINEL}\"\n[kafka.librdkafka]\n\"sasl.password\" = \"{SENTINEL}\" oops\n"),
    )
    .expect("written");
    let in_url = folder.join("in-url.toml");
    std::fs::write(
        &in_url,
        format!("[schema_registry]\nurl = \"http://rvw:{SENTINEL}@registry:8081\"\n"),
    )
    .expect("written");
    let secrets = [
        ("ICSFLOW__SCHEMA_REGISTRY__PASSWORD", SENTINEL.to_owned()),
        ("ICSFLOW__SCHEMA_REGISTRY__USERNAME", "rvw".to_owned()),
        (
            "ICSFLOW__KAFKA__LIBRDKAFKA__SASL_PASSWORD",
            SENTINEL.to_owned(),
        ),
        (
            "ICSFLOW__KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL",
            SENTINEL.to_owned(),
        ),
        (
            "ICSFLOW__REFERENCE__FILE",
            crate::repository_root()
                .join("deploy/config/reference.toml")
                .display()
                .to_string(),
        ),
    ];
    let runs: Vec<Vec<String>> = vec![
        vec![
            "join".into(),
            "--check".into(),
            "--config".into(),
            broken.display().to_string(),
        ],
        vec![
            "ingest".into(),
            "--check".into(),
            "-vv".into(),
            "--config".into(),
            in_url.display().to_string(),
        ],
        vec!["join".into(), "--check".into(), "-vv".into()],
        vec![
            "publish".into(),
            "--feed".into(),
            "discharge".into(),
            "--framing".into(),
            "confluent".into(),
            "--schema-registry".into(),
            format!("http://rvw:{SENTINEL}@127.0.0.1:9/"),
            "-vv".into(),
            "/dev/null".into(),
        ],
    ];
    for arguments in runs {
        let output = Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .args(&arguments)
            .envs(secrets.iter().map(|(name, value)| (*name, value.as_str())))
            .output()
            .expect("runs");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_ne!(
            output.status.code(),
            Some(0),
            "{arguments:?} must refuse: {printed}"
        );
        assert!(
            !printed.contains(SENTINEL),
            "{arguments:?} printed a secret:\n{printed}"
        );
        assert!(!printed.contains("7f3a"), "{arguments:?}:\n{printed}");
    }
    // librdkafka's own log now reaches icsflow's: with every debug context
    // on, a client that is created (and cannot deliver) prints its
    // configuration, the password redacted.
    let output = Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .args([
            "publish",
            "--feed",
            "discharge",
            "-b",
            "127.0.0.1:9",
            "-X",
            "debug=all",
        ])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
        ])
        .args(["-X", "sasl.username=rvw", "-X", "message.timeout.ms=2000"])
        .arg(crate::repository_root().join("schemas/examples/discharge.jsonl"))
        .env("ICSFLOW__KAFKA__LIBRDKAFKA__SASL_PASSWORD", SENTINEL)
        .output()
        .expect("runs");
    let printed = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        printed.contains("sasl.password = [redacted]"),
        "librdkafka's configuration dump:\n{printed}"
    );
    assert!(
        !printed.contains("7f3a"),
        "publish -X debug=all printed a secret"
    );
    let _ = std::fs::remove_dir_all(&folder);
}
