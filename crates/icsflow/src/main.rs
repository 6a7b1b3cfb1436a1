//! `icsflow`: one binary for every process role and tool of the project.
//!
//! Each subcommand is a thin shell over the library crates: it parses
//! flags, calls a library, prints, and chooses the exit status. Errors are
//! `anyhow` here and only here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod acls;
mod demo;
mod pseudonymise;
mod publish;
mod quality;
mod rejections;
mod roles;
mod schemas;
mod simulate;
mod topics;

/// Links the operational feeds of an Integrated Care System's partners and
/// measures discharge flow per place.
#[derive(Debug, Parser)]
#[command(
    name = "icsflow",
    // The git revision too ("unknown" when built outside a checkout), as
    // `icsflow_build_info` says.
    version = concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("ICSFLOW_REVISION"), ")"),
    about,
    long_about = None,
    propagate_version = true
)]
struct Cli {
    /// More log lines: -v debug, -vv trace (overrides RUST_LOG and
    /// `log.level`).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Fewer log lines: -q warnings and errors, -qq errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume the partner topics, validate every record, and produce
    /// events to the journey topic or rejects to the dead-letter topic.
    Ingest(roles::RoleArgs),
    /// Consume the journey topic in a consumer group, rebuild the journeys
    /// of the assigned partitions, and serve the flow metrics.
    Join(roles::RoleArgs),
    /// Ingest and join in one process, for small deployments.
    Run(roles::RoleArgs),
    /// The whole pipeline in one process on an embedded broker, fed by the
    /// simulator, with a live summary. Start here.
    Demo(demo::DemoArgs),
    /// Simulate an ICS's partner feeds, to JSON lines files or a broker.
    Simulate(simulate::SimulateArgs),
    /// Validate JSON lines of one feed and produce them as Avro records to
    /// its partner topic.
    Publish(publish::PublishArgs),
    /// The topics icsflow needs, with their partitions and retention; with
    /// --create, create those a broker lacks.
    Topics(topics::TopicsArgs),
    /// Render the ICS's Kafka ACLs (kafka-acls commands or Strimzi
    /// resources) from its reference data: each partner writes only its own
    /// topics, each role gets only what it uses.
    Acls(acls::AclsArgs),
    /// One partner's rejected records from the dead-letter topic: counts by
    /// reason and field, and each record's coordinates and event id.
    Rejections(rejections::RejectionsArgs),
    /// One partner's data-quality figures from a running icsflow's admin
    /// endpoint or Prometheus: how late its events are recorded and arrive,
    /// what was refused, how complete the facts the measures depend on are,
    /// its unlinked events, corrections and conflicting re-sends.
    Quality(quality::QualityArgs),
    /// Turn NHS numbers into the ICS pseudonyms, at source.
    Pseudonymise(pseudonymise::PseudonymiseArgs),
    /// Check the partner schemas and generate the data dictionary.
    #[command(subcommand)]
    Schemas(schemas::SchemasCommand),
}

/// Exit status of a bad command line (EX_USAGE), as README's table says.
const EXIT_USAGE: u8 = 64;
/// Exit status when an input file named on the command line cannot be
/// opened (EX_NOINPUT); 1 stays "a line was refused: fix the data".
const EXIT_NO_INPUT: u8 = 66;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    roles::set_verbosity(cli.verbose, cli.quiet);
    let outcome = match cli.command {
        Command::Ingest(arguments) => roles::run(roles::Role::Ingest, arguments),
        Command::Join(arguments) => roles::run(roles::Role::Join, arguments),
        Command::Run(arguments) => roles::run(roles::Role::Run, arguments),
        Command::Demo(arguments) => demo::run(arguments),
        Command::Simulate(arguments) => simulate::run(arguments),
        Command::Publish(arguments) => publish::run(arguments),
        Command::Pseudonymise(arguments) => pseudonymise::run(arguments),
        Command::Acls(arguments) => acls::run(arguments),
        Command::Topics(arguments) => topics::run(arguments),
        Command::Rejections(arguments) => rejections::run(arguments),
        Command::Quality(arguments) => quality::run(arguments),
        Command::Schemas(command) => schemas::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("icsflow: {error:#}");
            if error.downcast_ref::<roles::InputUnreadable>().is_some() {
                ExitCode::from(EXIT_NO_INPUT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
