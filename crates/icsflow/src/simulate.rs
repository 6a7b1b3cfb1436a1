//! `icsflow simulate`: a simulated ICS's partner feeds, to JSON lines files
//! or to the partner topics of a broker.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use icsflow_avro::{
    encode, encode_altered, encode_json, encode_json_altered, Alteration, Framing, SchemaCatalogue,
};
use icsflow_core::{Date, Feed, Timestamp};
use icsflow_kafka::{PartnerProducer, Topics};
use icsflow_partner::{Publication, PublicationKind, SimulationConfig, Simulator};

use crate::publish::FramingArgs;
use crate::roles::load_client_settings;

/// What to simulate: flags shared by `simulate` and `demo`.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    /// Everything random follows from the seed: the same seed and flags
    /// give the same records, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of places (1 to 4), each with an acute trust, a local
    /// authority and six GP practices.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=4))]
    places: u8,
    /// Mean admissions per day in each place.
    #[arg(long, default_value_t = 50.0, value_name = "N")]
    admissions_per_day: f64,
    /// Social care starts available per day, as a share of mean need
    /// (weekdays more, weekends half). The default gives England's winter
    /// figures (docs/simulation.md); below about 1.0 delays keep growing.
    #[arg(long, default_value_t = 1.7, value_name = "SHARE")]
    care_capacity: f64,
    /// Share of records that are first published in a bad form (a district
    /// code for the place, an NHS number in clear, or cut short).
    #[arg(long, default_value_t = 0.005, value_name = "SHARE")]
    bad_record_rate: f64,
    /// Share of records published twice.
    #[arg(long, default_value_t = 0.01, value_name = "SHARE")]
    duplicate_rate: f64,
}

impl ModelArgs {
    pub(crate) fn config(&self, start: Timestamp) -> SimulationConfig {
        SimulationConfig {
            seed: self.seed,
            places: usize::from(self.places),
            start,
            admissions_per_day: self.admissions_per_day,
            care_capacity: self.care_capacity,
            duplicate_rate: self.duplicate_rate.clamp(0.0, 1.0),
            bad_record_rate: self.bad_record_rate.clamp(0.0, 1.0),
        }
    }
}

/// Flags of `icsflow simulate`.
#[derive(Debug, Args)]
#[command(after_help = "\
By default the simulation covers the --days days up to now and is written as fast as possible.
With --start it covers --days days from that date instead (dates after today give records the
roles refuse as timestamp_out_of_range). Patients are synthetic, with NHS numbers from the 999
range that is never issued; pseudonyms use a simulation-only key unless --key-file gives the ICS's.

Publishing to a broker is paced with --speed, or with --follow continues in real time after the
history (what a deployment beside separate ingest and join roles needs); icsflow demo runs the simulator, the roles and the
metrics on one simulated clock.")]
#[command(group(
    clap::ArgGroup::new("destination")
        .required(true)
        .args(["output_dir", "bootstrap_server"])
))]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Days to simulate.
    #[arg(long, default_value_t = 28, value_name = "N")]
    days: u32,
    /// First simulated day (YYYY-MM-DD); default: --days before today.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    start: Option<Date>,
    /// Write discharge.jsonl, social_care.jsonl and primary_care.jsonl to
    /// this folder (the JSON form `icsflow publish` reads).
    #[arg(long, value_name = "DIR", conflicts_with = "bootstrap_server")]
    output_dir: Option<PathBuf>,
    /// Where to produce instead of files: the partner topics of the broker
    /// given by -b/--bootstrap-server (or --broker).
    #[command(flatten)]
    kafka: crate::roles::KafkaArgs,
    /// TOML configuration file, for the broker connection and topic names.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    framing: FramingArgs,
    /// Simulated seconds per real second when producing to a broker
    /// (8640: a day every 10 seconds); default: as fast as possible.
    #[arg(long, value_name = "N", conflicts_with = "follow")]
    speed: Option<f64>,
    /// After the history, keep publishing in real time until SIGINT or
    /// SIGTERM, as live partner feeds would (for a standing demo beside
    /// separately deployed roles).
    #[arg(long, requires = "bootstrap_server", conflicts_with = "start")]
    follow: bool,
    /// Pseudonymise the simulated patients with the ICS key in this file
    /// (as `icsflow pseudonymise --key-file` does) instead of the
    /// simulation-only key.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

