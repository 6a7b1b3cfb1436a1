//! Avro single-object records: the marker and a known fingerprint, then
//! any bytes as the datum. Decoding must never panic, and an accepted
//! record must encode back to an event that decodes the same.
#![no_main]

use std::sync::{Arc, OnceLock};

use icsflow_avro::{encode_single_object, EventDecoder, SchemaCatalogue};
use icsflow_core::{Feed, Timestamp, TimestampPolicy};
use libfuzzer_sys::fuzz_target;

fn decoder() -> &'static EventDecoder {
    static DECODER: OnceLock<EventDecoder> = OnceLock::new();
    DECODER.get_or_init(|| EventDecoder::new(Arc::new(SchemaCatalogue::embedded())))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datum)) = data.split_first() else {
        return;
    };
    let decoder = decoder();
    let feed = Feed::ALL[usize::from(selector) % Feed::ALL.len()];
    let mut record = vec![0xC3, 0x01];
    record.extend_from_slice(&decoder.catalogue().current(feed).fingerprint.to_le_bytes());
    record.extend_from_slice(datum);
    let policy = TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000));
    // Also the raw input, as whatever framing it claims to be.
    let _ = decoder.decode(data, &policy);
    if let Ok(event) = decoder.decode(&record, &policy) {
        let again = encode_single_object(decoder.catalogue(), &event);
        assert_eq!(decoder.decode(&again, &policy), Ok(event));
    }
});
