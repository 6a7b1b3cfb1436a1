//! Garbage in never panics: random bytes and mutated valid records give
//! either an event or a typed rejection.

use icsflow_avro::{encode_single_object, DecodeError};
use icsflow_core::one_event_of_each_type;
use proptest::prelude::*;

use crate::{decoder, policy};

fn valid_records() -> Vec<Vec<u8>> {
    let decoder = decoder();
    one_event_of_each_type()
        .iter()
        .map(|event| encode_single_object(decoder.catalogue(), event))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let outcome = decoder().decode(&bytes, &policy());
        prop_assert!(matches!(outcome, Ok(_) | Err(DecodeError::Rejected(_))));
    }

    /// Random bytes behind a valid header reach the datum decoder of each
    /// feed rather than stopping at the fingerprint.
    #[test]
    fn random_datums_behind_valid_headers_never_panic(
        feed in 0_usize..3,
        datum in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let records = valid_records();
        let header = &records[[0, 9, 14][feed]][..10];
        let bytes = [header, &datum].concat();
        let outcome = decoder().decode(&bytes, &policy());
        prop_assert!(matches!(outcome, Ok(_) | Err(DecodeError::Rejected(_))));
    }

    #[test]
    fn mutated_valid_records_never_panic(
        record in 0_usize..19,
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = valid_records()[record].clone();
        for (position, byte) in mutations {
            let index = position.index(bytes.len());
            bytes[index] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let decoder = decoder();
        match decoder.decode(&bytes, &policy()) {
            // A mutation that still yields a valid event must re-encode to a
            // record that decodes to the same event.
            Ok(event) => {
                let again = encode_single_object(decoder.catalogue(), &event);
                prop_assert_eq!(decoder.decode(&again, &policy()), Ok(event));
            }
            Err(DecodeError::Rejected(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

/// Every string of a record value, in order, as a mutable slot (a string
/// in a union branch included).
fn string_slots(value: &mut apache_avro::types::Value) -> Vec<&mut String> {
    use apache_avro::types::Value;
    match value {
        Value::String(text) => vec![text],
        Value::Union(_, inner) => string_slots(inner),
        Value::Record(fields) => fields
            .iter_mut()
            .flat_map(|(_, inner)| string_slots(inner))
            .collect(),
        _ => Vec::new(),
    }
}

/// An NHS number as people and systems write it: in one of several digit
/// scripts, with any of several separators between the groups or between
/// every digit, with invisible characters, prefixes and longer runs.
fn nhs_number_spelling() -> impl Strategy<Value = (String, String)> {
    let numbers = prop::sample::select(vec!["9434765919", "4010232137", "9990000018"]);
    let scripts = prop::sample::select(vec![0x30_u32, 0xFF10, 0x0660, 0x0966, 0x1D7CE]);
    let separators = prop::sample::select(vec![
        "", " ", "-", ".", "/", "_", "--", "\u{a0}", "\u{2013}", "\u{2014}", "\u{200b}",
        "\u{2009}", "\u{3000}", "\u{feff}",
    ]);
    let shapes = prop::sample::select(vec!["3-3-4", "4-3-3", "3-7", "every digit"]);
    let affixes = prop::sample::select(vec![
        ("", ""),
        ("NHS", ""),
        ("NHS.", ""),
        ("0", ""),
        ("", "000"),
        ("id:", "X"),
    ]);
    (numbers, scripts, separators, shapes, affixes).prop_map(
        |(number, script, separator, shape, (prefix, suffix))| {
            let digits: Vec<String> = number
                .chars()
                .map(|digit| {
                    char::from_u32(script + digit.to_digit(10).unwrap_or(0))
                        .unwrap_or(digit)
                        .to_string()
                })
                .collect();
            let groups: &[usize] = match shape {
                "3-3-4" => &[3, 3, 4],
                "4-3-3" => &[4, 3, 3],
                "3-7" => &[3, 7],
                _ => &[1; 10],
            };
            let mut parts = Vec::new();
            let mut at = 0;
            for length in groups {
                parts.push(digits[at..at + length].concat());
                at += length;
            }
            (
                format!("{prefix}{}{suffix}", parts.join(separator)),
                number.to_owned(),
            )
        },
    )
}

/// One decoder for every case of the property below.
fn shared_decoder() -> &'static icsflow_avro::EventDecoder {
    static DECODER: std::sync::OnceLock<icsflow_avro::EventDecoder> = std::sync::OnceLock::new();
    DECODER.get_or_init(decoder)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever spelling of an NHS number is put in whatever string field
    /// of whatever event type, nothing of it is carried: the record is
    /// refused (and a refusal holds a reason, a field name and a fixed
    /// sentence), or what is accepted shows no number in any value the
    /// journey record carries. Only closed codes and strict identifiers
    /// travel, so this holds by construction rather than by recognising
    /// the spelling.
    #[test]
    fn no_spelling_of_an_nhs_number_travels_past_decoding(
        (spelling, number) in nhs_number_spelling(),
        event_index in 0..icsflow_core::one_event_of_each_type().len(),
        slot in 0_usize..16,
    ) {
        let event = icsflow_core::one_event_of_each_type()[event_index];
        let mut value = crate::surgery::value_of(&event);
        let mut slots = string_slots(&mut value);
        let slot = slot % slots.len();
        *slots[slot] = spelling.clone();
        let record = crate::surgery::single_object(event.feed(), value);
        match shared_decoder().decode(&record, &policy()) {
            Err(refused) => {
                let shown = format!("{refused} {refused:?}");
                prop_assert!(!shown.contains(&number), "{shown}");
                prop_assert!(!icsflow_core::may_show_nhs_number(&shown), "{shown}");
            }
            Ok(accepted) => {
                let envelope = accepted.envelope;
                let mut carried = vec![
                    envelope.source_organisation.to_string(),
                    envelope.place.to_string(),
                ];
                if let icsflow_core::EventBody::Discharge(
                    icsflow_core::DischargeBody::DelayReasonRecorded { reason_code, .. },
                ) = accepted.body
                {
                    carried.push(icsflow_core::CodeList::symbol(reason_code).to_owned());
                }
                for text in carried {
                    prop_assert!(!icsflow_core::may_show_nhs_number(&text), "{text}");
                }
                // Pseudonyms and event ids are random identifiers by
                // pattern: the spelling cannot have become one.
                prop_assert_eq!(accepted.envelope.patient, event.envelope.patient);
            }
        }
    }
}
