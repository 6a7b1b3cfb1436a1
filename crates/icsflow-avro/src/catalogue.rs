//! The schemas icsflow knows: every version under `schemas/`, embedded at
//! build time, indexed by their CRC-64-AVRO fingerprint, and how each one
//! relates to the current version of its feed.

use std::sync::Arc;

use apache_avro::Schema;
use icsflow_core::Feed;

use crate::canonical::fingerprint_of;
use crate::compatibility::can_read;
use crate::Error;

/// One versioned schema file, as shipped in `schemas/<feed>/v<N>.avsc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaFile {
    pub feed: Feed,
    pub version: u32,
    pub text: &'static str,
}

/// Every schema file of this build, oldest version first within a feed.
/// The last version of each feed is the current one: the reader schema and
/// the one icsflow writes.
pub const EMBEDDED_SCHEMAS: &[SchemaFile] = &[
    SchemaFile {
        feed: Feed::Discharge,
        version: 1,
        text: include_str!("../../../schemas/discharge/v1.avsc"),
    },
    SchemaFile {
        feed: Feed::Discharge,
        version: 2,
        text: include_str!("../../../schemas/discharge/v2.avsc"),
    },
    SchemaFile {
        feed: Feed::SocialCare,
        version: 1,
        text: include_str!("../../../schemas/social_care/v1.avsc"),
    },
    SchemaFile {
        feed: Feed::PrimaryCare,
        version: 1,
        text: include_str!("../../../schemas/primary_care/v1.avsc"),
    },
];

/// The highest version of `feed` among `files`: its current schema.
pub fn latest_schema_file(files: &[SchemaFile], feed: Feed) -> Option<&SchemaFile> {
    files
        .iter()
        .filter(|file| file.feed == feed)
        .max_by_key(|file| file.version)
}

/// The current schema of `feed` in this build: the one icsflow reads into
/// and writes.
pub fn current_schema_file(feed: Feed) -> &'static SchemaFile {
    // The catalogue's tests hold that every feed has a file.
    latest_schema_file(EMBEDDED_SCHEMAS, feed).expect("every feed has an embedded schema")
}

/// How records written with a schema are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Same canonical form as the current version: decoded directly.
    Current,
    /// A compatible other version: resolved to the current version first.
    Resolve,
    /// Cannot be read as the current version of its feed.
    Incompatible,
}

/// A schema records may be written with.
#[derive(Debug)]
pub struct WriterSchema {
    pub feed: Feed,
    pub schema: Schema,
    pub fingerprint: u64,
    pub resolution: Resolution,
}

/// The current (reader) schema of one feed.
#[derive(Debug)]
pub struct CurrentSchema {
    pub feed: Feed,
    pub version: u32,
    /// The schema file's JSON text.
    pub text: &'static str,
    pub schema: Schema,
    pub fingerprint: u64,
}

/// All known schemas. Built once at start-up and shared.
#[derive(Debug)]
pub struct SchemaCatalogue {
    current: Vec<CurrentSchema>,
    /// A handful of entries: a linear scan beats hashing here.
    writers: Vec<Arc<WriterSchema>>,
}

impl SchemaCatalogue {
    /// The schemas shipped in this build.
    pub fn embedded() -> SchemaCatalogue {
        // The embedded files are checked by this crate's tests and by
        // `icsflow schemas check`; failing here means a broken build.
        SchemaCatalogue::from_files(EMBEDDED_SCHEMAS).expect("the embedded schemas parse")
    }

    /// A catalogue over the given files; the highest version of each feed
    /// is its current schema. Every feed must have at least one file.
    pub fn from_files(files: &[SchemaFile]) -> Result<SchemaCatalogue, Error> {
        let mut current = Vec::new();
        for feed in Feed::ALL {
            let latest = latest_schema_file(files, feed).ok_or(Error::MissingFeedSchema(feed))?;
            let schema = parse_schema(latest.text)?;
            let fingerprint = fingerprint_of(latest.text)?;
            current.push(CurrentSchema {
                feed,
                version: latest.version,
                text: latest.text,
                fingerprint,
                schema,
            });
        }
        let mut catalogue = SchemaCatalogue {
            current,
            writers: Vec::new(),
        };
        for file in files {
            catalogue.add_writer_schema(file.text)?;
        }
        Ok(catalogue)
    }

    /// Accepts records written with one more schema (for example a version
    /// a partner still produces that is not in `schemas/`).
    pub fn add_writer_schema(&mut self, text: &str) -> Result<Arc<WriterSchema>, Error> {
        let writer = Arc::new(self.classify(text)?);
        self.writers
            .retain(|known| known.fingerprint != writer.fingerprint);
        self.writers.push(Arc::clone(&writer));
        Ok(writer)
    }

