//! `icsflow demo` as a newcomer runs it: the built binary, no broker to
//! install, gauges for every simulated place, a clean Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::roles::http_get;
use icsflow_testkit::free_port;

const PLACES: [&str; 3] = ["E06000047", "E08000021", "E08000037"];

/// The value of each `metric` series for `place`, summed.
fn total(body: &str, metric: &str, place: &str) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .filter(|line| line.contains(&format!("place=\"{place}\"")))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

/// The demo process, killed if a failed assertion leaves it running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_serves_gauges_for_every_place_and_stops_cleanly_on_sigint() {
    let admin = format!("127.0.0.1:{}", free_port());
    let published = format!("127.0.0.1:{}", free_port());
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_icsflow"))
            .args(["demo", "--admin-addr", &admin, "--summary-every", "2"])
            .args(["--published-addr", &published])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("icsflow demo starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (lines_sender, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    let first_lines: Vec<String> = (0..3)
        .map(|_| {
            lines
                .recv_timeout(Duration::from_secs(30))
                .expect("start-up lines")
        })
        .collect();
    assert!(
        first_lines[0].contains("embedded mock cluster"),
        "{first_lines:?}"
    );
    assert!(
        first_lines[1].contains(&format!("http://{admin}/metrics")),
        "{first_lines:?}"
    );
    assert!(
        first_lines[2].contains(&format!("http://{published}/metrics")),
        "{first_lines:?}"
    );

    let started = Instant::now();
    let body = loop {
        let (status, body) = http_get(&admin, "/metrics");
        let every_place = PLACES.iter().all(|place| {
            total(&body, "icsflow_flow_not_meeting_criteria_patients", place) > 0.0
                && total(&body, "icsflow_flow_discharges", place) > 0.0
        });
        if status == 200 && every_place {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no gauges for every place within 120 s; last /metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        body.contains("icsflow_ingest_rejected_records_total{"),
        "the simulator's bad records are dead-lettered and counted"
    );
    assert_published_view_hides_small_numbers(&http_get(&published, "/metrics").1);
    // Ready once librdkafka's first statistics show the broker up.
    let started = Instant::now();
    while http_get(&admin, "/readyz").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/readyz: {:?}",
            http_get(&admin, "/readyz")
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let signalled = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the demo did not stop within 30 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|line| line == "icsflow demo: stopped"),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|line| line.starts_with("dead-lettered: ")),
        "{rest:?}"
    );
}

/// The published view: flow gauges and the suppressed-series counts only;
/// every value 0 or a multiple of 5 from 10 up; some series suppressed (a
/// simulated ICS has small cells).
fn assert_published_view_hides_small_numbers(body: &str) {
    let mut flow_series = 0;
    let mut suppressed = 0.0;
    for line in body.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value.parse().expect("a number");
        if series.starts_with("icsflow_disclosure_suppressed_series{") {
            suppressed += value;
            continue;
        }
        assert!(
            series.starts_with("icsflow_flow_"),
            "only flow metrics are published: {line}"
        );
        assert!(
            value == 0.0 || (value >= 10.0 && value % 5.0 == 0.0),
            "not disclosure-controlled: {line}"
        );
        flow_series += 1;
    }
    assert!(flow_series >= 10, "{flow_series} flow series:\n{body}");
    assert!(suppressed > 0.0, "{body}");
}
