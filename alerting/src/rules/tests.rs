#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use super::*;

const GOOD: &str = r#"
groups:
  - name: postgres
    interval: 30s
    limit: 10
    labels:
      team: db
    rules:
      - record: job:pg_up:sum
        expr: sum by (job) (pg_up)
      - alert: PostgresDown
        expr: pg_up == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.instance }} is down"
  - name: numbers
    rules:
      - record: one
        expr: 1
"#;

#[test]
fn a_good_file_loads() {
    let groups = parse_rule_file(Path::new("pg.yaml"), GOOD).unwrap();
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!(g.name, "postgres");
    assert_eq!(g.file, "pg.yaml");
    assert_eq!(g.interval, Some(Duration::from_secs(30)));
    assert_eq!(g.limit, 10);
    assert_eq!(g.labels.get("team").unwrap(), "db");
    let Rule::Alerting(a) = &g.rules[1] else { panic!() };
    assert_eq!(a.name, "PostgresDown");
    assert_eq!(a.for_, Duration::from_secs(300));
    assert_eq!(a.keep_firing_for, Duration::from_secs(60));
    assert_eq!(
        a.annotations["summary"].source(),
        "{{ $labels.instance }} is down"
    );
    assert_eq!(groups[1].rules[0].expr(), "1");
}

fn errors(text: &str) -> Vec<RuleError> {
    parse_rule_file(Path::new("bad.yaml"), text).unwrap_err()
}

#[test]
fn yaml_errors_and_unknown_fields_have_lines() {
    let e = errors("groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n        fro: 5m\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(6), "{}", e[0]);
    assert!(e[0].reason.contains("unknown field `fro`"), "{}", e[0]);
    assert!(e[0].to_string().starts_with("bad.yaml:6: "), "{}", e[0]);
    let e = errors("groups:\n  - name: [a\n");
    assert!(e[0].line.is_some(), "{}", e[0]);
    let e = errors("groupz: []\n");
    assert!(e[0].reason.contains("unknown field `groupz`"), "{}", e[0]);
}

#[test]
fn validation_reports_every_problem_with_its_rule_line() {
    let text = r#"groups:
  - name: g
    rules:
      - alert: Good
        expr: up == 0
      - alert: BadExpr
        expr: sum(up
      - record: bad-name
        expr: up
        for: 1m
      - alert: BadTemplate
        expr: up
        annotations:
          summary: "{{ $labels.x "
      - expr: up
  - name: g
    interval: 0s
    rules: []
"#;
    let e = errors(text);
    let lines: Vec<(Option<usize>, &str)> = e.iter().map(|e| (e.line, e.reason.as_str())).collect();
    assert!(
        e.iter()
            .any(|e| e.line == Some(6) && e.reason.contains("could not parse expression")),
        "{lines:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.line == Some(8) && e.reason.contains("invalid recording rule name \"bad-name\"")),
        "{lines:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.line == Some(8) && e.reason.contains("invalid field 'for'")),
        "{lines:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.line == Some(11) && e.reason.contains("bad template in annotation \"summary\"")),
        "{lines:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.line == Some(15) && e.reason.contains("one of 'record' or 'alert'")),
        "{lines:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.line == Some(16) && e.reason.contains("repeated")),
        "{lines:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.line == Some(16) && e.reason.contains("interval must be greater than 0")),
        "{lines:?}"
    );
    let bad = e.iter().find(|e| e.rule.as_deref() == Some("BadExpr")).unwrap();
    assert!(
        bad.to_string()
            .starts_with("bad.yaml:6: group \"g\", rule \"BadExpr\": could not parse"),
        "{bad}"
    );
}

#[test]
fn empty_files_and_comments_are_fine() {
    assert!(parse_rule_file(Path::new("e.yaml"), "").unwrap().is_empty());
    assert!(parse_rule_file(Path::new("e.yaml"), "# nothing\n")
        .unwrap()
        .is_empty());
}

#[test]
fn directories_load_sorted_yaml_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("a.yml"),
        "groups:\n  - name: first\n    rules: []\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not rules").unwrap();
    let groups = load_dirs(&[dir.path().to_path_buf(), dir.path().join("missing")]).unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["first", "postgres", "numbers"]);
    std::fs::write(dir.path().join("c.yaml"), "groups: [").unwrap();
    let e = load_dirs(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(e[0].file.ends_with("c.yaml"));
}

#[test]
fn durations() {
    assert_eq!(parse_prom_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_prom_duration("0").unwrap(), Duration::ZERO);
    assert_eq!(parse_prom_duration("100ms").unwrap(), Duration::from_millis(100));
    assert!(parse_prom_duration("5").is_err());
    assert!(parse_prom_duration("5 minutes").is_err());
    assert_eq!(format_prom_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_prom_duration(Duration::ZERO), "0s");
}

#[test]
fn log_rules_are_validated() {
    let ok = "groups:\n  - name: g\n    rules:\n      - alert: L\n        logs: {query: 'error', window: 5m, threshold: 10}\n";
    let groups = parse_rule_file(Path::new("l.yaml"), ok).unwrap();
    let Rule::Alerting(a) = &groups[0].rules[0] else {
        panic!()
    };
    let cond = a.logs.as_ref().unwrap();
    assert_eq!(cond.window, Duration::from_secs(300));
    assert_eq!(a.expr, "count_logs(\"error\"[5m]) > 10");
    let e = errors("groups:\n  - name: g\n    rules:\n      - alert: L\n        expr: up\n        logs: {query: '', window: 0s}\n");
    let reasons: Vec<&str> = e.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.contains(&"a log rule has 'logs' instead of 'expr', not both"),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"logs.query must not be empty"), "{reasons:?}");
    assert!(
        reasons.contains(&"logs.window must be greater than 0"),
        "{reasons:?}"
    );
    let e =
        errors("groups:\n  - name: g\n    rules:\n      - record: r\n        logs: {query: x, window: 1m}\n");
    assert!(e
        .iter()
        .any(|e| e.reason.contains("invalid field 'logs' in recording rule")));
}

#[test]
fn a_too_deep_expression_is_refused_naming_the_rule() {
    let deep = format!("{}up{}", "abs(".repeat(500), ")".repeat(500));
    let text = format!(
        "groups:\n  - name: g\n    rules:\n      - alert: Fine\n        expr: up == 0\n      - alert: Deep\n        expr: {deep}\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    let shown = e[0].to_string();
    assert!(
        shown.starts_with("bad.yaml:6: group \"g\", rule \"Deep\": expression too deep"),
        "{shown}"
    );
    assert!(shown.contains("limit of 200"), "{shown}");
}
