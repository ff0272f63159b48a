//! `didban check rules` and `didban test rules` behave like promtool's: a report per file,
//! every problem as FILE:LINE: reason, exit code 1 on any failure.

use std::process::Command;

fn didban(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_didban"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_rules_reports_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(up[5m]\n      - record: x\n        expr: up\n        annotations: {a: b}\n",
    )
    .unwrap();
    let (code, out, _) = didban(&["check", "rules", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("SUCCESS: 1 rules found"), "{out}");
    let (code, out, err) = didban(&["check", "rules", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("FAILED"), "{out}");
    assert!(
        err.contains("bad.yaml:4: group \"g\", rule \"A\": could not parse expression"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:6: group \"g\", rule \"x\": invalid field 'annotations' in recording rule"),
        "{err}"
    );
}

#[test]
fn test_rules_runs_the_shipped_pack_tests() {
    let tests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../alerting/rules/tests/postgres.test.yaml"
    );
    let (code, out, _) = didban(&["test", "rules", tests]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yaml"),
        "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n",
    )
    .unwrap();
    let t = dir.path().join("t.yaml");
    std::fs::write(
        &t,
        "rule_files: [r.yaml]\ntests:\n  - input_series:\n      - series: 'up{job=\"a\"}'\n        values: '1x5'\n    alert_rule_test:\n      - eval_time: 2m\n        alertname: Down\n        exp_alerts:\n          - exp_labels: {job: a}\n",
    )
    .unwrap();
    let (code, out, _) = didban(&["test", "rules", t.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("alert Down: expected firing"), "{out}");
}
