//! `icsflow publish`: JSON lines in, validated Avro records on a partner
//! topic out.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use icsflow_avro::{decode_json, encode, Framing, SchemaCatalogue};
use icsflow_core::{Feed, TimestampPolicy};
use icsflow_kafka::{Delivery, DeliveryFailure, PartnerProducer};

use crate::roles::{load_client_settings, open_input};

/// The partner feeds, as command-line values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FeedArg {
    Discharge,
    #[value(name = "social_care")]
    SocialCare,
    #[value(name = "primary_care")]
    PrimaryCare,
}

impl FeedArg {
    pub(crate) fn feed(self) -> Feed {
        match self {
            FeedArg::Discharge => Feed::Discharge,
            FeedArg::SocialCare => Feed::SocialCare,
            FeedArg::PrimaryCare => Feed::PrimaryCare,
        }
    }
}

/// The Avro framings, as command-line values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FramingArg {
    /// Avro single-object encoding (no registry needed).
    SingleObject,
    /// Confluent wire format: the id from --schema-id, or (publish) the id
    /// the registry gives when the feed's schema is registered.
    Confluent,
}

/// Flags choosing how records are framed.
#[derive(Debug, Args)]
pub(crate) struct FramingArgs {
    /// How records are framed on the topic.
    #[arg(long, value_enum, default_value_t = FramingArg::SingleObject)]
    framing: FramingArg,
    /// The id the schema registry gave the feed's current schema (with
    /// --framing confluent).
    #[arg(long, value_name = "ID")]
    schema_id: Option<u32>,
}

impl FramingArgs {
    /// The framing, when no registry needs asking: single-object, or
    /// Confluent with the id given; `None` for Confluent without an id.
    pub(crate) fn given(&self) -> Option<Framing> {
        match (self.framing, self.schema_id) {
            (FramingArg::SingleObject, _) => Some(Framing::SingleObject),
            (FramingArg::Confluent, Some(schema_id)) => Some(Framing::Confluent { schema_id }),
            (FramingArg::Confluent, None) => None,
        }
    }
}

/// Flags of `icsflow publish`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each line is one event as a JSON object shaped like the feed's Avro schema; docs/data-dictionary.md
lists the fields and schemas/examples/ has one line per event type. Every line gets the same checks
as a record the ingest role consumes (schema, codes, identifiers, timestamps, and no NHS number
anywhere). A bad line is reported with its line number and reason, and nothing is produced for it;
good lines around it are produced, keyed by patient pseudonym, and each is confirmed by the broker.

Exit status, for schedulers:
  0   every line was produced (or, with --dry-run, is valid);
  1   a line was refused, or the input could not be read to its end: fix the data, then publish
      the refused lines again (the others were produced);
  64  the command line or the configuration is invalid: fix it;
  75  the broker or the registry did not take what was sent (not delivered, unreachable): the
      lines were valid; try again later;
  77  the broker does not let these credentials write the topic: publish to your own topic, or
      ask the ICS for write access (the message names the topic and the principal).
When lines were both refused and not delivered, the status is 1. --summary json prints the
counts as one JSON object on standard output.")]
pub(crate) struct PublishArgs {
    /// Which partner feed the lines belong to.
    #[arg(long, value_enum)]
    feed: FeedArg,
    /// Topic to produce to (default: the feed's topic in the configuration,
    /// for example ics.discharge.v1).
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    #[command(flatten)]
    framing: FramingArgs,
    #[command(flatten)]
    kafka: crate::roles::KafkaArgs,
    /// With --framing confluent and no --schema-id: the Confluent-compatible
    /// registry where the feed's current schema is registered under the
    /// subject `<topic>-value`, and whose id the records carry (default:
    /// schema_registry.url).
    #[arg(long, value_name = "URL")]
    schema_registry: Option<String>,
    /// TOML configuration file, for the broker connection (SASL, TLS) and
    /// topic names; see deploy/config/icsflow.example.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check every line and report, without producing anything.
    #[arg(long)]
    dry_run: bool,
    /// Also print the summary as one JSON object on standard output (lines,
    /// produced, refused by reason, not delivered, exit status), for
    /// schedulers and integration engines.
    #[arg(long, value_name = "FORMAT", value_parser = ["json"])]
    summary: Option<String>,
    /// Also write the refused lines, unchanged, to FILE (to fix and publish
    /// again), and why each was refused to FILE.reasons.jsonl, line for line.
    /// A line refused as identifiable_data (or that may hold an NHS number)
    /// is never copied: its reason says so.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// JSON lines file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    input: PathBuf,
}

