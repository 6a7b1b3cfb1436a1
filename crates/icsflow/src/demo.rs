//! `icsflow demo`: the whole pipeline in one process on an embedded broker,
//! fed by the simulator, with a live summary in the terminal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use icsflow_avro::{Framing, SchemaCatalogue};
use icsflow_core::{PlaceCode, Timestamp};
use icsflow_engine::{DelayBand, MetricKey, StayBand, Window};
use icsflow_events::Counter;
use icsflow_journeys::Clock;
use icsflow_kafka::{EmbeddedBroker, PartnerProducer};
use icsflow_partner::{SimulatedPlace, SimulationStatistics, Simulator};
use icsflow_telemetry::PrometheusRecorder;

use crate::roles::{self, load_settings, Pipeline, Role, RoleArgs};
use crate::simulate::{KafkaSink, ModelArgs};

/// The demo's admin address unless --admin-addr says otherwise.
pub(crate) const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9464";

/// Flags of `icsflow demo`.
#[derive(Debug, Args)]
#[command(after_help = "\
Without --broker the demo starts librdkafka's in-process mock cluster as its broker: nothing to
install. It simulates --history-days of history at once, then keeps simulating at --speed; the
roles validate and measure on the same simulated clock. The metrics are at
http://127.0.0.1:9464/metrics unless --admin-addr says otherwise. Ctrl-C stops it cleanly with a
final summary.

The embedded broker keeps at most 5 MiB per partition and drops older data; it is for the demo,
never for deployments.")]
pub(crate) struct DemoArgs {
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADMIN_ADDR)]
    admin_addr: String,
    /// Also serve the published view (flow metrics under the NHS
    /// small-number rule) here.
    #[arg(long, value_name = "HOST:PORT")]
    published_addr: Option<String>,
    /// -b/--bootstrap-server (or --broker): a Kafka broker to use instead of
    /// the embedded one (topics are created if missing).
    #[command(flatten)]
    kafka: roles::KafkaArgs,
    /// TOML configuration file (topic names, broker settings, engine).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Days of history simulated at start-up.
    #[arg(long, default_value_t = 28, value_name = "N")]
    history_days: u32,
    /// Simulated seconds per real second after the history (8640: a day
    /// every 10 seconds; 1: real time).
    #[arg(long, default_value_t = 8640.0, value_name = "N")]
    speed: f64,
    /// Seconds between summaries in the terminal.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    summary_every: u64,
}

const DAY: i64 = Timestamp::MILLIS_PER_DAY;

