//! Partners producing with an older or newer compatible version of a
//! schema still decode into the current types.

use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::Schema;
use icsflow_avro::{EventDecoder, Resolution, SchemaCatalogue};
use icsflow_core::{
    one_event_of_each_type, DischargeBody, DischargeDestination, Event, EventBody, Feed,
};

use crate::surgery::value_of;
use crate::{policy, repository_path};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repository_path(&format!(
        "tests/fixtures/writer-versions/{name}"
    )))
    .expect("fixture")
}

fn encode_with_writer(writer_text: &str, value: Value) -> Vec<u8> {
    let plain =
        Schema::parse_str(&writer_text.replace(r#""logicalType": "uuid""#, r#""note": "uuid""#))
            .expect("writer");
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(
        &icsflow_avro::fingerprint_of(writer_text)
            .expect("fingerprint")
            .to_le_bytes(),
    );
    bytes
        .extend(apache_avro::to_avro_datum(&plain, value).expect("encodes with the writer schema"));
    bytes
}

fn discharge_events() -> Vec<Event> {
    one_event_of_each_type()
        .into_iter()
        .filter(|event| event.feed() == Feed::Discharge)
        .collect()
}

#[test]
fn an_older_version_without_an_optional_field_decodes() {
    let older = fixture("discharge-older.avsc");
    let mut catalogue = SchemaCatalogue::embedded();
    assert_eq!(
        catalogue
            .add_writer_schema(&older)
            .expect("older")
            .resolution,
        Resolution::Resolve
    );
    let decoder = EventDecoder::new(Arc::new(catalogue));
    for event in discharge_events() {
        let Value::Record(mut fields) = value_of(&event) else {
            panic!("record")
        };
        fields.retain(|(name, _)| name != "corrects_event_id");
        let decoded = decoder
            .decode(
                &encode_with_writer(&older, Value::Record(fields)),
                &policy(),
            )
            .expect("decodes");
        // The current version's default fills the missing field.
        let mut expected = event;
        expected.envelope.corrects_event_id = None;
        assert_eq!(decoded, expected);
    }
}

#[test]
fn a_newer_version_with_extra_fields_decodes() {
    let newer = fixture("discharge-newer.avsc");
    let mut catalogue = SchemaCatalogue::embedded();
    assert_eq!(
        catalogue
            .add_writer_schema(&newer)
            .expect("newer")
            .resolution,
        Resolution::Resolve
    );
    let decoder = EventDecoder::new(Arc::new(catalogue));
    for event in discharge_events() {
        let Value::Record(mut fields) = value_of(&event) else {
            panic!("record")
        };
        fields.insert(
            9,
            (
                "ward_code".to_owned(),
                Value::Union(1, Box::new(Value::String("W12".to_owned()))),
            ),
        );
        if let Some((_, Value::Union(0, payload))) =
            fields.iter_mut().find(|(name, _)| name == "payload")
        {
            if let Value::Record(admitted) = payload.as_mut() {
                admitted.push((
                    "expected_length_of_stay_days".to_owned(),
                    Value::Union(1, Box::new(Value::Int(4))),
                ));
            }
        }
        let decoded = decoder
            .decode(
                &encode_with_writer(&newer, Value::Record(fields)),
                &policy(),
            )
            .expect("decodes");
        assert_eq!(decoded, event);
    }
}

/// Version 1 of the discharge schema, as partners on it still publish:
/// an admission reads with no bed type, everything else unchanged.
#[test]
fn version_1_of_the_discharge_schema_decodes_without_a_bed_type() {
    let v1 = std::fs::read_to_string(repository_path("schemas/discharge/v1.avsc")).expect("v1");
    let catalogue = SchemaCatalogue::embedded();
    assert_eq!(
        catalogue.classify(&v1).expect("v1").resolution,
        Resolution::Resolve
    );
    let decoder = EventDecoder::new(Arc::new(catalogue));
    for event in discharge_events() {
        let Value::Record(mut fields) = value_of(&event) else {
            panic!("record")
        };
        let mut expected = event;
        if let Some((_, Value::Union(0, payload))) =
            fields.iter_mut().find(|(name, _)| name == "payload")
        {
            if let Value::Record(admitted) = payload.as_mut() {
                admitted.retain(|(name, _)| name != "bed_type");
            }
            if let EventBody::Discharge(DischargeBody::Admitted { bed_type, .. }) =
                &mut expected.body
            {
                *bed_type = None;
            }
        }
        let decoded = decoder
            .decode(&encode_with_writer(&v1, Value::Record(fields)), &policy())
            .expect("decodes");
        assert_eq!(decoded, expected);
    }
}

/// The enum policy at work: a later version that appends a destination
/// code this build does not know is read through the enum's default.
#[test]
fn a_destination_code_added_later_reads_as_not_known() {
    let current = icsflow_avro::current_schema_file(Feed::Discharge).text;
    let later = current.replacen(
        r#""FORCED_REPATRIATION"
                ],"#,
        r#""FORCED_REPATRIATION",
                  "SOMEWHERE_NEW"
                ],"#,
        1,
    );
    assert_ne!(later, current, "the fixture edit applies");
    let mut catalogue = SchemaCatalogue::embedded();
    assert_eq!(
        catalogue
            .add_writer_schema(&later)
            .expect("later")
            .resolution,
        Resolution::Resolve
    );
    let decoder = EventDecoder::new(Arc::new(catalogue));
    let discharged = discharge_events()
        .into_iter()
        .find(|event| event.body.event_type_symbol() == "DISCHARGED")
        .expect("a discharge");
    let Value::Record(mut fields) = value_of(&discharged) else {
        panic!("record")
    };
    if let Some((_, Value::Union(_, payload))) =
        fields.iter_mut().find(|(name, _)| name == "payload")
    {
        if let Value::Record(discharge) = payload.as_mut() {
            discharge[0].1 = Value::Enum(26, "SOMEWHERE_NEW".to_owned());
        }
    }
    let decoded = decoder
        .decode(
            &encode_with_writer(&later, Value::Record(fields)),
            &policy(),
        )
        .expect("decodes");
    let EventBody::Discharge(DischargeBody::Discharged { destination, .. }) = decoded.body else {
        panic!("a discharge: {decoded:?}")
    };
    assert_eq!(destination, DischargeDestination::NotKnown);
}

