//! `icsflow`: one binary for every process role and tool of the project.
//!
//! Each subcommand is a thin shell over the library crates: it parses
//! flags, calls a library, prints, and chooses the exit status. Errors are
//! `anyhow` here and only here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod schemas;

/// Links the operational feeds of an Integrated Care System's partners and
/// measures discharge flow per place.
#[derive(Debug, Parser)]
#[command(name = "icsflow", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the partner schemas and generate the data dictionary.
    #[command(subcommand)]
    Schemas(schemas::SchemasCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Schemas(command) => schemas::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("icsflow: {error:#}");
            ExitCode::FAILURE
        }
    }
}
