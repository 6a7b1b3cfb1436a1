//! Puts the git revision the binary is built from into `ICSFLOW_REVISION`
//! for `icsflow_build_info` ("unknown" outside a git checkout, as in an
//! image built from a source archive).

fn main() {
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ICSFLOW_REVISION={revision}");
    // A new commit changes the revision; HEAD's file says when.
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