    /// Relates a schema (JSON text) to the current version of its feed,
    /// found by the top-level record's full name.
    ///
    /// A schema may come from a registry any partner can write to, so its
    /// shape is checked before anything walks it: no named type may refer
    /// to itself, and types may nest at most [`MAXIMUM_SCHEMA_DEPTH`] deep
    /// (well beyond any icsflow event schema). Records written with such a
    /// schema are never decoded, so decoding depth is bounded whatever the
    /// schema.
    pub fn classify(&self, text: &str) -> Result<WriterSchema, Error> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|error| Error::InvalidSchema(error.to_string()))?;
        check_schema_shape(&json).map_err(Error::InvalidSchema)?;
        // apache-avro 0.21 unwraps on some malformed schemas (invalid names
        // and aliases, a non-numeric size, found by fuzzing) instead of
        // returning an error: whatever it panics on is a refusal, never a
        // crash of the role reading a registry's answer.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.classify_parsed(text)))
            .unwrap_or_else(|_| {
                Err(Error::InvalidSchema(
                    "the schema could not be read (its parser failed)".to_owned(),
                ))
            })
    }

    fn classify_parsed(&self, text: &str) -> Result<WriterSchema, Error> {
        let schema = parse_schema(text)?;
        let name = record_full_name(&schema).ok_or(Error::NotAnEventSchema)?;
        let current = self
            .current
            .iter()
            .find(|current| record_full_name(&current.schema).as_deref() == Some(name.as_str()))
            .ok_or(Error::NotAnEventSchema)?;
        let fingerprint = fingerprint_of(text)?;
        let resolution = if fingerprint == current.fingerprint {
            Resolution::Current
        } else if readable_as(text, current) {
            Resolution::Resolve
        } else {
            Resolution::Incompatible
        };
        Ok(WriterSchema {
            feed: current.feed,
            schema,
            fingerprint,
            resolution,
        })
    }

    pub fn writer_by_fingerprint(&self, fingerprint: u64) -> Option<&Arc<WriterSchema>> {
        self.writers
            .iter()
            .find(|writer| writer.fingerprint == fingerprint)
    }

    pub fn current(&self, feed: Feed) -> &CurrentSchema {
        // `from_files` puts one entry per feed, in `Feed::ALL` order.
        &self.current[Feed::ALL
            .iter()
            .position(|known| *known == feed)
            .unwrap_or_default()]
    }
}

/// Whether records written with `text` read as `current`, record by record
/// (a symbol the current enum lacks refuses only the records that use it).
fn readable_as(text: &str, current: &CurrentSchema) -> bool {
    let (Ok(writer), Ok(reader)) = (
        serde_json::from_str::<serde_json::Value>(text),
        serde_json::from_str::<serde_json::Value>(current.text),
    ) else {
        return false;
    };
    can_read(&writer, &reader, &current.schema).is_ok()
}

/// The deepest a writer schema's types may nest (records, unions, arrays,
/// maps), counting a named type where it is used as deep as its
/// definition.
pub(crate) const MAXIMUM_SCHEMA_DEPTH: usize = 16;

/// Refuses a schema whose named types refer to themselves (directly or
/// through others) or that nests deeper than [`MAXIMUM_SCHEMA_DEPTH`].
pub(crate) fn check_schema_shape(schema: &serde_json::Value) -> Result<(), String> {
    let mut defined = std::collections::HashMap::new();
    let depth = schema_depth(schema, &mut Vec::new(), &mut defined)?;
    if depth > MAXIMUM_SCHEMA_DEPTH {
        return Err(format!(
            "the schema nests {depth} deep; icsflow reads at most {MAXIMUM_SCHEMA_DEPTH}"
        ));
    }
    Ok(())
}

/// Whether `name` is an Avro full name: dot-separated parts, each a letter
/// or `_` then letters, digits or `_`.
fn is_avro_full_name(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut characters = part.chars();
        characters
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
    })
}

