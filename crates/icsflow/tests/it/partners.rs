//! Partner isolation on a broker that authenticates and authorizes, as an
//! ICS runs one: SASL/SCRAM users, Kafka's StandardAuthorizer, per-partner
//! topics, and the ACLs `icsflow acls` renders applied with Kafka's own
//! `kafka-acls` tool. Partners and roles each run as their own principal.

use std::process::{Command, Output};
use std::time::Duration;

use icsflow_avro::encode_json;
use icsflow_core::{EventId, Feed, OdsCode, RejectReason};
use icsflow_kafka::{HEADER_ORGANISATION, HEADER_REASON, HEADER_TOPIC};

use crate::faults::{
    assert_truth_reached, date_days_ago, finish, journey_events, read_whole_topic, truth_of,
};
use crate::roles::{
    broker_with_topics, eventually, expected_gauge_lines, recent_samples,
    secured_broker_with_topics, sorted, wait_for_gauges, Role, TestKafka,
};

/// (user, password) of every principal of the test ICS.
const USERS: [(&str, &str); 5] = [
    ("partner-rvw", "rvw-secret"),
    ("partner-rtd", "rtd-secret"),
    ("icsflow-ingest", "ingest-secret"),
    ("icsflow-join", "join-secret"),
    ("icsflow-outsider", "outsider-secret"),
];

/// Two trusts of one ICS, and the roles' principals.
const REFERENCE: &str = r#"
[roles]
ingest_principal = "User:icsflow-ingest"
join_principal = "User:icsflow-join"

[cadence.acute_trust]
quiet_after_minutes = 120
office_hours_only = false
[cadence.local_authority]
quiet_after_minutes = 240
office_hours_only = true
[cadence.primary_care]
quiet_after_minutes = 480
office_hours_only = true

[[places]]
code = "E06000047"
name = "County Durham"

[[partners]]
code = "RVW"
name = "North Tees and Hartlepool NHS Foundation Trust"
kind = "acute_trust"
place = "E06000047"
principal = "User:partner-rvw"

[[partners]]
code = "RTD"
name = "The Newcastle upon Tyne Hospitals NHS Foundation Trust"
kind = "acute_trust"
place = "E06000047"
principal = "User:partner-rtd"
"#;

