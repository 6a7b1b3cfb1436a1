//! `icsflow quality`: one partner's data-quality figures, for that
//! partner's data-quality lead, read from a running icsflow's admin
//! endpoint or from the Prometheus that scrapes the ICS's icsflow: how late
//! its events are recorded and arrive, what was refused and why, how
//! complete the facts the measures depend on are, how many of its events
//! link to no journey or amend others, and how many of its delayed
//! patients have a delay reason now. Never another partner's figures; the
//! metrics hold no record's values.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use icsflow_core::Kind;
use icsflow_core::OdsCode;
use icsflow_events::events::{DelayStage, Lateness};

/// The period the engine's measures are totalled over: the complete
/// London days ending yesterday (the `period` of the `_window` metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Since {
    /// Yesterday.
    #[value(name = "1d")]
    Day1,
    /// The 7 days ending yesterday.
    #[value(name = "7d")]
    Days7,
    /// The 28 days ending yesterday.
    #[value(name = "28d")]
    Days28,
}

impl Since {
    fn label(self) -> &'static str {
        match self {
            Since::Day1 => "1d",
            Since::Days7 => "7d",
            Since::Days28 => "28d",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Since::Day1 => "yesterday",
            Since::Days7 => "the 7 days ending yesterday",
            Since::Days28 => "the 28 days ending yesterday",
        }
    }
}

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
Completeness, unlinked events, corrections and conflicting re-sends are the engine's, over
the complete days of --since, by when events occurred (the same after a restart).
Timeliness and refusals are ingest's counters: with --prometheus-url they are taken over
the rolling --since up to now, by when records arrived, and the engine's counts are also
given per 1,000 events accepted (close, not exact: the two spans differ by a day and by
occurrence against arrival); from an admin endpoint (--metrics-url: ingest or run for
timeliness and refusals, join or run for the engine's measures) they count since that
process started, and only refusals are given per 1,000. Only the series of the one
organisation are kept. docs/data-quality.md defines every measure.

Exit status: 0 the report was made; 64 bad flags; 69 the endpoint could not be read (is it
running, and is the URL its address?).")]
pub(crate) struct QualityArgs {
    /// The partner's ODS code, for example RVW.
    #[arg(long, value_name = "CODE")]
    organisation: String,
    /// The admin endpoint's metrics.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:9464/metrics",
        conflicts_with = "prometheus_url"
    )]
    metrics_url: String,
    /// A Prometheus server scraping the ICS's icsflow (for example
    /// http://prometheus:9090): ingest's figures over the rolling --since.
    #[arg(long, value_name = "URL")]
    prometheus_url: Option<String>,
    /// The complete days the figures cover.
    #[arg(long, value_enum, default_value = "7d")]
    since: Since,
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
    let (samples, source) = match &arguments.prometheus_url {
        Some(url) => (
            from_prometheus(url, organisation.as_str(), arguments.since),
            Source::Prometheus,
        ),
        None => (
            fetch(&arguments.metrics_url).map(|text| parse(&text)),
            Source::Endpoint,
        ),
    };
    let samples =
        match samples {
            Ok(samples) => samples,
            Err(error) => {
                let (url, what) = match &arguments.prometheus_url {
                Some(url) => (url, "Prometheus running there, and is --prometheus-url its address"),
                None => (
                    &arguments.metrics_url,
                    "icsflow running there, and is --metrics-url its admin address (admin.addr)",
                ),
            };
                eprintln!("icsflow quality: could not read {url}: {error:#}. Is {what}?");
                return Ok(ExitCode::from(EXIT_UNAVAILABLE));
            }
        };
    let report = Report::of(&samples, organisation.as_str(), arguments.since);
    let heading = Heading {
        organisation: organisation.as_str(),
        since: arguments.since,
        source,
    };
    match arguments.format {
        Format::Table => print!("{}", report.table(&heading)),
        Format::Jsonl => print!("{}", report.json_lines(&heading)),
    }
    Ok(ExitCode::SUCCESS)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn fetch(url: &str) -> anyhow::Result<String> {
    agent()
        .get(url)
        .call()
        .context("the request failed")?
        .body_mut()
        .read_to_string()
        .context("the answer could not be read")
}

