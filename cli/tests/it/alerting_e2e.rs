//! End to end against the real binary: a rule file and an `[alerting]` config, samples
//! pushed over OTLP, the alert fires and the webhook (a real HTTP server in this test)
//! receives it; after a restart the alert is still firing and no second notification is sent.

use std::time::{Duration, Instant};

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use didban_testkit::webhook::Webhook;
use serde_json::Value;

fn push(server: &Didban, value: f64) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(otlp_gauge_json("worker", "queue_depth", now_ms(), value))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "push failed: {}", r.status());
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

const RULES: &str = r#"
groups:
  - name: queues
    interval: 1s
    rules:
      - alert: QueueBacklog
        expr: queue_depth > 100
        for: 1s
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.job }} has {{ $value }} queued tasks"
"#;

#[test]
fn rule_fires_webhook_once_across_a_restart() {
    let hook = Webhook::start();
    let url = hook.url.clone();

    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("queues.yaml"), RULES).unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerting]
rules_dir = "{}"
packs_enabled = false
external_labels = {{ cluster = "test" }}
[alerting.route]
receiver = "ops"
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1m"
repeat_interval = "4h"
[[alerting.receivers]]
name = "ops"
[[alerting.receivers.webhook_configs]]
url = "{url}"
hmac_secret = "k"
"#,
            rules_dir.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let config_arg = config.display().to_string();
    let mut server = Didban::start(BIN, &data, &["--config", &config_arg]);
    push(&server, 250.0);
    wait_for("the webhook", Duration::from_secs(20), || hook.count() > 0);
    {
        let got = hook.deliveries();
        let (headers, body) = (&got[0].headers, &got[0].body);
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "ops");
        assert_eq!(body["groupLabels"]["alertname"], "QueueBacklog");
        let alert = &body["alerts"][0];
        assert_eq!(alert["labels"]["job"], "worker");
        assert_eq!(alert["labels"]["cluster"], "test");
        assert_eq!(alert["annotations"]["summary"], "worker has 250 queued tasks");
        // The signature itself is verified byte for byte in alerting/tests/webhook_v4.rs.
        let sig = headers["x-didban-signature"].to_str().unwrap();
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
    }
    // The rules API and ALERTS agree.
    let alerts: Value = reqwest::blocking::get(format!("http://{}/api/v1/alerts", server.http))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing");
    let q = server.query("ALERTS{alertname=\"QueueBacklog\"}", now_ms() as f64 / 1000.0);
    assert_eq!(q["data"]["result"][0]["metric"]["alertstate"], "firing", "{q}");

    // Restart: still firing, but no second page.
    assert!(server.terminate().success());
    let server = Didban::start(BIN, &data, &["--config", &config_arg]);
    wait_for("the alert to fire again", Duration::from_secs(20), || {
        let a: Value = reqwest::blocking::get(format!("http://{}/api/v1/alerts", server.http))
            .unwrap()
            .json()
            .unwrap();
        a["data"]["alerts"][0]["state"] == "firing"
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.count(), 1, "a restart must not re-send");
    let history: Value = reqwest::blocking::get(format!("http://{}/api/v1/notifications", server.http))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(history["data"][0]["ok"], true, "{history}");
    assert_eq!(history["data"][0]["receiver"], "ops");
}

