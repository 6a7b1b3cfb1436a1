//! `icsflow schemas check`: the rules a change to `schemas/` must keep.
//!
//! Each feed's versions are `schemas/<feed>/v1.avsc`, `v2.avsc`, ... with no
//! gaps. Every version must be readable by its successor (backward) and
//! able to read its successor's data (forward), so partners and icsflow can
//! upgrade in either order; every field and named type must carry a `doc`.
//!
//! Enums follow a stated policy (README, "Changing a schema"):
//! - symbols are only appended, never removed, renamed or reordered (a
//!   code travels as its position: in Avro, in journey records, in the
//!   code lists);
//! - an enum with a `default` may gain symbols: an older reader reads a
//!   symbol it does not know as that default, as the Avro specification
//!   says (apache-avro's own check ignores the default, so the forward
//!   check here reads the new version as the older reader sees it);
//! - a default, once given, stays the same;
//! - an enum without a default can gain symbols only in the version that
//!   gives it its default. That version alone is not forward compatible for
//!   that enum's new symbols: the check says so, and partners send the new
//!   symbols only once icsflow reads that version.

use std::fmt;
use std::path::{Path, PathBuf};

use apache_avro::schema_compatibility::SchemaCompatibility;

use crate::catalogue::parse_schema;

/// One rule broken by one file (or pair of files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaProblem {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.path.display(), self.message)
    }
}

/// What a check looked at and what it found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompatibilityReport {
    /// Each file checked, and each pair of versions compared, in words.
    pub checked: Vec<String>,
    pub problems: Vec<SchemaProblem>,
}

/// Checks every feed folder under `directory` (any folder holding
/// `v<N>.avsc` files).
pub fn check_schema_directory(directory: &Path) -> CompatibilityReport {
    let mut report = CompatibilityReport::default();
    let mut folders: Vec<PathBuf> = match std::fs::read_dir(directory) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect(),
        Err(error) => {
            report.problems.push(SchemaProblem {
                path: directory.to_owned(),
                message: format!("cannot read: {error}"),
            });
            return report;
        }
    };
    folders.sort();
    for folder in folders {
        check_feed_folder(&folder, &mut report);
    }
    if report.checked.is_empty() && report.problems.is_empty() {
        report.problems.push(SchemaProblem {
            path: directory.to_owned(),
            message: "no schema folders with v<N>.avsc files".to_owned(),
        });
    }
    report
}

