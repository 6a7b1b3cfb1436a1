//! The partner tools as a partner runs them: pseudonymise, simulate and
//! publish, through the built binary.

use std::process::Output;
use std::time::Duration;

use icsflow_avro::{EventDecoder, SchemaCatalogue};
use icsflow_core::{Event, Feed, TimestampPolicy};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;

use crate::{icsflow, repository_root, text};
use icsflow_testkit::Broker;

fn scratch_folder(name: &str) -> std::path::PathBuf {
    let folder = std::env::temp_dir().join(format!("icsflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("scratch folder");
    folder
}

/// Runs icsflow with `input` on standard input.
fn icsflow_with_input(arguments: &[&str], input: &str) -> Output {
    crate::icsflow_with_input(&[], arguments, input)
}

const KEY: &str = "icsflow test key, 32 bytes long!";
/// `hmac.new(KEY, b"9434765919", hashlib.sha256).hexdigest()` in Python.
const PSEUDONYM_9434765919: &str =
    "600917ec2133070637c9f9f8c4fc63a4f25e98668ef180995d98175b449e262f";
/// The same for 9990000018 (a 999-range test number).
const PSEUDONYM_9990000018: &str =
    "8163695e93b1bed1486f4949b52793fecf9d425ae563b9f9f818bc1420cfed42";

#[test]
fn pseudonymise_matches_fixed_vectors_and_refuses_bad_check_digits_by_line() {
    let folder = scratch_folder("pseudonymise");
    let key_file = folder.join("ics.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key written");
    let key_arguments = [
        "pseudonymise",
        "--key-file",
        key_file.to_str().expect("path"),
    ];

    let output = icsflow_with_input(&key_arguments, "9434765919\n943 476 5919\n9990000018\n");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!("{PSEUDONYM_9434765919}\n{PSEUDONYM_9434765919}\n{PSEUDONYM_9990000018}\n")
    );

    // Line 2 has a wrong check digit, line 3 too few digits.
    let output = icsflow_with_input(&key_arguments, "9434765919\n9434765918\n12345\n");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), format!("{PSEUDONYM_9434765919}\n"));
    let errors = text(&output.stderr);
    assert!(
        errors.contains("line 2: not an NHS number: the check digit"),
        "{errors}"
    );
    assert!(
        errors.contains("line 3: not an NHS number: it must have ten digits"),
        "{errors}"
    );
    assert!(
        !errors.contains("9434765918") && !errors.contains(KEY),
        "{errors}"
    );

    let mut csv_arguments = key_arguments.to_vec();
    csv_arguments.extend(["--column", "nhs_number", "--keep", "ward,note"]);
    let output = icsflow_with_input(
        &csv_arguments,
        "ward,nhs_number,note\n12,943 476 5919,\"bay 3, bed 2\"\n",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!("ward,patient_pseudonym,note\n12,{PSEUDONYM_9434765919},\"bay 3, bed 2\"\n")
    );

    std::fs::write(&key_file, "too short").expect("key written");
    let output = icsflow_with_input(&key_arguments, "9434765919\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("at least 32"));
    assert!(!text(&output.stderr).contains("too short"));
}

fn simulate_to(folder: &std::path::Path, seed: &str) -> Vec<String> {
    simulate_with(folder, seed, &[])
}

