//! The JSON form of partner events, one record per line: what partners
//! write before `icsflow publish` validates and encodes it, and what the
//! simulator writes to files.
//!
//! A line is the schema's record as a JSON object, field for field:
//! timestamps are milliseconds since 1970 (`timestamp-millis`), dates are
//! days since 1970 (`date`), enums are their symbol, a nullable field is
//! its value or `null` (or left out), and the `payload` union is an object
//! with one key, the branch's record name, for example
//! `{"Admitted": {"admission_method": "EMERGENCY_ACCIDENT_AND_EMERGENCY", ...}}`.
//! Fields the schema does not have are refused. `schemas/examples/` holds
//! one line per event type.

use std::fmt;
use std::sync::OnceLock;

use icsflow_core::{
    contains_nhs_number, guard_identifiable_data, Event, Feed, OdsCode, RejectReason, Rejection,
    TimestampPolicy,
};

use crate::json_schema::iso_to_epochs;
use crate::wire::{
    Alteration, AnyRecord, DischargeRecord, PrimaryCareRecord, SocialCareRecord, TextBuffers,
};

/// Why a JSON line did not become an event: the bounded rejection, and,
/// when the line did not match the schema, which part did not (never a
/// value that could be an NHS number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonRejection {
    pub rejection: Rejection,
    pub detail: Option<String>,
}

impl fmt::Display for JsonRejection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.rejection)?;
        if let Some(detail) = &self.detail {
            write!(formatter, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonRejection {}

impl From<Rejection> for JsonRejection {
    fn from(rejection: Rejection) -> JsonRejection {
        JsonRejection {
            rejection,
            detail: None,
        }
    }
}

/// Parses and validates one JSON line of `feed`, with the same checks as
/// an Avro record, the identifiable-data guard first.
pub fn decode_json(
    feed: Feed,
    line: &str,
    policy: &TimestampPolicy,
) -> Result<Event, JsonRejection> {
    decode_checked(feed, line, policy).map_err(|mut refused| {
        // A detail quotes parts of the line, and quoting can make a token of
        // digits that were glued to other characters in the line (serde
        // reads `6666666666q` as the number 6666666666 and names it). Any
        // detail that holds an NHS number by the guard's own rule is
        // withheld.
        if refused.detail.as_deref().is_some_and(contains_nhs_number) {
            refused.detail = Some(WITHHELD.to_owned());
        }
        refused
    })
}

/// What stands for a detail that would quote an NHS number.
const WITHHELD: &str = "(detail withheld: it would quote what looks like an NHS number)";

fn decode_checked(
    feed: Feed,
    line: &str,
    policy: &TimestampPolicy,
) -> Result<Event, JsonRejection> {
    if let Some(path) = identifiable_part(line) {
        return Err(JsonRejection {
            rejection: Rejection::new(
                RejectReason::IdentifiableData,
                "the line holds what looks like an NHS number; publish pseudonyms only",
            ),
            detail: path.map(|path| format!("in {path}")),
        });
    }
    // ISO 8601 timestamps and dates become epoch numbers first, by the
    // feed's schema; a line with none is read as it is.
    let converted;
    let line = if may_hold_iso_dates(line) {
        let mut value: serde_json::Value =
            serde_json::from_str(line).map_err(|error| shape_rejection(feed, error))?;
        iso_to_epochs(current_schema(feed), &mut value).map_err(|detail| JsonRejection {
            rejection: Rejection::new(
                RejectReason::InvalidField,
                "a timestamp or date is neither an epoch number nor ISO 8601",
            ),
            detail: Some(detail),
        })?;
        converted = value.to_string();
        converted.as_str()
    } else {
        line
    };
    let event = match feed {
        Feed::Discharge => serde_json::from_str::<DischargeRecord<'_>>(line)
            .map_err(|error| shape_rejection(feed, error))?
            .into_event(policy)?,
        Feed::SocialCare => serde_json::from_str::<SocialCareRecord<'_>>(line)
            .map_err(|error| shape_rejection(feed, error))?
            .into_event(policy)?,
        Feed::PrimaryCare => serde_json::from_str::<PrimaryCareRecord<'_>>(line)
            .map_err(|error| shape_rejection(feed, error))?
            .into_event(policy)?,
    };
    Ok(event)
}

/// Whether a line has a string that starts like an ISO 8601 date
/// (`"YYYY-MM-`): only then is it read through the schema walk.
fn may_hold_iso_dates(line: &str) -> bool {
    line.as_bytes().windows(7).any(|window| {
        window[0] == b'"'
            && window[1..5].iter().all(u8::is_ascii_digit)
            && window[5] == b'-'
            && window[6].is_ascii_digit()
    })
}

/// The current schema of `feed`, parsed once per process.
fn current_schema(feed: Feed) -> &'static serde_json::Value {
    static PARSED: [OnceLock<serde_json::Value>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match feed {
        Feed::Discharge => &PARSED[0],
        Feed::SocialCare => &PARSED[1],
        Feed::PrimaryCare => &PARSED[2],
    };
    slot.get_or_init(|| {
        let text = crate::catalogue::current_schema_file(feed).text;
        // The embedded schemas are checked to parse by the catalogue's tests.
        serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
    })
}

/// The organisation a line claims to come from, when it can be read, for
/// counting rejections per partner.
pub fn json_organisation(line: &str) -> Option<OdsCode> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = value.get("source_organisation")?.as_str()?;
    OdsCode::parse("source_organisation", text).ok()
}

/// The JSON line of an event (no trailing newline).
pub fn encode_json(event: &Event) -> String {
    let mut buffers = TextBuffers::default();
    to_json(&AnyRecord::from_event(event, &mut buffers))
}

/// The JSON line of an event with one field made invalid ([`Alteration`]).
pub fn encode_json_altered(event: &Event, alteration: Alteration<'_>) -> String {
    let mut buffers = TextBuffers::default();
    let mut record = AnyRecord::from_event(event, &mut buffers);
    record.alter(alteration);
    to_json(&record)
}

fn to_json(record: &AnyRecord<'_>) -> String {
    // Strings, integers, booleans and maps with string keys always
    // serialise to JSON.
    let encoded = match record {
        AnyRecord::Discharge(record) => serde_json::to_string(record),
        AnyRecord::SocialCare(record) => serde_json::to_string(record),
        AnyRecord::PrimaryCare(record) => serde_json::to_string(record),
    };
    encoded.expect("wire records always serialise to JSON")
}

fn shape_rejection(feed: Feed, error: serde_json::Error) -> JsonRejection {
    use serde_json::error::Category;
    let rejection = match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            Rejection::new(RejectReason::Malformed, "the line is not one JSON object")
        }
        Category::Data => match unknown_symbol_field(feed, &error) {
            Some(field) => Rejection::in_field(
                RejectReason::InvalidField,
                field,
                "the value is not a symbol of the field's code list (the data dictionary lists them)",
            ),
            None => Rejection::new(
                RejectReason::Malformed,
                "the JSON object does not match the feed's schema",
            ),
        },
    };
    // serde_json's message names the field or symbol at fault and where;
    // `decode_json` withholds it if it quotes an NHS number.
    JsonRejection {
        rejection,
        detail: Some(error.to_string()),
    }
}

