use apache_avro::{from_avro_datum, to_avro_datum};
use icsflow_avro::{encode_confluent, encode_datum, encode_single_object, SchemaCatalogue};
use icsflow_core::{one_event_of_each_type, Feed};

use crate::{decoder, policy};

#[test]
fn every_event_type_round_trips_in_single_object_framing() {
    let decoder = decoder();
    for event in one_event_of_each_type() {
        let bytes = encode_single_object(decoder.catalogue(), &event);
        assert_eq!(&bytes[..2], [0xC3, 0x01]);
        assert_eq!(
            decoder.decode(&bytes, &policy()),
            Ok(event),
            "{}",
            event.body.event_type_symbol()
        );
    }
}

/// The direct codec and apache-avro agree byte for byte on every event
/// type: apache-avro reads our datum against the schema, and writing that
/// value back gives the same bytes. This is what holds the serde wire types
/// and the `.avsc` files together.
#[test]
fn apache_avro_reads_and_rewrites_our_bytes_identically() {
    let catalogue = SchemaCatalogue::embedded();
    for event in one_event_of_each_type() {
        let schema = &catalogue.current(event.feed()).schema;
        let datum = encode_datum(&event);
        let value = from_avro_datum(schema, &mut datum.as_slice(), None)
            .unwrap_or_else(|error| panic!("{}: {error}", event.body.event_type_symbol()));
        assert_eq!(
            to_avro_datum(schema, value).expect("re-encodes"),
            datum,
            "{}",
            event.body.event_type_symbol()
        );
    }
}

#[test]
fn every_event_type_round_trips_in_confluent_framing() {
    use std::sync::Arc;

    use icsflow_avro::{EventDecoder, RegistryResponse, RegistryTransport, SchemaRegistryClient};

    /// Answers id 7 with the current schema of whichever feed is asked.
    #[derive(Debug)]
    struct FixedRegistry(String);

    impl RegistryTransport for FixedRegistry {
        fn get(&self, path: &str) -> RegistryResponse {
            assert_eq!(path, "/schemas/ids/7");
            RegistryResponse::Answer {
                status: 200,
                body: serde_json::json!({ "schema": self.0 }).to_string(),
            }
        }
    }

    let catalogue = Arc::new(SchemaCatalogue::embedded());
    for feed_file in Feed::ALL.map(icsflow_avro::current_schema_file) {
        let registry = SchemaRegistryClient::new(
            Box::new(FixedRegistry(feed_file.text.to_owned())),
            Arc::clone(&catalogue),
        );
        let decoder = EventDecoder::with_registry(Arc::clone(&catalogue), Arc::new(registry));
        for event in one_event_of_each_type()
            .into_iter()
            .filter(|event| event.feed() == feed_file.feed)
        {
            let bytes = encode_confluent(&event, 7);
            assert_eq!(&bytes[..5], [0, 0, 0, 0, 7]);
            assert_eq!(decoder.decode(&bytes, &policy()), Ok(event));
        }
    }
}
