//! `icsflow schemas check`, `icsflow schemas docs` and `icsflow schemas
//! examples`, `icsflow schemas json`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum SchemasCommand {
    /// Check every schema version against its predecessor.
    ///
    /// Each feed folder holds v1.avsc, v2.avsc, ... without gaps. Each
    /// version must be backward compatible (it reads data written with the
    /// previous version) and forward compatible (the previous version reads
    /// its data), and every field and named type must have a doc. Enum
    /// symbols are only appended; an enum may gain symbols only if it has a
    /// default (older readers read unknown symbols as the default) or gets
    /// its default in the same version (printed: partners send the new
    /// symbols only once icsflow reads that version). Exits 1 and lists
    /// every problem when any rule is broken.
    Check {
        /// The schema folder, holding one sub-folder per feed.
        #[arg(long, default_value = "schemas", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write the data dictionary (every event, field, type, code list and
    /// doc) generated from the schemas this binary was built with.
    Docs {
        /// Where to write the Markdown.
        #[arg(long, default_value = "docs/data-dictionary.md", value_name = "FILE")]
        output: PathBuf,
        /// Write nothing; exit 1 if the file differs from what would be
        /// written (for CI).
        #[arg(long)]
        check: bool,
    },
    /// Write one JSON line per event type, per feed: the examples partners
    /// start from, in the form `icsflow publish` reads.
    Examples {
        /// Where to write discharge.jsonl, social_care.jsonl and
        /// primary_care.jsonl.
        #[arg(long, default_value = "schemas/examples", value_name = "DIR")]
        output_dir: PathBuf,
        /// Write nothing; exit 1 if a file differs from what would be
        /// written (for CI).
        #[arg(long)]
        check: bool,
    },
    /// Write the JSON Schema (draft 2020-12) of each feed's JSON line form,
    /// rendered from the current Avro schema, for integration engines that
    /// validate before they send.
    Json {
        /// Where to write discharge.schema.json, social_care.schema.json and
        /// primary_care.schema.json.
        #[arg(long, default_value = icsflow_avro::JSON_SCHEMA_DIRECTORY, value_name = "DIR")]
        output_dir: PathBuf,
        /// Write nothing; exit 1 if a file differs from what would be
        /// written (for CI).
        #[arg(long)]
        check: bool,
    },
}

pub(crate) fn run(command: SchemasCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchemasCommand::Check { dir } => Ok(check(&dir)),
        SchemasCommand::Docs { output, check } => {
            let rendered = icsflow_avro::render_data_dictionary(icsflow_avro::EMBEDDED_SCHEMAS);
            write_or_check(&output, &rendered, check, "icsflow schemas docs")
        }
        SchemasCommand::Examples { output_dir, check } => {
            let events = icsflow_core::one_event_of_each_type();
            let mut exit = ExitCode::SUCCESS;
            for feed in icsflow_core::Feed::ALL {
                let lines: String = events
                    .iter()
                    .filter(|event| event.feed() == feed)
                    .map(|event| icsflow_avro::encode_json(event) + "\n")
                    .collect();
                let path = output_dir.join(format!("{}.jsonl", feed.as_str()));
                if write_or_check(&path, &lines, check, "icsflow schemas examples")?
                    != ExitCode::SUCCESS
                {
                    exit = ExitCode::FAILURE;
                }
            }
            Ok(exit)
        }
        SchemasCommand::Json { output_dir, check } => {
            let mut exit = ExitCode::SUCCESS;
            for feed in icsflow_core::Feed::ALL {
                let file = icsflow_avro::current_schema_file(feed);
                let rendered =
                    icsflow_avro::render_json_schema(file).map_err(anyhow::Error::msg)?;
                let path = output_dir.join(icsflow_avro::json_schema_file_name(file));
                if write_or_check(&path, &rendered, check, "icsflow schemas json")?
                    != ExitCode::SUCCESS
                {
                    exit = ExitCode::FAILURE;
                }
            }
            Ok(exit)
        }
    }
}

fn check(dir: &std::path::Path) -> ExitCode {
    let report = icsflow_avro::check_schema_directory(dir);
    for line in &report.checked {
        println!("checked: {line}");
    }
    if report.problems.is_empty() {
        println!(
            "schemas check: {} checks, no problems",
            report.checked.len()
        );
        return ExitCode::SUCCESS;
    }
    for problem in &report.problems {
        eprintln!("problem: {problem}");
    }
    eprintln!(
        "schemas check: {} problem(s) in {}; fix the schema (add defaults to new fields; append enum symbols only, to enums with a default) or add a new version",
        report.problems.len(),
        dir.display()
    );
    ExitCode::FAILURE
}

/// Writes a generated file, or with `check` compares it with the
/// committed one.
fn write_or_check(
    output: &std::path::Path,
    rendered: &str,
    check: bool,
    command: &str,
) -> anyhow::Result<ExitCode> {
    if check {
        let committed = std::fs::read_to_string(output).unwrap_or_default();
        if committed == rendered {
            println!("{} is up to date", output.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} is stale: run `{command}` and commit the result",
            output.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(parent) = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(output, rendered).with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}
