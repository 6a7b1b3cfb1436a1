//! `icsflow schemas check` rules, on the shipped schemas and on fixtures.

use icsflow_avro::check_schema_directory;

use crate::repository_path;

#[test]
fn shipped_schemas_pass() {
    let report = check_schema_directory(&repository_path("schemas"));
    assert_eq!(report.problems, []);
    assert_eq!(report.checked.len(), 3, "{:?}", report.checked);
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
