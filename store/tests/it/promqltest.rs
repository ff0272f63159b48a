//! Runs every `tests/promql/*.test` promqltest script against the evaluator and reports
//! each failure as `file:line: message`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use didban_store::promql::promqltest::run_file;

#[test]
fn promql_test_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let filter = std::env::var("PROMQLTEST_FILTER").unwrap_or_default();
    let (mut evals, mut passed) = (0usize, 0usize);
    let mut failures: Vec<String> = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if !name.contains(&filter) {
            continue;
        }
        let report = run_file(f).unwrap();
        evals += report.evals;
        passed += report.passed;
        println!("{name}: {}/{} evals passed", report.passed, report.evals);
        for fail in report.failures {
            failures.push(format!("{}:{}: {}", f.display(), fail.line, fail.message));
        }
    }
    println!("total: {passed}/{evals} evals passed in {} files", files.len());
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
