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

/// The `registry_schema` target's property over its kept inputs, and over
/// the schema that once overflowed the stack: a record of the current
/// discharge schema plus a field whose named type refers to itself, 200
/// levels deep. The registry's answer is refused, the record with it
/// (`incompatible_schema`), and nothing panics.
#[test]
fn registry_supplied_schemas_never_crash_the_decoder() {
    use icsflow_avro::{
        encode_single_object, EventDecoder, RegistryResponse, RegistryTransport, SchemaCatalogue,
        SchemaRegistryClient,
    };
    use std::sync::Arc;

    #[derive(Debug)]
    struct Registry(String);
    impl RegistryTransport for Registry {
        fn get(&self, _path: &str) -> RegistryResponse {
            RegistryResponse::Answer {
                status: 200,
                body: serde_json::json!({ "schema": self.0 }).to_string(),
            }
        }
    }
    let decode = |schema: &str, datum: &[u8]| {
        let catalogue = Arc::new(SchemaCatalogue::embedded());
        let registry = SchemaRegistryClient::new(
            Box::new(Registry(schema.to_owned())),
            Arc::clone(&catalogue),
        );
        let decoder = EventDecoder::with_registry(catalogue, Arc::new(registry));
        let mut record = vec![0x00, 0, 0, 0, 1];
        record.extend_from_slice(datum);
        decoder.decode(&record, &policy())
    };
    for (name, data) in inputs("registry_schema") {
        let Some((length, rest)) = data.split_first_chunk::<2>() else {
            continue;
        };
        let length = usize::from(u16::from_le_bytes(*length)).min(rest.len());
        let (schema, datum) = rest.split_at(length);
        // Each kept input once crashed the decoder: it is refused now.
        let schema = std::str::from_utf8(schema).expect("a kept input's schema is text");
        assert!(decode(schema, datum).is_err(), "{name} was accepted");
    }
    let current =
        std::fs::read_to_string(crate::repository_path("schemas/discharge/v2.avsc")).expect("v2");
    let mut schema: serde_json::Value = serde_json::from_str(&current).expect("json");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({
            "name": "extra",
            "type": ["null", {"type": "record", "name": "Node",
                "fields": [{"name": "next", "type": ["null", "Node"]}]}],
            "default": null
        }));
    let event = icsflow_core::one_event_of_each_type()[0];
    let mut datum = encode_single_object(&SchemaCatalogue::embedded(), &event)[10..].to_vec();
    datum.extend(std::iter::repeat_n(0x02, 200));
    datum.push(0x00);
    let refused = decode(&schema.to_string(), &datum).expect_err("refused");
    assert!(
        format!("{refused:?}").contains("IncompatibleSchema"),
        "{refused:?}"
    );
}