fn simulate_with(folder: &std::path::Path, seed: &str, extra: &[&str]) -> Vec<String> {
    let mut arguments = vec![
        "simulate",
        "--seed",
        seed,
        "--days",
        "5",
        "--start",
        "2026-01-05",
        "--output-dir",
        folder.to_str().expect("path"),
    ];
    arguments.extend_from_slice(extra);
    let output = icsflow(&arguments);
    assert!(output.status.success(), "{}", text(&output.stderr));
    Feed::ALL
        .iter()
        .map(|feed| {
            std::fs::read_to_string(folder.join(format!("{}.jsonl", feed.as_str())))
                .expect("feed file")
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_files_and_publish_accepts_all_but_the_bad_lines() {
    let folder = scratch_folder("simulate");
    let first = simulate_to(&folder.join("first"), "42");
    let again = simulate_to(&folder.join("again"), "42");
    let other = simulate_to(&folder.join("other"), "43");
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(first.iter().all(|lines| lines.lines().count() > 10));

    // Every line the simulator meant to be bad is refused, and only those.
    let discharge = folder.join("first/discharge.jsonl");
    let output = icsflow(&[
        "publish",
        "--feed",
        "discharge",
        "--dry-run",
        discharge.to_str().expect("path"),
    ]);
    let errors = text(&output.stderr);
    let refused = errors
        .lines()
        .filter(|line| line.starts_with("line "))
        .count();
    assert!(refused > 0, "{errors}");
    assert_eq!(output.status.code(), Some(1), "{errors}");
    let total = first[0].lines().count();
    assert!(
        errors.contains(&format!(
            "{total} line(s) read: {} valid (dry run, nothing produced), {refused} refused",
            total - refused
        )),
        "{errors}"
    );
}

/// The values of one JSON field, in line order.
fn field_values(lines: &str, field: &str) -> Vec<String> {
    lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|record| record[field].to_string())
        .collect()
}

#[test]
fn an_ics_key_changes_the_pseudonyms_and_nothing_else() {
    let folder = scratch_folder("simulate-key");
    let key_file = folder.join("ics.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key written");
    let key = ["--key-file", key_file.to_str().expect("path")];
    let plain = simulate_to(&folder.join("plain"), "7");
    let keyed = simulate_with(&folder.join("keyed"), "7", &key);
    let again = simulate_with(&folder.join("again"), "7", &key);
    assert_eq!(keyed, again);
    for (plain, keyed) in plain.iter().zip(&keyed) {
        assert_eq!(plain.lines().count(), keyed.lines().count());
        assert_eq!(
            field_values(plain, "event_id"),
            field_values(keyed, "event_id")
        );
        let plain_pseudonyms = field_values(plain, "patient_pseudonym");
        let keyed_pseudonyms = field_values(keyed, "patient_pseudonym");
        assert!(!plain_pseudonyms.is_empty());
        assert!(plain_pseudonyms
            .iter()
            .zip(&keyed_pseudonyms)
            .all(|(plain, keyed)| plain != keyed));
    }
}

#[test]
fn every_example_is_accepted_and_every_event_type_has_one() {
    let mut event_types = 0;
    for feed in Feed::ALL {
        let path = repository_root().join(format!("schemas/examples/{}.jsonl", feed.as_str()));
        let output = icsflow(&[
            "publish",
            "--feed",
            feed.as_str(),
            "--dry-run",
            path.to_str().expect("path"),
        ]);
        assert!(output.status.success(), "{feed}: {}", text(&output.stderr));
        event_types += std::fs::read_to_string(&path)
            .expect("examples")
            .lines()
            .count();
    }
    // 7 discharge, 5 social care and 5 primary care event types; the
    // discharge examples add a correction and a cancellation.
    assert!(event_types >= 17, "{event_types}");
}

/// Reads every record of a one-partition topic.
fn read_topic(broker: &Broker, topic: &str, expected: usize) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", icsflow_testkit::unique_name("read-back"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut payloads = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Poll past the expected count for a while, to see any extra record.
    let mut quiet_polls = 0;
    while std::time::Instant::now() < deadline && quiet_polls < 10 {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => payloads.push(message.payload().unwrap_or_default().to_vec()),
            _ if payloads.len() >= expected => quiet_polls += 1,
            _ => {}
        }
    }
    payloads
}

