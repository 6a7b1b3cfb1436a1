//! Records written by partner code in other languages decode here: the
//! example producers in `examples/` (Java with Apache Avro's Java library,
//! Python with fastavro), which `make partner-examples` builds and runs
//! before the tests, each with its own canonical form, fingerprint and HMAC.
//! Run against a real broker, on either topic layout, both producers put
//! every record where ingest reads it, keyed and partitioned as `icsflow
//! publish` does, and ingest accepts every one for the right partner.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use icsflow_avro::{EventDecoder, SchemaCatalogue};
use icsflow_core::{Feed, TimestampPolicy};

use crate::faults::{journey_events, read_whole_topic};
use crate::roles::{broker_with_topics, eventually, Role, TestKafka};

/// Decodes every record one producer wrote and holds it to the producer's
/// manifest and to icsflow's own schemas.
fn decodes_every_record_of(producer: &str) {
    let folder = crate::repository_root()
        .join("target/partner-examples")
        .join(producer);
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; `make partner-examples` builds and runs the example producers",
            folder.display()
        )
    });
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest JSON");
    let entries = manifest.as_array().expect("a list");
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    let decoder = EventDecoder::new(Arc::clone(&catalogue));
    let policy = TimestampPolicy {
        now: None,
        tolerance_millis: 300_000,
    };
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::repository_root().join("schemas/pseudonym-test-vectors.json"),
        )
        .expect("vectors"),
    )
    .expect("vectors JSON");
    let expected_pseudonym = vectors["vectors"][0]["pseudonym"]
        .as_str()
        .expect("pseudonym");
    let mut per_feed = [0; 3];
    for entry in entries {
        let feed = Feed::from_name(entry["feed"].as_str().expect("feed")).expect("a feed");
        let bytes =
            std::fs::read(folder.join(entry["file"].as_str().expect("file"))).expect("record");
        // The header the producer's library wrote: C3 01 and its
        // fingerprint of the schema, which must be icsflow's.
        let ours = catalogue.current(feed).fingerprint.to_le_bytes();
        assert_eq!(&bytes[..2], b"\xc3\x01", "{producer}: {entry}");
        assert_eq!(&bytes[2..10], ours, "{producer}: fingerprint of {entry}");
        assert_eq!(
            entry["fingerprint"].as_str(),
            Some(
                ours.iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<String>()
                    .as_str()
            ),
            "{producer}: the fingerprint its library computes"
        );
        let event = decoder
            .decode(&bytes, &policy)
            .unwrap_or_else(|error| panic!("{producer}: {entry}: {error:?}"));
        assert_eq!(event.feed(), feed);
        assert_eq!(
            event.envelope.event_id.to_string(),
            entry["event_id"].as_str().expect("event id")
        );
        assert_eq!(event.envelope.patient.to_string(), expected_pseudonym);
        assert_eq!(
            entry["patient_pseudonym"].as_str(),
            Some(expected_pseudonym)
        );
        per_feed[feed as usize] += 1;
    }
    // Every example event of every feed.
    let examples = Feed::ALL.map(|feed| {
        std::fs::read_to_string(
            crate::repository_root().join(format!("schemas/examples/{}.jsonl", feed.as_str())),
        )
        .expect("examples")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count()
    });
    assert_eq!(per_feed, examples, "{producer}: records per feed");
}

#[test]
fn records_encoded_by_apache_avro_for_java_decode_with_the_same_fingerprints() {
    decodes_every_record_of("java");
}

#[test]
fn records_encoded_by_fastavro_for_python_decode_with_the_same_fingerprints() {
    decodes_every_record_of("python");
}

/// The example producers as `make partner-examples` built them; a failure
/// that says so when it has not run.
struct PartnerProducers {
    java_classpath: String,
    python: PathBuf,
}

