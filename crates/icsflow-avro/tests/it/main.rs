//! Integration tests of the Avro edge: every test here goes through the
//! public API with real bytes, as a consumer would.

mod fuzz_regressions;
mod json;
mod properties;
mod registry;
mod rejections;
mod resolution;
mod round_trip;
mod schema_check;
mod schema_shape;

use std::sync::Arc;

use icsflow_avro::{EventDecoder, SchemaCatalogue};
use icsflow_core::{Timestamp, TimestampPolicy};

/// One decoder for the whole test binary: building the catalogue parses
/// every schema, which property tests would otherwise repeat per case.
fn decoder() -> EventDecoder {
    static DECODER: std::sync::OnceLock<EventDecoder> = std::sync::OnceLock::new();
    DECODER
        .get_or_init(|| EventDecoder::new(Arc::new(SchemaCatalogue::embedded())))
        .clone()
}

/// A wall clock a year after the sample events, so the future check is live.
fn policy() -> TimestampPolicy {
    TimestampPolicy::wall_clock(Timestamp::from_millis(1_800_000_000_000))
}

/// The repository root, for fixtures and `schemas/`.
fn repository_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Wire-level record surgery for tests that need records icsflow itself
/// would never write. The schema is the current one with the `uuid`
/// logical type dropped, which leaves the binary layout (and fingerprint)
/// unchanged but lets any string be written into UUID fields.
mod surgery {
    use apache_avro::types::Value;
    use apache_avro::Schema;
    use icsflow_avro::{encode_datum, SchemaCatalogue};
    use icsflow_core::{Event, Feed};

    pub(crate) fn plain_schema(feed: Feed) -> Schema {
        let file = icsflow_avro::current_schema_file(feed);
        Schema::parse_str(
            &file
                .text
                .replace(r#""logicalType": "uuid""#, r#""note": "uuid""#),
        )
        .expect("plain schema")
    }

    pub(crate) fn value_of(event: &Event) -> Value {
        let datum = encode_datum(event);
        apache_avro::from_avro_datum(&plain_schema(event.feed()), &mut datum.as_slice(), None)
            .expect("decodes")
    }

    /// Encodes a (possibly invalid) value in single-object framing.
    pub(crate) fn single_object(feed: Feed, value: Value) -> Vec<u8> {
        let catalogue = SchemaCatalogue::embedded();
        let mut bytes = vec![0xC3, 0x01];
        bytes.extend_from_slice(&catalogue.current(feed).fingerprint.to_le_bytes());
        bytes.extend(apache_avro::to_avro_datum(&plain_schema(feed), value).expect("encodes"));
        bytes
    }

    /// Replaces the top-level field `name` of a record value.
    pub(crate) fn set_field(value: &mut Value, name: &str, replacement: Value) {
        let Value::Record(fields) = value else {
            panic!("not a record")
        };
        let slot = fields
            .iter_mut()
            .find(|(field, _)| field == name)
            .unwrap_or_else(|| panic!("no field {name}"));
        slot.1 = replacement;
    }

    /// Every string in a value, as a path of field names and union branches
    /// to reach it.
    pub(crate) fn string_paths(value: &Value) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        walk(value, &mut Vec::new(), &mut paths);
        paths
    }

    fn walk(value: &Value, path: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
        match value {
            Value::String(_) => paths.push(path.clone()),
            Value::Union(_, inner) => walk(inner, path, paths),
            Value::Record(fields) => {
                for (name, inner) in fields {
                    path.push(name.clone());
                    walk(inner, path, paths);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// Replaces the string at `path` with `text`.
    pub(crate) fn replace_string(value: &mut Value, path: &[String], text: &str) {
        match value {
            Value::String(inner) if path.is_empty() => *inner = text.to_owned(),
            Value::Union(_, inner) => replace_string(inner, path, text),
            Value::Record(fields) => {
                let (name, rest) = path.split_first().expect("path reaches a string");
                let (_, inner) = fields
                    .iter_mut()
                    .find(|(field, _)| field == name)
                    .expect("field on path");
                replace_string(inner, rest, text);
            }
            _ => panic!("path does not reach a string"),
        }
    }
}
