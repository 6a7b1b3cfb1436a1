//! Confluent-framed records: magic byte, a schema id the registry knows,
//! then any bytes. The registry answers with the current schema of the feed
//! the first input byte picks (no network). Must never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use icsflow_avro::{
    EventDecoder, RegistryResponse, RegistryTransport, SchemaCatalogue, SchemaRegistryClient,
    EMBEDDED_SCHEMAS,
};
use icsflow_core::{Timestamp, TimestampPolicy};
use libfuzzer_sys::fuzz_target;

/// Schema id N is the current schema of embedded feed N (ids 0-2).
#[derive(Debug)]
struct Registry;

impl RegistryTransport for Registry {
    fn get(&self, path: &str) -> RegistryResponse {
        let id: Option<usize> = path.strip_prefix("/schemas/ids/").and_then(|id| id.parse().ok());
        match id.and_then(|id| EMBEDDED_SCHEMAS.get(id)) {
            Some(schema) => RegistryResponse::Answer {
                status: 200,
                body: format!("{{\"schema\": {}}}", json_string(schema.text)),
            },
            None => RegistryResponse::Answer {
                status: 404,
                body: "{\"error_code\": 40403, \"message\": \"Schema not found\"}".to_owned(),
            },
        }
    }
}

fn json_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

fn decoder() -> &'static EventDecoder {
    static DECODER: OnceLock<EventDecoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let catalogue = Arc::new(SchemaCatalogue::embedded());
        let registry = SchemaRegistryClient::new(Box::new(Registry), Arc::clone(&catalogue));
        EventDecoder::with_registry(catalogue, Arc::new(registry))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datum)) = data.split_first() else {
        return;
    };
    let mut record = vec![0x00, 0, 0, 0, selector % 4];
    record.extend_from_slice(datum);
    let policy = TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000));
    let _ = decoder().decode(&record, &policy);
});
