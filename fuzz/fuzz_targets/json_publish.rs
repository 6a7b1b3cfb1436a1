//! What `icsflow publish` reads: one JSON line of a feed (the first byte
//! picks the feed). Must never panic, and a refusal must never quote an NHS
//! number. Inputs that broke this are kept in ../regressions/json_publish.
#![no_main]

use icsflow_avro::decode_json;
use icsflow_core::{Feed, Timestamp, TimestampPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let feed = Feed::ALL[usize::from(selector) % Feed::ALL.len()];
    let policy = TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000));
    if let Err(refused) = decode_json(feed, line, &policy) {
        // By the guard's own rule (whole tokens), as for every message.
        let message = format!("{} {:?}", refused.rejection, refused.detail);
        assert!(
            !icsflow_core::contains_nhs_number(&message),
            "a refusal quoted an NHS number: {message}"
        );
    }
});
