//! The schemas and the Rust code lists must agree symbol for symbol: the
//! binary codec reads enum indices through the code lists.

use std::collections::BTreeMap;

use icsflow_avro::EMBEDDED_SCHEMAS;
use icsflow_core::*;
use serde_json::Value;

fn code_lists() -> BTreeMap<&'static str, &'static [&'static str]> {
    fn entry<Code: CodeList>() -> (&'static str, &'static [&'static str]) {
        (Code::SCHEMA_NAME, Code::SYMBOLS)
    }
    BTreeMap::from([
        entry::<DischargeEventType>(),
        entry::<SocialCareEventType>(),
        entry::<PrimaryCareEventType>(),
        entry::<AdmissionMethod>(),
        entry::<AdmissionSource>(),
        entry::<BedType>(),
        entry::<CriteriaToResideCode>(),
        entry::<DischargePathway>(),
        entry::<DelayReasonFamily>(),
        entry::<DischargeDestination>(),
        entry::<DischargeMethod>(),
        entry::<RouteOfAccess>(),
        entry::<AssessmentType>(),
        entry::<ServiceType>(),
        entry::<ServiceComponent>(),
        entry::<ServiceEndReason>(),
        entry::<ReviewType>(),
        entry::<ReviewOutcome>(),
        entry::<ContactAttendance>(),
        entry::<ContactMode>(),
        entry::<MedicationReviewKind>(),
        entry::<RegistrationChange>(),
    ])
}

fn enums_in(schema: &Value, found: &mut Vec<(String, Vec<String>)>) {
    match schema {
        Value::Array(items) => items.iter().for_each(|item| enums_in(item, found)),
        Value::Object(object) => {
            if object.get("type").and_then(Value::as_str) == Some("enum") {
                let name = object["name"].as_str().expect("enum name").to_owned();
                let symbols = object["symbols"].as_array().expect("symbols");
                found.push((
                    name,
                    symbols
                        .iter()
                        .map(|symbol| symbol.as_str().expect("symbol").to_owned())
                        .collect(),
                ));
            }
            for key in ["type", "fields"] {
                if let Some(inner) = object.get(key) {
                    enums_in(inner, found);
                }
            }
        }
        _ => {}
    }
}

/// The current version's enums are the code lists exactly; an older
/// version's are a beginning of them (code lists only grow at the end).
#[test]
fn every_schema_enum_matches_its_code_list_exactly() {
    let code_lists = code_lists();
    let mut seen = Vec::new();
    for file in EMBEDDED_SCHEMAS {
        let current = icsflow_avro::current_schema_file(file.feed) == file;
        let json: Value = serde_json::from_str(file.text).expect("schema JSON");
        let mut found = Vec::new();
        enums_in(&json, &mut found);
        for (name, symbols) in found {
            let expected = code_lists
                .get(name.as_str())
                .unwrap_or_else(|| panic!("no code list for enum {name}"));
            if current {
                assert_eq!(&symbols, expected, "enum {name} in {}", file.feed);
            } else {
                assert!(
                    symbols.len() <= expected.len() && expected[..symbols.len()] == symbols[..],
                    "enum {name} in {} v{}",
                    file.feed,
                    file.version
                );
            }
            seen.push(name);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        code_lists
            .keys()
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
    );
}

/// `event_type` and the payload union share one order: the codec checks
/// the two agree by index.
#[test]
fn payload_branches_follow_event_type_symbols() {
    for file in EMBEDDED_SCHEMAS {
        let json: Value = serde_json::from_str(file.text).expect("schema JSON");
        let fields = json["fields"].as_array().expect("fields");
        let event_type = fields
            .iter()
            .find(|field| field["name"] == "event_type")
            .expect("event_type");
        let symbols = event_type["type"]["symbols"].as_array().expect("symbols");
        let payload = fields
            .iter()
            .find(|field| field["name"] == "payload")
            .expect("payload");
        let branches = payload["type"].as_array().expect("union");
        assert_eq!(symbols.len(), branches.len(), "{}", file.feed);
        for (symbol, branch) in symbols.iter().zip(branches) {
            let record_name = branch["name"].as_str().expect("branch name");
            let mut screaming = String::new();
            for (index, character) in record_name.chars().enumerate() {
                if character.is_uppercase() && index > 0 {
                    screaming.push('_');
                }
                screaming.push(character.to_ascii_uppercase());
            }
            assert_eq!(symbol.as_str(), Some(screaming.as_str()), "{}", file.feed);
        }
    }
}

/// The data dictionary in `docs/` is generated from the schemas; a schema
/// change without regenerating it fails here.
#[test]
fn committed_data_dictionary_is_current() {
    let committed = std::fs::read_to_string(crate::repository_path("docs/data-dictionary.md"))
        .unwrap_or_default();
    let rendered = icsflow_avro::render_data_dictionary(EMBEDDED_SCHEMAS);
    assert!(
        committed == rendered,
        "docs/data-dictionary.md is stale: run `cargo run -p icsflow -- schemas docs` and commit the result"
    );
}
