//! Records written by partner code in other languages decode here: the
//! example producers in `examples/` (Java with Apache Avro's Java library,
//! Python with fastavro), which `make partner-examples` runs before the
//! tests, each with its own canonical form, fingerprint and HMAC.

use std::sync::Arc;

use icsflow_avro::{EventDecoder, SchemaCatalogue};
use icsflow_core::{Feed, TimestampPolicy};

/// Decodes every record one producer wrote and holds it to the producer's
/// manifest and to icsflow's own schemas.
fn decodes_every_record_of(producer: &str) {
    let folder = crate::repository_root()
        .join("target/partner-examples")
        .join(producer);
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; `make partner-examples` builds and runs the example producers",
            folder.display()
        )
    });
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest JSON");
    let entries = manifest.as_array().expect("a list");
    let catalogue = Arc::new(SchemaCatalogue::embedded());
    let decoder = EventDecoder::new(Arc::clone(&catalogue));
    let policy = TimestampPolicy {
        now: None,
        tolerance_millis: 300_000,
    };
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::repository_root().join("schemas/pseudonym-test-vectors.json"),
        )
        .expect("vectors"),
    )
    .expect("vectors JSON");
    let expected_pseudonym = vectors["vectors"][0]["pseudonym"]
        .as_str()
        .expect("pseudonym");
    let mut per_feed = [0; 3];
    for entry in entries {
        let feed = Feed::from_name(entry["feed"].as_str().expect("feed")).expect("a feed");
        let bytes =
            std::fs::read(folder.join(entry["file"].as_str().expect("file"))).expect("record");
        // The header the producer's library wrote: C3 01 and its
        // fingerprint of the schema, which must be icsflow's.
        let ours = catalogue.current(feed).fingerprint.to_le_bytes();
        assert_eq!(&bytes[..2], b"\xc3\x01", "{producer}: {entry}");
        assert_eq!(&bytes[2..10], ours, "{producer}: fingerprint of {entry}");
        assert_eq!(
            entry["fingerprint"].as_str(),
            Some(
                ours.iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<String>()
                    .as_str()
            ),
            "{producer}: the fingerprint its library computes"
        );
        let event = decoder
            .decode(&bytes, &policy)
            .unwrap_or_else(|error| panic!("{producer}: {entry}: {error:?}"));
        assert_eq!(event.feed(), feed);
        assert_eq!(
            event.envelope.event_id.to_string(),
            entry["event_id"].as_str().expect("event id")
        );
        assert_eq!(event.envelope.patient.to_string(), expected_pseudonym);
        assert_eq!(
            entry["patient_pseudonym"].as_str(),
            Some(expected_pseudonym)
        );
        per_feed[feed as usize] += 1;
    }
    // Every example event of every feed.
    let examples = Feed::ALL.map(|feed| {
        std::fs::read_to_string(
            crate::repository_root().join(format!("schemas/examples/{}.jsonl", feed.as_str())),
        )
        .expect("examples")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count()
    });
    assert_eq!(per_feed, examples, "{producer}: records per feed");
}

#[test]
fn records_encoded_by_apache_avro_for_java_decode_with_the_same_fingerprints() {
    decodes_every_record_of("java");
}

#[test]
fn records_encoded_by_fastavro_for_python_decode_with_the_same_fingerprints() {
    decodes_every_record_of("python");
}
