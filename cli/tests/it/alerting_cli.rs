//! `didban check rules` and `didban test rules` behave like promtool's: a report per file,
//! every problem as FILE:LINE: reason, exit code 1 on any failure; with no file they cover the
//! built-in packs, which the real server runs and reloads with changed pack settings.

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

#[test]
fn check_rules_without_files_checks_the_built_in_packs() {
    let (code, out, err) = didban(&["check", "rules"]);
    assert_eq!(code, 0, "{out}{err}");
    for pack in ["host", "postgres", "redis", "security", "probes", "didban"] {
        assert!(
            out.contains(&format!("Checking <builtin>/{pack}.yaml\n  SUCCESS")),
            "{out}"
        );
    }
}

/// The real server evaluates the built-in packs with no rule file, shows their origin, and
/// a reload applies changed pack settings from the `--config` file (a bad one is refused
/// and the running rules kept).
#[test]
fn the_server_runs_the_packs_and_a_reload_applies_pack_settings() {
    use crate::process::{Didban, BIN};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    let base = "[host_metrics]\nenabled = false\n[alerting]\n";
    std::fs::write(&config, base).unwrap();
    let config_arg = config.display().to_string();
    let server = Didban::start(BIN, &dir.path().join("data"), &["--config", &config_arg]);
    let client = reqwest::blocking::Client::new();
    let groups = || -> Vec<(String, String, Vec<String>)> {
        let body: serde_json::Value = client
            .get(server.url("/api/v1/rules"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut out = Vec::new();
        for g in body["data"]["groups"].as_array().unwrap() {
            let rules = g["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect();
            out.push((
                g["name"].as_str().unwrap().to_string(),
                g["origin"].as_str().unwrap().to_string(),
                rules,
            ));
        }
        out
    };
    // The engine loads its rules once the server is up.
    let before =
        didban_testkit::wait::until("the packs are loaded", std::time::Duration::from_secs(30), || {
            let g = groups();
            if g.iter().any(|g| g.0 == "didban-redis") {
                Ok(g)
            } else {
                Err(format!("{g:?}"))
            }
        });
    let redis = before.iter().find(|g| g.0 == "didban-redis").unwrap();
    assert_eq!(redis.1, "pack:redis");
    assert!(redis.2.contains(&"RedisHitRatioLow".to_string()));
    assert!(before.iter().any(|g| g.1 == "pack:serverless"));

    std::fs::write(
        &config,
        format!("{base}disabled_packs = [\"serverless\"]\ndisabled_rules = [\"RedisHitRatioLow\"]\n"),
    )
    .unwrap();
    let r = client.post(server.url("/-/reload")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let after = groups();
    assert!(after.iter().all(|g| g.1 != "pack:serverless"), "{after:?}");
    let redis = after.iter().find(|g| g.0 == "didban-redis").unwrap();
    assert!(!redis.2.contains(&"RedisHitRatioLow".to_string()));

    std::fs::write(&config, format!("{base}disabled_packs = [\"nope\"]\n")).unwrap();
    let r = client.post(server.url("/-/reload")).send().unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.text().unwrap().contains("no pack is called \"nope\""));
    assert_eq!(groups(), after);
}
