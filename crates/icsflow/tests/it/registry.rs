//! Records in Confluent framing, their schema ids resolved through a real
//! Confluent-compatible registry (Apicurio), and what ingest does when the
//! registry is down, slow, or refuses icsflow's credentials.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use icsflow_avro::{encode_confluent, encode_single_object, SchemaCatalogue};
use icsflow_core::{Event, Feed};
use icsflow_kafka::HEADER_REASON;
use icsflow_testkit::SchemaRegistry;

use crate::faults::{journey_events, read_whole_topic};
use crate::roles::{
    broker_with_topics, eventually, expected_gauge_lines, publish, recent_samples, sorted,
    wait_for_gauges, Role, TestKafka,
};

/// The current schema text of `feed`, as `schemas/` holds it.
fn schema_of(feed: Feed) -> &'static str {
    icsflow_avro::current_schema_file(feed).text
}

/// The events of `feed` as single-object records on the test's topic.
fn single_object_records<'a>(
    kafka: &'a TestKafka,
    events: &[Event],
    feed: Feed,
) -> Vec<(&'a str, Vec<u8>)> {
    let catalogue = SchemaCatalogue::embedded();
    events
        .iter()
        .filter(|event| event.feed() == feed)
        .map(|event| {
            (
                kafka.topic_of(feed),
                encode_single_object(&catalogue, event),
            )
        })
        .collect()
}

fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Ids resolved through Apicurio; an id it does not know is dead-lettered
/// as `unknown_schema`; with the registry stopped, records of an id not yet
/// cached are held (their partition paused) while other partitions flow,
/// and none is lost once it is back.
#[test]
fn confluent_records_resolve_through_a_real_registry_and_survive_its_outage() {
    let broker = broker_with_topics();
    let mut registry = SchemaRegistry::start();
    let ids: Vec<(Feed, u32)> = Feed::ALL
        .iter()
        .map(|feed| {
            let subject = format!("{}-value", broker.topic_of(*feed));
            (*feed, registry.register(&subject, schema_of(*feed)))
        })
        .collect();
    let id_of = |feed: Feed| ids.iter().find(|(known, _)| *known == feed).expect("id").1;
    let role = Role::start_with(
        "run",
        &broker,
        &[("ICSFLOW__SCHEMA_REGISTRY__URL", registry.url.as_str())],
    );
    let events = recent_samples();
    let confluent = |event: &Event| {
        (
            broker.topic_of(event.feed()),
            encode_confluent(event, id_of(event.feed())),
        )
    };

    // Discharge: resolved through the registry (and cached); one record
    // with an id the registry never gave.
    let mut records: Vec<(&str, Vec<u8>)> = events
        .iter()
        .filter(|event| event.feed() == Feed::Discharge)
        .map(confluent)
        .collect();
    records.push((
        broker.topic_of(Feed::Discharge),
        encode_confluent(&events[0], 4242),
    ));
    publish(&broker, &records);
    eventually(
        "the unknown id dead-lettered",
        Duration::from_secs(60),
        || !read_whole_topic(&broker, &broker.dead_letter).is_empty(),
    );
    let letters = read_whole_topic(&broker, &broker.dead_letter);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].header(HEADER_REASON), "unknown_schema");

    // The registry goes away: social care (Confluent, id not yet cached)
    // is held; primary care (single-object) flows meanwhile.
    registry.stop();
    let held: Vec<(&str, Vec<u8>)> = events
        .iter()
        .filter(|event| event.feed() == Feed::SocialCare)
        .map(confluent)
        .collect();
    let flowing = single_object_records(&broker, &events, Feed::PrimaryCare);
    publish(&broker, &held);
    publish(&broker, &flowing);
    let discharge_count = events
        .iter()
        .filter(|event| event.feed() == Feed::Discharge)
        .count();
    eventually(
        "primary care through while social care is held",
        Duration::from_secs(60),
        || journey_events(&broker).len() == discharge_count + flowing.len(),
    );
    eventually("the outage counted", Duration::from_secs(30), || {
        metric(
            &role.get("/metrics").1,
            "icsflow_ingest_registry_lookups_total{outcome=\"unavailable\"}",
        ) > 0.0
    });
    // Regression: records waited behind the held lookup while /readyz said
    // 200. Readiness says why now.
    let (status, body) = role.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("wait on the schema registry"), "{body}");
    // Regression: the lag of a held partition stayed at what it was when
    // it was paused (1 while 57 records waited): librdkafka fetches
    // nothing for a paused partition. Records published meanwhile count.
    let social_care_lag = |body: &str| -> f64 {
        body.lines()
            .filter(|line| {
                line.starts_with("icsflow_pipeline_consumer_lag_records{")
                    && line.contains(&format!("topic=\"{}\"", broker.topic_of(Feed::SocialCare)))
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let topic = broker.topic_of(Feed::SocialCare).to_owned();
    // Every social-care record waits (none has an outcome yet), so the lag
    // is the topic's end on the broker, before and after more arrive.
    let on_broker = || -> f64 {
        crate::roles::end_offsets(&broker, &topic)
            .into_iter()
            .sum::<i64>() as f64
    };
    eventually("the held partition's lag", Duration::from_secs(20), || {
        social_care_lag(&role.get("/metrics").1) == on_broker()
    });
    publish(&broker, &held);
    let started = std::time::Instant::now();
    loop {
        let body = role.get("/metrics").1;
        let end = on_broker();
        if end == (2 * held.len()) as f64 && social_care_lag(&body) == end {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the held partition's lag should be every record waiting, the topic's end on the broker ({end}):\n{}",
            body.lines()
                .filter(|line| line.starts_with("icsflow_pipeline_consumer_lag_records{"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    registry.restart();
    let expected = sorted(expected_gauge_lines(&events));
    wait_for_gauges(
        "every sample's gauges after the outage",
        &[&role],
        &expected,
    );
    assert_eq!(
        read_whole_topic(&broker, &broker.dead_letter).len(),
        1,
        "nothing else rejected"
    );
    eventually(
        "ready again once the registry answers",
        Duration::from_secs(30),
        || role.get("/readyz").0 == 200,
    );
    assert_eq!(role.interrupt().code(), Some(0));
}

/// A registry that answers every lookup after `delay`: 401 for id 401, 404
/// for the rest.
fn slow_registry(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok()
                    && header != "\r\n"
                    && !header.is_empty()
                {
                    header.clear();
                }
                std::thread::sleep(delay);
                let status = if request_line.contains("/schemas/ids/401 ") {
                    "401 Unauthorized"
                } else {
                    "404 Not Found"
                };
                let body = r#"{"error_code":40403,"message":"no"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    address
}

/// Regressions: with 20 unknown ids each answered after 4.5 s, valid
/// records on other partitions waited 96 s; an id answered 401 was retried
/// for ever while `/readyz` said 200 and nothing said why. (A stub answers
/// here: a real registry cannot be made this slow or to refuse.)
#[test]
fn slow_lookups_hold_only_their_partition_and_a_refusal_is_loud() {
    let broker = broker_with_topics();
    let registry = slow_registry(Duration::from_millis(4500));
    let role = Role::start_with(
        "ingest",
        &broker,
        &[
            ("ICSFLOW__SCHEMA_REGISTRY__URL", registry.as_str()),
            ("ICSFLOW__SCHEMA_REGISTRY__TIMEOUT_MS", "10000"),
        ],
    );
    eventually("ingest ready", Duration::from_secs(60), || {
        role.get("/readyz").0 == 200
    });
    let events = recent_samples();
    let discharge = events
        .iter()
        .find(|event| event.feed() == Feed::Discharge)
        .expect("discharge");
    let slow: Vec<(&str, Vec<u8>)> = (1000..1020)
        .map(|id| {
            (
                broker.topic_of(Feed::Discharge),
                encode_confluent(discharge, id),
            )
        })
        .collect();
    publish(&broker, &slow);
    std::thread::sleep(Duration::from_millis(500));
    let fine = single_object_records(&broker, &events, Feed::SocialCare);
    let published = Instant::now();
    publish(&broker, &fine);
    eventually("social care through", Duration::from_secs(60), || {
        journey_events(&broker).len() >= fine.len()
    });
    let waited = published.elapsed();
    println!("social care through {waited:?} after publishing, with 20 lookups of 4.5 s pending");
    assert!(
        waited < Duration::from_secs(4),
        "records of another partition waited {waited:?} behind slow lookups"
    );
    // Every slow id is answered 404 in the end: dead-lettered, none lost.
    eventually(
        "the unknown ids dead-lettered",
        Duration::from_secs(150),
        || read_whole_topic(&broker, &broker.dead_letter).len() == slow.len(),
    );

    publish(
        &broker,
        &[(
            broker.topic_of(Feed::Discharge),
            encode_confluent(discharge, 401),
        )],
    );
    eventually("not ready after a refusal", Duration::from_secs(30), || {
        role.get("/readyz").0 == 503
    });
    let (_, body) = role.get("/readyz");
    assert!(
        body.contains("the schema registry refuses icsflow's credentials"),
        "{body}"
    );
    let (_, metrics) = role.get("/metrics");
    assert!(metrics.contains("icsflow_ready 0"), "{metrics}");
    assert!(
        metric(
            &metrics,
            "icsflow_ingest_registry_lookups_total{outcome=\"refused\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        read_whole_topic(&broker, &broker.dead_letter).len(),
        slow.len(),
        "a refused lookup is not the record's fault"
    );
    let log_path = role.log.clone();
    assert_eq!(role.interrupt().code(), Some(0));
    let log = std::fs::read_to_string(log_path).expect("log");
    assert!(
        log.contains("the schema registry refuses icsflow's credentials"),
        "{log}"
    );
}

/// `publish --framing confluent` without an id registers the feed's schema
/// under `<topic>-value` and frames every record with the id the registry
/// gives; the same schema registered again gets the same id.
#[test]
fn publish_registers_the_feed_schema_and_uses_its_id() {
    let broker = broker_with_topics();
    let registry = SchemaRegistry::start();
    let examples = std::fs::read_to_string(
        crate::repository_root().join("schemas/examples/social_care.jsonl"),
    )
    .expect("examples");
    let lines = examples.lines().count();
    let folder =
        std::env::temp_dir().join(format!("icsflow-publish-registry-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let file = folder.join("social_care.jsonl");
    std::fs::write(&file, &examples).expect("written");
    let output = crate::icsflow(&[
        "publish",
        "--feed",
        "social_care",
        "--framing",
        "confluent",
        "--schema-registry",
        &registry.url,
        "--broker",
        &broker.address,
        "--topic",
        broker.topic_of(Feed::SocialCare),
        file.to_str().expect("path"),
    ]);
    let errors = crate::text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{errors}");
    let subject = format!("{}-value", broker.topic_of(Feed::SocialCare));
    let id = registry.register(&subject, schema_of(Feed::SocialCare));
    assert!(
        errors.contains(&format!(
            "the social_care schema is id {id} under subject {subject}"
        )),
        "{errors}"
    );
    let records = read_whole_topic(&broker, broker.topic_of(Feed::SocialCare));
    assert_eq!(records.len(), lines);
    for record in &records {
        assert_eq!(record.payload[0], 0, "Confluent magic byte");
        assert_eq!(
            u32::from_be_bytes(record.payload[1..5].try_into().expect("id")),
            id
        );
    }
    // Without an id and without a registry: a usage error.
    let output = crate::icsflow(&[
        "publish",
        "--feed",
        "social_care",
        "--framing",
        "confluent",
        "--dry-run",
        file.to_str().expect("path"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(64),
        "{}",
        crate::text(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&folder);
}

/// A registry behind HTTPS and basic authentication (a generated
/// certificate, trusted through `schema_registry.ca_file`): publish
/// registers through it and ingest resolves ids through it; a wrong
/// password is a refusal that names the credentials, never quotes them;
/// without the CA the certificate is not trusted.
#[test]
fn the_registry_is_reached_over_https_with_credentials() {
    let broker = broker_with_topics();
    let registry = SchemaRegistry::start();
    // "rvw:s3cret-for-the-test" in base64.
    let gateway = icsflow_testkit::TlsGateway::start(
        &registry.address(),
        "Basic cnZ3OnMzY3JldC1mb3ItdGhlLXRlc3Q=",
    );
    let url = format!("{}/apis/ccompat/v7", gateway.url);
    let folder = broker.folder().to_path_buf();
    let ca_file = folder.join("registry-ca.pem");
    std::fs::write(&ca_file, &gateway.certificate_pem).expect("CA written");
    let examples = std::fs::read_to_string(
        crate::repository_root().join("schemas/examples/social_care.jsonl"),
    )
    .expect("examples");
    let topic = broker.topic_of(Feed::SocialCare).to_owned();
    let environment = |password: &str, ca: bool| -> Vec<(String, String)> {
        let mut variables = vec![
            ("ICSFLOW__SCHEMA_REGISTRY__URL".to_owned(), url.clone()),
            (
                "ICSFLOW__SCHEMA_REGISTRY__USERNAME".to_owned(),
                "rvw".to_owned(),
            ),
            (
                "ICSFLOW__SCHEMA_REGISTRY__PASSWORD".to_owned(),
                password.to_owned(),
            ),
        ];
        if ca {
            variables.push((
                "ICSFLOW__SCHEMA_REGISTRY__CA_FILE".to_owned(),
                ca_file.display().to_string(),
            ));
        }
        variables
    };
    let publish_with = |password: &str, ca: bool| {
        crate::icsflow_with_input(
            &environment(password, ca),
            &[
                "publish",
                "--feed",
                "social_care",
                "--framing",
                "confluent",
                "-b",
                &broker.address,
                "--topic",
                &topic,
                "-",
            ],
            &examples,
        )
    };

    // A wrong password: refused, said, never quoted; nothing produced.
    let refused = publish_with("not-the-password", true);
    let errors = crate::text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{errors}");
    assert!(errors.contains("HTTP 401"), "{errors}");
    assert!(!errors.contains("not-the-password"), "{errors}");
    assert!(gateway.refused() >= 1);
    // The certificate not trusted without the CA file: unreachable, retry.
    let untrusted = publish_with("s3cret-for-the-test", false);
    let errors = crate::text(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(75), "{errors}");
    assert!(read_whole_topic(&broker, &topic).is_empty());

    // The right credentials and CA: registered, produced, and resolved by
    // ingest through the same gateway.
    let published = publish_with("s3cret-for-the-test", true);
    assert_eq!(
        published.status.code(),
        Some(0),
        "{}",
        crate::text(&published.stderr)
    );
    let records = read_whole_topic(&broker, &topic);
    assert_eq!(records.len(), examples.lines().count());
    assert!(records.iter().all(|record| record.payload[0] == 0));
    let role_environment = environment("s3cret-for-the-test", true);
    let role_environment: Vec<(&str, &str)> = role_environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let ingest = Role::start_with("ingest", &broker, &role_environment);
    eventually(
        "every Confluent record resolved over HTTPS",
        Duration::from_secs(60),
        || journey_events(&broker).len() == records.len(),
    );
    assert!(read_whole_topic(&broker, &broker.dead_letter).is_empty());
    let body = ingest.get("/metrics").1;
    assert!(
        metric(
            &body,
            "icsflow_ingest_registry_lookups_total{outcome=\"answered\"}"
        ) >= 1.0,
        "{body}"
    );
    let log = std::fs::read_to_string(&ingest.log).unwrap_or_default();
    assert!(!log.contains("s3cret-for-the-test"), "{log}");
}
