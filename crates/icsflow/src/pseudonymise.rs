//! `icsflow pseudonymise`: NHS numbers in, ICS pseudonyms out, at source.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use icsflow_partner::PseudonymKey;

/// Flags of `icsflow pseudonymise`.
#[derive(Debug, Args)]
#[command(after_help = "\
The pseudonym is HMAC-SHA256 of the NHS number's ten digits (no spaces) under the ICS key,
as 64 lower-case hexadecimal characters: the patient_pseudonym every partner publishes.

Plain input has one NHS number per line (spaces and hyphens allowed: 943 476 5919) and
gives one pseudonym per line. With --column, the input is CSV: that column is replaced by
the pseudonym (its header renamed patient_pseudonym) and every other column is kept.

A line whose number fails the modulus 11 check is reported on stderr by line number, never
with the number, and is left out of the output; the exit status is then 1.
The key never appears in output or messages.")]
pub(crate) struct PseudonymiseArgs {
    /// File holding the ICS key: at least 32 bytes, used as they are (one
    /// trailing newline is ignored). Keep it readable only by the publisher.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Treat the input as CSV with a header row, and pseudonymise this
    /// column: a header name (nhs_number) or a 1-based position (3).
    #[arg(long, value_name = "NAME|N")]
    column: Option<String>,
    /// Input file, or `-` for standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    input: PathBuf,
}

/// Reads an ICS key file; the error names the file, never the key.
pub(crate) fn read_key(path: &std::path::Path) -> anyhow::Result<PseudonymKey> {
    let key_bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    PseudonymKey::from_file_contents(&key_bytes)
        .with_context(|| format!("the key file {} is not usable", path.display()))
}

pub(crate) fn run(arguments: PseudonymiseArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(&arguments.key_file)?;
    let reader = crate::roles::open_input(&arguments.input)?;
    let stdout = std::io::stdout();
    let mut output = std::io::BufWriter::new(stdout.lock());
    let mut invalid = 0_u64;
    let mut written = 0_u64;
    let mut column_index = None;
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number}"))?;
        let line = line.trim_end_matches('\r');
        let Some(column) = &arguments.column else {
            if line.trim().is_empty() {
                continue;
            }
            match key.pseudonymise(line) {
                Ok(pseudonym) => {
                    writeln!(output, "{}", pseudonym.hex().as_str())?;
                    written += 1;
                }
                Err(error) => {
                    invalid += 1;
                    eprintln!("line {number}: {error}");
                }
            }
            continue;
        };
        let mut fields = split_csv(line);
        let Some(position) = column_index else {
            // The header row.
            let position = find_column(&fields, column).with_context(|| {
                format!(
                    "no column {column} in the header row ({} columns)",
                    fields.len()
                )
            })?;
            fields[position] = "patient_pseudonym".to_owned();
            writeln!(output, "{}", join_csv(&fields))?;
            column_index = Some(position);
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let pseudonym = fields
            .get(position)
            .ok_or(icsflow_partner::NhsNumberError::NotTenDigits)
            .and_then(|value| key.pseudonymise(value));
        match pseudonym {
            Ok(pseudonym) => {
                fields[position] = pseudonym.hex().as_str().to_owned();
                writeln!(output, "{}", join_csv(&fields))?;
                written += 1;
            }
            Err(error) => {
                invalid += 1;
                eprintln!("line {number}: {error}");
            }
        }
    }
    output.flush()?;
    if invalid > 0 {
        eprintln!("icsflow pseudonymise: {written} pseudonymised, {invalid} line(s) refused");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn find_column(header: &[String], column: &str) -> Option<usize> {
    if let Ok(position) = column.parse::<usize>() {
        return (1..=header.len()).contains(&position).then(|| position - 1);
    }
    header.iter().position(|name| name.trim() == column)
}

/// Splits one CSV line (RFC 4180 quoting: `"a, b"` and `""` inside quotes).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut characters = line.chars().peekable();
    while let Some(character) = characters.next() {
        let field = fields.last_mut().expect("fields is never empty");
        match (character, quoted) {
            ('"', true) if characters.peek() == Some(&'"') => {
                field.push('"');
                characters.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(String::new()),
            (other, _) => field.push(other),
        }
    }
    fields
}

fn join_csv(fields: &[String]) -> String {
    fields
        .iter()
        .map(|field| {
            if field.contains([',', '"', '\n']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_split_and_join_with_quotes() {
        let fields = split_csv(r#"1,"Smith, J","say ""hi""",943 476 5919"#);
        assert_eq!(fields, ["1", "Smith, J", r#"say "hi""#, "943 476 5919"]);
        assert_eq!(
            join_csv(&fields),
            r#"1,"Smith, J","say ""hi""",943 476 5919"#
        );
        assert_eq!(find_column(&fields, "4"), Some(3));
        assert_eq!(find_column(&fields, "5"), None);
        assert_eq!(
            find_column(&["id".to_owned(), "nhs_number".to_owned()], "nhs_number"),
            Some(1)
        );
    }
}
