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
gives one pseudonym per line. With --column, the input is CSV (RFC 4180: quoted fields may
hold the delimiter, quotes and line breaks; a UTF-8 byte-order mark is skipped): that column
is replaced by the pseudonym (its header renamed patient_pseudonym) and every other column is
kept. A header row is expected unless --no-header is given; a header row whose chosen column
holds an NHS number is refused, since it is data.

A record whose number fails the modulus 11 check is reported on stderr by line number, never
with the number, and is left out of the output; the exit status is then 1.
The key never appears in output or messages.")]
pub(crate) struct PseudonymiseArgs {
    /// File holding the ICS key: at least 32 bytes, used as they are (one
    /// trailing newline is ignored). Keep it readable only by the publisher.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Treat the input as CSV and pseudonymise this column: a header name
    /// (nhs_number) or a 1-based position (3).
    #[arg(long, value_name = "NAME|N")]
    column: Option<String>,
    /// The CSV field separator: `,` (the default), `;`, `|` or `tab`.
    #[arg(long, value_name = "CHAR", default_value = ",", value_parser = parse_delimiter, requires = "column")]
    delimiter: u8,
    /// The CSV has no header row: every row is data (--column must then be
    /// a position).
    #[arg(long, requires = "column")]
    no_header: bool,
    /// Input file, or `-` for standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    input: PathBuf,
}

fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "," | ";" | "|" | ":" => Ok(text.as_bytes()[0]),
        other => Err(format!(
            "`{other}` is not a supported separator: use `,`, `;`, `|`, `:` or `tab`"
        )),
    }
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
    let counts = match &arguments.column {
        None => plain_lines(&key, reader, &mut output)?,
        Some(column) => {
            let csv = Csv {
                column,
                delimiter: arguments.delimiter,
                header: !arguments.no_header,
            };
            match csv.pseudonymise(&key, reader, &mut output)? {
                Some(counts) => counts,
                None => return Ok(ExitCode::from(EXIT_USAGE)),
            }
        }
    };
    output.flush()?;
    if counts.invalid > 0 {
        eprintln!(
            "icsflow pseudonymise: {} pseudonymised, {} refused",
            counts.written, counts.invalid
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The input cannot be used as asked (a header row that is data, a column
/// that does not exist).
const EXIT_USAGE: u8 = 64;

#[derive(Default)]
struct Counts {
    written: u64,
    invalid: u64,
}

fn plain_lines(
    key: &PseudonymKey,
    reader: Box<dyn BufRead>,
    output: &mut impl Write,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number}"))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let line = if number == 1 {
            line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line)
        } else {
            line
        };
        let Ok(line) = std::str::from_utf8(line) else {
            counts.invalid += 1;
            eprintln!("line {number}: not UTF-8 text");
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        match key.pseudonymise(line) {
            Ok(pseudonym) => {
                writeln!(output, "{}", pseudonym.hex().as_str())?;
                counts.written += 1;
            }
            Err(error) => {
                counts.invalid += 1;
                eprintln!("line {number}: {error}");
            }
        }
    }
    Ok(counts)
}

/// How a CSV input is read.
struct Csv<'a> {
    column: &'a str,
    delimiter: u8,
    header: bool,
}

impl Csv<'_> {
    /// Pseudonymises one column; `None` when the input cannot be used as
    /// asked (reported on stderr).
    fn pseudonymise(
        &self,
        key: &PseudonymKey,
        reader: Box<dyn BufRead>,
        output: &mut impl Write,
    ) -> anyhow::Result<Option<Counts>> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .from_writer(output);
        let mut counts = Counts::default();
        let mut position = None;
        let mut record = csv::ByteRecord::new();
        loop {
            let line = reader.position().line();
            if !reader
                .read_byte_record(&mut record)
                .with_context(|| format!("reading the CSV record at line {line}"))?
            {
                break;
            }
            // The first field of the first record may start with Excel's
            // byte-order mark.
            let mut fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
            if line == 1 {
                if let Some(first) = fields.first_mut() {
                    if let Some(rest) = first.strip_prefix(b"\xef\xbb\xbf") {
                        *first = rest.to_vec();
                    }
                }
            }
            let column = if let Some(column) = position {
                column
            } else {
                let Some(column) = self.find_column(&fields) else {
                    eprintln!(
                        "icsflow pseudonymise: no column {} in the {} ({} columns)",
                        self.column,
                        if self.header {
                            "header row"
                        } else {
                            "first row"
                        },
                        fields.len()
                    );
                    return Ok(None);
                };
                position = Some(column);
                if self.header {
                    let holds_number = std::str::from_utf8(&fields[column])
                        .is_ok_and(|text| key.pseudonymise(text).is_ok());
                    if holds_number {
                        eprintln!("icsflow pseudonymise: the header row's column {} holds an NHS number: the input has no header row; pass --no-header", self.column);
                        return Ok(None);
                    }
                    fields[column] = b"patient_pseudonym".to_vec();
                    writer.write_record(&fields)?;
                    continue;
                }
                column
            };
            if fields.iter().all(|field| field.is_empty()) {
                continue;
            }
            // The output is meant to leave the partner: a number in another
            // column would leave with it.
            if let Some(other) = fields.iter().enumerate().position(|(index, field)| {
                index != column
                    && icsflow_core::contains_nhs_number(&String::from_utf8_lossy(field))
            }) {
                counts.invalid += 1;
                eprintln!(
                    "line {line}: column {} also holds an NHS number; the record is left out",
                    other + 1
                );
                continue;
            }
            let pseudonym = fields
                .get(column)
                .and_then(|value| std::str::from_utf8(value).ok())
                .ok_or(icsflow_partner::NhsNumberError::NotTenDigits)
                .and_then(|value| key.pseudonymise(value));
            match pseudonym {
                Ok(pseudonym) => {
                    fields[column] = pseudonym.hex().as_str().as_bytes().to_vec();
                    writer.write_record(&fields)?;
                    counts.written += 1;
                }
                Err(error) => {
                    counts.invalid += 1;
                    eprintln!("line {line}: {error}");
                }
            }
        }
        writer.flush()?;
        Ok(Some(counts))
    }

    fn find_column(&self, first_row: &[Vec<u8>]) -> Option<usize> {
        if let Ok(position) = self.column.parse::<usize>() {
            return (1..=first_row.len())
                .contains(&position)
                .then(|| position - 1);
        }
        if !self.header {
            return None;
        }
        first_row
            .iter()
            .position(|name| name.trim_ascii() == self.column.as_bytes())
    }
}