fn check_feed_folder(folder: &Path, report: &mut CompatibilityReport) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        report.problems.push(SchemaProblem {
            path: folder.to_owned(),
            message: "cannot read the folder".to_owned(),
        });
        return;
    };
    let mut versions: Vec<(u32, PathBuf)> = Vec::new();
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        if path.extension().and_then(|extension| extension.to_str()) != Some("avsc") {
            continue;
        }
        let version = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| stem.strip_prefix('v'))
            .and_then(|number| number.parse::<u32>().ok());
        match version {
            Some(version) => versions.push((version, path)),
            None => report.problems.push(SchemaProblem {
                path,
                message: "schema files are named v<N>.avsc, for example v2.avsc".to_owned(),
            }),
        }
    }
    if versions.is_empty() {
        return;
    }
    versions.sort();
    for (expected, (version, path)) in (1..).zip(&versions) {
        if *version != expected {
            report.problems.push(SchemaProblem {
                path: path.clone(),
                message: format!("version {version} follows version {}: versions must count up from 1 without gaps", expected - 1),
            });
            return;
        }
    }

    let mut parsed = Vec::new();
    for (version, path) in &versions {
        report.checked.push(format!(
            "{} parses and documents every field",
            path.display()
        ));
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                report.problems.push(SchemaProblem {
                    path: path.clone(),
                    message: format!("cannot read: {error}"),
                });
                continue;
            }
        };
        let json = serde_json::from_str::<serde_json::Value>(&text);
        if let Ok(json) = &json {
            for missing in undocumented(json) {
                report.problems.push(SchemaProblem {
                    path: path.clone(),
                    message: format!("{missing} has no doc"),
                });
            }
        }
        match (parse_schema(&text), json) {
            (Ok(schema), Ok(json)) => parsed.push((*version, path.clone(), schema, json)),
            (Err(error), _) => report.problems.push(SchemaProblem {
                path: path.clone(),
                message: error.to_string(),
            }),
            (_, Err(error)) => report.problems.push(SchemaProblem {
                path: path.clone(),
                message: error.to_string(),
            }),
        }
    }
    for pair in parsed.windows(2) {
        let ((old_version, _, old, old_json), (new_version, new_path, new, new_json)) =
            (&pair[0], &pair[1]);
        report.checked.push(format!("{}: v{new_version} reads v{old_version} data and v{old_version} reads v{new_version} data; enums only grow at the end", folder.display()));
        let problem = |message: String| SchemaProblem {
            path: new_path.clone(),
            message,
        };
        if let Err(error) = SchemaCompatibility::can_read(old, new) {
            report.problems.push(problem(format!("not backward compatible: v{new_version} cannot read data written with v{old_version}: {error}")));
        }
        let old_enums = enums_of(old_json);
        let new_enums = enums_of(new_json);
        for (name, old_enum) in &old_enums {
            let Some(new_enum) = new_enums.get(name) else {
                continue;
            };
            if !new_enum.symbols.starts_with(&old_enum.symbols) {
                report.problems.push(problem(format!("enum {name}: symbols may only be appended at the end, never removed, renamed or reordered (a code travels as its position); v{old_version} has {:?}", old_enum.symbols)));
                continue;
            }
            if old_enum.default.is_some() && new_enum.default != old_enum.default {
                report.problems.push(problem(format!("enum {name}: its default {:?} must stay as v{old_version} gave it, because older readers read unknown symbols as their own default", old_enum.default.as_deref().unwrap_or_default())));
            }
            let added = &new_enum.symbols[old_enum.symbols.len()..];
            if added.is_empty() || old_enum.default.is_some() {
                continue;
            }
            if new_enum.default.is_none() {
                report.problems.push(problem(format!("enum {name}: gains {added:?} but has no default, so v{old_version} readers cannot read them; give it a default (its \"not known\" symbol) in this version")));
            } else {
                report.checked.push(format!("{}: enum {name} gains {added:?} and its default in v{new_version}: v{old_version} readers cannot read the new symbols, so partners send them only once icsflow reads v{new_version}", folder.display()));
            }
        }
        // The forward check, with each enum of the new version as a reader
        // of the old one sees it: symbols it does not know are read as its
        // default, or belong to the one version that gave the enum its
        // default (both handled above).
        if let Err(error) = can_read(new_json, old_json, old) {
            report.problems.push(problem(format!("not forward compatible: v{old_version} cannot read data written with v{new_version}: {error}")));
        }
    }
}

/// Whether data written with `writer` can be read with `reader` (both the
/// schema JSON; `reader_schema` parsed), record by record: each enum the
/// reader defines is cut to the symbols the reader knows before the check,
/// so a writer enum with symbols the reader lacks still reads every record
/// that uses the others (a record with such a symbol is refused when it is
/// resolved, `resolve.rs`, unless the reader enum has a default).
/// apache-avro's own check would refuse the whole writer instead.
pub(crate) fn can_read(
    writer: &serde_json::Value,
    reader: &serde_json::Value,
    reader_schema: &apache_avro::Schema,
) -> Result<(), String> {
    let reader_enums = enums_of(reader);
    let seen = parse_schema(&restrict_enums(writer, &reader_enums).to_string())
        .map_err(|error| error.to_string())?;
    SchemaCompatibility::can_read(&seen, reader_schema).map_err(|error| error.to_string())
}

/// An enum's symbols and default, as written in a schema file.
#[derive(Debug)]
struct EnumDefinition {
    symbols: Vec<String>,
    default: Option<String>,
}

/// Every enum defined in a schema, by name (names are unique within a
/// feed's schema).
fn enums_of(schema: &serde_json::Value) -> std::collections::BTreeMap<String, EnumDefinition> {
    let mut enums = std::collections::BTreeMap::new();
    visit_objects(schema, &mut |object| {
        if object.get("type").and_then(|kind| kind.as_str()) != Some("enum") {
            return;
        }
        let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
        let name = object.get("name").and_then(text).unwrap_or_default();
        let symbols = object
            .get("symbols")
            .and_then(|symbols| symbols.as_array())
            .map(|symbols| symbols.iter().filter_map(text).collect())
            .unwrap_or_default();
        let default = object.get("default").and_then(text);
        enums.insert(name, EnumDefinition { symbols, default });
    });
    enums
}