impl PartnerProducers {
    fn built() -> PartnerProducers {
        let root = crate::repository_root();
        let hint = "`make partner-examples` builds the example producers";
        let classes = root.join("examples/java/target/classes");
        assert!(
            classes.join("icsflow/example/Producer.class").is_file(),
            "{}: no Producer.class; {hint}",
            classes.display()
        );
        let classpath_file = root.join("examples/java/target/classpath.txt");
        let libraries = std::fs::read_to_string(&classpath_file)
            .unwrap_or_else(|error| panic!("{}: {error}; {hint}", classpath_file.display()));
        assert!(
            libraries.contains("kafka-clients-"),
            "{}: no Kafka client on the classpath; {hint}",
            classpath_file.display()
        );
        let python = root.join("target/partner-venv/bin/python");
        let has_kafka_client = Command::new(&python)
            .args(["-c", "import confluent_kafka, fastavro"])
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            has_kafka_client,
            "{}: no Python with confluent-kafka and fastavro; {hint}",
            python.display()
        );
        PartnerProducers {
            java_classpath: format!("{}:{}", classes.display(), libraries.trim()),
            python,
        }
    }

    /// Runs one producer (`java` or `python`) with these arguments after
    /// the repository's; its standard output, once it exits 0.
    fn run(&self, language: &str, arguments: &[String]) -> String {
        let root = crate::repository_root();
        let mut command = match language {
            "java" => {
                let mut command = Command::new("java");
                command
                    .args(["-Xmx256m", "-cp", &self.java_classpath])
                    .arg("icsflow.example.Producer")
                    .arg(&root);
                command
            }
            "python" => {
                let mut command = Command::new(&self.python);
                command
                    .arg(root.join("examples/python/produce.py"))
                    .arg("--repository")
                    .arg(&root);
                command
            }
            other => panic!("no example producer in {other}"),
        };
        let output = command
            .args(arguments)
            .current_dir(&root)
            .output()
            .unwrap_or_else(|error| panic!("the {language} example does not start: {error}"));
        let stdout = crate::text(&output.stdout);
        assert!(
            output.status.success(),
            "the {language} example exited with {}:\n{stdout}{}",
            output.status,
            crate::text(&output.stderr)
        );
        stdout
    }
}

/// The pseudonym both producers compute for the first test vector.
fn expected_pseudonym() -> String {
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::repository_root().join("schemas/pseudonym-test-vectors.json"),
        )
        .expect("vectors"),
    )
    .expect("vectors JSON");
    vectors["vectors"][0]["pseudonym"]
        .as_str()
        .expect("pseudonym")
        .to_owned()
}

/// The example lines of `feed`.
fn examples_of(feed: Feed) -> Vec<serde_json::Value> {
    std::fs::read_to_string(
        crate::repository_root().join(format!("schemas/examples/{}.jsonl", feed.as_str())),
    )
    .expect("examples")
    .lines()
    .filter(|line| !line.trim().is_empty())
    .map(|line| serde_json::from_str(line).expect("an example line"))
    .collect()
}

/// The partner (ODS code) whose topic carries each feed's examples on the
/// per-partner layout: the organisation they are in the name of.
fn partner_of(feed: Feed) -> String {
    examples_of(feed)[0]["source_organisation"]
        .as_str()
        .expect("source_organisation")
        .to_owned()
}

/// The partition and key of every record of `topic`, from its start to
/// its end now.
fn partitions_and_keys(kafka: &TestKafka, topic: &str) -> Vec<(i32, Vec<u8>)> {
    crate::faults::read_whole_topic(kafka, topic)
        .into_iter()
        .map(|record| (record.partition, record.key))
        .collect()
}

