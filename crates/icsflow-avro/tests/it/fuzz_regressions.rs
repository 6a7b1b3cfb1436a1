//! Inputs the fuzz targets (`fuzz/`, `make fuzz`) once broke, replayed
//! through the same properties on every `make test`. A new finding goes in
//! `fuzz/regressions/<target>/` under a name that says what it was.

use icsflow_avro::decode_json;
use icsflow_core::{contains_nhs_number, Feed, Timestamp, TimestampPolicy};
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| {
                    (
                        entry.file_name().to_string_lossy().into_owned(),
                        std::fs::read(entry.path()).expect("readable input"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn policy() -> TimestampPolicy {
    TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000))
}

#[test]
fn json_publish_refusals_never_quote_an_nhs_number() {
    let cases = inputs("json_publish");
    assert!(cases.len() >= 2, "the kept inputs are found");
    for (name, data) in cases {
        let Some((&selector, line)) = data.split_first() else {
            continue;
        };
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let feed = Feed::ALL[usize::from(selector) % Feed::ALL.len()];
        let refused = decode_json(feed, line, &policy()).expect_err(&name);
        let message = format!("{} {:?}", refused.rejection, refused.detail);
        assert!(!contains_nhs_number(&message), "{name}: {message}");
    }
}