/// Records in flight before waiting for the oldest acknowledgement.
const MAX_IN_FLIGHT: usize = 10_000;

pub(crate) fn run(arguments: PublishArgs) -> anyhow::Result<ExitCode> {
    let settings = match load_client_settings(
        "publish",
        arguments.config.as_deref(),
        &arguments.kafka,
        None,
    ) {
        Ok(settings) => settings,
        Err(exit) => return Ok(exit),
    };
    let feed = arguments.feed.feed();
    let topic = arguments
        .topic
        .clone()
        .unwrap_or_else(|| settings.topics.feed_topic(feed).to_owned());
    let framing = match arguments.framing.given() {
        Some(framing) => framing,
        None => {
            let Some(url) = arguments
                .schema_registry
                .clone()
                .or_else(|| settings.schema_registry_url.clone())
            else {
                eprintln!("icsflow publish: --framing confluent needs --schema-id, or a registry to register the schema with (--schema-registry URL or schema_registry.url)");
                return Ok(ExitCode::from(64));
            };
            // The flag is checked as the setting is: no credentials in it.
            let url = match icsflow::settings::checked_registry_url("--schema-registry", &url) {
                Ok(url) => url,
                Err(problem) => {
                    eprintln!("icsflow publish: {problem}");
                    return Ok(ExitCode::from(64));
                }
            };
            // The URL is given, so there is a connection; its CA, if any,
            // was read and checked with the settings.
            let Some(connection) = settings.registry_connection(Some(&url)) else {
                return Ok(ExitCode::from(64));
            };
            match register_schema(&connection, feed, &topic) {
                Ok(schema_id) => Framing::Confluent { schema_id },
                Err(error) => {
                    eprintln!(
                        "icsflow publish: registering the {} schema with the schema registry: {error}",
                        feed.as_str()
                    );
                    // Refused schema or credentials: fix something (1);
                    // registry unreachable: try again later (75, EX_TEMPFAIL).
                    let exit = match error {
                        icsflow_avro::LookupError::Unavailable(_) => EXIT_TRY_AGAIN,
                        _ => 1,
                    };
                    return Ok(ExitCode::from(exit));
                }
            }
        }
    };
    let reader = open_input(&arguments.input)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let producer = if arguments.dry_run {
        None
    } else {
        Some(PartnerProducer::new(&settings.kafka).context("creating the Kafka producer")?)
    };
    let rejects = match &arguments.rejects {
        Some(path) => match Rejects::create(path) {
            Ok(rejects) => Some(std::cell::RefCell::new(rejects)),
            Err(error) => {
                eprintln!("icsflow publish: --rejects {}: {error}", path.display());
                return Ok(ExitCode::from(64));
            }
        },
        None => None,
    };
    let publish = Publish {
        feed,
        topic: &topic,
        framing,
        producer: producer.as_ref(),
        rejects: rejects.as_ref(),
    };
    let totals = runtime.block_on(publish.lines(reader))?;
    let rejected: u64 = totals.rejected.values().sum();
    let reasons = totals
        .rejected
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect::<Vec<_>>()
        .join(", ");
    let destination = if arguments.dry_run {
        "valid (dry run, nothing produced)".to_owned()
    } else {
        format!("produced to {topic}")
    };
    eprintln!(
        "icsflow publish: {} line(s) read: {} {destination}, {rejected} refused{}{}",
        totals.lines,
        totals.produced,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({reasons})")
        },
        if totals.undelivered > 0 {
            format!(", {} not delivered", totals.undelivered)
        } else {
            String::new()
        },
    );
    if let Some(error) = &totals.not_authorized {
        let principal = settings.kafka.librdkafka.get("sasl.username").map_or_else(
            || "your client's principal".to_owned(),
            |name| format!("the principal User:{name}"),
        );
        eprintln!("icsflow publish: the broker does not let {principal} write to topic {topic} ({error}). A partner may write only its own topics: check --topic (on per-partner topics, yours ends in your ODS code, for example {}.RXP) and your credentials, or ask the ICS's Kafka administrators to grant {principal} Write on topic {topic}. Nothing was produced there.", settings.topics.feed_topic(feed));
    }
    // Fix the data (1) before retrying (75): see the help's exit statuses.
    let status: u8 = if rejected > 0 || totals.unreadable {
        1
    } else if totals.not_authorized.is_some() {
        EXIT_NOT_AUTHORIZED
    } else if totals.undelivered > 0 {
        EXIT_TRY_AGAIN
    } else {
        0
    };
    if arguments.summary.is_some() {
        let summary = serde_json::json!({
            "lines": totals.lines,
            "produced": if arguments.dry_run { 0 } else { totals.produced },
            "valid": totals.produced,
            "refused": totals.rejected,
            "not_delivered": totals.undelivered,
            "input_read_to_end": !totals.unreadable,
            "topic": topic,
            "exit_status": status,
        });
        println!("{summary}");
    }
    Ok(ExitCode::from(status))
}

