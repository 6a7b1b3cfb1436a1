//! `icsflow schemas check` rules, on the shipped schemas and on fixtures.

use icsflow_avro::check_schema_directory;

use crate::repository_path;

#[test]
fn shipped_schemas_pass() {
    let report = check_schema_directory(&repository_path("schemas"));
    assert_eq!(report.problems, []);
    // Four files, one pair of discharge versions, and the one enum that
    // gained symbols with its default in v2.
    assert_eq!(report.checked.len(), 6, "{:?}", report.checked);
    assert!(
        report
            .checked
            .iter()
            .any(|line| line.contains("enum DischargeDestination gains")
                && line.contains("partners send them only once icsflow reads v2")),
        "{:?}",
        report.checked
    );
}

/// Writes `discharge/v1.avsc` and `v2.avsc` with one enum field, checks
/// the folder and returns the problems' messages.
fn check_enum_change(v1_enum: &str, v2_enum: &str) -> Vec<String> {
    let directory = std::env::temp_dir().join(format!(
        "icsflow-enum-policy-{}-{}",
        std::process::id(),
        v1_enum.len() * 1000 + v2_enum.len()
    ));
    let feed = directory.join("discharge");
    std::fs::create_dir_all(&feed).expect("temp dir");
    let schema = |enumeration: &str| {
        format!(
            r#"{{"type":"record","name":"R","doc":"r","fields":[{{"name":"e","doc":"e","type":{enumeration}}}]}}"#
        )
    };
    std::fs::write(feed.join("v1.avsc"), schema(v1_enum)).expect("write");
    std::fs::write(feed.join("v2.avsc"), schema(v2_enum)).expect("write");
    let report = check_schema_directory(&directory);
    std::fs::remove_dir_all(&directory).expect("clean up");
    report
        .problems
        .into_iter()
        .map(|problem| problem.message)
        .collect()
}

#[test]
fn enums_follow_the_evolution_policy() {
    let without_default = r#"{"type":"enum","name":"E","doc":"e","symbols":["A","B"]}"#;
    let with_default = r#"{"type":"enum","name":"E","doc":"e","symbols":["A","B"],"default":"B"}"#;
    let appended_with_default =
        r#"{"type":"enum","name":"E","doc":"e","symbols":["A","B","C"],"default":"B"}"#;
    let appended_without_default =
        r#"{"type":"enum","name":"E","doc":"e","symbols":["A","B","C"]}"#;
    let reordered = r#"{"type":"enum","name":"E","doc":"e","symbols":["B","A"],"default":"B"}"#;
    let other_default =
        r#"{"type":"enum","name":"E","doc":"e","symbols":["A","B","C"],"default":"A"}"#;

    // The opening: a default given with the new symbols.
    assert_eq!(
        check_enum_change(without_default, appended_with_default),
        Vec::<String>::new()
    );
    // An enum that has a default grows freely.
    assert_eq!(
        check_enum_change(with_default, appended_with_default),
        Vec::<String>::new()
    );
    // New symbols without a default: older readers fail on them.
    let problems = check_enum_change(without_default, appended_without_default);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("has no default")),
        "{problems:?}"
    );
    // Reordered (or removed) symbols change what a position means.
    let problems = check_enum_change(with_default, reordered);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("only be appended")),
        "{problems:?}"
    );
    // A default, once given, stays.
    let problems = check_enum_change(with_default, other_default);
    assert!(
        problems.iter().any(|problem| problem.contains("must stay")),
        "{problems:?}"
    );
    // Removing a symbol is also not backward compatible.
    let problems = check_enum_change(appended_with_default, with_default);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("not backward compatible")),
        "{problems:?}"
    );
}

#[test]
fn a_compatible_second_version_passes() {
    let report = check_schema_directory(&repository_path("tests/fixtures/schemas-compatible"));
    assert_eq!(report.problems, []);
    assert!(
        report
            .checked
            .iter()
            .any(|line| line.contains("v2 reads v1 data")),
        "{:?}",
        report.checked
    );
}

#[test]
fn a_deliberately_incompatible_version_is_rejected() {
    let report = check_schema_directory(&repository_path("tests/fixtures/schemas-incompatible"));
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = report.problems[0].to_string();
    assert!(
        problem.contains("v2.avsc") && problem.contains("not backward compatible"),
        "{problem}"
    );
}

#[test]
fn gaps_and_missing_docs_are_problems() {
    let directory =
        std::env::temp_dir().join(format!("icsflow-schema-check-{}", std::process::id()));
    let feed = directory.join("discharge");
    std::fs::create_dir_all(&feed).expect("temp dir");
    let undocumented =
        r#"{"type":"record","name":"R","doc":"r","fields":[{"name":"a","type":"int"}]}"#;
    std::fs::write(feed.join("v1.avsc"), undocumented).expect("write");
    std::fs::write(feed.join("v3.avsc"), undocumented).expect("write");
    let report = check_schema_directory(&directory);
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.message.contains("without gaps")),
        "{:?}",
        report.problems
    );
    std::fs::remove_file(feed.join("v3.avsc")).expect("remove");
    let report = check_schema_directory(&directory);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].message.contains("field R.a has no doc"));
    std::fs::remove_dir_all(&directory).expect("clean up");
}