/// The environment that points a role or tool at the SASL listener as
/// `user`, with the per-partner layout, the reference data and
/// exactly-once ingest (so that the transactional-id grant is exercised).
fn as_user(kafka: &TestKafka, reference: &str, user: &str) -> Vec<(String, String)> {
    let password = USERS
        .iter()
        .find(|(name, _)| *name == user)
        .map(|(_, password)| *password)
        .expect("a known user");
    [
        (
            "ICSFLOW__KAFKA__BOOTSTRAP_SERVERS",
            kafka.sasl_address.clone().expect("a SASL listener"),
        ),
        (
            "ICSFLOW__KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL",
            "SASL_PLAINTEXT".to_owned(),
        ),
        (
            "ICSFLOW__KAFKA__LIBRDKAFKA__SASL_MECHANISMS",
            "SCRAM-SHA-512".to_owned(),
        ),
        ("ICSFLOW__KAFKA__LIBRDKAFKA__SASL_USERNAME", user.to_owned()),
        (
            "ICSFLOW__KAFKA__LIBRDKAFKA__SASL_PASSWORD",
            password.to_owned(),
        ),
        ("ICSFLOW__TOPICS__LAYOUT", "per_partner".to_owned()),
        ("ICSFLOW__REFERENCE__FILE", reference.to_owned()),
        ("ICSFLOW__INGEST__DELIVERY", "exactly_once".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// `icsflow acls` as `user` would run it (the settings are the same for
/// every principal).
fn acls(environment: &[(String, String)], arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .arg("acls")
        .args(arguments)
        .output()
        .expect("icsflow runs")
}

/// `icsflow publish` of discharge JSON lines to `topic` as `user`.
fn publish_as(kafka: &TestKafka, reference: &str, user: &str, topic: &str, lines: &str) -> Output {
    crate::icsflow_with_input(
        &as_user(kafka, reference, user),
        &["publish", "--feed", "discharge", "--topic", topic, "-"],
        lines,
    )
}

fn borrowed(environment: &[(String, String)]) -> Vec<(&str, &str)> {
    environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn on_per_partner_topics_each_partner_writes_only_in_its_own_name() {
    let kafka = secured_broker_with_topics(&USERS);
    let own_topic = kafka.topic_of(Feed::Discharge).to_owned() + ".RVW";
    let other_topic = kafka.topic_of(Feed::Discharge).to_owned() + ".RTD";
    kafka.create_topics(&[(own_topic.as_str(), 2), (other_topic.as_str(), 2)]);
    let reference = kafka.folder().join("reference.toml");
    std::fs::write(&reference, REFERENCE).expect("reference data written");
    let reference = reference.display().to_string();
    let config = kafka.config_file();
    let config = config.to_str().expect("a UTF-8 path");

    // The ACLs, rendered and applied with Kafka's own tool on the
    // administrator's listener.
    let rendered = acls(
        &as_user(&kafka, &reference, "icsflow-ingest"),
        &["--config", config, "-b", &kafka.address],
    );
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    let script = text(&rendered.stdout);
    let commands: Vec<&str> = script
        .lines()
        .filter(|line| line.starts_with("kafka-acls.sh "))
        .collect();
    assert!(commands.len() >= 8, "{script}");
    for command in &commands {
        let arguments: Vec<&str> = command.split_whitespace().skip(1).collect();
        kafka.kafka_acls(&arguments);
    }
    let listed = kafka.kafka_acls(&["--bootstrap-server", &kafka.address, "--list"]);
    assert!(
        listed.contains("User:partner-rvw") && listed.contains(&own_topic),
        "{listed}"
    );

    // RVW's discharge events, as its integration engine would send them.
    let events: Vec<_> = recent_samples()
        .into_iter()
        .filter(|event| event.feed() == Feed::Discharge)
        .collect();
    let lines: String = events
        .iter()
        .map(|event| encode_json(event) + "\n")
        .collect();

    // Into RTD's topic: refused by the broker, said clearly, nothing there.
    let refused = publish_as(&kafka, &reference, "partner-rvw", &other_topic, &lines);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(77), "{stderr}");
    for expected in [
        other_topic.as_str(),
        "User:partner-rvw",
        "ask the ICS's Kafka administrators to grant",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in: {stderr}"
        );
    }
    assert!(read_whole_topic(&kafka, &other_topic).is_empty());

    // Into its own topic: taken.
    let published = publish_as(&kafka, &reference, "partner-rvw", &own_topic, &lines);
    assert_eq!(
        published.status.code(),
        Some(0),
        "{}",
        text(&published.stderr)
    );

    // RTD, on its own topic: one record in RVW's name (the broker cannot
    // tell; ingest must) and one from one of its own sites.
    let mut in_rvw_name = events[0];
    in_rvw_name.envelope.event_id = EventId::from_u128(0xfeed_0001);
    in_rvw_name.envelope.patient = icsflow_core::sample_pseudonym(7);
    let mut from_a_site = events[0];
    from_a_site.envelope.event_id = EventId::from_u128(0xfeed_0002);
    from_a_site.envelope.patient = icsflow_core::sample_pseudonym(8);
    from_a_site.envelope.source_organisation =
        OdsCode::parse("test", "RTD01").expect("a site code");
    let rtd_lines = format!(
        "{}\n{}\n",
        encode_json(&in_rvw_name),
        encode_json(&from_a_site)
    );
    let published = publish_as(&kafka, &reference, "partner-rtd", &other_topic, &rtd_lines);
    assert_eq!(
        published.status.code(),
        Some(0),
        "{}",
        text(&published.stderr)
    );

    // A principal with no grant cannot write any partner topic.
    let outsider = publish_as(&kafka, &reference, "icsflow-outsider", &own_topic, &lines);
    assert_eq!(
        outsider.status.code(),
        Some(77),
        "{}",
        text(&outsider.stderr)
    );

    // The roles, each as its own restricted principal.
    let ingest_environment = as_user(&kafka, &reference, "icsflow-ingest");
    let join_environment = as_user(&kafka, &reference, "icsflow-join");
    let ingest = Role::start_with("ingest", &kafka, &borrowed(&ingest_environment));
    let join = Role::start_with("join", &kafka, &borrowed(&join_environment));

    let mut accepted = events.clone();
    accepted.push(from_a_site);
    eventually(
        "the mismatch dead-lettered",
        Duration::from_secs(60),
        || !read_whole_topic(&kafka, &kafka.dead_letter).is_empty(),
    );
    let dead_letters = read_whole_topic(&kafka, &kafka.dead_letter);
    assert_eq!(dead_letters.len(), 1);
    assert_eq!(
        dead_letters[0].header(HEADER_REASON),
        RejectReason::OrganisationMismatch.as_str()
    );
    // Counted against the partner whose topic it came from, not the one
    // it named.
    assert_eq!(dead_letters[0].header(HEADER_ORGANISATION), "RTD");
    assert_eq!(dead_letters[0].header(HEADER_TOPIC), other_topic);
    eventually(
        "every accepted event on the journey topic",
        Duration::from_secs(60),
        || journey_events(&kafka).len() >= accepted.len(),
    );
    assert_eq!(journey_events(&kafka).len(), accepted.len());
    wait_for_gauges(
        "the gauges of RVW's events and RTD's site's",
        &[&join],
        &sorted(expected_gauge_lines(&accepted)),
    );
    let metrics = ingest.get("/metrics").1;
    assert!(
        metrics.lines().any(|line| line
            == "icsflow_ingest_rejected_records_total{feed=\"discharge\",organisation=\"RTD\",reason=\"organisation_mismatch\"} 1"),
        "{metrics}"
    );
    // Both ready (librdkafka's first statistics, every 5 s, show the
    // broker reachable through SASL).
    for role in [&ingest, &join] {
        eventually("both roles ready", Duration::from_secs(30), || {
            role.get("/readyz").0 == 200
        });
    }
}

/// The simulator publishes each record to its partner's own topic (by the
/// demo ICS's reference data), and ingest, reading them by pattern, takes
/// every good one and dead-letters every bad one, none as a mismatch.
#[test]
fn the_simulator_and_ingest_follow_the_per_partner_layout_of_the_reference_data() {
    let kafka = broker_with_topics();
    let reference_file = crate::repository_root().join("deploy/config/reference.toml");
    let reference = icsflow::reference::load(&reference_file).expect("the demo reference data");
    let topics: Vec<(String, Feed)> = reference
        .partners()
        .iter()
        .map(|partner| {
            let topic = format!("{}.{}", kafka.topic_of(partner.feed()), partner.code);
            (topic, partner.feed())
        })
        .collect();
    kafka.create_topics(
        &topics
            .iter()
            .map(|(topic, _)| (topic.as_str(), 1))
            .collect::<Vec<_>>(),
    );
    let environment = [
        ("ICSFLOW__TOPICS__LAYOUT", "per_partner"),
        (
            "ICSFLOW__REFERENCE__FILE",
            reference_file.to_str().expect("a UTF-8 path"),
        ),
    ];
    finish(
        Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .envs(environment)
            .args(["simulate", "--seed", "31", "-b", &kafka.address, "--config"])
            .arg(kafka.config_file())
            // Three days, so that a weekend (fewer admissions and
            // discharges) never leaves it short of a real workload.
            .args(["--start", &date_days_ago(4), "--days", "3"])
            .args(["--bad-record-rate", "0.05"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("icsflow simulate starts"),
    );
    // Nothing on the shared topics; something on every simulated trust's.
    for (topic, _) in kafka.partner_topics() {
        assert!(read_whole_topic(&kafka, topic).is_empty(), "{topic}");
    }
    for code in ["RXP", "RTD", "RR7"] {
        let topic = format!("{}.{code}", kafka.topic_of(Feed::Discharge));
        assert!(!read_whole_topic(&kafka, &topic).is_empty(), "{topic}");
    }
    let run = Role::start_with("run", &kafka, &environment);
    let truth = truth_of(&kafka, &topics);
    assert_truth_reached(
        "the simulated ICS on per-partner topics",
        &kafka,
        &[&run],
        &truth,
    );
    assert!(!run
        .get("/metrics")
        .1
        .contains("reason=\"organisation_mismatch\""));
}

/// `icsflow rejections` reports one partner's dead letters only: reason,
/// field, coordinates and event id, nothing for a record that may hold an
/// NHS number but its reason, and never another partner's or nobody's.
#[test]
fn rejections_reports_one_partners_dead_letters_and_nothing_of_anyone_elses() {
    let kafka = broker_with_topics();
    let catalogue = icsflow_avro::SchemaCatalogue::embedded();
    let events = recent_samples();
    let rvw = events
        .iter()
        .find(|event| event.envelope.source_organisation.as_str() == "RVW")
        .copied()
        .expect("an RVW event");
    let other = events
        .iter()
        .find(|event| event.envelope.source_organisation.as_str() != "RVW")
        .copied()
        .expect("another organisation's event");
    let altered = |event: &icsflow_core::Event, alteration| {
        icsflow_avro::encode_altered(
            &catalogue,
            event,
            icsflow_avro::Framing::SingleObject,
            alteration,
        )
    };
    let discharge = kafka.topic_of(Feed::Discharge).to_owned();
    let other_topic = kafka.topic_of(other.feed()).to_owned();
    crate::roles::publish(
        &kafka,
        &[
            (
                discharge.as_str(),
                altered(&rvw, icsflow_avro::Alteration::Place("E07000001")),
            ),
            (
                discharge.as_str(),
                altered(
                    &rvw,
                    icsflow_avro::Alteration::EpisodeReference("9990000018"),
                ),
            ),
            (
                other_topic.as_str(),
                altered(&other, icsflow_avro::Alteration::Place("E07000001")),
            ),
            (discharge.as_str(), b"\xc3\x01garbage".to_vec()),
        ],
    );
    let ingest = Role::start("ingest", &kafka);
    eventually("four dead letters", Duration::from_secs(60), || {
        read_whole_topic(&kafka, &kafka.dead_letter).len() == 4
    });
    drop(ingest);

    let config = kafka.config_file();
    let report = |format: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .args(["rejections", "--organisation", "RVW", "--since", "1h"])
            .args(["--format", format, "--config"])
            .arg(&config)
            .output()
            .expect("icsflow runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let lines: Vec<serde_json::Value> = report("jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let invalid = lines
        .iter()
        .find(|line| line["reason"] == "invalid_field")
        .expect("the invalid place");
    assert_eq!(invalid["field"], "place");
    assert_eq!(invalid["organisation"], "RVW");
    assert_eq!(invalid["topic"], discharge.as_str());
    assert_eq!(
        invalid["event_id"],
        serde_json::json!(rvw.envelope.event_id.to_string())
    );
    let identifiable = lines
        .iter()
        .find(|line| line["reason"] == "identifiable_data")
        .expect("the NHS number");
    // A dead letter copies nothing of the record: the event id icsflow
    // read and validated as a UUID is all it names, even for this one.
    assert_eq!(identifiable["value_withheld"], false);
    assert_eq!(
        identifiable["event_id"],
        serde_json::json!(rvw.envelope.event_id.to_string())
    );

    let table = report("table");
    assert!(table.contains("Rejections of RVW"), "{table}");
    assert!(table.contains("invalid_field            place"), "{table}");
    assert!(!table.contains("9990000018"), "{table}");
    assert!(
        !table.contains(&other.envelope.event_id.to_string()),
        "{table}"
    );
}
