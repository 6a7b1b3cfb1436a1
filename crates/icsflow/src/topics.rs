//! `icsflow topics`: every topic icsflow needs, with its partitions and
//! retention (the plan, [`icsflow_kafka::topic_plan`]), and creating the
//! ones a broker lacks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use icsflow_kafka::{PlannedTopic, TopicsFound};

use crate::roles::{load_client_settings, KafkaArgs};

/// The broker could not be read or refused the creation: try again later
/// (EX_TEMPFAIL, as for `rejections` and `publish`).
const EXIT_BROKER: u8 = 75;

#[derive(Debug, clap::Args)]
pub(crate) struct TopicsArgs {
    /// TOML configuration file: topic names, `topics.layout` and, per
    /// partner, `reference.file`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The ICS's reference data (overrides `reference.file`); per-partner
    /// topics are one per partner in it.
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Compare with the broker: which topics exist, with how many
    /// partitions. Exit 1 if any is missing.
    #[arg(long, conflicts_with = "create")]
    check: bool,
    /// Create the topics the broker lacks, as planned; those that exist
    /// are left as they are (a partition count that differs is reported).
    #[arg(long)]
    create: bool,
    /// Replicas of each topic created (default: the broker's
    /// `default.replication.factor`; 3 in production).
    #[arg(long, value_name = "N", requires = "create", value_parser = clap::value_parser!(i32).range(1..=32))]
    replication_factor: Option<i32>,
}

pub(crate) fn run(arguments: TopicsArgs) -> anyhow::Result<ExitCode> {
    let settings = match load_client_settings(
        "topics",
        arguments.config.as_deref(),
        &arguments.kafka,
        arguments.reference.as_deref(),
    ) {
        Ok(settings) => settings,
        Err(exit) => return Ok(exit),
    };
    let plan = icsflow_kafka::topic_plan(&settings.topics, settings.journey_retention_horizon());
    if !arguments.check && !arguments.create {
        println!("{}", render_plan(&plan));
        return Ok(ExitCode::SUCCESS);
    }
    let broker = settings.kafka.bootstrap_servers.clone();
    let found = match icsflow_kafka::find_topics(&settings.kafka, &plan) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("icsflow topics: the broker {broker} could not be read: {error}");
            return Ok(ExitCode::from(EXIT_BROKER));
        }
    };
    print!("{}", render_found(&found, &settings.topics.journey));
    if arguments.check {
        if found.missing.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "icsflow topics: {} topic(s) missing on {broker}; `icsflow topics --create` creates them",
            found.missing.len()
        );
        return Ok(ExitCode::from(1));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let created = match runtime.block_on(icsflow_kafka::create_topics(
        &settings.kafka,
        &found.missing,
        arguments.replication_factor,
    )) {
        Ok(created) => created,
        Err(error) => {
            eprintln!("icsflow topics: creating topics on {broker} failed: {error}");
            return Ok(ExitCode::from(EXIT_BROKER));
        }
    };
    for topic in &found.missing {
        if created.contains(&topic.name) {
            println!(
                "created  {} ({} partitions, {} days)",
                topic.name, topic.partitions, topic.retention_days
            );
        } else {
            println!(
                "exists   {} (created meanwhile by someone else)",
                topic.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The plan as a table.
pub(crate) fn render_plan(plan: &[PlannedTopic]) -> String {
    let width = plan.iter().map(|topic| topic.name.len()).max().unwrap_or(0);
    let mut out = format!(
        "{:width$}  partitions  retention  purpose\n",
        "topic",
        width = width
    );
    for topic in plan {
        out += &format!(
            "{:width$}  {:>10}  {:>6} d  {}\n",
            topic.name,
            topic.partitions,
            topic.retention_days,
            topic.purpose,
            width = width
        );
    }
    out.trim_end().to_owned()
}

fn render_found(found: &TopicsFound, journey: &str) -> String {
    let mut out = String::new();
    for (topic, partitions) in &found.existing {
        if *partitions == topic.partitions {
            out += &format!("exists   {} ({partitions} partitions)\n", topic.name);
        } else {
            out += &format!(
                "exists   {} with {partitions} partitions, not the {} planned{}\n",
                topic.name,
                topic.partitions,
                if topic.name == journey {
                    " (never add partitions to the journey topic: a patient's history would be split)"
                } else {
                    ""
                }
            );
        }
    }
    for topic in &found.missing {
        out += &format!(
            "missing  {} ({} partitions planned)\n",
            topic.name, topic.partitions
        );
    }
    out
}
