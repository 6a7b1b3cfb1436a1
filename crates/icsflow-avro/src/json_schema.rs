//! The JSON line form of each feed as a JSON Schema (draft 2020-12),
//! rendered from the Avro schema so that it cannot drift from it, for
//! integration engines that validate before they send; and the reading of
//! ISO 8601 timestamps and dates in JSON lines, found by the same walk over
//! the Avro schema.
//!
//! The JSON form (`json.rs`): a record is an object, an enum its symbol, a
//! nullable field its value or `null` (or left out), the `payload` union an
//! object with one key, the branch's record name. Timestamps
//! (`timestamp-millis`) are milliseconds since 1970 or an ISO 8601 date and
//! time with its offset; dates (`date`) are days since 1970 or `YYYY-MM-DD`.

use std::collections::HashMap;

use icsflow_core::{Date, Timestamp};
use serde_json::{json, Map, Value};

use crate::catalogue::SchemaFile;

/// Where the JSON Schemas live in the repository.
pub const JSON_SCHEMA_DIRECTORY: &str = "schemas/json";

/// The file name of a feed's JSON Schema in [`JSON_SCHEMA_DIRECTORY`].
pub fn json_schema_file_name(file: &SchemaFile) -> String {
    format!("{}.schema.json", file.feed.as_str())
}

/// The forms a `timestamp-millis` field takes in a JSON line.
const TIMESTAMP_FORMS: &str = "In JSON: milliseconds since 1970-01-01T00:00:00Z, or an ISO 8601 date and time with its offset (2026-01-05T10:00:00Z, 2026-06-01T09:00:00+01:00).";
/// The forms a `date` field takes in a JSON line.
const DATE_FORMS: &str = "In JSON: days since 1970-01-01, or an ISO 8601 date (2026-01-05).";

/// The named types (records, enums) of a schema, by simple and full name.
struct Named<'a> {
    types: HashMap<String, &'a Value>,
}

impl<'a> Named<'a> {
    fn of(schema: &'a Value) -> Named<'a> {
        let mut named = Named {
            types: HashMap::new(),
        };
        named.collect(schema, "");
        named
    }

    fn collect(&mut self, schema: &'a Value, namespace: &str) {
        match schema {
            Value::Array(branches) => {
                for branch in branches {
                    self.collect(branch, namespace);
                }
            }
            Value::Object(object) => {
                let namespace = object
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                if let Some(name) = object.get("name").and_then(Value::as_str) {
                    if matches!(
                        object.get("type").and_then(Value::as_str),
                        Some("record" | "enum" | "fixed")
                    ) {
                        self.types.insert(name.to_owned(), schema);
                        if !namespace.is_empty() && !name.contains('.') {
                            self.types.insert(format!("{namespace}.{name}"), schema);
                        }
                    }
                }
                if let Some(fields) = object.get("fields").and_then(Value::as_array) {
                    for field in fields {
                        if let Some(field_type) = field.get("type") {
                            self.collect(field_type, namespace);
                        }
                    }
                }
                if let Some(inner @ (Value::Object(_) | Value::Array(_))) = object.get("type") {
                    self.collect(inner, namespace);
                }
            }
            _ => {}
        }
    }

    /// The definition a type reference stands for (itself when it is not a
    /// reference).
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        match schema {
            Value::String(name) => self.types.get(name).copied().unwrap_or(schema),
            _ => schema,
        }
    }
}

/// The simple name of a named type.
fn simple_name(schema: &Value) -> Option<&str> {
    let name = schema.get("name")?.as_str()?;
    Some(name.rsplit('.').next().unwrap_or(name))
}

fn is_null(schema: &Value) -> bool {
    schema.as_str() == Some("null")
}

