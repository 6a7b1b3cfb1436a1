//! Parsing Canonical Form and the CRC-64-AVRO fingerprint, as the Avro
//! specification defines them.
//!
//! Written out here rather than taken from apache-avro because apache-avro
//! 0.21 leaves a primitive with a logical type as `{"type":"string"}` in the
//! canonical form where the specification (and the Java library partners
//! use) writes `"string"`; its fingerprints then differ from every other
//! implementation's for schemas with UUIDs, timestamps or dates, which are
//! exactly the icsflow schemas. A test below pins the rules.

use std::collections::HashSet;

use serde_json::Value;

use crate::Error;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of a schema given as JSON text.
pub(crate) fn parsing_canonical_form(schema_text: &str) -> Result<String, Error> {
    let json: Value = serde_json::from_str(schema_text)
        .map_err(|error| Error::InvalidSchema(error.to_string()))?;
    let mut out = String::new();
    write_canonical(&json, None, &mut HashSet::new(), &mut out)?;
    Ok(out)
}

/// The CRC-64-AVRO (Rabin) fingerprint of the schema's canonical form: the
/// integer whose 8 little-endian bytes follow `C3 01` in single-object
/// encoding.
pub fn fingerprint_of(schema_text: &str) -> Result<u64, Error> {
    Ok(crc64_avro(parsing_canonical_form(schema_text)?.as_bytes()))
}

fn crc64_avro(bytes: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0_u64; 256];
    for (index, entry) in table.iter_mut().enumerate() {
        let mut fingerprint = index as u64;
        for _ in 0..8 {
            fingerprint = (fingerprint >> 1) ^ (EMPTY & (0_u64.wrapping_sub(fingerprint & 1)));
        }
        *entry = fingerprint;
    }
    bytes.iter().fold(EMPTY, |fingerprint, &byte| {
        (fingerprint >> 8) ^ table[((fingerprint ^ u64::from(byte)) & 0xff) as usize]
    })
}

fn write_canonical(
    schema: &Value,
    namespace: Option<&str>,
    defined: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), Error> {
    let invalid = |message: &str| Error::InvalidSchema(message.to_owned());
    match schema {
        Value::String(name) => {
            if PRIMITIVES.contains(&name.as_str()) {
                write_string(name, out);
            } else {
                write_string(&full_name(name, None, namespace), out);
            }
        }
        Value::Array(branches) => {
            out.push('[');
            for (index, branch) in branches.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(branch, namespace, defined, out)?;
            }
            out.push(']');
        }
        Value::Object(object) => {
            let kind = object
                .get("type")
                .ok_or_else(|| invalid("a schema object has no type"))?;
            let Some(kind) = kind.as_str() else {
                // `{"type": {...}}`: the inner schema is the schema.
                return write_canonical(kind, namespace, defined, out);
            };
            if PRIMITIVES.contains(&kind) {
                write_string(kind, out);
                return Ok(());
            }
            match kind {
                "record" | "error" | "enum" | "fixed" => {
                    let name = object
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid("a named type has no name"))?;
                    let own_namespace = object.get("namespace").and_then(Value::as_str);
                    let full = full_name(name, own_namespace, namespace);
                    if !defined.insert(full.clone()) {
                        write_string(&full, out);
                        return Ok(());
                    }
                    out.push_str("{\"name\":");
                    write_string(&full, out);
                    out.push_str(",\"type\":");
                    write_string(if kind == "error" { "error" } else { kind }, out);
                    let inner_namespace = full.rsplit_once('.').map(|(space, _)| space.to_owned());
                    match kind {
                        "enum" => {
                            out.push_str(",\"symbols\":");
                            let symbols = object
                                .get("symbols")
                                .ok_or_else(|| invalid("an enum has no symbols"))?;
                            out.push_str(
                                &serde_json::to_string(symbols)
                                    .map_err(|error| Error::InvalidSchema(error.to_string()))?,
                            );
                        }
                        "fixed" => {
                            let size = object
                                .get("size")
                                .and_then(Value::as_u64)
                                .ok_or_else(|| invalid("a fixed has no size"))?;
                            out.push_str(&format!(",\"size\":{size}"));
                        }
                        _ => {
                            out.push_str(",\"fields\":[");
                            let fields = object
                                .get("fields")
                                .and_then(Value::as_array)
                                .ok_or_else(|| invalid("a record has no fields"))?;
                            for (index, field) in fields.iter().enumerate() {
                                if index > 0 {
                                    out.push(',');
                                }
                                let field_name = field
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .ok_or_else(|| invalid("a field has no name"))?;
                                let field_type = field
                                    .get("type")
                                    .ok_or_else(|| invalid("a field has no type"))?;
                                out.push_str("{\"name\":");
                                write_string(field_name, out);
                                out.push_str(",\"type\":");
                                write_canonical(
                                    field_type,
                                    inner_namespace.as_deref(),
                                    defined,
                                    out,
                                )?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                }
                "array" => {
                    out.push_str("{\"type\":\"array\",\"items\":");
                    write_canonical(
                        object
                            .get("items")
                            .ok_or_else(|| invalid("an array has no items"))?,
                        namespace,
                        defined,
                        out,
                    )?;
                    out.push('}');
                }
                "map" => {
                    out.push_str("{\"type\":\"map\",\"values\":");
                    write_canonical(
                        object
                            .get("values")
                            .ok_or_else(|| invalid("a map has no values"))?,
                        namespace,
                        defined,
                        out,
                    )?;
                    out.push('}');
                }
                other => write_string(&full_name(other, None, namespace), out),
            }
        }
        _ => return Err(invalid("a schema is a string, an array or an object")),
    }
    Ok(())
}

fn full_name(name: &str, own_namespace: Option<&str>, enclosing_namespace: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_owned();
    }
    match own_namespace.or(enclosing_namespace) {
        Some(namespace) if !namespace.is_empty() => format!("{namespace}.{name}"),
        _ => name.to_owned(),
    }
}