/// Where the figures came from, which decides what ingest's counters
/// cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// An admin endpoint: ingest's counters since its process started.
    Endpoint,
    /// Prometheus: ingest's counters over the days of `--since`.
    Prometheus,
}

/// What a report says it covers.
struct Heading<'a> {
    organisation: &'a str,
    since: Since,
    source: Source,
}

/// The queries that give, from Prometheus, the samples an admin endpoint
/// would: each named as the metric it reads (ingest's counters as their
/// increase over the days of `since`), summed over replicas, and only
/// `organisation`'s series. The code is an ODS code (letters and digits),
/// so it is safe in a selector.
fn prometheus_queries(organisation: &str, since: Since) -> Vec<(&'static str, String)> {
    let days = since.label();
    let own = format!("organisation=\"{organisation}\"");
    vec![
        (
            "icsflow_ingest_events_by_delay_total",
            format!("sum by (feed, organisation, stage, delay) (increase(icsflow_ingest_events_by_delay_total{{{own}}}[{days}]))"),
        ),
        (
            "icsflow_ingest_rejected_records_total",
            format!("sum by (feed, organisation, reason) (increase(icsflow_ingest_rejected_records_total{{{own}}}[{days}]))"),
        ),
        (
            "icsflow_ingest_last_event_timestamp_seconds",
            format!("max by (feed, organisation) (icsflow_ingest_last_event_timestamp_seconds{{{own}}})"),
        ),
        (
            "icsflow_quality_completeness_records_window",
            format!("sum by (feed, organisation, field, recorded, period) (icsflow_quality_completeness_records_window{{{own},period=\"{days}\"}})"),
        ),
        (
            "icsflow_quality_amended_events_window",
            format!("sum by (feed, organisation, amendment, period) (icsflow_quality_amended_events_window{{{own},period=\"{days}\"}})"),
        ),
        (
            "icsflow_quality_unlinked_events_window",
            format!("sum by (feed, organisation, period) (icsflow_quality_unlinked_events_window{{{own},period=\"{days}\"}})"),
        ),
        (
            "icsflow_flow_delayed_by_reason_patients",
            format!("sum by (provider, reason_family) (icsflow_flow_delayed_by_reason_patients{{provider=\"{organisation}\"}})"),
        ),
    ]
}

/// The samples of every query of [`prometheus_queries`], from the
/// Prometheus HTTP API at `url`.
fn from_prometheus(url: &str, organisation: &str, since: Since) -> anyhow::Result<Vec<Sample>> {
    let agent = agent();
    let mut samples = Vec::new();
    for (name, query) in prometheus_queries(organisation, since) {
        let text = agent
            .get(&format!("{}/api/v1/query", url.trim_end_matches('/')))
            .query("query", &query)
            .call()
            .context("the request failed")?
            .body_mut()
            .read_to_string()
            .context("the answer could not be read")?;
        let answer: serde_json::Value =
            serde_json::from_str(&text).context("the answer is not the Prometheus API's JSON")?;
        samples.extend(samples_of(name, &answer).with_context(|| format!("query {query}"))?);
    }
    Ok(samples)
}

