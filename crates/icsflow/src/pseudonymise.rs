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
hold the delimiter, quotes and line breaks; a UTF-8 byte-order mark is skipped) and the
output holds that column, as the pseudonym, and only the columns named with --keep, in
their input order; every other column is left behind. When --column or --keep is a position,
say whether the first row is a header (--header) or data (--no-header); a column given by
name needs the header row. The header's chosen column renamed patient_pseudonym; a header
row whose chosen column holds an NHS number is refused, since it is data.

A record whose number fails the modulus 11 check is reported on stderr by line number, never
with the number, and is left out of the output; the exit status is then 1. A kept column that
may show an NHS number in any spelling (separators of any kind, full-width or other Unicode
digits, invisible characters, a prefix or a longer run of digits) stops the run at that row,
named by its line and column, never its value; nothing of that row or after it is written,
and the exit status is 1: leave the column out, or clean it first.
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
    /// The CSV's first row is a header (needed, or implied, when a column
    /// is named).
    #[arg(long, requires = "column", conflicts_with = "no_header")]
    header: bool,
    /// The CSV has no header row: every row is data (--column and --keep
    /// must then be positions).
    #[arg(long, requires = "column")]
    no_header: bool,
    /// A column to copy to the output as it is (a header name or a
    /// 1-based position); repeat it, or separate names with commas. Only
    /// the pseudonymised column and these are written.
    #[arg(
        long,
        value_name = "NAME|N",
        requires = "column",
        value_delimiter = ','
    )]
    keep: Vec<String>,
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
            let positional = std::iter::once(column)
                .chain(&arguments.keep)
                .find(|column| column.parse::<usize>().is_ok());
            let header = match (arguments.header, arguments.no_header, positional) {
                (true, _, _) => true,
                (_, true, _) => false,
                (false, false, None) => true,
                (false, false, Some(position)) => {
                    eprintln!("icsflow pseudonymise: --column or --keep {position} is a position: say whether the first row is a header row (--header) or data (--no-header)");
                    return Ok(ExitCode::from(EXIT_USAGE));
                }
            };
            let csv = Csv {
                column,
                keep: &arguments.keep,
                delimiter: arguments.delimiter,
                header,
            };
            match csv.pseudonymise(&key, reader, &mut output)? {
                Some(counts) => counts,
                None => return Ok(ExitCode::from(EXIT_USAGE)),
            }
        }
    };
    output.flush()?;
    if let Some((line, column)) = counts.stopped_at {
        eprintln!(
            "icsflow pseudonymise: line {line}: kept column {column} may show an NHS number; stopped there ({} pseudonymised before it). Leave the column out of --keep, or clean it first",
            counts.written
        );
        return Ok(ExitCode::FAILURE);
    }
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
    /// The line and column (1-based) of a kept field that may show an NHS
    /// number: the run stopped there.
    stopped_at: Option<(u64, usize)>,
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
    /// The columns copied as they are.
    keep: &'a [String],
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
        // The pseudonymised column, and every column written (in input
        // order), once the first row is read.
        let mut layout: Option<(usize, Vec<usize>)> = None;
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
            let mut fields: Vec<&[u8]> = record.iter().collect();
            if line == 1 {
                if let Some(first) = fields.first_mut() {
                    *first = first.strip_prefix(b"\xef\xbb\xbf").unwrap_or(first);
                }
            }
            let first_row = layout.is_none();
            if first_row {
                let Some(found) = self.layout(&fields) else {
                    return Ok(None);
                };
                layout = Some(found);
            }
            // Set just above for the first row; borrowed, never copied, for
            // every row after it.
            let Some((column, written)) = layout
                .as_ref()
                .map(|(column, written)| (*column, written.as_slice()))
            else {
                return Ok(None);
            };
            if first_row && self.header {
                let holds_number = std::str::from_utf8(fields[column])
                    .is_ok_and(|text| key.pseudonymise(text).is_ok());
                if holds_number {
                    eprintln!("icsflow pseudonymise: the header row's column {} holds an NHS number: the input has no header row; pass --no-header", self.column);
                    return Ok(None);
                }
                if let Some(kept) = kept_showing_number(&fields, written, column) {
                    counts.stopped_at = Some((line, kept + 1));
                    break;
                }
                let header = written.iter().map(|index| {
                    if *index == column {
                        &b"patient_pseudonym"[..]
                    } else {
                        fields[*index]
                    }
                });
                writer.write_record(header)?;
                continue;
            }
            if fields.iter().all(|field| field.is_empty()) {
                continue;
            }
            // The output is meant to leave the partner: a kept column that
            // may show a number stops everything.
            if let Some(kept) = kept_showing_number(&fields, written, column) {
                counts.stopped_at = Some((line, kept + 1));
                break;
            }
            let pseudonym = fields
                .get(column)
                .and_then(|value| std::str::from_utf8(value).ok())
                .ok_or(icsflow_partner::NhsNumberError::NotTenDigits)
                .and_then(|value| key.pseudonymise(value));
            match pseudonym {
                Ok(pseudonym) => {
                    let hex = pseudonym.hex();
                    let row = written.iter().map(|index| {
                        if *index == column {
                            hex.as_str().as_bytes()
                        } else {
                            fields.get(*index).copied().unwrap_or_default()
                        }
                    });
                    writer.write_record(row)?;
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

    /// The pseudonymised column and the columns written, in input order,
    /// from the first row; `None` (reported) when one is not there.
    fn layout(&self, first_row: &[&[u8]]) -> Option<(usize, Vec<usize>)> {
        let row = if self.header {
            "header row"
        } else {
            "first row"
        };
        let Some(column) = self.find_column(first_row, self.column) else {
            eprintln!(
                "icsflow pseudonymise: no column {} in the {row} ({} columns)",
                self.column,
                first_row.len()
            );
            return None;
        };
        let mut written = vec![column];
        for kept in self.keep {
            let Some(index) = self.find_column(first_row, kept) else {
                eprintln!(
                    "icsflow pseudonymise: no column {kept} (--keep) in the {row} ({} columns)",
                    first_row.len()
                );
                return None;
            };
            written.push(index);
        }
        written.sort_unstable();
        written.dedup();
        Some((column, written))
    }

    fn find_column(&self, first_row: &[&[u8]], wanted: &str) -> Option<usize> {
        if let Ok(position) = wanted.parse::<usize>() {
            return (1..=first_row.len())
                .contains(&position)
                .then(|| position - 1);
        }
        if !self.header {
            return None;
        }
        first_row
            .iter()
            .position(|name| name.trim_ascii() == wanted.as_bytes())
    }
}

/// The first kept column (0-based) of a row that may show an NHS number,
/// in any spelling (`icsflow_core::may_show_nhs_number`).
fn kept_showing_number(fields: &[&[u8]], written: &[usize], column: usize) -> Option<usize> {
    written.iter().copied().find(|index| {
        *index != column
            && fields.get(*index).is_some_and(|field| {
                icsflow_core::may_show_nhs_number(&String::from_utf8_lossy(field))
            })
    })
}