/// The current discharge schema with one more field on the envelope, of
/// the given type.
fn current_discharge_with_field(field_type: serde_json::Value) -> String {
    let text =
        std::fs::read_to_string(repository_path("schemas/discharge/v2.avsc")).expect("current");
    let mut schema: serde_json::Value = serde_json::from_str(&text).expect("json");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "extra", "type": field_type, "default": null}));
    schema.to_string()
}

/// Regression: a writer schema whose named type refers to itself made
/// decoding overflow the stack at about 200 levels of nesting (a crash
/// loop, since the offset was never committed). Such a schema, or one
/// nesting deeper than icsflow reads, is now refused before any record
/// written with it is decoded.
#[test]
fn a_recursive_or_too_deep_writer_schema_is_refused_before_use() {
    let catalogue = SchemaCatalogue::embedded();
    let recursive = current_discharge_with_field(serde_json::json!([
        "null",
        {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    ]));
    let through_another = current_discharge_with_field(serde_json::json!([
        "null",
        {"type": "record", "name": "ns.A", "fields": [{"name": "b", "type": ["null",
            {"type": "record", "name": "B", "fields": [{"name": "a", "type": ["null", "ns.A"]}]}]}]}
    ]));
    let mut deep = serde_json::json!("int");
    for level in 0..20 {
        deep = serde_json::json!({"type": "record", "name": format!("Level{level}"), "fields": [{"name": "inner", "type": deep}]});
    }
    let too_deep = current_discharge_with_field(serde_json::json!(["null", deep]));
    // apache-avro panicked on these instead of refusing them.
    let bad_alias = current_discharge_with_field(serde_json::json!([
        "null",
        {"type": "record", "name": "Aliased", "aliases": ["not a name"], "fields": []}
    ]));
    let bad_size = current_discharge_with_field(serde_json::json!([
        "null",
        {"type": "fixed", "name": "Sized", "size": "twelve"}
    ]));
    for (what, schema) in [
        ("an alias that is not a name", bad_alias),
        ("a fixed size that is not a number", bad_size),
        ("recursive", recursive),
        ("recursive through another type", through_another),
        ("20 records deep", too_deep),
    ] {
        assert!(
            matches!(
                catalogue.classify(&schema),
                Err(icsflow_avro::Error::InvalidSchema(_))
            ),
            "{what}"
        );
    }
    // A named type used twice, not inside itself, is no recursion.
    let reused = current_discharge_with_field(serde_json::json!([
        "null",
        {"type": "record", "name": "Pair", "fields": [
            {"name": "left", "type": {"type": "enum", "name": "Side", "symbols": ["A", "B"]}},
            {"name": "right", "type": "Side"}
        ]}
    ]));
    assert_eq!(
        catalogue.classify(&reused).expect("reused").resolution,
        Resolution::Resolve
    );
}

/// Regression: a writer schema that adds `P4` to `DischargePathway` (no
/// default) had every record dead-lettered as `incompatible_schema`, even
/// those using `P1`. Only records that use the new symbol are refused.
#[test]
fn a_writer_enum_symbol_the_reader_lacks_refuses_only_the_records_using_it() {
    let text =
        std::fs::read_to_string(repository_path("schemas/discharge/v2.avsc")).expect("current");
    let with_p4 = text.replace(
        r#""symbols": ["P0", "P1", "P2", "P3"]"#,
        r#""symbols": ["P0", "P1", "P2", "P3", "P4"]"#,
    );
    assert_ne!(with_p4, text);
    let mut catalogue = SchemaCatalogue::embedded();
    assert_eq!(
        catalogue
            .add_writer_schema(&with_p4)
            .expect("with P4")
            .resolution,
        Resolution::Resolve
    );
    let decoder = EventDecoder::new(Arc::new(catalogue));
    let assigned = discharge_events()
        .into_iter()
        .find(|event| event.body.event_type_symbol() == "PATHWAY_ASSIGNED")
        .expect("a pathway sample");
    let decoded = decoder
        .decode(
            &encode_with_writer(&with_p4, value_of(&assigned)),
            &policy(),
        )
        .expect("a P1 record reads");
    assert_eq!(decoded, assigned);
    let Value::Record(mut fields) = value_of(&assigned) else {
        panic!("record")
    };
    if let Some((_, Value::Union(_, payload))) =
        fields.iter_mut().find(|(name, _)| name == "payload")
    {
        if let Value::Record(payload) = payload.as_mut() {
            payload[0].1 = Value::Enum(4, "P4".to_owned());
        }
    }
    let refused = decoder
        .decode(
            &encode_with_writer(&with_p4, Value::Record(fields)),
            &policy(),
        )
        .expect_err("a P4 record is refused");
    assert!(
        format!("{refused:?}").contains("IncompatibleSchema"),
        "{refused:?}"
    );
}