pub(crate) fn run(arguments: DemoArgs) -> anyhow::Result<ExitCode> {
    let role_arguments = RoleArgs {
        config: arguments.config.clone(),
        kafka: arguments.kafka.clone(),
        admin_addr: Some(arguments.admin_addr.clone()),
        published_addr: arguments.published_addr.clone(),
        check: false,
        reference: None,
    };
    let mut settings = match load_settings("demo", &role_arguments) {
        Ok(settings) => settings,
        Err(exit) => return Ok(exit),
    };
    // Group joins wait about half the session timeout; the demo has one
    // consumer per group and should start at once.
    settings.kafka.session_timeout_ms = 6000;
    roles::init_logging(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let embedded = match &arguments.kafka.bootstrap_server {
        Some(broker) => {
            // The demo sets itself up: the topics it lacks are created as
            // planned, and it says which.
            let plan =
                icsflow_kafka::topic_plan(&settings.topics, settings.journey_retention_horizon());
            let found = icsflow_kafka::find_topics(&settings.kafka, &plan)
                .with_context(|| format!("reading the topics of {broker}"))?;
            let created = runtime
                .block_on(icsflow_kafka::create_topics(
                    &settings.kafka,
                    &found.missing,
                    None,
                ))
                .with_context(|| format!("creating the icsflow topics on {broker}"))?;
            for topic in found
                .missing
                .iter()
                .filter(|topic| created.contains(&topic.name))
            {
                println!(
                    "icsflow demo: created {} ({} partitions) on {broker}",
                    topic.name, topic.partitions
                );
            }
            None
        }
        None => {
            let broker =
                EmbeddedBroker::start(&settings.topics, settings.journey_retention_horizon())
                    .context("starting the embedded broker")?;
            settings.kafka.bootstrap_servers = broker.bootstrap_servers();
            Some(broker)
        }
    };
    println!(
        "icsflow demo: broker {} ({})",
        settings.kafka.bootstrap_servers,
        if embedded.is_some() {
            "embedded mock cluster"
        } else {
            "external"
        }
    );

    // Simulated time: the history up to now at once, then `speed` times
    // faster than the wall clock.
    let wall_start = icsflow_journeys::wall_clock()();
    let real_start = Instant::now();
    let speed = arguments.speed.max(0.0);
    let clock: Clock = Arc::new(move || {
        let simulated = real_start.elapsed().as_secs_f64() * 1000.0 * speed;
        Timestamp::from_millis(wall_start.as_millis() + simulated as i64)
    });
    let today = wall_start.as_millis().div_euclid(DAY) * DAY;
    let start = Timestamp::from_millis(today - i64::from(arguments.history_days) * DAY);
    let simulator = Simulator::new(arguments.model.config(start));
    let places = simulator.places().to_vec();

    // The engines are read as `engine.as_of` says, on the simulated clock.
    let pipeline = Pipeline::new(Role::Run, Arc::clone(&clock), settings.engine_as_of)?;
    // The names and cadences of the simulated ICS, unless the
    // configuration names other reference data.
    let reference = match &settings.reference {
        Some(reference) => Arc::clone(reference),
        None => Arc::new(
            icsflow::reference::parse(
                icsflow::reference::DEMO_REFERENCE,
                icsflow::reference::DEMO_REFERENCE_TEXT,
            )
            .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?,
        ),
    };
    pipeline
        .events
        .bound_organisations_by(Arc::clone(&reference));
    // The roles count every record by it.
    settings.reference = Some(reference);
    let sink = KafkaSink {
        producer: PartnerProducer::new(&settings.kafka)?,
        topics: settings.topics.clone(),
        catalogue: SchemaCatalogue::embedded(),
        framing: Framing::SingleObject,
    };
    let statistics = Arc::new(Mutex::new(SimulationStatistics::default()));
    let summary = Summary {
        places: places.clone(),
        engines: Arc::clone(&pipeline.engines),
        recorder: Arc::clone(&pipeline.recorder),
        statistics: Arc::clone(&statistics),
        as_of: Arc::clone(&pipeline.as_of),
        start,
    };
    let companion = {
        let summary = summary.clone();
        let clock = Arc::clone(&clock);
        let every = Duration::from_secs(arguments.summary_every.max(1));
        move |mut shutdown: icsflow_kafka::Shutdown| async move {
            let mut simulator = simulator;
            let mut batch = Vec::new();
            let mut last_summary = Instant::now();
            loop {
                simulator.advance(clock(), &mut batch);
                sink.send(&batch).await;
                batch.clear();
                if let Ok(mut shared) = statistics.lock() {
                    *shared = simulator.statistics();
                }
                if last_summary.elapsed() >= every {
                    last_summary = Instant::now();
                    println!("{}", summary.render());
                }
                tokio::select! {
                    _ = shutdown.changed() => break,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
    };
    let exit = runtime.block_on(roles::serve(
        "demo",
        Role::Run,
        &settings,
        &pipeline,
        companion,
    ))?;
    println!("{}", summary.render());
    println!("icsflow demo: stopped");
    drop(runtime);
    drop(embedded);
    Ok(exit)
}

/// The terminal summary: per place, the headline figures; per partner,
/// what was dead-lettered.
#[derive(Clone)]
struct Summary {
    places: Vec<SimulatedPlace>,
    engines: Arc<icsflow_journeys::PartitionEngines>,
    recorder: Arc<PrometheusRecorder>,
    statistics: Arc<Mutex<SimulationStatistics>>,
    /// What the engines are read as of (`engine.as_of`).
    as_of: Clock,
    start: Timestamp,
}

#[derive(Default)]
struct PlaceFigures {
    not_meeting_criteria: i64,
    stay_21_plus: i64,
    /// Yesterday's.
    delayed_bed_days: i64,
    waiting_for_care: i64,
    discharged_7_days: i64,
}

impl Summary {
    fn render(&self) -> String {
        let now = (self.as_of)();
        let mut figures: BTreeMap<PlaceCode, PlaceFigures> = BTreeMap::new();
        // Days since the ready date, every place: by `DelayBand::ALL`.
        let mut since_ready = [0_i64; DelayBand::ALL.len()];
        for (key, value) in self.engines.metrics(now) {
            match key {
                MetricKey::NotMeetingCriteriaByDelay { delay, .. } => {
                    if let Some(index) = DelayBand::ALL.iter().position(|band| *band == delay) {
                        since_ready[index] += value;
                    }
                }
                MetricKey::NotMeetingCriteria { place, .. } => {
                    figures.entry(place).or_default().not_meeting_criteria += value;
                }
                MetricKey::NotMeetingCriteriaByStay {
                    place,
                    stay: StayBand::Days21Plus,
                    ..
                } => figures.entry(place).or_default().stay_21_plus += value,
                MetricKey::DelayedBedDays {
                    place,
                    totalled: Some(Window::Day1),
                    ..
                } => {
                    figures.entry(place).or_default().delayed_bed_days += value;
                }
                MetricKey::Discharges {
                    place,
                    totalled: Some(Window::Days7),
                    ..
                } => {
                    figures.entry(place).or_default().discharged_7_days += value;
                }
                MetricKey::WaitingForCare { place, .. } => {
                    figures.entry(place).or_default().waiting_for_care += value;
                }
                _ => {}
            }
        }
        let statistics = self
            .statistics
            .lock()
            .map(|shared| *shared)
            .unwrap_or_default();
        let (year, month, day) = now.london_date().to_calendar();
        let minutes = now.as_millis().rem_euclid(DAY) / 60_000;
        let mut text = format!(
            "\n── simulated {year}-{month:02}-{day:02} {:02}:{:02} UTC (day {}) · {} records published (+{} duplicates, {} bad)\n",
            minutes / 60,
            minutes % 60,
            (now.as_millis() - self.start.as_millis()).div_euclid(DAY),
            statistics.valid,
            statistics.duplicates,
            statistics.bad,
        );
        text.push_str(&format!(
            "{:<10} {:<15} {:>12} {:>9} {:>12} {:>12} {:>12}\n",
            "place", "", "not meeting", "of whom", "bed days", "waiting for", "discharged"
        ));
        text.push_str(&format!(
            "{:<10} {:<15} {:>12} {:>9} {:>12} {:>12} {:>12}\n",
            "", "", "criteria", "21+ days", "yesterday", "care start", "last 7 days"
        ));
        for place in &self.places {
            let row = figures.remove(&place.place).unwrap_or_default();
            text.push_str(&format!(
                "{:<10} {:<15} {:>12} {:>9} {:>12} {:>12} {:>12}\n",
                place.place.as_str(),
                place.name,
                row.not_meeting_criteria,
                row.stay_21_plus,
                row.delayed_bed_days,
                row.waiting_for_care,
                row.discharged_7_days
            ));
        }
        let bands = DelayBand::ALL
            .iter()
            .zip(since_ready)
            .map(|(band, count)| format!("{} {count}", band.as_str()))
            .collect::<Vec<_>>()
            .join(" · ");
        text.push_str(&format!(
            "not meeting criteria, by days since the ready date: {bands}\n"
        ));
        let mut by_partner: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
        for (labels, count) in self.recorder.counter_values(Counter::Rejected) {
            // Labels sorted by name: feed, organisation, reason.
            if let [_, organisation, reason] = labels.as_slice() {
                *by_partner.entry(organisation.clone()).or_default() += count;
                *by_reason.entry(reason.clone()).or_default() += count;
            }
        }
        let total: u64 = by_reason.values().sum();
        if total == 0 {
            text.push_str("dead-lettered: none yet");
            return text;
        }
        let reasons = by_reason
            .iter()
            .map(|(reason, count)| format!("{reason} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut partners: Vec<(String, u64)> = by_partner.into_iter().collect();
        partners.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
        const SHOWN: usize = 8;
        let mut listed = partners
            .iter()
            .take(SHOWN)
            .map(|(partner, count)| format!("{partner} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        if partners.len() > SHOWN {
            let rest: u64 = partners[SHOWN..].iter().map(|(_, count)| count).sum();
            listed.push_str(&format!(
                ", {} more partners {rest}",
                partners.len() - SHOWN
            ));
        }
        text.push_str(&format!(
            "dead-lettered: {total} ({reasons})\n  by partner: {listed}"
        ));
        text
    }
}