/// The field at fault when serde refused a code that is not in its list:
/// its message names the code list, not the field (serde keeps no path), so
/// the field is the one of `feed`'s current schema whose type is that list.
fn unknown_symbol_field(feed: Feed, error: &serde_json::Error) -> Option<&'static str> {
    let message = error.to_string();
    let list = message
        .strip_prefix("unknown symbol of ")?
        .split_whitespace()
        .next()?;
    field_of_enum(current_schema(feed), list)
}

/// The first field, anywhere in `schema`, whose type is the enum `name`
/// (defined there, referred to by name, or a branch of a union).
fn field_of_enum(schema: &'static serde_json::Value, name: &str) -> Option<&'static str> {
    use serde_json::Value;
    fn is_enum(schema: &Value, name: &str) -> bool {
        let named = |full: &str| full.rsplit('.').next() == Some(name);
        match schema {
            Value::String(reference) => named(reference),
            Value::Array(branches) => branches.iter().any(|branch| is_enum(branch, name)),
            Value::Object(object) => {
                object.get("type").and_then(Value::as_str) == Some("enum")
                    && object
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(named)
            }
            _ => false,
        }
    }
    match schema {
        Value::Array(branches) => branches
            .iter()
            .find_map(|branch| field_of_enum(branch, name)),
        Value::Object(object) => match object.get("type") {
            Some(Value::String(kind)) if kind == "record" => {
                object.get("fields")?.as_array()?.iter().find_map(|field| {
                    let field_type = field.get("type")?;
                    if is_enum(field_type, name) {
                        field.get("name")?.as_str()
                    } else {
                        field_of_enum(field_type, name)
                    }
                })
            }
            Some(Value::String(kind)) if kind == "array" => {
                field_of_enum(object.get("items")?, name)
            }
            Some(inner @ (Value::Object(_) | Value::Array(_))) => field_of_enum(inner, name),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the line holds an NHS number: `Some(path)` naming the first key,
/// string or number that does when the line is JSON, `Some(None)` when it
/// is not JSON but its text holds one. Strings that are whole pseudonyms or
/// UUIDs are identifiers, not searched (as in `guard_identifiable_data`).
fn identifiable_part(line: &str) -> Option<Option<String>> {
    fn search(value: &serde_json::Value, path: &str) -> Option<String> {
        let holds = |text: &str| guard_identifiable_data([("", text)]).is_err();
        match value {
            serde_json::Value::String(text) if holds(text) => Some(path.to_owned()),
            serde_json::Value::Number(number) if holds(&number.to_string()) => {
                Some(path.to_owned())
            }
            serde_json::Value::Object(fields) => fields.iter().find_map(|(name, inner)| {
                let inner_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if holds(name) {
                    // The key itself is the number: name its parent only.
                    return Some(if path.is_empty() {
                        "a key".to_owned()
                    } else {
                        format!("a key of {path}")
                    });
                }
                search(inner, &inner_path)
            }),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, inner)| search(inner, &format!("{path}[{index}]"))),
            _ => None,
        }
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => search(&value, "").map(Some),
        Err(_) => contains_nhs_number(line).then_some(None),
    }
}
