//! The `icsflow` command as a user runs it: the built binary, its exit
//! status and what it prints; the consumer roles against a real broker.

mod cross_language;
mod demo;
mod faults;
mod partner_tools;
mod partners;
mod registry;
mod roles;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn icsflow(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .args(arguments)
        .current_dir(repository_root())
        .output()
        .expect("icsflow runs")
}

/// Runs icsflow with these environment variables and `input` on standard
/// input.
fn icsflow_with_input(environment: &[(String, String)], arguments: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .args(arguments)
        .current_dir(repository_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("icsflow runs");
    // A command may stop reading before the end (pseudonymise stops at a
    // kept column showing a number): a closed pipe is its answer, not a
    // failure of the test.
    match child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
    {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => panic!("input not written: {error}"),
    }
    child.wait_with_output().expect("icsflow finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn schemas_check_passes_on_the_shipped_schemas() {
    let output = icsflow(&["schemas", "check"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("no problems"));
}

#[test]
fn schemas_check_rejects_the_incompatible_fixture() {
    let output = icsflow(&[
        "schemas",
        "check",
        "--dir",
        "tests/fixtures/schemas-incompatible",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("discharge/v2.avsc") && stderr.contains("not backward compatible"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s)"), "{stderr}");
}

#[test]
fn schemas_docs_check_agrees_with_the_committed_dictionary() {
    let output = icsflow(&["schemas", "docs", "--check"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn schemas_docs_writes_the_dictionary() {
    let target = std::env::temp_dir().join(format!("icsflow-dictionary-{}.md", std::process::id()));
    let output = icsflow(&[
        "schemas",
        "docs",
        "--output",
        target.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let written = std::fs::read_to_string(&target).expect("written");
    std::fs::remove_file(&target).expect("clean up");
    for expected in [
        "## discharge feed",
        "#### `DISCHARGED`: payload `Discharged`",
        "#### `CriteriaToResideCode`",
        "`patient_pseudonym`",
    ] {
        assert!(written.contains(expected), "missing {expected}");
    }
}

#[test]
fn unknown_flags_fail_with_usage() {
    let output = icsflow(&["schemas", "check", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(text(&output.stderr).contains("--no-such-flag"));
}

/// Regressions: `rejections --since 200000000000d` and `--since 1é`
/// panicked (exit 101); bad flags exited 2 where README says 64; a missing
/// input file exited 1, which README keeps for refused lines.
#[test]
fn exit_statuses_are_readmes() {
    for arguments in [
        &["publish", "--no-such-flag"][..],
        &["rejections", "--organisation", "RVW", "--since", "1é"],
        &[
            "rejections",
            "--organisation",
            "RVW",
            "--since",
            "200000000000d",
        ],
        &[
            "rejections",
            "--organisation",
            "RVW",
            "--since",
            "106751991167d",
        ],
        &["pseudonymise"],
    ] {
        let output = icsflow(arguments);
        assert_eq!(output.status.code(), Some(64), "{arguments:?}: {output:?}");
    }
    let folder = std::env::temp_dir().join(format!("icsflow-exits-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let key = folder.join("ics.key");
    std::fs::write(&key, "k".repeat(40)).expect("key");
    let missing = folder.join("no-such-file.txt");
    let output = icsflow(&[
        "pseudonymise",
        "--key-file",
        key.to_str().expect("path"),
        missing.to_str().expect("path"),
    ]);
    assert_eq!(output.status.code(), Some(66), "{output:?}");
    assert!(text(&output.stderr).contains("cannot open"), "{output:?}");
    assert_eq!(icsflow(&["--help"]).status.code(), Some(0));
    // Regression: a malformed RUST_LOG fell back to info without a word.
    let output = Command::new(env!("CARGO_BIN_EXE_icsflow"))
        .args(["join", "--check"])
        .env("RUST_LOG", "info,[[=")
        .env(
            "ICSFLOW__REFERENCE__FILE",
            repository_root().join("deploy/config/reference.toml"),
        )
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(text(&output.stderr).contains("`RUST_LOG` is not a log filter"));
    let _ = std::fs::remove_dir_all(&folder);
}

/// ARCHITECTURE.md's code map names every source file of every crate, and
/// every file it names exists in that crate: a file added, moved or
/// removed without the map fails here.
#[test]
fn the_architecture_map_names_every_source_file_and_only_real_ones() {
    let root = repository_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut problems = Vec::new();
    let sections: Vec<&str> = map.split("\n### ").skip(1).collect();
    for crate_dir in std::fs::read_dir(root.join("crates")).expect("crates") {
        let crate_dir = crate_dir.expect("entry").path();
        let name = crate_dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let Some(section) = sections
            .iter()
            .find(|section| section.starts_with(&format!("`crates/{name}`")))
            .map(|section| section.split("\n## ").next().unwrap_or(section))
        else {
            problems.push(format!("crates/{name} has no section"));
            continue;
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(crate_dir.join("src")).expect("src") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(
                    path.file_name()
                        .expect("file")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        for file in &files {
            if !section.contains(&format!("`{file}`")) {
                problems.push(format!("crates/{name}/src/{file} is not in its section"));
            }
        }
        for named in section
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|text| text.ends_with(".rs") && !text.contains(' '))
        {
            let file = named.rsplit('/').next().unwrap_or(named);
            let exists = files.iter().any(|known| known == file)
                || crate_dir.join(named).exists()
                || crate_dir.join("src").join(named).exists();
            if !exists {
                problems.push(format!(
                    "the crates/{name} section names {named}, which is not there"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's code map:\n{}",
        problems.join("\n")
    );
}