fn parse_date(text: &str) -> Result<Date, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let parsed = match parts.as_slice() {
        [year, month, day] => match (year.parse(), month.parse(), day.parse()) {
            (Ok(year), Ok(month), Ok(day)) => Date::from_calendar(year, month, day),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| format!("`{text}` is not a date in the form YYYY-MM-DD"))
}

const DAY: i64 = Timestamp::MILLIS_PER_DAY;

pub(crate) fn run(arguments: SimulateArgs) -> anyhow::Result<ExitCode> {
    let now = icsflow_journeys::wall_clock()();
    let (start, end) = match arguments.start {
        Some(date) => {
            let start = date.start();
            (
                start,
                Timestamp::from_millis(start.as_millis() + i64::from(arguments.days) * DAY),
            )
        }
        None => {
            let today = now.as_millis().div_euclid(DAY) * DAY;
            (
                Timestamp::from_millis(today - i64::from(arguments.days) * DAY),
                now,
            )
        }
    };
    let mut simulator = Simulator::new(arguments.model.config(start));
    if let Some(path) = &arguments.key_file {
        simulator = simulator.with_key(crate::pseudonymise::read_key(path)?);
    }
    let started = Instant::now();
    let destination = match (&arguments.output_dir, &arguments.kafka.bootstrap_server) {
        (Some(folder), _) => {
            write_files(&mut simulator, folder, start, end)?;
            folder.display().to_string()
        }
        (None, Some(broker)) => {
            let Some(framing) = arguments.framing.given() else {
                eprintln!("icsflow simulate: --framing confluent needs --schema-id");
                return Ok(ExitCode::from(64));
            };
            let settings = match load_client_settings(
                "simulate",
                arguments.config.as_deref(),
                &arguments.kafka,
                None,
            ) {
                Ok(settings) => settings,
                Err(exit) => return Ok(exit),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            // Never a topic created as a side effect (with whatever
            // partitions): the partner topics it writes must exist, as
            // planned. Only those: its principal may not see the others.
            let partner_topics: Vec<String> = settings
                .topics
                .partner_topics()
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect();
            let plan: Vec<_> =
                icsflow_kafka::topic_plan(&settings.topics, settings.journey_retention_horizon())
                    .into_iter()
                    .filter(|topic| {
                        partner_topics.iter().any(|feed| {
                            topic.name == *feed || topic.name.starts_with(&format!("{feed}."))
                        })
                    })
                    .collect();
            let found = icsflow_kafka::find_topics(&settings.kafka, &plan)
                .with_context(|| format!("reading the topics of {broker}"))?;
            if !found.missing.is_empty() {
                eprintln!("icsflow simulate: topics missing on {broker}:");
                for topic in &found.missing {
                    eprintln!(
                        "  - {} ({} partitions planned)",
                        topic.name, topic.partitions
                    );
                }
                eprintln!("Create them with `icsflow topics --create` and the same --config (or as KafkaTopics: `icsflow acls --format strimzi`).");
                return Ok(ExitCode::from(1));
            }
            let producer = PartnerProducer::new(&settings.kafka)?;
            let sink = KafkaSink {
                producer,
                topics: settings.topics.clone(),
                catalogue: SchemaCatalogue::embedded(),
                framing,
            };
            let mut undelivered =
                runtime.block_on(produce(&mut simulator, &sink, start, end, arguments.speed));
            if arguments.follow {
                eprintln!("icsflow simulate: history published; following in real time until stopped (Ctrl-C)");
                undelivered += runtime.block_on(follow(&mut simulator, &sink));
            }
            if undelivered > 0 {
                anyhow::bail!("{undelivered} record(s) were not delivered to {broker}");
            }
            format!("the partner topics on {broker}")
        }
        (None, None) => anyhow::bail!("give --output-dir DIR or -b/--bootstrap-server HOST:PORT"),
    };
    // A followed simulation ran until now.
    let end = if arguments.follow {
        icsflow_journeys::wall_clock()()
    } else {
        end
    };
    let statistics = simulator.statistics();
    eprintln!(
        "icsflow simulate: {} day(s), {} place(s), {} admissions, {} discharges, {} care starts; {} records (+{} duplicates, {} bad) written to {destination} in {:.1} s",
        (end.as_millis() - start.as_millis()) / DAY,
        simulator.places().len(),
        statistics.admissions,
        statistics.discharges,
        statistics.care_starts,
        statistics.valid,
        statistics.duplicates,
        statistics.bad,
        started.elapsed().as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

fn write_files(
    simulator: &mut Simulator,
    folder: &std::path::Path,
    start: Timestamp,
    end: Timestamp,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let mut files = Vec::new();
    for feed in Feed::ALL {
        let path = folder.join(format!("{}.jsonl", feed.as_str()));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        files.push(std::io::BufWriter::new(file));
    }
    let mut batch = Vec::new();
    let mut day = start;
    while day < end {
        day = Timestamp::from_millis((day.as_millis() + DAY).min(end.as_millis()));
        simulator.advance(day, &mut batch);
        for publication in batch.drain(..) {
            let file = &mut files[icsflow_core::Kind::index(publication.event.feed())];
            writeln!(file, "{}", json_line(&publication))?;
        }
    }
    for mut file in files {
        file.flush()?;
    }
    Ok(())
}

/// A publication as a JSON line, bad ones made bad the way the kind says.
pub(crate) fn json_line(publication: &Publication) -> String {
    match &publication.kind {
        PublicationKind::Valid | PublicationKind::Duplicate => encode_json(&publication.event),
        PublicationKind::DistrictCodeAsPlace(code) => {
            encode_json_altered(&publication.event, Alteration::Place(code))
        }
        PublicationKind::NhsNumberInClear(number) => {
            encode_json_altered(&publication.event, Alteration::EpisodeReference(number))
        }
        PublicationKind::Truncated => {
            let line = encode_json(&publication.event);
            line[..line.len() / 2].to_owned()
        }
    }
}

/// Where simulated publications go on a broker.
pub(crate) struct KafkaSink {
    pub(crate) producer: PartnerProducer,
    pub(crate) topics: Topics,
    pub(crate) catalogue: SchemaCatalogue,
    pub(crate) framing: Framing,
}

impl KafkaSink {
    /// Produces a batch and waits for the broker's acknowledgements;
    /// returns how many were not delivered.
    pub(crate) async fn send(&self, batch: &[Publication]) -> u64 {
        let mut deliveries = Vec::with_capacity(batch.len());
        for publication in batch {
            let event = &publication.event;
            let payload = match &publication.kind {
                PublicationKind::Valid | PublicationKind::Duplicate => {
                    encode(&self.catalogue, event, self.framing)
                }
                PublicationKind::DistrictCodeAsPlace(code) => encode_altered(
                    &self.catalogue,
                    event,
                    self.framing,
                    Alteration::Place(code),
                ),
                PublicationKind::NhsNumberInClear(number) => encode_altered(
                    &self.catalogue,
                    event,
                    self.framing,
                    Alteration::EpisodeReference(number),
                ),
                PublicationKind::Truncated => {
                    let bytes = encode(&self.catalogue, event, self.framing);
                    bytes[..bytes.len() / 2].to_vec()
                }
            };
            let topic = self
                .topics
                .topic_for(event.feed(), event.envelope.source_organisation);
            let key = event.envelope.patient.hex();
            deliveries.push(
                self.producer
                    .send(&topic, key.as_str().as_bytes(), &payload)
                    .await,
            );
        }
        let mut undelivered = 0;
        for delivery in deliveries {
            if let Err(error) = delivery.await {
                undelivered += 1;
                tracing::warn!(%error, "a simulated record was not delivered");
            }
        }
        undelivered
    }
}

async fn produce(
    simulator: &mut Simulator,
    sink: &KafkaSink,
    start: Timestamp,
    end: Timestamp,
    speed: Option<f64>,
) -> u64 {
    let mut batch = Vec::new();
    let mut undelivered = 0;
    let real_start = Instant::now();
    let mut simulated = start;
    while simulated < end {
        simulated = match speed {
            Some(speed) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let elapsed = real_start.elapsed().as_millis() as f64 * speed;
                Timestamp::from_millis(start.as_millis() + elapsed as i64)
            }
            None => Timestamp::from_millis(simulated.as_millis() + DAY),
        }
        .min(end);
        simulator.advance(simulated, &mut batch);
        undelivered += sink.send(&batch).await;
        batch.clear();
    }
    undelivered
}

/// Publishes in real time, a batch every second, until SIGINT or SIGTERM;
/// returns how many records were not delivered.
async fn follow(simulator: &mut Simulator, sink: &KafkaSink) -> u64 {
    let clock = icsflow_journeys::wall_clock();
    let mut batch = Vec::new();
    let mut undelivered = 0;
    let stop = crate::roles::wait_for_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        simulator.advance(clock(), &mut batch);
        undelivered += sink.send(&batch).await;
        batch.clear();
    }
    undelivered
}
