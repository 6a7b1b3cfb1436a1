//! Confluent-framed records whose schema the registry supplies, as any
//! partner with write access to the registry could register it: the input
//! is a 2-byte little-endian schema length, the schema text, then the
//! record's datum. The registry answers id 1 with that schema (no network).
//! Must never panic, overflow its stack or loop, whatever the schema.
#![no_main]

use std::sync::Arc;

use icsflow_avro::{
    EventDecoder, RegistryResponse, RegistryTransport, SchemaCatalogue, SchemaRegistryClient,
};
use icsflow_core::{Timestamp, TimestampPolicy};
use libfuzzer_sys::fuzz_target;

/// Answers every id with one schema.
#[derive(Debug)]
struct Registry(String);

impl RegistryTransport for Registry {
    fn get(&self, _path: &str) -> RegistryResponse {
        RegistryResponse::Answer {
            status: 200,
            body: serde_json_string(&self.0),
        }
    }
}

/// `{"schema": "<text>"}` with the text escaped as a JSON string.
fn serde_json_string(text: &str) -> String {
    let mut body = String::from("{\"schema\": \"");
    for character in text.chars() {
        match character {
            '"' => body.push_str("\\\""),
            '\\' => body.push_str("\\\\"),
            control if (control as u32) < 0x20 => body.push_str(&format!("\\u{:04x}", control as u32)),
            other => body.push(other),
        }
    }
    body.push_str("\"}");
    body
}

fuzz_target!(|data: &[u8]| {
    let Some((length, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let length = usize::from(u16::from_le_bytes(*length)).min(rest.len());
    let (schema, datum) = rest.split_at(length);
    let Ok(schema) = std::str::from_utf8(schema) else {
        return;
    };
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    let registry = SchemaRegistryClient::new(Box::new(Registry(schema.to_owned())), Arc::clone(&catalogue));
    let decoder = EventDecoder::with_registry(catalogue, Arc::new(registry));
    let mut record = vec![0x00, 0, 0, 0, 1];
    record.extend_from_slice(datum);
    let policy = TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000));
    let _ = decoder.decode(&record, &policy);
});
