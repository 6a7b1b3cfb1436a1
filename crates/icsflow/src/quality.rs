//! `icsflow quality`: one partner's data-quality figures, read from a
//! running icsflow's admin endpoint, for that partner's data-quality lead:
//! how late its events are recorded and arrive, what was refused and why,
//! how fresh its feed is, and (from a join or run endpoint) how many of its
//! delayed patients have a delay reason. Never another partner's figures;
//! the metrics hold no record's values.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use icsflow_core::Kind;
use icsflow_core::OdsCode;
use icsflow_events::events::{DelayStage, Lateness};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A few lines for a person.
    Table,
    /// One JSON object per measure, to forward or load.
    Jsonl,
}

/// Flags of `icsflow quality`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads the Prometheus text of a running icsflow's admin endpoint (ingest or run for timeliness, rejections
and freshness; join or run for delay reasons) and keeps only the series of one organisation: figures
since that process started (the dashboards show them over any window). docs/data-quality.md defines
every measure.

Exit status: 0 the report was made; 64 bad flags; 69 the endpoint could not be read (is the process
running, and is --metrics-url its admin address?).")]
pub(crate) struct QualityArgs {
    /// The partner's ODS code, for example RVW.
    #[arg(long, value_name = "CODE")]
    organisation: String,
    /// The admin endpoint's metrics.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:9464/metrics"
    )]
    metrics_url: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Exit status when the endpoint cannot be read (EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

pub(crate) fn run(arguments: QualityArgs) -> anyhow::Result<ExitCode> {
    let Ok(organisation) = OdsCode::parse("--organisation", arguments.organisation.trim()) else {
        eprintln!(
            "icsflow quality: --organisation `{}` is not an ODS code (3 to 6 letters and digits, for example RVW)",
            arguments.organisation
        );
        return Ok(ExitCode::from(crate::EXIT_USAGE));
    };
    let text = match fetch(&arguments.metrics_url) {
        Ok(text) => text,
        Err(error) => {
            eprintln!(
                "icsflow quality: could not read {}: {error:#}. Is icsflow running there, and is --metrics-url its admin address (admin.addr)?",
                arguments.metrics_url
            );
            return Ok(ExitCode::from(EXIT_UNAVAILABLE));
        }
    };
    let report = Report::of(&parse(&text), organisation.as_str());
    match arguments.format {
        Format::Table => print!("{}", report.table(organisation.as_str())),
        Format::Jsonl => print!("{}", report.json_lines(organisation.as_str())),
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(url: &str) -> anyhow::Result<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .get(url)
        .call()
        .context("the request failed")?
        .body_mut()
        .read_to_string()
        .context("the answer could not be read")
}

/// One sample of the text exposition: its metric name, labels and value.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (comments and malformed
/// lines left out).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = value.parse::<f64>().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels_of(rest.strip_suffix('}')?)?),
                None => (series, BTreeMap::new()),
            };
            Some(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
}

/// `a="x",b="y"`: icsflow's label values are codes and words (no quote,
/// comma or backslash in them), which is all this reads.
fn labels_of(text: &str) -> Option<BTreeMap<String, String>> {
    text.split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once("=\"")?;
            Some((name.to_owned(), value.trim_end_matches('"').to_owned()))
        })
        .collect()
}

/// One organisation's figures.
#[derive(Debug, Default, PartialEq)]
struct Report {
    /// By feed, stage and delay band.
    by_delay: BTreeMap<(String, String, String), f64>,
    /// By feed and reason.
    rejected: BTreeMap<(String, String), f64>,
    /// By feed: `occurred_at` of the newest accepted event, in seconds.
    newest: BTreeMap<String, f64>,
    /// Delayed patients of the trust, and those with no delay reason.
    delayed: Option<(f64, f64)>,
}

impl Report {
    fn of(samples: &[Sample], organisation: &str) -> Report {
        let mut report = Report::default();
        let label =
            |sample: &Sample, name: &str| sample.labels.get(name).cloned().unwrap_or_default();
        for sample in samples {
            let own = sample.labels.get("organisation").map(String::as_str) == Some(organisation);
            let own_provider =
                sample.labels.get("provider").map(String::as_str) == Some(organisation);
            match sample.name.as_str() {
                "icsflow_ingest_events_by_delay_total" if own => {
                    *report
                        .by_delay
                        .entry((
                            label(sample, "feed"),
                            label(sample, "stage"),
                            label(sample, "delay"),
                        ))
                        .or_default() += sample.value;
                }
                "icsflow_ingest_rejected_records_total" if own => {
                    *report
                        .rejected
                        .entry((label(sample, "feed"), label(sample, "reason")))
                        .or_default() += sample.value;
                }
                "icsflow_ingest_last_event_timestamp_seconds" if own => {
                    report.newest.insert(label(sample, "feed"), sample.value);
                }
                "icsflow_flow_delayed_by_reason_patients" if own_provider => {
                    let (all, missing) = report.delayed.get_or_insert((0.0, 0.0));
                    *all += sample.value;
                    if label(sample, "reason_family") == "not_recorded" {
                        *missing += sample.value;
                    }
                }
                _ => {}
            }
        }
        report
    }

    fn feeds(&self) -> Vec<String> {
        let mut feeds: Vec<String> = self
            .by_delay
            .keys()
            .map(|(feed, _, _)| feed.clone())
            .chain(self.rejected.keys().map(|(feed, _)| feed.clone()))
            .chain(self.newest.keys().cloned())
            .collect();
        feeds.sort();
        feeds.dedup();
        feeds
    }

