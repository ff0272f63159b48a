//! Every shipped rule pack (`alerting/rules/*.yaml`) loads, and its promtool-style tests
//! (`alerting/rules/tests/*.test.yaml`) pass; every alert of a pack is tested at least once
//! with data that fires it and once with data that does not.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