/// Both example producers and `icsflow publish` send every example of
/// every feed to the topics of `layout`; ingest then reads them. Every
/// record lands on the topic ingest reads for its partner, keyed by the
/// pseudonym and in the partition `icsflow publish` chose for that key;
/// ingest accepts every one (nothing dead-lettered), for its partner.
fn partner_examples_reach_ingest(kafka: &TestKafka, layout: &str) {
    let producers = PartnerProducers::built();
    let pseudonym = expected_pseudonym();
    let topic_of = |feed: Feed| match layout {
        "shared" => kafka.topic_of(feed).to_owned(),
        _ => format!("{}.{}", kafka.topic_of(feed), partner_of(feed)),
    };
    if layout == "per_partner" {
        // More partitions than the feed topics have, so that a partitioner
        // other than publish's would show.
        let topics: Vec<String> = Feed::ALL.map(topic_of).to_vec();
        kafka.create_topics(
            &topics
                .iter()
                .map(|topic| (topic.as_str(), 12))
                .collect::<Vec<_>>(),
        );
    }

    // `icsflow publish`, the reference for keys and partitions: the
    // examples with the producers' pseudonym.
    let config = kafka.config_file();
    for feed in Feed::ALL {
        let lines: String = examples_of(feed)
            .into_iter()
            .map(|mut line| {
                line["patient_pseudonym"] = serde_json::json!(pseudonym);
                line.to_string() + "\n"
            })
            .collect();
        let topic = topic_of(feed);
        let config = config.to_str().expect("a UTF-8 path");
        let published = crate::icsflow_with_input(
            &[],
            &[
                "publish",
                "--feed",
                feed.as_str(),
                "--topic",
                &topic,
                "--config",
                config,
                "-",
            ],
            &lines,
        );
        assert_eq!(published.status.code(), Some(0), "{published:?}");
    }

    let mut arguments = vec![
        "--bootstrap-servers".to_owned(),
        kafka.address.clone(),
        "--layout".to_owned(),
        layout.to_owned(),
    ];
    for feed in Feed::ALL {
        arguments.push("--topic".to_owned());
        arguments.push(format!("{}={}", feed.as_str(), kafka.topic_of(feed)));
    }
    let examples: usize = Feed::ALL.map(|feed| examples_of(feed).len()).iter().sum();
    for language in ["java", "python"] {
        let summary = producers.run(language, &arguments);
        assert!(
            summary.contains(&format!(
                "{examples} of {examples} records produced and acknowledged"
            )),
            "{language}: {summary}"
        );
        for feed in Feed::ALL {
            let expected = format!("; {} to {}", examples_of(feed).len(), topic_of(feed));
            assert!(summary.contains(&expected), "{language}: {summary}");
        }
    }

    // On each topic: the feed's examples three times over (publish, Java,
    // Python), every one keyed by the pseudonym's text and all in the one
    // partition that key hashes to.
    let mut total = 0;
    for feed in Feed::ALL {
        let topic = topic_of(feed);
        let records = partitions_and_keys(kafka, &topic);
        assert_eq!(records.len(), 3 * examples_of(feed).len(), "{topic}");
        for (partition, key) in &records {
            assert_eq!(crate::text(key), pseudonym, "{topic}: the key");
            assert_eq!(
                *partition, records[0].0,
                "{topic}: one patient, one partition"
            );
        }
        total += records.len();
    }

    let environment = [("ICSFLOW__TOPICS__LAYOUT", layout)];
    let ingest = Role::start_with("ingest", kafka, &environment);
    let consumed = |body: &str| -> usize {
        body.lines()
            .filter(|line| {
                line.starts_with("icsflow_pipeline_consumed_records_total{role=\"ingest\"")
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as usize
    };
    eventually(
        "ingest consumed every record",
        Duration::from_secs(60),
        || consumed(&ingest.get("/metrics").1) >= total,
    );
    eventually(
        "every record on the journey topic",
        Duration::from_secs(60),
        || journey_events(kafka).len() >= total,
    );
    let metrics = ingest.get("/metrics").1;
    assert_eq!(consumed(&metrics), total, "{metrics}");
    assert!(
        !metrics.contains("icsflow_ingest_rejected_records_total{"),
        "a record was rejected:\n{metrics}"
    );
    assert!(read_whole_topic(kafka, &kafka.dead_letter).is_empty());
    let events = journey_events(kafka);
    assert_eq!(events.len(), total);
    for feed in Feed::ALL {
        let partner = partner_of(feed);
        let mut expected: Vec<String> = examples_of(feed)
            .iter()
            .flat_map(|line| {
                let event_id = line["event_id"].as_str().expect("event id");
                [
                    event_id.to_owned(),
                    event_id.to_owned(),
                    event_id.to_owned(),
                ]
            })
            .collect();
        let mut accepted: Vec<String> = events
            .iter()
            .filter(|event| event.feed() == feed)
            .map(|event| {
                assert_eq!(event.envelope.source_organisation.as_str(), partner);
                assert_eq!(event.envelope.patient.to_string(), pseudonym);
                event.envelope.event_id.to_string()
            })
            .collect();
        expected.sort();
        accepted.sort();
        assert_eq!(accepted, expected, "{feed:?}");
        // Counted as the partner's: its feed's freshness.
        let freshness = format!(
            "icsflow_ingest_last_event_timestamp_seconds{{feed=\"{}\",organisation=\"{partner}\"}}",
            feed.as_str()
        );
        assert!(metrics.contains(&freshness), "{freshness}:\n{metrics}");
    }
    assert_eq!(ingest.interrupt().code(), Some(0));
}

#[test]
fn java_and_python_examples_publish_to_the_shared_feed_topics_what_ingest_accepts() {
    partner_examples_reach_ingest(&broker_with_topics(), "shared");
}

#[test]
fn java_and_python_examples_publish_to_each_partners_own_topics_what_ingest_accepts() {
    partner_examples_reach_ingest(&broker_with_topics(), "per_partner");
}

/// The Java example's Kafka client is the test broker's version (`make
/// kafka` fetched its jars; the example uses them again).
#[test]
fn the_java_example_uses_the_test_brokers_kafka_version() {
    let version = |pom: &str| {
        let text = std::fs::read_to_string(crate::repository_root().join(pom)).expect("pom");
        let (_, rest) = text
            .split_once("<kafka.version>")
            .unwrap_or_else(|| panic!("{pom}: no kafka.version"));
        rest.split_once('<').expect("a value").0.trim().to_owned()
    };
    assert_eq!(
        version("examples/java/pom.xml"),
        icsflow_testkit::KAFKA_VERSION
    );
    assert_eq!(
        version("tests/kafka/pom.xml"),
        icsflow_testkit::KAFKA_VERSION
    );
}
