//! `icsflow rejections`: one partner's rejected records, read from the
//! dead-letter topic, for the ICS to hand to that partner: counts by reason
//! and field, first and last seen, and each record's source coordinates and
//! event id. Never a value, never another partner's records.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use icsflow_core::{OdsCode, Timestamp};
use icsflow_kafka::{read_dead_letters, DeadLetter};

use crate::roles::{load_client_settings, KafkaArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A summary by reason and field, then one row per record.
    Table,
    /// One JSON object per rejected record, to forward to the partner.
    Jsonl,
}

/// Flags of `icsflow rejections`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads the dead-letter topic (topics.dead_letter) from --since ago, or from its start, to its end
now, and reports the records of one organisation: the partner whose topic they came from (per-partner
topics), or the organisation the record named (shared topics). Records whose organisation could not be
read are nobody's and never shown. A record's value is never printed; for identifiable_data (and any
record whose bytes may hold an NHS number) not even its event id.

Exit status: 0 the report was made (with or without rejections); 64 bad flags or configuration;
75 the broker could not be read (try again later).")]
pub(crate) struct RejectionsArgs {
    /// The partner's ODS code, for example RVW.
    #[arg(long, value_name = "CODE")]
    organisation: String,
    /// Only rejections of the last DURATION: a number and s, m, h or d
    /// (30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    since: Option<i64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// TOML configuration file: the broker connection and the dead-letter
    /// topic's name.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// The longest `--since`: ten years, beyond any topic's retention.
const LONGEST_SINCE_MILLIS: i64 = 3_653 * 86_400_000;

/// Milliseconds in a duration such as `24h`: a positive whole number and
/// one of s, m, h or d, at most ten years. Never panics, whatever the text.
fn parse_duration(text: &str) -> Result<i64, String> {
    let expected =
        || format!("`{text}`: expected a positive number and s, m, h or d, for example 24h");
    let Some((split, _)) = text.char_indices().last() else {
        return Err(expected());
    };
    let (number, unit) = text.split_at(split);
    let unit_millis: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(expected()),
    };
    let count = number
        .parse::<i64>()
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(expected)?;
    count
        .checked_mul(unit_millis)
        .filter(|millis| *millis <= LONGEST_SINCE_MILLIS)
        .ok_or_else(|| format!("`{text}`: at most ten years (3653d), beyond any topic's retention"))
}

pub(crate) fn run(arguments: RejectionsArgs) -> anyhow::Result<ExitCode> {
    if OdsCode::parse("organisation", &arguments.organisation).is_err() {
        eprintln!(
            "icsflow rejections: --organisation `{}` is not an ODS code (3 to 6 upper-case letters and digits)",
            arguments.organisation
        );
        return Ok(ExitCode::from(64));
    }
    let settings = match load_client_settings(
        "rejections",
        arguments.config.as_deref(),
        &arguments.kafka,
        None,
    ) {
        Ok(settings) => settings,
        Err(exit) => return Ok(exit),
    };
    let now = icsflow_journeys::wall_clock()();
    let since = arguments
        .since
        .map(|millis| Timestamp::from_millis(now.as_millis() - millis));
    let topic = &settings.topics.dead_letter;
    let letters = match read_dead_letters(&settings.kafka, topic, since, &arguments.organisation) {
        Ok(letters) => letters,
        Err(error) => {
            eprintln!("icsflow rejections: reading {topic}: {error}");
            return Ok(ExitCode::from(75));
        }
    };
    match arguments.format {
        Format::Jsonl => {
            for letter in &letters {
                println!("{}", json_line(letter));
            }
        }
        Format::Table => print!("{}", table(&letters, &arguments.organisation, topic, since)),
    }
    Ok(ExitCode::SUCCESS)
}

fn instant(millis: i64) -> String {
    let (year, month, day) = Timestamp::from_millis(millis).date().to_calendar();
    let of_day = millis.rem_euclid(Timestamp::MILLIS_PER_DAY) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn json_line(letter: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "organisation": letter.organisation,
        "reason": letter.reason,
        "field": letter.field,
        "feed": letter.feed,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "event_id": letter.event_id.map(|id| id.to_string()),
        "value_withheld": letter.withheld,
        "rejected_at": instant(letter.rejected_at_millis),
    })
}

fn table(
    letters: &[DeadLetter],
    organisation: &str,
    topic: &str,
    since: Option<Timestamp>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let window = since.map_or_else(
        || "since the topic's start".to_owned(),
        |since| format!("since {}", instant(since.as_millis())),
    );
    let _ = writeln!(
        out,
        "Rejections of {organisation} in {topic} {window}: {} record(s)",
        letters.len()
    );
    if letters.is_empty() {
        return out;
    }
    // (reason, field) -> (count, first, last)
    let mut groups: BTreeMap<(&str, &str), (usize, i64, i64)> = BTreeMap::new();
    for letter in letters {
        let entry = groups
            .entry((
                letter.reason.as_str(),
                letter.field.as_deref().unwrap_or("-"),
            ))
            .or_insert((0, i64::MAX, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.min(letter.rejected_at_millis);
        entry.2 = entry.2.max(letter.rejected_at_millis);
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<24} {:>6}  {:<20}  {:<20}",
        "reason", "field", "count", "first seen", "last seen"
    );
    for ((reason, field), (count, first, last)) in &groups {
        let _ = writeln!(
            out,
            "{reason:<24} {field:<24} {count:>6}  {:<20}  {:<20}",
            instant(*first),
            instant(*last)
        );
    }
    let _ = writeln!(
        out,
        "\n{:<32} {:>9} {:>10}  {:<36}  reason",
        "source topic", "partition", "offset", "event id"
    );
    for letter in letters {
        let event_id = match (letter.event_id, letter.withheld) {
            (Some(id), _) => id.to_string(),
            (None, true) => "(withheld)".to_owned(),
            (None, false) => "(unreadable)".to_owned(),
        };
        let reason = match &letter.field {
            Some(field) => format!("{} ({field})", letter.reason),
            None => letter.reason.clone(),
        };
        let _ = writeln!(
            out,
            "{:<32} {:>9} {:>10}  {event_id:<36}  {reason}",
            letter.topic, letter.partition, letter.offset
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_number_and_a_unit() {
        assert_eq!(parse_duration("24h"), Ok(86_400_000));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert!(parse_duration("24").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
    }

    /// Regression: `--since 200000000000d` and `--since 1é` panicked (exit
    /// 101), and `--since 106751991167d` overflowed into a time the broker
    /// could not read (exit 75). Any text now parses or is refused.
    #[test]
    fn any_since_parses_or_is_refused_and_never_panics() {
        assert_eq!(parse_duration("3653d"), Ok(LONGEST_SINCE_MILLIS));
        for refused in [
            "200000000000d",
            "106751991167d",
            "9223372036854775807s",
            "3654d",
            "1é",
            "é",
            "",
            "-5m",
            "1.5h",
        ] {
            assert!(parse_duration(refused).is_err(), "{refused}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_text_panics(text in "\\PC{0,24}") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn no_number_and_unit_panics(count in proptest::num::i64::ANY, unit in "[smhd]") {
            let _ = parse_duration(&format!("{count}{unit}"));
        }
    }
}
