//! The JSON line form partners publish from: round trip, the same checks
//! as Avro records, and the shape errors a partner needs to see.

use icsflow_avro::{
    decode_json, encode_altered, encode_json, encode_json_altered, json_organisation, Alteration,
    DecodeError, Framing,
};
use icsflow_core::{one_event_of_each_type, Feed, RejectReason};

use crate::{decoder, policy};

/// 943 476 5919 is the NHS number used in NHS Digital's own examples.
const NHS_NUMBER: &str = "9434765919";

#[test]
fn every_event_type_round_trips_through_json() {
    for event in one_event_of_each_type() {
        let line = encode_json(&event);
        assert!(!line.contains('\n'));
        assert_eq!(
            decode_json(event.feed(), &line, &policy()),
            Ok(event),
            "{line}"
        );
    }
}

#[test]
fn the_json_form_uses_symbols_and_the_branch_name() {
    let admitted = one_event_of_each_type()[0];
    let value: serde_json::Value =
        serde_json::from_str(&encode_json(&admitted)).expect("valid JSON");
    assert_eq!(value["event_type"], "ADMITTED");
    assert_eq!(
        value["payload"]["Admitted"]["admission_method"],
        "EMERGENCY_ACCIDENT_AND_EMERGENCY"
    );
    assert_eq!(value["place"], "E06000047");
    assert_eq!(value["corrects_event_id"], serde_json::Value::Null);
}

#[test]
fn a_line_of_another_feed_or_with_unknown_fields_is_refused_with_the_field_named() {
    let admitted = encode_json(&one_event_of_each_type()[0]);
    // Read as another feed's line, its event type is not in that feed's
    // list.
    let wrong_feed = decode_json(Feed::SocialCare, &admitted, &policy()).expect_err("refused");
    assert_eq!(wrong_feed.rejection.reason, RejectReason::InvalidField);
    assert_eq!(wrong_feed.rejection.field, Some("event_type"));

    let extra = admitted.replacen('{', r#"{"nhs_flag":true,"#, 1);
    let refused = decode_json(Feed::Discharge, &extra, &policy()).expect_err("refused");
    assert_eq!(refused.rejection.reason, RejectReason::Malformed);
    assert!(
        refused
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("nhs_flag"),
        "{refused}"
    );

    // A code not in its list: the field is named (serde names only the
    // code list, and the field is found in the schema).
    let unknown_symbol = admitted.replace("EMERGENCY_ACCIDENT_AND_EMERGENCY", "A_AND_E");
    let refused = decode_json(Feed::Discharge, &unknown_symbol, &policy()).expect_err("refused");
    assert_eq!(refused.rejection.reason, RejectReason::InvalidField);
    assert_eq!(refused.rejection.field, Some("admission_method"));
    assert!(refused.to_string().contains("AdmissionMethod"), "{refused}");
    let discharged = one_event_of_each_type()
        .into_iter()
        .find(|event| encode_json(event).contains("\"Discharged\""))
        .map(|event| encode_json(&event))
        .expect("a discharge");
    let unknown_destination = discharged.replace("USUAL_PLACE_OF_RESIDENCE", "SOMEWHERE");
    assert_ne!(unknown_destination, discharged);
    let refused =
        decode_json(Feed::Discharge, &unknown_destination, &policy()).expect_err("refused");
    assert_eq!(refused.rejection.reason, RejectReason::InvalidField);
    assert_eq!(refused.rejection.field, Some("destination"));

    let truncated = &admitted[..admitted.len() / 2];
    let refused = decode_json(Feed::Discharge, truncated, &policy()).expect_err("refused");
    assert_eq!(refused.rejection.reason, RejectReason::Malformed);
}

#[test]
fn an_nhs_number_anywhere_in_a_line_is_identifiable_data_and_never_echoed() {
    for event in one_event_of_each_type() {
        let line = encode_json_altered(&event, Alteration::EpisodeReference(NHS_NUMBER));
        let refused = decode_json(event.feed(), &line, &policy()).expect_err("refused");
        assert_eq!(refused.rejection.reason, RejectReason::IdentifiableData);
        assert_eq!(refused.detail.as_deref(), Some("in episode_reference"));
        assert!(!refused.to_string().contains(NHS_NUMBER));
    }
    let admitted = encode_json(&one_event_of_each_type()[0]);
    let as_number = admitted.replace(r#""age_years":82"#, &format!(r#""age_years":{NHS_NUMBER}"#));
    assert_ne!(as_number, admitted);
    let refused = decode_json(Feed::Discharge, &as_number, &policy()).expect_err("refused");
    assert_eq!(refused.rejection.reason, RejectReason::IdentifiableData);
    assert_eq!(
        refused.detail.as_deref(),
        Some("in payload.Admitted.age_years")
    );
}

#[test]
fn altered_records_fail_the_same_way_in_json_and_in_both_framings() {
    let decoder = decoder();
    for event in one_event_of_each_type() {
        for (alteration, reason) in [
            (Alteration::Place("E07000001"), RejectReason::InvalidField),
            (
                Alteration::EpisodeReference(NHS_NUMBER),
                RejectReason::IdentifiableData,
            ),
        ] {
            let line = encode_json_altered(&event, alteration);
            let json = decode_json(event.feed(), &line, &policy()).expect_err("refused");
            assert_eq!(json.rejection.reason, reason, "{line}");
            assert_eq!(
                json_organisation(&line),
                Some(event.envelope.source_organisation)
            );
            let bytes = encode_altered(
                decoder.catalogue(),
                &event,
                Framing::SingleObject,
                alteration,
            );
            match decoder.decode(&bytes, &policy()) {
                Err(DecodeError::Rejected(rejection)) => assert_eq!(rejection.reason, reason),
                other => panic!("{alteration:?}: {other:?}"),
            }
        }
    }
}