fn write_string(text: &str, out: &mut String) {
    // serde_json escapes exactly as JSON requires; a `String` always
    // serialises.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use apache_avro::rabin::Rabin;

    use super::*;

    #[test]
    fn canonical_form_follows_the_specification() {
        let schema = r#"{
            "type": "record", "name": "Event", "namespace": "icsflow.test", "doc": "stripped",
            "fields": [
                {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "doc": "stripped"},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"], "default": "A"}},
                {"name": "again", "type": ["null", "Kind", "other.Name"], "default": null},
                {"name": "tags", "type": {"type": "array", "items": "string"}},
                {"name": "inner", "type": {"type": "record", "name": "Inner", "namespace": "x.y", "fields": [
                    {"name": "k", "type": {"type": "fixed", "name": "F", "size": 4}}]}}
            ]
        }"#;
        assert_eq!(
            parsing_canonical_form(schema).expect("canonical"),
            concat!(
                r#"{"name":"icsflow.test.Event","type":"record","fields":["#,
                r#"{"name":"id","type":"string"},{"name":"at","type":"long"},"#,
                r#"{"name":"kind","type":{"name":"icsflow.test.Kind","type":"enum","symbols":["A","B"]}},"#,
                r#"{"name":"again","type":["null","icsflow.test.Kind","other.Name"]},"#,
                r#"{"name":"tags","type":{"type":"array","items":"string"}},"#,
                r#"{"name":"inner","type":{"name":"x.y.Inner","type":"record","fields":[{"name":"k","type":{"name":"x.y.F","type":"fixed","size":4}}]}}"#,
                "]}"
            )
        );
    }

    #[test]
    fn crc64_avro_agrees_with_apache_avro_rabin() {
        use apache_avro::Schema;
        // Without logical types apache-avro's canonical form is right, so
        // its fingerprint must equal ours.
        let schema = r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"int"},{"name":"b","type":{"type":"enum","name":"E","symbols":["X"]}}]}"#;
        let theirs = Schema::parse_str(schema)
            .expect("parses")
            .fingerprint::<Rabin>()
            .bytes;
        assert_eq!(
            fingerprint_of(schema)
                .expect("fingerprint")
                .to_le_bytes()
                .to_vec(),
            theirs
        );
        // The specification's fingerprint of the empty string is the seed.
        assert_eq!(crc64_avro(b""), 0xc15d_213a_a4d7_a795);
    }
}