/// Renders the JSON Schema of `file`'s feed (pretty, with a trailing
/// newline), or says why the Avro schema cannot be read.
pub fn render_json_schema(file: &SchemaFile) -> Result<String, String> {
    let schema: Value = serde_json::from_str(file.text)
        .map_err(|error| format!("{}/v{}.avsc: {error}", file.feed, file.version))?;
    let named = Named::of(&schema);
    let mut root = json_schema_of(&named, &schema, None);
    if let Value::Object(object) = &mut root {
        let mut head = Map::new();
        head.insert(
            "$schema".to_owned(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        head.insert(
            "$id".to_owned(),
            json!(format!(
                "https://icsflow.example/schemas/json/{}",
                json_schema_file_name(file)
            )),
        );
        head.insert(
            "title".to_owned(),
            json!(format!(
                "icsflow {} feed, one JSON line (from schemas/{}/v{}.avsc)",
                file.feed, file.feed, file.version
            )),
        );
        head.extend(std::mem::take(object));
        *object = head;
    }
    let mut text = serde_json::to_string_pretty(&root).map_err(|error| error.to_string())?;
    text.push('\n');
    Ok(text)
}

fn json_schema_of(named: &Named<'_>, schema: &Value, doc: Option<&str>) -> Value {
    let schema = named.resolve(schema);
    let mut rendered = match schema {
        Value::String(primitive) => primitive_schema(primitive),
        Value::Array(branches) => union_schema(named, branches),
        Value::Object(object) => {
            let logical = object.get("logicalType").and_then(Value::as_str);
            match (object.get("type"), logical) {
                (_, Some("timestamp-millis")) => json!({
                    "$comment": TIMESTAMP_FORMS,
                    "oneOf": [
                        {"type": "integer"},
                        {"type": "string", "format": "date-time", "pattern": "(Z|z|[+-][0-9]{2}:[0-9]{2})$"}
                    ]
                }),
                (_, Some("date")) => json!({
                    "$comment": DATE_FORMS,
                    "oneOf": [
                        {"type": "integer"},
                        {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
                    ]
                }),
                (_, Some("uuid")) => json!({"type": "string", "format": "uuid"}),
                (Some(Value::String(kind)), _) if kind == "record" => record_schema(named, object),
                (Some(Value::String(kind)), _) if kind == "enum" => json!({
                    "type": "string",
                    "enum": object.get("symbols").cloned().unwrap_or(json!([])),
                }),
                (Some(inner), _) => json_schema_of(named, inner, None),
                (None, _) => json!({}),
            }
        }
        _ => json!({}),
    };
    let doc = doc.or_else(|| schema.get("doc").and_then(Value::as_str));
    if let Value::Object(object) = &mut rendered {
        // A timestamp's or date's accepted forms follow its field's doc.
        let forms = object
            .remove("$comment")
            .and_then(|forms| forms.as_str().map(str::to_owned));
        let description = match (doc, forms) {
            (Some(doc), Some(forms)) => Some(format!("{doc} {forms}")),
            (Some(doc), None) => Some(doc.to_owned()),
            (None, forms) => forms,
        };
        if let Some(description) = description {
            object
                .entry("description")
                .or_insert_with(|| json!(description));
        }
    }
    rendered
}

fn primitive_schema(primitive: &str) -> Value {
    match primitive {
        "null" => json!({"type": "null"}),
        "boolean" => json!({"type": "boolean"}),
        "int" | "long" => json!({"type": "integer"}),
        "float" | "double" => json!({"type": "number"}),
        _ => json!({"type": "string"}),
    }
}

fn union_schema(named: &Named<'_>, branches: &[Value]) -> Value {
    let non_null: Vec<&Value> = branches.iter().filter(|branch| !is_null(branch)).collect();
    let nullable = non_null.len() < branches.len();
    let records: Vec<&Value> = non_null
        .iter()
        .map(|branch| named.resolve(branch))
        .filter(|branch| branch.get("type").and_then(Value::as_str) == Some("record"))
        .collect();
    let mut options: Vec<Value> = if records.len() == non_null.len() && records.len() > 1 {
        // A union of records: an object with one key, the branch's name.
        records
            .iter()
            .map(|record| {
                let name = simple_name(record).unwrap_or_default();
                json!({
                    "type": "object",
                    "properties": {name: json_schema_of(named, record, None)},
                    "required": [name],
                    "additionalProperties": false,
                })
            })
            .collect()
    } else {
        non_null
            .iter()
            .map(|branch| json_schema_of(named, branch, None))
            .collect()
    };
    if nullable {
        options.push(json!({"type": "null"}));
    }
    if options.len() == 1 {
        options.remove(0)
    } else {
        json!({ "oneOf": options })
    }
}

/// The rules `publish` and ingest hold a string field to that Avro does
/// not say (a closed list, a strict pattern), so that an integration engine
/// validating against the JSON Schema refuses what icsflow would.
fn refine_string_field(name: &str, property: &mut Value) {
    let Value::Object(object) = property else {
        return;
    };
    // A nullable field: its string branch.
    if let Some(Value::Array(branches)) = object.get_mut("oneOf") {
        for branch in branches {
            refine_string_field(name, branch);
        }
        return;
    }
    if object.get("type").and_then(Value::as_str) != Some("string") {
        return;
    }
    match name {
        "patient_pseudonym" | "episode_reference" => {
            object.insert("pattern".to_owned(), json!("^[0-9a-f]{64}$"));
        }
        "event_id" => {
            // `format: uuid` is only an annotation to most validators.
            object.insert(
                "pattern".to_owned(),
                json!(
                    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
                ),
            );
        }
        "reason_code" => {
            use icsflow_core::CodeList;
            object.insert("enum".to_owned(), json!(icsflow_core::DelayReason::SYMBOLS));
        }
        "source_organisation" | "sending_organisation" => {
            object.insert("pattern".to_owned(), json!("^[A-Z0-9]{3,6}$"));
        }
        "place" => {
            object.insert("pattern".to_owned(), json!("^E(06|08|09|10)[0-9]{6}$"));
        }
        _ => {}
    }
}

fn record_schema(named: &Named<'_>, record: &Map<String, Value>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in record
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = field.get("name").and_then(Value::as_str) else {
            continue;
        };
        let field_type = field.get("type").unwrap_or(&Value::Null);
        let nullable = field_type
            .as_array()
            .is_some_and(|branches| branches.iter().any(is_null));
        if !nullable && field.get("default").is_none() {
            required.push(json!(name));
        }
        let mut property =
            json_schema_of(named, field_type, field.get("doc").and_then(Value::as_str));
        refine_string_field(name, &mut property);
        properties.insert(name.to_owned(), property);
    }
    let mut object = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    if let (Some(doc), Value::Object(map)) =
        (record.get("doc").and_then(Value::as_str), &mut object)
    {
        map.insert("description".to_owned(), json!(doc));
    }
    object
}

/// Turns the ISO 8601 timestamps and dates of a JSON line (parsed as
/// `value`) into the epoch numbers of the Avro form, where the feed's schema
/// (`schema`, its JSON) has `timestamp-millis` or `date`. A string there that
/// is not ISO 8601 is named in the error (by field path, never by value).
pub(crate) fn iso_to_epochs(schema: &Value, value: &mut Value) -> Result<(), String> {
    let named = Named::of(schema);
    convert(&named, schema, value, "")
}

fn convert(named: &Named<'_>, schema: &Value, value: &mut Value, path: &str) -> Result<(), String> {
    let schema = named.resolve(schema);
    match schema {
        Value::Array(branches) => {
            if value.is_null() {
                return Ok(());
            }
            let non_null: Vec<&Value> = branches.iter().filter(|branch| !is_null(branch)).collect();
            if let (Value::Object(object), true) = (&mut *value, non_null.len() > 1) {
                // A union of records: {"BranchName": {...}}.
                if let Some((key, inner)) = object.iter_mut().next() {
                    if let Some(branch) = non_null
                        .iter()
                        .map(|branch| named.resolve(branch))
                        .find(|branch| simple_name(branch) == Some(key.as_str()))
                    {
                        return convert(named, branch, inner, &format!("{path}.{key}"));
                    }
                }
                return Ok(());
            }
            match non_null.as_slice() {
                [only] => convert(named, only, value, path),
                _ => Ok(()),
            }
        }
        Value::Object(object) => {
            let logical = object.get("logicalType").and_then(Value::as_str);
            match (logical, &*value) {
                (Some("timestamp-millis"), Value::String(text)) => {
                    let instant = Timestamp::parse_iso8601(text).ok_or_else(|| {
                        format!("{} is not an ISO 8601 date and time with an offset (2026-01-05T10:00:00Z) nor milliseconds", path.trim_start_matches('.'))
                    })?;
                    *value = json!(instant.as_millis());
                    Ok(())
                }
                (Some("date"), Value::String(text)) => {
                    let date = Date::parse_iso8601(text).ok_or_else(|| {
                        format!(
                            "{} is not an ISO 8601 date (2026-01-05) nor days since 1970",
                            path.trim_start_matches('.')
                        )
                    })?;
                    *value = json!(date.days_since_epoch());
                    Ok(())
                }
                _ => match object.get("type") {
                    Some(Value::String(kind)) if kind == "record" => {
                        let Value::Object(fields) = value else {
                            return Ok(());
                        };
                        for field in object
                            .get("fields")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            let (Some(name), Some(field_type)) =
                                (field.get("name").and_then(Value::as_str), field.get("type"))
                            else {
                                continue;
                            };
                            if let Some(inner) = fields.get_mut(name) {
                                convert(named, field_type, inner, &format!("{path}.{name}"))?;
                            }
                        }
                        Ok(())
                    }
                    Some(inner @ (Value::Object(_) | Value::Array(_))) => {
                        convert(named, inner, value, path)
                    }
                    _ => Ok(()),
                },
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_schemas_in_the_repository_are_current() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        for feed in icsflow_core::Feed::ALL {
            let file = crate::catalogue::current_schema_file(feed);
            let rendered = render_json_schema(file).expect("renders");
            let path = format!(
                "{root}/{JSON_SCHEMA_DIRECTORY}/{}",
                json_schema_file_name(file)
            );
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == rendered,
                "{path} is stale: run `icsflow schemas json` (writes {JSON_SCHEMA_DIRECTORY}/)"
            );
        }
    }

    #[test]
    fn iso_timestamps_and_dates_become_epoch_numbers_where_the_schema_has_them() {
        let schema: Value = serde_json::from_str(
            crate::catalogue::current_schema_file(icsflow_core::Feed::Discharge).text,
        )
        .expect("the discharge schema");
        let mut line = json!({
            "occurred_at": "2026-01-05T11:00:00+01:00",
            "recorded_at": 1_767_607_260_000_i64,
            "episode_reference": null,
            "payload": {"CriteriaToResideAssessed": {"meets_criteria": false, "discharge_ready_date": "2026-01-08"}},
        });
        iso_to_epochs(&schema, &mut line).expect("converted");
        assert_eq!(line["occurred_at"], json!(1_767_607_200_000_i64));
        assert_eq!(line["recorded_at"], json!(1_767_607_260_000_i64));
        let date = Date::from_calendar(2026, 1, 8).expect("a date");
        assert_eq!(
            line["payload"]["CriteriaToResideAssessed"]["discharge_ready_date"],
            json!(date.days_since_epoch())
        );
        let mut local = json!({"occurred_at": "2026-01-05T10:00:00"});
        let error = iso_to_epochs(&schema, &mut local).expect_err("no offset");
        assert!(
            error.starts_with("occurred_at is not an ISO 8601"),
            "{error}"
        );
    }

    /// `millis` as ISO 8601 at +01:00.
    fn iso_at_plus_one(millis: i64) -> String {
        let local = millis + 3_600_000;
        let (year, month, day) = Timestamp::from_millis(local).date().to_calendar();
        let of_day = local.rem_euclid(Timestamp::MILLIS_PER_DAY);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+01:00",
            of_day / 3_600_000,
            of_day / 60_000 % 60,
            of_day / 1000 % 60,
            of_day % 1000
        )
    }

    /// Every example line, with its timestamps and dates in ISO 8601,
    /// decodes to the same event as with epoch numbers.
    #[test]
    fn examples_in_iso_8601_decode_to_the_same_events() {
        let policy = icsflow_core::TimestampPolicy {
            now: None,
            tolerance_millis: 300_000,
        };
        let mut converted = 0;
        for event in icsflow_core::one_event_of_each_type() {
            let line = crate::encode_json(&event);
            let mut value: Value = serde_json::from_str(&line).expect("JSON");
            for field in ["occurred_at", "recorded_at"] {
                let millis = value[field].as_i64().expect("a timestamp");
                value[field] = json!(iso_at_plus_one(millis));
            }
            if let Some(payload) = value["payload"].as_object_mut() {
                for body in payload.values_mut() {
                    for (name, field) in body.as_object_mut().into_iter().flatten() {
                        if name.ends_with("_date") || name.starts_with("date_") {
                            if let Some(days) = field.as_i64() {
                                let (year, month, day) =
                                    Date::from_days_since_epoch(days as i32).to_calendar();
                                *field = json!(format!("{year:04}-{month:02}-{day:02}"));
                                converted += 1;
                            }
                        }
                    }
                }
            }
            let iso = value.to_string();
            assert!(iso.contains("+01:00"), "{iso}");
            assert_eq!(
                crate::decode_json(event.feed(), &iso, &policy),
                Ok(event),
                "{iso}"
            );
        }
        assert_eq!(converted, 2, "both date fields converted");
    }
}