/// The short name of a named type or reference (`a.b.Node` is `Node`):
/// comparing short names can only find more recursion, never less.
fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// How deep `schema` nests. `open` holds the named types being defined
/// around it (a reference to one is recursion); `defined` the depth of
/// each named type defined so far (a reference is as deep as it).
fn schema_depth(
    schema: &serde_json::Value,
    open: &mut Vec<String>,
    defined: &mut std::collections::HashMap<String, usize>,
) -> Result<usize, String> {
    use serde_json::Value;
    if open.len() > MAXIMUM_SCHEMA_DEPTH {
        return Err(format!(
            "the schema nests deeper than {MAXIMUM_SCHEMA_DEPTH}"
        ));
    }
    match schema {
        Value::String(name) => {
            let name = short_name(name);
            if open.iter().any(|open| open == name) {
                return Err(format!("the named type {name} refers to itself"));
            }
            Ok(defined.get(name).copied().unwrap_or(0))
        }
        Value::Array(branches) => {
            let mut deepest = 0;
            for branch in branches {
                deepest = deepest.max(schema_depth(branch, open, defined)?);
            }
            Ok(deepest + 1)
        }
        Value::Object(object) => {
            let kind = object.get("type");
            let name = object
                .get("name")
                .and_then(Value::as_str)
                .map(|name| short_name(name).to_owned());
            let named = matches!(
                kind.and_then(Value::as_str),
                Some("record" | "error" | "enum" | "fixed")
            );
            if named {
                // apache-avro panics on a named type whose name breaks
                // Avro's rules (found by fuzzing registry schemas): such a
                // schema is refused here, before it is parsed.
                let full_name = object.get("name").and_then(Value::as_str);
                if !full_name.is_some_and(is_avro_full_name) {
                    return Err(
                        "a named type has no name, or one that is not an Avro name".to_owned()
                    );
                }
                open.push(name.clone().unwrap_or_default());
            }
            let inner = match kind.and_then(Value::as_str) {
                Some("record" | "error") => {
                    let mut deepest = 0;
                    for field in object
                        .get("fields")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let field_type = field.get("type").unwrap_or(&Value::Null);
                        deepest = deepest.max(schema_depth(field_type, open, defined)?);
                    }
                    Ok(deepest + 1)
                }
                Some("array") => {
                    schema_depth(object.get("items").unwrap_or(&Value::Null), open, defined)
                        .map(|depth| depth + 1)
                }
                Some("map") => {
                    schema_depth(object.get("values").unwrap_or(&Value::Null), open, defined)
                        .map(|depth| depth + 1)
                }
                Some("enum" | "fixed") => Ok(0),
                // `{"type": "string", "logicalType": …}` or a nested type.
                _ => match kind {
                    Some(inner @ (Value::Object(_) | Value::Array(_))) => {
                        schema_depth(inner, open, defined)
                    }
                    Some(Value::String(reference)) => {
                        schema_depth(&Value::String(reference.clone()), open, defined)
                    }
                    _ => Ok(0),
                },
            };
            if named {
                open.pop();
            }
            let depth = inner?;
            if let (true, Some(name)) = (named, name) {
                defined.insert(name, depth);
            }
            Ok(depth)
        }
        _ => Ok(0),
    }
}

pub(crate) fn parse_schema(text: &str) -> Result<Schema, Error> {
    Schema::parse_str(text).map_err(|error| Error::InvalidSchema(error.to_string()))
}

fn record_full_name(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Record(record) => Some(record.name.fullname(None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EMBEDDED_SCHEMAS` is every file under `schemas/<feed>/`, each with
    /// its feed, version and text: a new version cannot be left out of the
    /// build.
    #[test]
    fn the_embedded_schemas_are_exactly_the_files_in_schemas() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"));
        let mut on_disk = Vec::new();
        for feed in Feed::ALL {
            for entry in std::fs::read_dir(root.join(feed.as_str())).expect("a feed folder") {
                let path = entry.expect("an entry").path();
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or_default();
                let version = name
                    .strip_prefix('v')
                    .and_then(|rest| rest.strip_suffix(".avsc"))
                    .and_then(|number| number.parse::<u32>().ok())
                    .unwrap_or_else(|| panic!("{} is not v<N>.avsc", path.display()));
                let text = std::fs::read_to_string(&path).expect("a schema");
                on_disk.push((feed, version, text));
            }
        }
        on_disk.sort_by_key(|(feed, version, _)| (*feed as usize, *version));
        let mut embedded: Vec<(Feed, u32, String)> = EMBEDDED_SCHEMAS
            .iter()
            .map(|file| (file.feed, file.version, file.text.to_owned()))
            .collect();
        embedded.sort_by_key(|(feed, version, _)| (*feed as usize, *version));
        assert_eq!(
            embedded
                .iter()
                .map(|(feed, version, _)| (*feed, *version))
                .collect::<Vec<_>>(),
            on_disk
                .iter()
                .map(|(feed, version, _)| (*feed, *version))
                .collect::<Vec<_>>(),
            "EMBEDDED_SCHEMAS and schemas/ list different files"
        );
        assert!(
            embedded == on_disk,
            "an embedded schema's text differs from its file"
        );
    }

    #[test]
    fn embedded_schemas_are_current_and_distinct() {
        let catalogue = SchemaCatalogue::embedded();
        let mut fingerprints = Vec::new();
        for feed in Feed::ALL {
            let current = catalogue.current(feed);
            assert_eq!(current.feed, feed);
            let writer = catalogue
                .writer_by_fingerprint(current.fingerprint)
                .expect("current is a writer");
            assert_eq!(
                (writer.feed, writer.resolution),
                (feed, Resolution::Current)
            );
            fingerprints.push(current.fingerprint);
        }
        fingerprints.dedup();
        assert_eq!(fingerprints.len(), 3);
    }

    #[test]
    fn a_schema_of_no_feed_is_refused() {
        let mut catalogue = SchemaCatalogue::embedded();
        let other = r#"{"type":"record","name":"Other","fields":[{"name":"a","type":"int"}]}"#;
        assert!(matches!(
            catalogue.add_writer_schema(other),
            Err(Error::NotAnEventSchema)
        ));
        assert!(matches!(
            catalogue.add_writer_schema("\"string\""),
            Err(Error::NotAnEventSchema)
        ));
        assert!(matches!(
            catalogue.add_writer_schema("{"),
            Err(Error::InvalidSchema(_))
        ));
    }
}