    /// Events of `feed` at `stage`, by band (in `Lateness::ALL` order), and
    /// their total.
    fn bands(&self, feed: &str, stage: DelayStage) -> (Vec<(Lateness, f64)>, f64) {
        let bands: Vec<(Lateness, f64)> = <Lateness as Kind>::ALL
            .iter()
            .map(|band| {
                let key = (
                    feed.to_owned(),
                    stage.label().to_owned(),
                    band.label().to_owned(),
                );
                (*band, self.by_delay.get(&key).copied().unwrap_or(0.0))
            })
            .collect();
        let total = bands.iter().map(|(_, count)| count).sum();
        (bands, total)
    }

    fn table(&self, organisation: &str) -> String {
        let mut text = format!("icsflow quality: {organisation} (since the process started)\n");
        if self.feeds().is_empty() && self.delayed.is_none() {
            text.push_str("no figures for this organisation at this endpoint (is it a partner of the ICS's reference data, and has it published?)\n");
            return text;
        }
        for feed in self.feeds() {
            text.push_str(&format!("{feed}:\n"));
            for stage in <DelayStage as Kind>::ALL {
                let (bands, total) = self.bands(&feed, *stage);
                if total == 0.0 {
                    continue;
                }
                let shares: Vec<String> = bands
                    .iter()
                    .map(|(band, count)| format!("{} {:.0} %", band.label(), 100.0 * count / total))
                    .collect();
                text.push_str(&format!(
                    "  {} ({total:.0} events): {}\n",
                    stage.label(),
                    shares.join(", ")
                ));
            }
            let rejected: Vec<String> = self
                .rejected
                .iter()
                .filter(|((rejected_feed, _), count)| *rejected_feed == feed && **count > 0.0)
                .map(|((_, reason), count)| format!("{reason} {count:.0}"))
                .collect();
            if !rejected.is_empty() {
                text.push_str(&format!("  refused: {}\n", rejected.join(", ")));
            }
        }
        if let Some((all, missing)) = self.delayed.filter(|(all, _)| *all > 0.0) {
            text.push_str(&format!(
                "delay reasons recorded: {:.0} % of {all:.0} delayed patients\n",
                100.0 * (all - missing) / all
            ));
        }
        text
    }

    fn json_lines(&self, organisation: &str) -> String {
        let mut lines = Vec::new();
        for feed in self.feeds() {
            for stage in <DelayStage as Kind>::ALL {
                let (bands, total) = self.bands(&feed, *stage);
                let mut line = serde_json::json!({
                    "organisation": organisation,
                    "feed": feed,
                    "measure": "timeliness",
                    "stage": stage.label(),
                    "events": total,
                });
                for (band, count) in bands {
                    line[band.label()] = serde_json::json!(count);
                }
                lines.push(line);
            }
            for ((rejected_feed, reason), count) in &self.rejected {
                if *rejected_feed == feed {
                    lines.push(serde_json::json!({
                        "organisation": organisation,
                        "feed": feed,
                        "measure": "refused",
                        "reason": reason,
                        "records": count,
                    }));
                }
            }
        }
        if let Some((all, missing)) = self.delayed {
            lines.push(serde_json::json!({
                "organisation": organisation,
                "measure": "delay_reasons_recorded",
                "delayed_patients": all,
                "without_reason": missing,
            }));
        }
        lines.iter().map(|line| format!("{line}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP icsflow_ingest_events_by_delay_total Partner events ingest accepted, by how late they were.
# TYPE icsflow_ingest_events_by_delay_total counter
icsflow_ingest_events_by_delay_total{delay="same_hour",feed="discharge",organisation="RVW",stage="arrived"} 90
icsflow_ingest_events_by_delay_total{delay="next_day",feed="discharge",organisation="RVW",stage="arrived"} 10
icsflow_ingest_events_by_delay_total{delay="same_hour",feed="discharge",organisation="RVW",stage="recorded"} 100
icsflow_ingest_events_by_delay_total{delay="later",feed="discharge",organisation="RXP",stage="arrived"} 7
icsflow_ingest_rejected_records_total{feed="discharge",organisation="RVW",reason="invalid_code"} 3
icsflow_ingest_rejected_records_total{feed="discharge",organisation="RXP",reason="malformed"} 5
icsflow_ingest_last_event_timestamp_seconds{feed="discharge",organisation="RVW"} 1765000000
icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RVW",reason_family="capacity"} 6
icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RVW",reason_family="not_recorded"} 2
icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RXP",reason_family="not_recorded"} 9
"#;

    #[test]
    fn one_organisations_figures_and_none_of_anothers() {
        let report = Report::of(&parse(EXPOSITION), "RVW");
        let table = report.table("RVW");
        assert!(
            table.contains(
                "arrived (100 events): same_hour 90 %, same_day 0 %, next_day 10 %, later 0 %"
            ),
            "{table}"
        );
        assert!(
            table.contains("recorded (100 events): same_hour 100 %"),
            "{table}"
        );
        assert!(table.contains("refused: invalid_code 3"), "{table}");
        assert!(
            table.contains("delay reasons recorded: 75 % of 8 delayed patients"),
            "{table}"
        );
        // RXP's figures are nowhere: not its late events, its refusals or
        // its delays.
        assert!(
            !table.contains("later 100") && !table.contains("malformed"),
            "{table}"
        );
        let lines = report.json_lines("RVW");
        assert!(
            !lines.contains("RXP") && !lines.contains("malformed"),
            "{lines}"
        );
        assert_eq!(lines.lines().count(), 4, "{lines}");
        for line in lines.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(value["organisation"], "RVW");
        }
    }

    #[test]
    fn an_organisation_with_no_figures_is_told_so() {
        let table = Report::of(&parse(EXPOSITION), "M83670").table("M83670");
        assert!(
            table.contains("no figures for this organisation"),
            "{table}"
        );
    }
}