/// The lines were valid but the broker or registry did not take them
/// (EX_TEMPFAIL): try again later.
const EXIT_TRY_AGAIN: u8 = 75;

/// The broker refused the principal write access to the topic
/// (EX_NOPERM): ask for the grant, or publish to your own topic.
const EXIT_NOT_AUTHORIZED: u8 = 77;

/// Registers the feed's current schema under `<topic>-value` and returns
/// its id.
fn register_schema(
    connection: &icsflow_avro::RegistryConnection,
    feed: Feed,
    topic: &str,
) -> Result<u32, icsflow_avro::LookupError> {
    let catalogue = std::sync::Arc::new(SchemaCatalogue::embedded());
    let schema = icsflow_avro::current_schema_file(feed).text;
    let client = icsflow_avro::SchemaRegistryClient::over_http(
        connection,
        std::sync::Arc::clone(&catalogue),
    )
    .map_err(|problem| {
        icsflow_avro::LookupError::Unavailable(format!("`schema_registry.ca_file`: {problem}"))
    })?;
    let subject = format!("{topic}-value");
    let schema_id = client.register(&subject, schema)?;
    eprintln!(
        "icsflow publish: the {} schema is id {schema_id} under subject {subject}",
        feed.as_str()
    );
    Ok(schema_id)
}

struct Publish<'a> {
    feed: Feed,
    topic: &'a str,
    framing: Framing,
    producer: Option<&'a PartnerProducer>,
    rejects: Option<&'a std::cell::RefCell<Rejects>>,
}

/// `--rejects FILE`: the refused lines as they were, and why, line for line.
struct Rejects {
    lines: std::io::BufWriter<std::fs::File>,
    reasons: std::io::BufWriter<std::fs::File>,
    written: u64,
}

impl Rejects {
    fn create(path: &std::path::Path) -> std::io::Result<Rejects> {
        let mut reasons = path.as_os_str().to_owned();
        reasons.push(".reasons.jsonl");
        Ok(Rejects {
            lines: std::io::BufWriter::new(std::fs::File::create(path)?),
            reasons: std::io::BufWriter::new(std::fs::File::create(reasons)?),
            written: 0,
        })
    }

    /// Records one refused input line: copied unless it may hold an NHS
    /// number, and its reason either way.
    fn refused(
        &mut self,
        input_line: usize,
        bytes: &[u8],
        reason: &str,
        detail: &str,
    ) -> std::io::Result<()> {
        use std::io::Write as _;
        let copy = reason != "identifiable_data" && !icsflow_core::may_hold_nhs_number(bytes);
        let rejects_line = if copy {
            self.lines.write_all(bytes)?;
            self.lines.write_all(b"\n")?;
            self.written += 1;
            Some(self.written)
        } else {
            None
        };
        let record = serde_json::json!({
            "rejects_line": rejects_line,
            "input_line": input_line,
            "reason": reason,
            "detail": detail,
            "copied": copy,
        });
        writeln!(self.reasons, "{record}")
    }

    fn finish(&mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        self.lines.flush()?;
        self.reasons.flush()
    }
}

#[derive(Default)]
struct Totals {
    /// The input could not be read to its end.
    unreadable: bool,
    lines: u64,
    produced: u64,
    undelivered: u64,
    rejected: BTreeMap<&'static str, u64>,
    /// The broker's refusal, when the principal may not write the topic.
    not_authorized: Option<String>,
}