/// The samples of one instant-query answer, named `name`.
fn samples_of(name: &str, answer: &serde_json::Value) -> anyhow::Result<Vec<Sample>> {
    if answer["status"] != "success" {
        anyhow::bail!(
            "Prometheus answered {}: {}",
            answer["status"],
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    let results = answer["data"]["result"]
        .as_array()
        .context("the answer holds no result")?;
    results
        .iter()
        .map(|result| {
            let labels = result["metric"]
                .as_object()
                .context("a result without labels")?
                .iter()
                .filter_map(|(label, value)| Some((label.clone(), value.as_str()?.to_owned())))
                .collect();
            let value = result["value"][1]
                .as_str()
                .and_then(|value| value.parse::<f64>().ok())
                .context("a result without a value")?;
            Ok(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
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
    /// By feed and field: records with it recorded, and without.
    completeness: BTreeMap<(String, String), (f64, f64)>,
    /// By feed and amendment.
    amended: BTreeMap<(String, String), f64>,
    /// By feed.
    unlinked: BTreeMap<String, f64>,
}

impl Report {
    /// `organisation`'s figures among `samples`; the engine's over the
    /// period `since`.
    fn of(samples: &[Sample], organisation: &str, since: Since) -> Report {
        let mut report = Report::default();
        let label =
            |sample: &Sample, name: &str| sample.labels.get(name).cloned().unwrap_or_default();
        let period = |sample: &Sample| label(sample, "period") == since.label();
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
                "icsflow_quality_completeness_records_window" if own && period(sample) => {
                    let counts = report
                        .completeness
                        .entry((label(sample, "feed"), label(sample, "field")))
                        .or_default();
                    if label(sample, "recorded") == "yes" {
                        counts.0 += sample.value;
                    } else {
                        counts.1 += sample.value;
                    }
                }
                "icsflow_quality_amended_events_window" if own && period(sample) => {
                    *report
                        .amended
                        .entry((label(sample, "feed"), label(sample, "amendment")))
                        .or_default() += sample.value;
                }
                "icsflow_quality_unlinked_events_window" if own && period(sample) => {
                    *report.unlinked.entry(label(sample, "feed")).or_default() += sample.value;
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
            .chain(self.completeness.keys().map(|(feed, _)| feed.clone()))
            .chain(self.amended.keys().map(|(feed, _)| feed.clone()))
            .chain(self.unlinked.keys().cloned())
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

    /// Events of `feed` ingest accepted, and records it refused.
    fn volume(&self, feed: &str) -> (f64, f64) {
        let accepted = self.bands(feed, DelayStage::Arrived).1;
        let refused = self
            .rejected
            .iter()
            .filter(|((rejected_feed, _), _)| rejected_feed == feed)
            .map(|(_, count)| count)
            .sum();
        (accepted, refused)
    }

    /// `count` per 1,000 of `feed`'s records, when the engine's counts and
    /// ingest's cover about the same days (`engine`: from Prometheus), or
    /// always for ingest's own.
    fn per_1000(&self, feed: &str, count: f64, heading: &Heading<'_>, engine: bool) -> Option<f64> {
        if engine && heading.source != Source::Prometheus {
            return None;
        }
        let (accepted, refused) = self.volume(feed);
        let records = if engine { accepted } else { accepted + refused };
        (records > 0.0).then(|| 1000.0 * count / records)
    }

    fn table(&self, heading: &Heading<'_>) -> String {
        let ingest_span = match heading.source {
            Source::Endpoint => "since the endpoint's process started",
            Source::Prometheus => "over the rolling period up to now (per 1,000 rates approximate)",
        };
        let mut text = format!(
            "icsflow quality: {}: completeness, unlinked and amended events over {}; timeliness and refusals {ingest_span}\n",
            heading.organisation,
            heading.since.words(),
        );
        if self.feeds().is_empty() && self.delayed.is_none() {
            text.push_str("no figures for this organisation there (is it a partner of the ICS's reference data, has it published, and is this the right endpoint?)\n");
            return text;
        }
        let with_rate = |count: f64, rate: Option<f64>| match rate {
            Some(rate) => format!("{count:.0} ({rate:.1} per 1,000)"),
            None => format!("{count:.0}"),
        };
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
                .map(|((_, reason), count)| {
                    let rate = self.per_1000(&feed, *count, heading, false);
                    format!("{reason} {}", with_rate(*count, rate))
                })
                .collect();
            if !rejected.is_empty() {
                text.push_str(&format!("  refused: {}\n", rejected.join(", ")));
            }
            let complete: Vec<String> = self
                .completeness
                .iter()
                .filter(|((of, _), (yes, no))| *of == feed && yes + no > 0.0)
                .map(|((_, field), (yes, no))| {
                    format!(
                        "{field} {:.0} % of {:.0}",
                        100.0 * yes / (yes + no),
                        yes + no
                    )
                })
                .collect();
            if !complete.is_empty() {
                text.push_str(&format!("  fields recorded: {}\n", complete.join(", ")));
            }
            let unlinked = self.unlinked.get(&feed).copied().unwrap_or(0.0);
            let mut consistency = vec![format!(
                "unlinked {}",
                with_rate(unlinked, self.per_1000(&feed, unlinked, heading, true))
            )];
            consistency.extend(self.amended.iter().filter(|((of, _), _)| *of == feed).map(
                |((_, amendment), count)| {
                    let rate = self.per_1000(&feed, *count, heading, true);
                    format!("{amendment} {}", with_rate(*count, rate))
                },
            ));
            text.push_str(&format!("  {}\n", consistency.join(", ")));
        }
        if let Some((all, missing)) = self.delayed.filter(|(all, _)| *all > 0.0) {
            text.push_str(&format!(
                "delay reasons recorded now: {:.0} % of {all:.0} delayed patients\n",
                100.0 * (all - missing) / all
            ));
        }
        text
    }

    fn json_lines(&self, heading: &Heading<'_>) -> String {
        let organisation = heading.organisation;
        let ingest_since = match heading.source {
            Source::Endpoint => "process_start",
            Source::Prometheus => match heading.since {
                Since::Day1 => "rolling_1d",
                Since::Days7 => "rolling_7d",
                Since::Days28 => "rolling_28d",
            },
        };
        let mut lines = Vec::new();
        for feed in self.feeds() {
            for stage in <DelayStage as Kind>::ALL {
                let (bands, total) = self.bands(&feed, *stage);
                let mut line = serde_json::json!({
                    "organisation": organisation,
                    "feed": feed,
                    "measure": "timeliness",
                    "since": ingest_since,
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
                        "since": ingest_since,
                        "reason": reason,
                        "records": count,
                        "per_1000": self.per_1000(&feed, *count, heading, false),
                    }));
                }
            }
            for ((of, field), (yes, no)) in &self.completeness {
                if *of == feed {
                    lines.push(serde_json::json!({
                        "organisation": organisation,
                        "feed": feed,
                        "measure": "completeness",
                        "since": heading.since.label(),
                        "field": field,
                        "recorded": yes,
                        "not_recorded": no,
                    }));
                }
            }
            let unlinked = self.unlinked.get(&feed).copied().unwrap_or(0.0);
            lines.push(serde_json::json!({
                "organisation": organisation,
                "feed": feed,
                "measure": "unlinked",
                "since": heading.since.label(),
                "events": unlinked,
                "per_1000": self.per_1000(&feed, unlinked, heading, true),
            }));
            for ((of, amendment), count) in &self.amended {
                if *of == feed {
                    lines.push(serde_json::json!({
                        "organisation": organisation,
                        "feed": feed,
                        "measure": amendment,
                        "since": heading.since.label(),
                        "events": count,
                        "per_1000": self.per_1000(&feed, *count, heading, true),
                    }));
                }
            }
        }
        if let Some((all, missing)) = self.delayed {
            lines.push(serde_json::json!({
                "organisation": organisation,
                "measure": "delay_reasons_recorded",
                "since": "now",
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
icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes",period="7d"} 30
icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="no",period="7d"} 10
icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="no",period="28d"} 99
icsflow_quality_completeness_records_window{feed="discharge",organisation="RXP",field="bed_type",recorded="no",period="7d"} 40
icsflow_quality_amended_events_window{feed="discharge",organisation="RVW",amendment="correction",period="7d"} 2
icsflow_quality_amended_events_window{feed="discharge",organisation="RXP",amendment="conflicting_resend",period="7d"} 8
icsflow_quality_unlinked_events_window{feed="discharge",organisation="RVW",period="7d"} 1
"#;

    fn heading(organisation: &str, source: Source) -> Heading<'_> {
        Heading {
            organisation,
            since: Since::Days7,
            source,
        }
    }

    #[test]
    fn one_organisations_figures_and_none_of_anothers() {
        let report = Report::of(&parse(EXPOSITION), "RVW", Since::Days7);
        let table = report.table(&heading("RVW", Source::Endpoint));
        for expected in [
            "arrived (100 events): same_hour 90 %, same_day 0 %, next_day 10 %, later 0 %",
            "recorded (100 events): same_hour 100 %",
            // 3 of the 103 records it published.
            "refused: invalid_code 3 (29.1 per 1,000)",
            // The 7-day period's figures, not the 28 days'.
            "fields recorded: discharge_ready_date 75 % of 40",
            // From an endpoint, the engine's counts are not set against
            // ingest's, which cover other days.
            "unlinked 1, correction 2",
            "delay reasons recorded now: 75 % of 8 delayed patients",
            "timeliness and refusals since the endpoint's process started",
        ] {
            assert!(table.contains(expected), "{expected} missing from\n{table}");
        }
        // RXP's figures are nowhere: not its late events, its refusals, its
        // missing bed types, its re-sends or its delays.
        for absent in [
            "later 100",
            "malformed",
            "bed_type",
            "conflicting_resend",
            "of 9",
        ] {
            assert!(!table.contains(absent), "{absent} in\n{table}");
        }
        let lines = report.json_lines(&heading("RVW", Source::Endpoint));
        assert!(
            !lines.contains("RXP") && !lines.contains("malformed") && !lines.contains("bed_type"),
            "{lines}"
        );
        // Two stages, one refusal, one field, unlinked, one amendment,
        // the delay reasons.
        assert_eq!(lines.lines().count(), 7, "{lines}");
        for line in lines.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(value["organisation"], "RVW");
        }
    }

    /// From Prometheus, ingest's counters cover about the same days, so the
    /// engine's counts are given per 1,000 events too.
    #[test]
    fn from_prometheus_every_count_is_also_per_1000_events() {
        let report = Report::of(&parse(EXPOSITION), "RVW", Since::Days7);
        let table = report.table(&heading("RVW", Source::Prometheus));
        assert!(
            table.contains("unlinked 1 (10.0 per 1,000), correction 2 (20.0 per 1,000)"),
            "{table}"
        );
        assert!(
            table.contains("timeliness and refusals over the rolling period up to now"),
            "{table}"
        );
    }

    /// The Prometheus API's answers become the samples an endpoint gives,
    /// and every query keeps to the one organisation.
    #[test]
    fn prometheus_answers_are_read_as_samples_of_one_organisation() {
        let answer = serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"feed": "discharge", "organisation": "RVW", "reason": "invalid_code"},
                 "value": [1765000000.0, "3"]}
            ]}
        });
        let samples =
            samples_of("icsflow_ingest_rejected_records_total", &answer).expect("samples");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[0].labels["reason"], "invalid_code");
        let refused = serde_json::json!({"status": "error", "error": "parse error"});
        let error = samples_of("x", &refused).expect_err("an error answer");
        assert!(format!("{error}").contains("parse error"), "{error}");
        for (_, query) in prometheus_queries("RVW", Since::Days28) {
            assert!(
                query.contains("organisation=\"RVW\"") || query.contains("provider=\"RVW\""),
                "{query}"
            );
            assert!(
                !query.contains("[7d]") && !query.contains("\"7d\""),
                "{query}"
            );
        }
    }

    #[test]
    fn an_organisation_with_no_figures_is_told_so() {
        let table = Report::of(&parse(EXPOSITION), "M83670", Since::Days7)
            .table(&heading("M83670", Source::Endpoint));
        assert!(
            table.contains("no figures for this organisation"),
            "{table}"
        );
    }
}
