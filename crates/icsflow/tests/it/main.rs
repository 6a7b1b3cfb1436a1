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
        &["quality", "--organisation", "R X"],
        // The engine totals over 1, 7 or 28 complete days, nothing else.
        &["quality", "--organisation", "RVW", "--since", "3d"],
    ] {
        let output = icsflow(arguments);
        assert_eq!(output.status.code(), Some(64), "{arguments:?}: {output:?}");
    }
    // An admin endpoint nobody serves: 69, and what to check.
    let output = icsflow(&[
        "quality",
        "--organisation",
        "RVW",
        "--metrics-url",
        "http://127.0.0.1:1/metrics",
    ]);
    assert_eq!(output.status.code(), Some(69), "{output:?}");
    assert!(text(&output.stderr).contains("--metrics-url"), "{output:?}");
    let output = icsflow(&[
        "quality",
        "--organisation",
        "RVW",
        "--prometheus-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(output.status.code(), Some(69), "{output:?}");
    assert!(
        text(&output.stderr).contains("--prometheus-url"),
        "{output:?}"
    );
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

/// ARCHITECTURE.md's code map agrees with the code, so that a file or an
/// item added, moved, renamed or removed without the map fails here. For
/// each crate's section (from its heading, `` ### `crates/<name>` ``, to
/// the next heading):
///
/// - Files: every `.rs` file under the crate's `src/`, subfolders included,
///   is named in backticks by its path from `src/` (`ingest/routing.rs`),
///   and every `.rs` path the section names exists (from the crate's
///   `src/`, its folder or the repository's root).
/// - Items: a span in backticks names an item when it is a path of Rust
///   identifiers that holds `::` (`Events::emit`,
///   `engine::JOURNEY_EVENT_LIMIT`), that ends in an argument list
///   (`run_ingest()`) or `!` (`kinds!`), or that is one CamelCase word
///   (`PartitionEngines`). Anything else is prose, not checked: setting
///   keys (`engine.as_of`), metric names, commands, file names, a lone
///   snake_case or SCREAMING_CASE word.
/// - An item's first name must be defined in the crate's sources: after
///   `struct`, `enum`, `trait`, `type`, `fn`, `const`, `static`, `mod`,
///   `union` or `macro_rules!`, or as a line `Name {` or `Name => ...` of a
///   table macro such as `metrics!`. Each later name must be a member:
///   defined so, or beginning a line (after any `pub`) as a variant or a
///   field does: `Name,` `Name(` `Name {` `Name:` `Name =` or alone.
/// - A path that begins with a crate's name (`icsflow_core::Reference`) is
///   checked in that crate, wherever in the document it is; other items
///   are checked only in their crate's section.
///
/// Comment lines never count as definitions. Every problem is listed in
/// the one failure.
#[test]
fn the_architecture_map_names_every_source_file_and_item_of_each_crate() {
    let root = repository_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let crates_folder = root.join("crates");
    let mut crate_names: Vec<String> = std::fs::read_dir(&crates_folder)
        .expect("crates")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .map(|path| {
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    crate_names.sort();
    let code: std::collections::BTreeMap<String, Vec<String>> = crate_names
        .iter()
        .map(|name| {
            (
                name.clone(),
                code_lines(&crates_folder.join(name).join("src")),
            )
        })
        .collect();

    // The crates' sections, and the rest of the map.
    let mut sections = std::collections::BTreeMap::new();
    let mut elsewhere = Vec::new();
    let mut parts = map.split("\n### ");
    elsewhere.extend(parts.next());
    for part in parts {
        let mut pieces = part.split("\n## ");
        let section = pieces.next().unwrap_or_default();
        elsewhere.extend(pieces);
        let heading = section.lines().next().unwrap_or_default();
        match crate_names
            .iter()
            .find(|name| heading.starts_with(&format!("`crates/{name}`")))
        {
            Some(name) => {
                sections.insert(name.as_str(), section);
            }
            None => elsewhere.push(section),
        }
    }

    let mut problems = Vec::new();
    for name in &crate_names {
        let Some(section) = sections.get(name.as_str()) else {
            problems.push(format!("crates/{name} has no section"));
            continue;
        };
        let crate_folder = crates_folder.join(name);
        let spans = backticked(section);
        for file in rust_files(&crate_folder.join("src")) {
            if !spans.contains(&file) {
                problems.push(format!(
                    "crates/{name}/src/{file} is not named in its section"
                ));
            }
        }
        for named in spans
            .iter()
            .filter(|span| span.ends_with(".rs") && !span.contains(char::is_whitespace))
        {
            let exists = [crate_folder.join("src"), crate_folder.clone(), root.clone()]
                .iter()
                .any(|folder| folder.join(named).is_file());
            if !exists {
                problems.push(format!(
                    "the crates/{name} section names {named}, which is not there"
                ));
            }
        }
        check_items(
            &spans,
            Some(name.as_str()),
            &crate_names,
            &code,
            &mut problems,
        );
    }
    for text in elsewhere {
        check_items(&backticked(text), None, &crate_names, &code, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's code map disagrees with the code ({} problem(s)):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Checks the items the spans name (see the test above): in the crate whose
/// section they are in, or, for a path beginning with a crate's name, in
/// that crate.
fn check_items(
    spans: &[String],
    section_crate: Option<&str>,
    crate_names: &[String],
    code: &std::collections::BTreeMap<String, Vec<String>>,
    problems: &mut Vec<String>,
) {
    let place = match section_crate {
        Some(name) => format!("the crates/{name} section"),
        None => "ARCHITECTURE.md".to_owned(),
    };
    for span in spans {
        let Some(mut names) = item_names(span) else {
            continue;
        };
        let mut crate_name = section_crate;
        if names.len() > 1 {
            let folder = names[0].replace('_', "-");
            if let Some(named) = crate_names.iter().find(|name| **name == folder) {
                crate_name = Some(named.as_str());
                names.remove(0);
            }
        }
        let Some(crate_name) = crate_name else {
            continue;
        };
        let lines = &code[crate_name];
        if !is_defined(names[0], lines) {
            problems.push(format!(
                "{place} names `{span}`: {} is not defined in crates/{crate_name}",
                names[0]
            ));
        }
        for member in &names[1..] {
            if !is_member(member, lines) {
                problems.push(format!(
                    "{place} names `{span}`: {member} is not a member in crates/{crate_name}"
                ));
            }
        }
    }
}

/// The names of the item a span in backticks refers to (`Events::emit`:
/// `Events`, `emit`), or `None` when the span is prose.
fn item_names(span: &str) -> Option<Vec<&str>> {
    let (path, explicit) = match span.find('(') {
        Some(open) if span.ends_with(')') => (&span[..open], true),
        Some(_) => return None,
        None => match span.strip_suffix('!') {
            Some(path) => (path, true),
            None => (span, false),
        },
    };
    let names: Vec<&str> = path.split("::").collect();
    if !names.iter().all(|name| is_identifier(name)) {
        return None;
    }
    let camel_case = path.starts_with(|c: char| c.is_ascii_uppercase())
        && path.contains(|c: char| c.is_ascii_lowercase())
        && !path.contains('_');
    (explicit || names.len() > 1 || camel_case).then_some(names)
}

/// The spans in backticks of a part of the map, fenced code left out.
fn backticked(text: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The `.rs` files under `folder`, by their path from it
/// (`ingest/routing.rs`).
fn rust_files(folder: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .expect("a source folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            files.extend(
                rust_files(&path)
                    .into_iter()
                    .map(|file| format!("{name}/{file}")),
            );
        } else if name.ends_with(".rs") {
            files.push(name);
        }
    }
    files
}

/// Every line of the `.rs` files under `source` but comment lines.
fn code_lines(source: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for file in rust_files(source) {
        let text = std::fs::read_to_string(source.join(&file)).expect("a source file");
        lines.extend(
            text.lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .map(str::to_owned),
        );
    }
    lines
}

/// Whether `name` is defined in these lines: after a keyword that defines
/// an item, or as a line `Name {` or `Name => ...` of a table macro.
fn is_defined(name: &str, lines: &[String]) -> bool {
    lines.iter().any(|line| {
        let text = line.trim();
        follows_definition_keyword(line, name)
            || text == format!("{name} {{")
            || text.starts_with(&format!("{name} =>"))
    })
}

/// Whether `name` is a member in these lines: defined after a keyword, or
/// beginning a line (after any `pub`) as a variant or a field does.
fn is_member(name: &str, lines: &[String]) -> bool {
    lines.iter().any(|line| {
        if follows_definition_keyword(line, name) {
            return true;
        }
        let mut text = line.trim();
        for visibility in ["pub(crate) ", "pub(super) ", "pub "] {
            if let Some(rest) = text.strip_prefix(visibility) {
                text = rest;
                break;
            }
        }
        let Some(rest) = text.strip_prefix(name) else {
            return false;
        };
        if rest.starts_with(is_identifier_char) {
            return false;
        }
        let rest = rest.trim_start();
        rest.is_empty()
            || rest.starts_with([',', '(', '{', '='])
            || (rest.starts_with(':') && !rest.starts_with("::"))
    })
}

/// Whether `name` appears in `line` as a whole word right after (across
/// spaces) a keyword that defines an item: `fn name`, `struct name`,
/// `macro_rules! name`.
fn follows_definition_keyword(line: &str, name: &str) -> bool {
    const KEYWORDS: [&str; 9] = [
        "struct", "enum", "trait", "type", "fn", "const", "static", "mod", "union",
    ];
    line.match_indices(name).any(|(start, _)| {
        let before = &line[..start];
        let after = &line[start + name.len()..];
        if before.ends_with(is_identifier_char) || after.starts_with(is_identifier_char) {
            return false;
        }
        let keyword_end = before.trim_end_matches([' ', '\t']);
        if keyword_end.len() == before.len() {
            return false;
        }
        let keyword = &keyword_end[keyword_end.trim_end_matches(is_identifier_char).len()..];
        KEYWORDS.contains(&keyword) || keyword_end.ends_with("macro_rules!")
    })
}

fn is_identifier(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(is_identifier_char)
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