#[test]
fn publish_produces_exactly_the_good_lines_and_reports_the_bad_ones() {
    let broker = Broker::shared();
    let topic = icsflow_testkit::unique_name("publish.discharge");
    broker.create_topic(&topic, 1);
    let examples = discharge_examples();
    let good: Vec<&str> = examples.lines().collect();
    let with_nhs_number = with_episode_reference(good[1], "9434765919");
    let cut_short = &good[2][..good[2].len() / 2];
    let unknown_field = good[3].replacen('{', "{\"ward\":\"12\",", 1);
    let lines = [
        good[0],
        &with_nhs_number,
        good[1],
        cut_short,
        good[2],
        &unknown_field,
        good[3],
        "",
        good[4],
    ];
    let folder = scratch_folder("publish");
    let file = folder.join("mixed.jsonl");
    std::fs::write(&file, lines.join("\n")).expect("file written");

    let output = icsflow(&[
        "publish",
        "--feed",
        "discharge",
        "--broker",
        &broker.address,
        "--topic",
        &topic,
        file.to_str().expect("path"),
    ]);
    let errors = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{errors}");
    assert!(errors.contains("line 2: identifiable_data"), "{errors}");
    assert!(errors.contains("line 4: malformed"), "{errors}");
    assert!(
        errors.contains("line 6: malformed") && errors.contains("ward"),
        "{errors}"
    );
    assert!(!errors.contains("9434765919"), "{errors}");
    assert!(
        errors.contains(&format!("8 line(s) read: 5 produced to {topic}, 3 refused")),
        "{errors}"
    );

    let decoder = EventDecoder::new(std::sync::Arc::new(SchemaCatalogue::embedded()));
    let policy = TimestampPolicy::without_clock();
    let produced: Vec<Event> = read_topic(broker, &topic, 5)
        .iter()
        .map(|payload| decoder.decode(payload, &policy).expect("a valid record"))
        .collect();
    let expected: Vec<Event> = good[..5]
        .iter()
        .map(|line| icsflow_avro::decode_json(Feed::Discharge, line, &policy).expect("example"))
        .collect();
    assert_eq!(produced, expected);
}

/// Regressions: publish stopped at a line that was not UTF-8 (lines after
/// it unread, no summary), refused a byte-order mark on line 1, and passed
/// NHS numbers with letters glued to them.
#[test]
fn publish_reads_past_a_non_utf8_line_takes_a_byte_order_mark_and_refuses_glued_numbers() {
    let examples =
        std::fs::read_to_string(repository_root().join("schemas/examples/discharge.jsonl"))
            .expect("examples");
    let good: Vec<&str> = examples.lines().collect();
    let delay = good
        .iter()
        .find(|line| line.contains("\"reason_code\":\"CAP_P1_HOME_SOCIAL_CARE\""))
        .expect("a delay reason example");
    let glued = |text: &str| delay.replace("CAP_P1_HOME_SOCIAL_CARE", text).into_bytes();
    let mut input: Vec<u8> = b"\xef\xbb\xbf".to_vec();
    input.extend_from_slice(good[0].as_bytes());
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"{\"caf\xe9\": 1}\n");
    for text in [
        "NHS9434765919",
        "ID9434765919",
        "9434765919X",
        "943 476 5919",
        "943-476-5919",
    ] {
        input.extend(glued(text));
        input.push(b'\n');
    }
    input.extend_from_slice(good[1].as_bytes());
    input.push(b'\n');
    let folder = scratch_folder("publish-bytes");
    let file = folder.join("bytes.jsonl");
    std::fs::write(&file, &input).expect("file written");
    let output = icsflow(&[
        "publish",
        "--feed",
        "discharge",
        "--dry-run",
        file.to_str().expect("path"),
    ]);
    let errors = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{errors}");
    assert!(!errors.contains("line 1:"), "the byte-order mark: {errors}");
    assert!(
        errors.contains("line 2: malformed: the line is not UTF-8"),
        "{errors}"
    );
    for number in 3..=7 {
        assert!(
            errors.contains(&format!("line {number}: identifiable_data")),
            "line {number}: {errors}"
        );
    }
    assert!(
        !errors.contains("9434765919") && !errors.contains("943 476"),
        "{errors}"
    );
    assert!(
        errors.contains("8 line(s) read: 2 valid (dry run, nothing produced), 6 refused"),
        "{errors}"
    );
}

/// `icsflow pseudonymise` with the test key (in a scratch folder named
/// `folder`) and these flags, given `input`.
fn pseudonymise_with_key(folder: &str) -> impl Fn(&[&str], &str) -> Output {
    let key_file = scratch_folder(folder).join("ics.key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key written");
    move |extra: &[&str], input: &str| {
        let mut arguments = vec![
            "pseudonymise",
            "--key-file",
            key_file.to_str().expect("path"),
        ];
        arguments.extend_from_slice(extra);
        icsflow_with_input(&arguments, input)
    }
}