impl Publish<'_> {
    async fn lines(&self, reader: Box<dyn BufRead>) -> anyhow::Result<Totals> {
        let catalogue = SchemaCatalogue::embedded();
        let clock = icsflow_journeys::wall_clock();
        let mut totals = Totals::default();
        let mut in_flight: VecDeque<(usize, Delivery)> = VecDeque::new();
        let progress = Progress::new();
        for (index, bytes) in reader.split(b'\n').enumerate() {
            let number = index + 1;
            let bytes = match bytes {
                Ok(bytes) => bytes,
                Err(error) => {
                    // Whatever was read is settled and summarised below.
                    progress.clear();
                    eprintln!("line {number}: cannot read further: {error}");
                    totals.unreadable = true;
                    break;
                }
            };
            let line = match line_text(&bytes, number) {
                Ok(line) => line,
                Err(()) => {
                    totals.lines += 1;
                    *totals.rejected.entry("malformed").or_default() += 1;
                    progress.clear();
                    let detail = "malformed: the line is not UTF-8 text; save the file as UTF-8";
                    eprintln!("line {number}: {detail}");
                    self.reject(number, &bytes, "malformed", detail)?;
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            totals.lines += 1;
            let event = match decode_json(self.feed, line, &TimestampPolicy::wall_clock(clock())) {
                Ok(event) => event,
                Err(refused) => {
                    *totals
                        .rejected
                        .entry(refused.rejection.reason.as_str())
                        .or_default() += 1;
                    progress.clear();
                    eprintln!("line {number}: {refused}");
                    self.reject(
                        number,
                        line.as_bytes(),
                        refused.rejection.reason.as_str(),
                        &refused.to_string(),
                    )?;
                    continue;
                }
            };
            let Some(producer) = self.producer else {
                totals.produced += 1;
                continue;
            };
            let payload = encode(&catalogue, &event, self.framing);
            let key = event.envelope.patient.hex();
            let delivery = producer
                .send(self.topic, key.as_str().as_bytes(), &payload)
                .await;
            in_flight.push_back((number, delivery));
            if in_flight.len() >= MAX_IN_FLIGHT {
                if let Some((number, delivery)) = in_flight.pop_front() {
                    settle(number, delivery, &mut totals, &progress).await;
                }
            }
            progress.show(&totals);
        }
        while let Some((number, delivery)) = in_flight.pop_front() {
            settle(number, delivery, &mut totals, &progress).await;
        }
        progress.clear();
        if let Some(rejects) = self.rejects {
            rejects
                .borrow_mut()
                .finish()
                .context("writing the --rejects files")?;
        }
        Ok(totals)
    }

    fn reject(
        &self,
        number: usize,
        bytes: &[u8],
        reason: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        if let Some(rejects) = self.rejects {
            rejects
                .borrow_mut()
                .refused(number, bytes, reason, detail)
                .context("writing the --rejects files")?;
        }
        Ok(())
    }
}

/// A line's text: UTF-8, without the line ending (`\n` or `\r\n`) and,
/// on line 1, without the byte-order mark Windows editors write.
fn line_text(bytes: &[u8], number: usize) -> Result<&str, ()> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let bytes = match number {
        1 => bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes),
        _ => bytes,
    };
    std::str::from_utf8(bytes).map_err(|_| ())
}

async fn settle(number: usize, delivery: Delivery, totals: &mut Totals, progress: &Progress) {
    match delivery.await {
        Ok(()) => totals.produced += 1,
        Err(DeliveryFailure::NotAuthorized(error)) => {
            // Said once, after the run: every line fails the same way.
            totals.undelivered += 1;
            totals.not_authorized.get_or_insert(error);
        }
        Err(DeliveryFailure::Other(error)) => {
            totals.undelivered += 1;
            progress.clear();
            eprintln!("line {number}: not delivered: {error}");
        }
    }
}

/// A one-line progress report on a terminal, at most twice a second.
struct Progress {
    terminal: bool,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            last: std::cell::Cell::new(Instant::now()),
        }
    }

    fn show(&self, totals: &Totals) {
        if !self.terminal || self.last.get().elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last.set(Instant::now());
        let rejected: u64 = totals.rejected.values().sum();
        eprint!(
            "\r\x1b[2K{} lines read, {} produced, {rejected} refused",
            totals.lines, totals.produced
        );
    }

    fn clear(&self) {
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
    }
}