/// `schema` with each enum that `old` also defines cut to the symbols
/// `old` knows.
fn restrict_enums(
    schema: &serde_json::Value,
    old: &std::collections::BTreeMap<String, EnumDefinition>,
) -> serde_json::Value {
    let mut schema = schema.clone();
    visit_objects_mut(&mut schema, &mut |object| {
        if object.get("type").and_then(|kind| kind.as_str()) != Some("enum") {
            return;
        }
        let name = object.get("name").and_then(|name| name.as_str());
        if let Some(old_enum) = name.and_then(|name| old.get(name)) {
            let known: Vec<serde_json::Value> = object
                .get("symbols")
                .and_then(|symbols| symbols.as_array())
                .into_iter()
                .flatten()
                .filter(|symbol| {
                    symbol
                        .as_str()
                        .is_some_and(|symbol| old_enum.symbols.iter().any(|old| old == symbol))
                })
                .cloned()
                .collect();
            object.insert("symbols".to_owned(), serde_json::Value::Array(known));
            object.remove("default");
        }
    });
    schema
}

fn visit_objects(
    value: &serde_json::Value,
    visit: &mut impl FnMut(&serde_json::Map<String, serde_json::Value>),
) {
    match value {
        serde_json::Value::Array(items) => items.iter().for_each(|item| visit_objects(item, visit)),
        serde_json::Value::Object(object) => {
            visit(object);
            object
                .values()
                .for_each(|inner| visit_objects(inner, visit));
        }
        _ => {}
    }
}

fn visit_objects_mut(
    value: &mut serde_json::Value,
    visit: &mut impl FnMut(&mut serde_json::Map<String, serde_json::Value>),
) {
    match value {
        serde_json::Value::Array(items) => items
            .iter_mut()
            .for_each(|item| visit_objects_mut(item, visit)),
        serde_json::Value::Object(object) => {
            visit(object);
            object
                .values_mut()
                .for_each(|inner| visit_objects_mut(inner, visit));
        }
        _ => {}
    }
}

/// Names of the fields and named types without a non-empty `doc`.
fn undocumented(schema: &serde_json::Value) -> Vec<String> {
    let mut missing = Vec::new();
    collect_undocumented(schema, &mut missing);
    missing
}

fn collect_undocumented(schema: &serde_json::Value, missing: &mut Vec<String>) {
    let has_doc = |value: &serde_json::Value| {
        value
            .get("doc")
            .and_then(|doc| doc.as_str())
            .is_some_and(|doc| !doc.trim().is_empty())
    };
    match schema {
        serde_json::Value::Array(branches) => {
            for branch in branches {
                collect_undocumented(branch, missing);
            }
        }
        serde_json::Value::Object(object) => {
            let kind = object
                .get("type")
                .and_then(|kind| kind.as_str())
                .unwrap_or_default();
            let name = object
                .get("name")
                .and_then(|name| name.as_str())
                .unwrap_or_default();
            if matches!(kind, "record" | "enum" | "fixed") && !has_doc(schema) {
                missing.push(format!("{kind} {name}"));
            }
            if let Some(fields) = object.get("fields").and_then(|fields| fields.as_array()) {
                for field in fields {
                    let field_name = field
                        .get("name")
                        .and_then(|name| name.as_str())
                        .unwrap_or_default();
                    let field_path = format!("{name}.{field_name}");
                    if !has_doc(field) {
                        missing.push(format!("field {field_path}"));
                    }
                    if let Some(field_type) = field.get("type") {
                        collect_undocumented(field_type, missing);
                    }
                }
            }
            for nested in ["items", "values"] {
                if let Some(inner) = object.get(nested) {
                    collect_undocumented(inner, missing);
                }
            }
            // A primitive wrapped in an object (for logical types) is
            // documented by its field.
            if let Some(inner @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
                object.get("type")
            {
                collect_undocumented(inner, missing);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_undocumented_fields_and_types() {
        let schema: serde_json::Value = serde_json::json!({
            "type": "record", "name": "R", "doc": "a record",
            "fields": [
                {"name": "a", "type": "int", "doc": "documented"},
                {"name": "b", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
                {"name": "c", "doc": " ", "type": ["null", {"type": "record", "name": "S", "doc": "inner", "fields": [{"name": "d", "type": "long"}]}]}
            ]
        });
        assert_eq!(
            undocumented(&schema),
            ["field R.b", "enum E", "field R.c", "field S.d"]
        );
    }
}
