//! One test per rejection reason, asserting the reason code a partner and
//! the dead-letter topic would see.

use std::sync::Arc;

use apache_avro::types::Value;
use icsflow_avro::{
    encode_confluent, encode_single_object, DecodeError, EventDecoder, SchemaCatalogue,
    MAX_RECORD_BYTES,
};
use icsflow_core::{
    one_event_of_each_type, Event, Feed, RejectReason, Rejection, Timestamp, TimestampPolicy,
};

use crate::surgery::{replace_string, set_field, single_object, string_paths, value_of};
use crate::{decoder, policy};

fn rejection(bytes: &[u8]) -> Rejection {
    rejection_with(&decoder(), bytes, &policy())
}

fn rejection_with(decoder: &EventDecoder, bytes: &[u8], policy: &TimestampPolicy) -> Rejection {
    match decoder.decode(bytes, policy) {
        Err(DecodeError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn admitted() -> Event {
    one_event_of_each_type()[0]
}

fn delay_reason() -> Event {
    one_event_of_each_type()
        .into_iter()
        .find(|event| event.body.event_type_symbol() == "DELAY_REASON_RECORDED")
        .expect("sample")
}

#[test]
fn malformed() {
    let good = encode_single_object(&SchemaCatalogue::embedded(), &admitted());
    let mut trailing = good.clone();
    trailing.push(0);
    let mut oversized = good.clone();
    oversized.resize(MAX_RECORD_BYTES + 1, 0);
    let cases: [(&str, &[u8]); 7] = [
        ("empty", &[]),
        ("unknown magic", b"{\"json\": true}"),
        ("short single-object header", &good[..6]),
        ("short Confluent header", &[0, 0, 1]),
        ("truncated datum", &good[..good.len() - 3]),
        ("trailing bytes", &trailing),
        ("oversized", &oversized),
    ];
    for (case, bytes) in cases {
        assert_eq!(rejection(bytes).reason, RejectReason::Malformed, "{case}");
    }
}

#[test]
fn unknown_schema() {
    let mut bytes = encode_single_object(&SchemaCatalogue::embedded(), &admitted());
    bytes[2] ^= 0xff;
    assert_eq!(rejection(&bytes).reason, RejectReason::UnknownSchema);
    // Confluent framing with no registry configured.
    assert_eq!(
        rejection(&encode_confluent(&admitted(), 1)).reason,
        RejectReason::UnknownSchema
    );
}

#[test]
fn incompatible_schema() {
    // A writer version of the discharge feed without `age_years`, which the
    // current version requires and has no default for.
    let text = icsflow_avro::current_schema_file(icsflow_core::Feed::Discharge).text;
    let mut json: serde_json::Value = serde_json::from_str(text).expect("json");
    let admitted_fields = json["fields"][9]["type"][0]["fields"]
        .as_array_mut()
        .expect("Admitted fields");
    admitted_fields.retain(|field| field["name"] != "age_years");
    let mut catalogue = SchemaCatalogue::embedded();
    let writer = catalogue
        .add_writer_schema(&json.to_string())
        .expect("parses");
    assert_eq!(writer.resolution, icsflow_avro::Resolution::Incompatible);
    let decoder = EventDecoder::new(Arc::new(catalogue));

    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(&writer.fingerprint.to_le_bytes());
    bytes.extend(
        apache_avro::to_avro_datum(&writer.schema, Value::Record(vec![])).unwrap_or_default(),
    );
    assert_eq!(
        rejection_with(&decoder, &bytes, &policy()).reason,
        RejectReason::IncompatibleSchema
    );
}

#[test]
fn invalid_field() {
    let mut value = value_of(&admitted());
    set_field(
        &mut value,
        "patient_pseudonym",
        Value::String("ABC".to_owned()),
    );
    let found = rejection(&single_object(Feed::Discharge, value));
    assert_eq!(
        (found.reason, found.field),
        (RejectReason::InvalidField, Some("patient_pseudonym"))
    );

    // The event type says DISCHARGED but the payload is an admission.
    let mut value = value_of(&admitted());
    set_field(
        &mut value,
        "event_type",
        Value::Enum(5, "DISCHARGED".to_owned()),
    );
    let found = rejection(&single_object(Feed::Discharge, value));
    assert_eq!(
        (found.reason, found.field),
        (RejectReason::InvalidField, Some("event_type"))
    );

    let mut value = value_of(&admitted());
    set_field(&mut value, "place", Value::String("W06000001".to_owned()));
    assert_eq!(
        rejection(&single_object(Feed::Discharge, value)).field,
        Some("place")
    );

    let mut value = value_of(&admitted());
    set_field(
        &mut value,
        "event_id",
        Value::String("not-a-uuid".to_owned()),
    );
    assert_eq!(
        rejection(&single_object(Feed::Discharge, value)).field,
        Some("event_id")
    );
}

#[test]
fn identifiable_data() {
    let mut value = value_of(&delay_reason());
    replace_string(
        &mut value,
        &["payload".to_owned(), "reason_code".to_owned()],
        "9434765919",
    );
    let found = rejection(&single_object(Feed::Discharge, value));
    assert_eq!(
        (found.reason, found.field),
        (RejectReason::IdentifiableData, Some("reason_code"))
    );
    assert!(!found.to_string().contains("9434765919"));
}

/// Every string field of every event type, with a valid NHS number in it,
/// is refused as identifiable data (not as a malformed pseudonym or place):
/// the guard runs before any other check and covers fields added later.
#[test]
fn identifiable_data_in_every_string_field() {
    let mut checked = 0;
    for event in one_event_of_each_type() {
        let value = value_of(&event);
        for path in string_paths(&value) {
            for number in ["9434765919", "943 476 5919", "nhs 943-476-5919"] {
                let mut tampered = value.clone();
                replace_string(&mut tampered, &path, number);
                let bytes = single_object(event.feed(), tampered);
                let found = rejection(&bytes);
                assert_eq!(
                    found.reason,
                    RejectReason::IdentifiableData,
                    "{path:?} in {}",
                    event.body.event_type_symbol()
                );
                assert_eq!(
                    found.field,
                    path.last().map(String::as_str).and_then(static_field)
                );
                assert!(!format!("{found} {found:?}").contains("5919"));
                checked += 1;
            }
        }
    }
    // 6 envelope strings (5 where there is no episode reference) plus payload strings.
    assert!(checked > 17 * 5 * 3, "only {checked} cases");
}

fn static_field(name: &str) -> Option<&'static str> {
    [
        "event_id",
        "source_organisation",
        "place",
        "patient_pseudonym",
        "episode_reference",
        "corrects_event_id",
        "reason_code",
        "sending_organisation",
        "new_practice",
    ]
    .into_iter()
    .find(|known| *known == name)
}

#[test]
fn timestamp_out_of_range() {
    let event = admitted();
    let bytes = encode_single_object(&SchemaCatalogue::embedded(), &event);
    let just_before = TimestampPolicy::wall_clock(Timestamp::from_millis(
        event.envelope.recorded_at.as_millis() - 600_000,
    ));
    let found = rejection_with(&decoder(), &bytes, &just_before);
    assert_eq!(
        (found.reason, found.field),
        (RejectReason::TimestampOutOfRange, Some("recorded_at"))
    );

    let mut value = value_of(&event);
    set_field(
        &mut value,
        "occurred_at",
        Value::TimestampMillis(event.envelope.recorded_at.as_millis() + 3_600_000),
    );
    let found = rejection(&single_object(Feed::Discharge, value));
    assert_eq!(
        (found.reason, found.field),
        (RejectReason::TimestampOutOfRange, Some("occurred_at"))
    );
}
