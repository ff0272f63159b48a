//! Every shipped rule pack (`alerting/rules/*.yaml`) loads, and its promtool-style tests
//! (`alerting/rules/tests/*.test.yaml`) pass; every alert of a pack is tested at least once
//! with data that fires it and once with data that does not. Every pack file and test file
//! is in the table compiled into the binary (`rules::packs`), with the same text.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use didban_alerting::rules::packs::{PACKS, PACK_TESTS};
use didban_alerting::rules::unittest::run_test_file;
use didban_alerting::rules::{load_file, Rule};

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn stem(p: &Path, suffix: &str) -> String {
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    name.strip_suffix(suffix).unwrap().to_string()
}

#[test]
fn every_pack_file_is_built_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let packs = files(&root, ".yaml");
    assert_eq!(
        packs.len(),
        PACKS.len(),
        "alerting/rules/*.yaml and rules::packs::PACKS differ"
    );
    for f in packs {
        let name = stem(&f, ".yaml");
        let p = PACKS
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name}.yaml is missing from rules::packs::PACKS"));
        assert_eq!(p.text, std::fs::read_to_string(&f).unwrap());
        assert!(p.groups().is_ok(), "{name}: {:?}", p.groups().err());
    }
    let tests = files(&root.join("tests"), ".test.yaml");
    assert_eq!(
        tests.len(),
        PACK_TESTS.len(),
        "rule pack tests and rules::packs::PACK_TESTS differ"
    );
    for f in tests {
        let name = stem(&f, ".test.yaml");
        assert!(
            PACK_TESTS.iter().any(|t| t.name == name),
            "{name}.test.yaml is missing from rules::packs::PACK_TESTS"
        );
    }
}

#[tokio::test]
async fn rule_packs_pass_their_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut alerts = BTreeSet::new();
    for f in files(&root, ".yaml") {
        for g in load_file(&f).unwrap_or_else(|e| panic!("{e:?}")) {
            for r in g.rules {
                if let Rule::Alerting(a) = r {
                    alerts.insert(a.name);
                }
            }
        }
    }
    assert!(!alerts.is_empty());
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut failures = Vec::new();
    for t in files(&root.join("tests"), ".test.yaml") {
        if let Err(e) = run_test_file(&t).await {
            failures.extend(e);
        }
        let doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&t).unwrap()).unwrap();
        for group in doc["tests"].as_sequence().unwrap() {
            for at in group["alert_rule_test"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
            {
                let name = at["alertname"].as_str().unwrap().to_string();
                let n = at["exp_alerts"].as_sequence().map(|s| s.len()).unwrap_or(0);
                if n > 0 {
                    fired.insert(name);
                } else {
                    quiet.insert(name);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "rule pack tests failed:\n{}",
        failures.join("\n")
    );
    for a in &alerts {
        assert!(fired.contains(a), "no test fires {a}");
        if a != "Watchdog" {
            assert!(quiet.contains(a), "no test shows {a} quiet");
        }
    }
}

/// Every alert of every pack has a severity of the convention, `summary`, `description`
/// and a `runbook_url` pointing at its own section of `docs/runbooks.md`.
#[test]
fn every_pack_alert_has_severity_annotations_and_a_runbook() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runbooks = std::fs::read_to_string(root.join("../docs/runbooks.md")).unwrap();
    let mut problems = Vec::new();
    for p in PACKS {
        for g in p.groups().unwrap() {
            for r in g.rules {
                let Rule::Alerting(a) = r else { continue };
                let severity = a.labels.get("severity").map(|t| t.source().to_string());
                if !matches!(
                    severity.as_deref(),
                    Some("critical" | "warning" | "info" | "none")
                ) {
                    problems.push(format!("{}: severity {severity:?}", a.name));
                }
                for key in ["summary", "description", "runbook_url"] {
                    if !a.annotations.contains_key(key) {
                        problems.push(format!("{}: no {key}", a.name));
                    }
                }
                let want = format!(
                    "https://github.com/didban/didban/blob/main/docs/runbooks.md#{}",
                    a.name.to_lowercase()
                );
                let url = a.annotations.get("runbook_url").map(|t| t.source().to_string());
                if url.as_deref() != Some(want.as_str()) {
                    problems.push(format!("{}: runbook_url {url:?}, want {want}", a.name));
                }
                if !runbooks.contains(&format!("\n## {}\n", a.name)) {
                    problems.push(format!("{}: no section in docs/runbooks.md", a.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