/// Regressions: a quoted field with a line break split a record in two and
/// wrote an NHS number in clear; a CSV without a header row lost its first
/// record as the header (exit 0). Excel's byte-order mark and `;` or tab
/// separators are read.
#[test]
fn pseudonymise_reads_csv_as_rfc_4180_and_refuses_a_header_that_is_data() {
    let with = pseudonymise_with_key("pseudonymise-csv");

    let output = with(
        &["--column", "nhs_number", "--keep", "id,note"],
        "\u{feff}id,note,nhs_number\r\n1,\"line one\nline \"\"two\"\"\",9434765919\r\n",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!(
            "id,note,patient_pseudonym\n1,\"line one\nline \"\"two\"\"\",{PSEUDONYM_9434765919}\n"
        )
    );

    for (delimiter, separator) in [(";", ";"), ("tab", "\t")] {
        let input = format!("ward{separator}nhs_number\n12{separator}943 476 5919\n");
        let output = with(
            &[
                "--column",
                "2",
                "--header",
                "--keep",
                "1",
                "--delimiter",
                delimiter,
            ],
            &input,
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(
            text(&output.stdout),
            format!("ward{separator}patient_pseudonym\n12{separator}{PSEUDONYM_9434765919}\n")
        );
    }

    let headless = "9434765919,first\n9990000018,second\n";
    let output = with(&["--column", "1", "--header"], headless);
    assert_eq!(output.status.code(), Some(64), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--no-header"));
    assert!(text(&output.stdout).is_empty());
    let output = with(&["--column", "1", "--no-header", "--keep", "2"], headless);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!("{PSEUDONYM_9434765919},first\n{PSEUDONYM_9990000018},second\n")
    );
}

/// Regressions: with `--column 2` and no header flag, the first row became
/// the header and its other columns were never checked (`,9434765919` came
/// out as `patient_pseudonym,9434765919`, exit 0); other columns holding a
/// number dotted, mixed, with non-breaking spaces, in full-width digits or
/// as `09434765919` were written in clear. Now a position needs the header
/// question answered, only the columns named with --keep are written, and
/// a kept column showing a number in any spelling stops the run.
#[test]
fn pseudonymise_writes_only_the_columns_asked_for() {
    let with = pseudonymise_with_key("pseudonymise-keep");
    let output = with(&["--column", "2"], ",9434765919\n");
    assert_eq!(output.status.code(), Some(64), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--header"));
    assert!(text(&output.stdout).is_empty());

    // Columns not kept are left behind, whatever they hold.
    let output = with(
        &["--column", "2", "--no-header"],
        "NHS 999 000 0018,9434765919,ward 3\n",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("{PSEUDONYM_9434765919}\n"));

    let full_width: String = "9990000018"
        .chars()
        .map(|digit| char::from_u32(0xFF10 + digit.to_digit(10).unwrap_or(0)).unwrap_or('0'))
        .collect();
    for spelling in [
        "999.000.0018",
        "999-0000018",
        "999\u{a0}000\u{a0}0018",
        full_width.as_str(),
        "09990000018",
        "NHS.999.000.0018",
    ] {
        let input = format!("ward 3,9434765919\n{spelling},9434765919\n");
        let output = with(&["--column", "2", "--no-header", "--keep", "1"], &input);
        assert_eq!(output.status.code(), Some(1), "{spelling}");
        let errors = text(&output.stderr);
        assert!(
            errors.contains("line 2: kept column 1"),
            "{spelling}: {errors}"
        );
        assert!(
            !errors.contains(spelling) && !errors.contains("0018"),
            "{errors}"
        );
        assert_eq!(
            text(&output.stdout),
            format!("ward 3,{PSEUDONYM_9434765919}\n"),
            "{spelling}"
        );
    }
    // A header row whose kept column shows a number is data.
    let output = with(
        &["--column", "nhs_number", "--header", "--keep", "1"],
        "999.000.0018,nhs_number\nward 3,9434765919\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).is_empty());
}

/// `-X NAME=VALUE` reaches librdkafka, applied last (kcat's convention):
/// here it points the producer at a port nobody listens on and gives up
/// after 2 s, so the lines are reported not delivered; `--check` refuses a
/// property librdkafka does not know, naming it; `-b` is the broker.
#[test]
fn librdkafka_settings_on_the_command_line_reach_librdkafka() {
    let examples =
        std::fs::read_to_string(repository_root().join("schemas/examples/discharge.jsonl"))
            .expect("examples");
    let folder = scratch_folder("dash-x");
    let file = folder.join("one.jsonl");
    std::fs::write(&file, examples.lines().next().expect("a line")).expect("written");
    let nobody = format!("127.0.0.1:{}", icsflow_testkit::free_port());
    let started = std::time::Instant::now();
    let output = icsflow(&[
        "publish",
        "--feed",
        "discharge",
        "-b",
        "127.0.0.1:9092",
        "-X",
        &format!("bootstrap.servers={nobody}"),
        "-X",
        "message.timeout.ms=2000",
        "--summary",
        "json",
        file.to_str().expect("path"),
    ]);
    let errors = text(&output.stderr);
    // Valid, but not taken by a broker: try again later (75), not "fix
    // your data" (1).
    assert_eq!(output.status.code(), Some(75), "{errors}");
    assert!(errors.contains("line 1: not delivered"), "{errors}");
    let summary: serde_json::Value =
        serde_json::from_str(text(&output.stdout).trim()).expect("one JSON summary");
    assert_eq!(summary["not_delivered"], 1, "{summary}");
    assert_eq!(summary["produced"], 0, "{summary}");
    assert_eq!(summary["exit_status"], 75, "{summary}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // The roles need reference data: the demo ICS's, from the repository.
    let check = |extra: &[&str]| {
        let mut arguments = vec!["join", "--check"];
        arguments.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .args(&arguments)
            .current_dir(repository_root())
            .env("ICSFLOW__REFERENCE__FILE", "deploy/config/reference.toml")
            .output()
            .expect("icsflow runs")
    };
    let refused = check(&["-X", "no.such.property=1"]);
    assert_eq!(refused.status.code(), Some(64), "{refused:?}");
    assert!(text(&refused.stderr).contains("`kafka.librdkafka.no.such.property`"));
    let accepted = check(&[
        "-b",
        "kafka-1:9092,kafka-2:9092",
        "-X",
        "security.protocol=PLAINTEXT",
    ]);
    assert_eq!(accepted.status.code(), Some(0), "{accepted:?}");
    let malformed = check(&["-X", "no-equals-sign"]);
    assert_eq!(malformed.status.code(), Some(64), "{malformed:?}");
    assert!(text(&malformed.stderr).contains("is not NAME=VALUE"));
}

/// The published HMAC test vectors (schemas/pseudonym-test-vectors.json,
/// which partners check their own code against) are what `icsflow
/// pseudonymise` computes.
#[test]
fn pseudonymise_agrees_with_the_published_test_vectors() {
    let text_of_vectors =
        std::fs::read_to_string(repository_root().join("schemas/pseudonym-test-vectors.json"))
            .expect("the test vectors");
    let document: serde_json::Value = serde_json::from_str(&text_of_vectors).expect("JSON");
    let vectors = document["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 8, "{}", vectors.len());
    let folder = scratch_folder("vectors");
    let mut keys: Vec<&str> = vectors
        .iter()
        .map(|vector| vector["key"].as_str().expect("key"))
        .collect();
    keys.dedup();
    assert!(keys.len() >= 2);
    for (index, key) in keys.iter().enumerate() {
        let key_file = folder.join(format!("{index}.key"));
        std::fs::write(&key_file, key).expect("key written");
        let of_key: Vec<&serde_json::Value> = vectors
            .iter()
            .filter(|vector| vector["key"] == *key)
            .collect();
        let input: String = of_key
            .iter()
            .map(|vector| format!("{}\n", vector["nhs_number"].as_str().expect("number")))
            .collect();
        let output = icsflow_with_input(
            &[
                "pseudonymise",
                "--key-file",
                key_file.to_str().expect("path"),
            ],
            &input,
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let expected: String = of_key
            .iter()
            .map(|vector| format!("{}\n", vector["pseudonym"].as_str().expect("pseudonym")))
            .collect();
        assert_eq!(text(&output.stdout), expected);
    }
}

/// `publish --rejects FILE` writes the refused lines as they were, to fix
/// and send again, and why each was refused; a line with an NHS number is
/// never copied.
#[test]
fn publish_writes_the_refused_lines_to_fix_and_their_reasons_but_never_an_nhs_number() {
    let examples = discharge_examples();
    let good: Vec<&str> = examples.lines().collect();
    let with_nhs_number = with_episode_reference(good[1], "9990000018");
    let unknown_field = good[3].replacen('{', "{\"ward\":\"12\",", 1);
    let bad_place = good[2].replace("E06000047", "E07000001");
    let input = [
        good[0],
        &with_nhs_number,
        &unknown_field,
        good[1],
        &bad_place,
    ]
    .join("\n");
    let folder = scratch_folder("rejects");
    let rejects = folder.join("rejects.jsonl");
    let output = icsflow_with_input(
        &[
            "publish",
            "--feed",
            "discharge",
            "--dry-run",
            "--rejects",
            rejects.to_str().expect("path"),
            "-",
        ],
        &input,
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let copied = std::fs::read_to_string(&rejects).expect("rejects written");
    assert_eq!(copied, format!("{unknown_field}\n{bad_place}\n"));
    assert!(!copied.contains("9990000018"));
    let reasons: Vec<serde_json::Value> =
        std::fs::read_to_string(folder.join("rejects.jsonl.reasons.jsonl"))
            .expect("reasons written")
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
    let summary: Vec<(u64, &str, bool, Option<u64>)> = reasons
        .iter()
        .map(|reason| {
            (
                reason["input_line"].as_u64().expect("line"),
                reason["reason"].as_str().expect("reason"),
                reason["copied"].as_bool().expect("copied"),
                reason["rejects_line"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "identifiable_data", false, None),
            (3, "malformed", true, Some(1)),
            (5, "invalid_field", true, Some(2)),
        ]
    );
    // Fixed, the copied lines are accepted.
    let fixed = copied
        .replace("\"ward\":\"12\",", "")
        .replace("E07000001", "E06000047");
    let output = icsflow_with_input(
        &["publish", "--feed", "discharge", "--dry-run", "-"],
        &fixed,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

/// The discharge feed's example lines.
fn discharge_examples() -> String {
    std::fs::read_to_string(repository_root().join("schemas/examples/discharge.jsonl"))
        .expect("examples")
}

/// An example line whose episode reference is `value` instead.
fn with_episode_reference(line: &str, value: &str) -> String {
    line.replace(
        "0202020202020202020202020202020202020202020202020202020202020202",
        value,
    )
}

/// A trust still on version 1 of the discharge schema sends admissions
/// without `bed_type`, and a trust on version 2 sends any national
/// destination code, retired ones included: both are valid lines. A code
/// outside the list is refused with the field named.
#[test]
fn publish_reads_version_1_lines_and_every_destination_code() {
    let examples = discharge_examples();
    let admitted = examples
        .lines()
        .find(|line| line.contains("\"ADMITTED\""))
        .expect("an admission");
    let discharged = examples
        .lines()
        .find(|line| line.contains("\"DISCHARGED\""))
        .expect("a discharge");
    let without_bed = admitted.replace(",\"bed_type\":\"GENERAL_AND_ACUTE\"", "");
    assert_ne!(
        without_bed, admitted,
        "the example has a bed type to remove"
    );
    let maternity = admitted.replace("GENERAL_AND_ACUTE", "MATERNITY");
    let mut lines = vec![without_bed, maternity];
    for code in [
        "NON_NHS_CARE_HOME",
        "NHS_HOSPITAL_GENERAL_WARD",
        "PENAL_ESTABLISHMENT_OR_POLICE_STATION",
    ] {
        lines.push(discharged.replace(
            "\"destination\":\"USUAL_PLACE_OF_RESIDENCE\"",
            &format!("\"destination\":\"{code}\""),
        ));
    }
    assert!(lines[2].contains("NON_NHS_CARE_HOME"), "{}", lines[2]);
    let output = icsflow_with_input(
        &["publish", "--feed", "discharge", "--dry-run", "-"],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("5 valid") || text(&output.stdout).contains("5 valid"),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let unknown = discharged.replace(
        "\"destination\":\"USUAL_PLACE_OF_RESIDENCE\"",
        "\"destination\":\"SOMEWHERE\"",
    );
    let output = icsflow_with_input(
        &["publish", "--feed", "discharge", "--dry-run", "-"],
        &(unknown + "\n"),
    );
    assert_ne!(output.status.code(), Some(0));
    // The field is named, and the code list in the detail.
    assert!(
        text(&output.stderr).contains("invalid_field in field destination")
            && text(&output.stderr).contains("unknown symbol of DischargeDestination"),
        "{}",
        text(&output.stderr)
    );
}
