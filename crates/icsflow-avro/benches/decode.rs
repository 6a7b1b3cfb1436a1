//! Decode + validate cost per partner event, for both framings, against the
//! alternatives (see BENCHMARKS.md for method and results).
//!
//! Run with `make bench` (or `cargo bench -p icsflow-avro --bench decode`).

use std::sync::Arc;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use icsflow_avro::{
    current_schema_file, encode_confluent, encode_datum, encode_single_object, EventDecoder,
    RegistryResponse, RegistryTransport, SchemaCatalogue, SchemaRegistryClient,
};
use icsflow_core::{one_event_of_each_type, Event, Feed, Timestamp, TimestampPolicy};

fn main() {
    divan::main();
}

/// The most frequent discharge-feed event: the daily criteria-to-reside
/// review, here the one that sets a Discharge Ready Date.
fn typical_discharge_event() -> Event {
    one_event_of_each_type()
        .into_iter()
        .find(|event| {
            event.body.event_type_symbol() == "CRITERIA_TO_RESIDE_ASSESSED"
                && event.envelope.occurred_at.as_millis() > 1_767_700_000_000
        })
        .expect("sample")
}

fn policy() -> TimestampPolicy {
    TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000))
}

#[derive(Debug)]
struct InMemoryRegistry;

impl RegistryTransport for InMemoryRegistry {
    fn get(&self, _path: &str) -> RegistryResponse {
        RegistryResponse::Answer {
            status: 200,
            body: serde_json::json!({ "schema": current_schema_file(Feed::Discharge).text })
                .to_string(),
        }
    }
}

/// Our path: single-object header, fingerprint lookup, direct decode into
/// borrowed wire types, validation into a domain event.
#[divan::bench(sample_count = 200, sample_size = 200)]
fn single_object_decode_and_validate(bencher: Bencher) {
    let decoder = EventDecoder::new(Arc::new(SchemaCatalogue::embedded()));
    let bytes = encode_single_object(decoder.catalogue(), &typical_discharge_event());
    let policy = policy();
    bencher
        .counter(ItemsCount::new(1_usize))
        .bench(|| decoder.decode(black_box(&bytes), &policy));
}

/// Our path with Confluent framing; the registry answer is cached after the
/// first record, as in production.
#[divan::bench(sample_count = 200, sample_size = 200)]
fn confluent_decode_and_validate(bencher: Bencher) {
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    let registry = SchemaRegistryClient::new(Box::new(InMemoryRegistry), Arc::clone(&catalogue));
    let decoder = EventDecoder::with_registry(catalogue, Arc::new(registry));
    let bytes = encode_confluent(&typical_discharge_event(), 1);
    let policy = policy();
    bencher
        .counter(ItemsCount::new(1_usize))
        .bench(|| decoder.decode(black_box(&bytes), &policy));
}

/// The alternative: apache-avro's own decoder into its generic `Value`
/// tree. This is only the first half of that path (no conversion to
/// domain types, no validation), so it is a lower bound of its cost.
#[divan::bench(sample_count = 200, sample_size = 200)]
fn apache_avro_decode_to_value_only(bencher: Bencher) {
    let catalogue = SchemaCatalogue::embedded();
    let schema = catalogue
        .current(icsflow_core::Feed::Discharge)
        .schema
        .clone();
    let datum = encode_datum(&typical_discharge_event());
    bencher
        .counter(ItemsCount::new(1_usize))
        .bench(|| apache_avro::from_avro_datum(&schema, &mut black_box(datum.as_slice()), None));
}

/// A partner on an older compatible schema version: decoded generically,
/// resolved to the current version, re-encoded, then decoded directly.
#[divan::bench(sample_count = 200, sample_size = 200)]
fn older_version_resolved_decode_and_validate(bencher: Bencher) {
    let older = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/writer-versions/discharge-older.avsc"
    ))
    .expect("fixture");
    let mut catalogue = SchemaCatalogue::embedded();
    let writer = catalogue.add_writer_schema(&older).expect("older version");
    let current = catalogue
        .current(icsflow_core::Feed::Discharge)
        .schema
        .clone();
    let decoder = EventDecoder::new(Arc::new(catalogue));
    // Current datum minus the trailing null union of corrects_event_id
    // cannot be cut by hand, so go through values.
    let mut event = typical_discharge_event();
    event.envelope.corrects_event_id = None;
    let value = apache_avro::from_avro_datum(&current, &mut encode_datum(&event).as_slice(), None)
        .expect("decodes");
    let apache_avro::types::Value::Record(mut fields) = value else {
        unreachable!("records decode to records")
    };
    fields.retain(|(name, _)| name != "corrects_event_id");
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(&writer.fingerprint.to_le_bytes());
    bytes.extend(
        apache_avro::to_avro_datum(&writer.schema, apache_avro::types::Value::Record(fields))
            .expect("encodes"),
    );
    let policy = policy();
    assert_eq!(decoder.decode(&bytes, &policy), Ok(event));
    bencher
        .counter(ItemsCount::new(1_usize))
        .bench(|| decoder.decode(black_box(&bytes), &policy));
}

/// Encoding, for icsflow's own producers and the publish tool.
#[divan::bench(sample_count = 200, sample_size = 200)]
fn single_object_encode(bencher: Bencher) {
    let catalogue = SchemaCatalogue::embedded();
    let event = typical_discharge_event();
    bencher
        .counter(ItemsCount::new(1_usize))
        .bench(|| encode_single_object(&catalogue, black_box(&event)));
}

/// Every event type of every feed once (19 records), single-object framing:
/// the mean cost over a mixed stream.
#[divan::bench(sample_count = 200, sample_size = 20)]
fn single_object_each_event_type(bencher: Bencher) {
    let decoder = EventDecoder::new(Arc::new(SchemaCatalogue::embedded()));
    let records: Vec<Vec<u8>> = one_event_of_each_type()
        .iter()
        .map(|event| encode_single_object(decoder.catalogue(), event))
        .collect();
    let policy = policy();
    bencher.counter(ItemsCount::new(records.len())).bench(|| {
        for record in &records {
            let _ = black_box(decoder.decode(black_box(record), &policy));
        }
    });
}
