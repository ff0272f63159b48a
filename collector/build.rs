//! Embeds what `/api/v1/status/buildinfo` reports: the git revision and branch of the
//! checkout being built and the rustc version. Outside a git checkout (a source tarball)
//! the revision and branch are empty; `DIDBAN_REVISION` and `DIDBAN_BRANCH` in the build
//! environment override both (for packagers building from an export).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DIDBAN_REVISION");
    println!("cargo:rerun-if-env-changed=DIDBAN_BRANCH");
    let revision = env_or("DIDBAN_REVISION", || git(&["rev-parse", "HEAD"]));
    let branch = env_or("DIDBAN_BRANCH", || git(&["rev-parse", "--abbrev-ref", "HEAD"]));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = run(&rustc, &["--version"]).unwrap_or_default();
    println!("cargo:rustc-env=DIDBAN_GIT_REVISION={revision}");
    println!("cargo:rustc-env=DIDBAN_GIT_BRANCH={branch}");
    println!("cargo:rustc-env=DIDBAN_RUSTC_VERSION={rustc_version}");
    watch_git_head();
}

fn env_or(key: &str, fallback: impl FnOnce() -> Option<String>) -> String {
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => v,
        _ => fallback().unwrap_or_default(),
    }
}

fn git(args: &[&str]) -> Option<String> {
    run("git", args)
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string())
}

/// Re-runs this script when HEAD moves: HEAD itself (a checkout) and the ref it points to
/// (a commit), which lives in the common directory when the checkout is a worktree.
fn watch_git_head() {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    watch(&format!("{git_dir}/HEAD"));
    let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| git_dir.clone());
    let common = if std::path::Path::new(&common).is_absolute() {
        common
    } else {
        // Relative to the crate directory, where cargo runs build scripts.
        let here = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        format!("{here}/{common}")
    };
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&format!("{common}/{reference}"));
    }
    watch(&format!("{common}/packed-refs"));
}

/// Watches `path` if it exists (cargo re-runs a script on every build when a watched path
/// is missing).
fn watch(path: &str) {
    if std::path::Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}