/// OTLP/HTTP JSON with `n` log records carrying `body`, all at `t_ms`.
fn logs_json(body: &str, n: usize, t_ms: i64) -> String {
    let t_ns = t_ms as i128 * 1_000_000;
    let mut records = Vec::new();
    for _ in 0..n {
        records.push(format!(
            r#"{{"timeUnixNano":"{t_ns}","severityNumber":13,"body":{{"stringValue":"{body}"}}}}"#
        ));
    }
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"web"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

#[test]
fn log_rule_counts_records_in_the_real_log_store() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(
        rules_dir.join("security.yaml"),
        r#"
groups:
  - name: security
    interval: 1s
    rules:
      - alert: FailedLoginsBurst
        logs:
          query: 'AXES "login failure"'
          window: 5m
          threshold: 20
        annotations:
          summary: "{{ $value }} failed logins"
"#,
    )
    .unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            "[logs]\ncommit_interval = \"200ms\"\n[host_metrics]\nenabled = false\n[alerting]\nrules_dir = \"{}\"\npacks_enabled = false\n",
            rules_dir.display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = Didban::start(BIN, &dir.path().join("data"), &["--config", &config_arg]);
    let client = reqwest::blocking::Client::new();
    let post = |body: String| {
        let r = client
            .post(format!("http://{}/v1/logs", server.otlp_http))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    };
    post(logs_json("GET /admin/login/ 200", 50, now_ms()));
    post(logs_json("AXES: Repeated login failure by admin", 10, now_ms()));
    // Rather than hoping 2 s were enough: wait until the 10 records are searchable, then for
    // an evaluation that certainly started after that (the second change of the rule's
    // lastEvaluation: the first new value may come from an evaluation already under way).
    let start = (now_ms() / 1000 - 3600).to_string();
    wait_for(
        "the 10 failed logins to be searchable",
        Duration::from_secs(60),
        || {
            let r: Value = client
                .get(format!("http://{}/api/logs/search", server.http))
                .query(&[
                    ("query", "AXES \"login failure\""),
                    ("start", &start),
                    ("limit", "50"),
                ])
                .send()
                .unwrap()
                .json()
                .unwrap();
            r["data"]["records"].as_array().is_some_and(|a| a.len() == 10)
        },
    );
    let last_evaluation = || -> Value {
        let rules: Value = reqwest::blocking::get(format!("http://{}/api/v1/rules", server.http))
            .unwrap()
            .json()
            .unwrap();
        rules["data"]["groups"][0]["rules"][0]["lastEvaluation"].clone()
    };
    for _ in 0..2 {
        let seen = last_evaluation();
        wait_for("an evaluation of the log rule", Duration::from_secs(60), || {
            last_evaluation() != seen
        });
    }
    let alerts = |server: &Didban| -> Value {
        reqwest::blocking::get(format!("http://{}/api/v1/alerts", server.http))
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(
        alerts(&server)["data"]["alerts"].as_array().unwrap().is_empty(),
        "10 is under 20"
    );
    post(logs_json("AXES: Repeated login failure by admin", 15, now_ms()));
    wait_for("the log rule to fire", Duration::from_secs(20), || {
        alerts(&server)["data"]["alerts"][0]["state"] == "firing"
    });
    let a = alerts(&server);
    assert_eq!(
        a["data"]["alerts"][0]["annotations"]["summary"], "25 failed logins",
        "{a}"
    );
    let rules: Value = reqwest::blocking::get(format!("http://{}/api/v1/rules", server.http))
        .unwrap()
        .json()
        .unwrap();
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "ok", "{rule}");
    assert_eq!(
        rule["query"],
        "count_logs(\"AXES \\\"login failure\\\"\"[5m]) > 20"
    );
}

#[test]
fn log_rule_by_field_alerts_per_client() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(
        rules_dir.join("clients.yaml"),
        r#"
groups:
  - name: clients
    interval: 1s
    rules:
      - alert: ClientErrorBurst
        logs:
          query: 'attributes.http.response.status_code:[400 TO 599]'
          window: 5m
          threshold: 10
          by: attributes.client.address
          label: client
        annotations:
          summary: "{{ $labels.client }} got {{ $value }} error responses"
"#,
    )
    .unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            "[logs]\ncommit_interval = \"200ms\"\n[host_metrics]\nenabled = false\n[alerting]\nrules_dir = \"{}\"\npacks_enabled = false\n",
            rules_dir.display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = Didban::start(BIN, &dir.path().join("data"), &["--config", &config_arg]);
    let client = reqwest::blocking::Client::new();
    let t_ns = now_ms() as i128 * 1_000_000;
    let record = |ip: &str, status: u16| {
        format!(
            r#"{{"timeUnixNano":"{t_ns}","body":{{"stringValue":"GET /x {status}"}},"attributes":[{{"key":"client.address","value":{{"stringValue":"{ip}"}}}},{{"key":"http.response.status_code","value":{{"intValue":"{status}"}}}}]}}"#
        )
    };
    let mut records = Vec::new();
    for _ in 0..30 {
        records.push(record("203.0.113.9", 404));
    }
    for _ in 0..5 {
        records.push(record("198.51.100.7", 500));
    }
    for _ in 0..50 {
        records.push(record("198.51.100.7", 200));
    }
    let body = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"nginx"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    );
    let r = client
        .post(format!("http://{}/v1/logs", server.otlp_http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let alerts = || -> Value {
        reqwest::blocking::get(format!("http://{}/api/v1/alerts", server.http))
            .unwrap()
            .json()
            .unwrap()
    };
    wait_for("the per-client log rule to fire", Duration::from_secs(20), || {
        alerts()["data"]["alerts"][0]["state"] == "firing"
    });
    std::thread::sleep(Duration::from_secs(2));
    let a = alerts();
    let list = a["data"]["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{a}");
    assert_eq!(list[0]["labels"]["client"], "203.0.113.9");
    assert_eq!(
        list[0]["annotations"]["summary"],
        "203.0.113.9 got 30 error responses"
    );
}
