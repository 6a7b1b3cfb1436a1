//! `icsflow schemas check`: the rules a change to `schemas/` must keep.
//!
//! Each feed's versions are `schemas/<feed>/v1.avsc`, `v2.avsc`, ... with no
//! gaps. Every version must be readable by its successor (backward) and
//! able to read its successor's data (forward), so partners and icsflow can
//! upgrade in either order; every field and named type must carry a `doc`.

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
        match parse_schema(&text) {
            Ok(schema) => parsed.push((*version, path.clone(), schema)),
            Err(error) => report.problems.push(SchemaProblem {
                path: path.clone(),
                message: error.to_string(),
            }),
        }
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            for missing in undocumented(&json) {
                report.problems.push(SchemaProblem {
                    path: path.clone(),
                    message: format!("{missing} has no doc"),
                });
            }
        }
    }
    for pair in parsed.windows(2) {
        let ((old_version, _, old), (new_version, new_path, new)) = (&pair[0], &pair[1]);
        report.checked.push(format!("{}: v{new_version} reads v{old_version} data and v{old_version} reads v{new_version} data", folder.display()));
        if let Err(error) = SchemaCompatibility::can_read(old, new) {
            report.problems.push(SchemaProblem {
                path: new_path.clone(),
                message: format!("not backward compatible: v{new_version} cannot read data written with v{old_version}: {error}"),
            });
        }
        if let Err(error) = SchemaCompatibility::can_read(new, old) {
            report.problems.push(SchemaProblem {
                path: new_path.clone(),
                message: format!("not forward compatible: v{old_version} cannot read data written with v{new_version}: {error}"),
            });
        }
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
