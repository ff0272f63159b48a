//! The HA alerting pair end to end: two real `didban serve` processes with the same rules,
//! fed the same samples (as a pair of Prometheus servers scrape the same targets), sharing
//! a private PostgreSQL through `[alerting.ha]`. One sends each notification; a silence
//! created on the sender reaches the other; the sender is killed with SIGKILL and the
//! other takes over: it sends the next notification exactly once, repeats nothing the
//! dead sender delivered, and honours the silence.

use std::time::Duration;

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};
use didban_testkit::webhook::Webhook;
use serde_json::{json, Value};

const RULES: &str = r#"
groups:
  - name: queues
    interval: 1s
    rules:
      - alert: QueueBacklog
        expr: queue_depth > 100
"#;

const LEASE: &str = "alerting-sender/test";

fn push(server: &Didban, job: &str, value: f64) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(otlp_gauge_json(job, "queue_depth", now_ms(), value))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "push failed: {}", r.status());
}

/// The pid in the lease row's holder id (`host:pid:random`), once someone holds it.
fn sender_pid(pg: &Postgres) -> Option<u32> {
    let holder = pg.psql(
        "postgres",
        &format!("SELECT holder FROM didban_leases WHERE name = '{LEASE}' AND expires_at > now()"),
    );
    holder.split(':').nth(1)?.parse().ok()
}

/// The `job` of each alert in each delivery, in order.
fn delivered_jobs(hook: &Webhook) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for body in hook.bodies() {
        let mut jobs = Vec::new();
        for a in body["alerts"].as_array().cloned().unwrap_or_default() {
            jobs.push(a["labels"]["job"].as_str().unwrap_or("").to_string());
        }
        out.push(jobs);
    }
    out
}

/// The `[alerting]` part of an HA pair member's config: rules from `rules_dir`, the pair
/// `cluster` in the database at `pg_url` (2 s lease, 1 s silence exchange), every alert
/// routed by `group_by` (TOML list items) at once to one webhook. Shared with the roles test.
pub(crate) fn ha_alerting_toml(
    rules_dir: &std::path::Path,
    pg_url: &str,
    cluster: &str,
    group_by: &str,
    hook_url: &str,
) -> String {
    format!(
        r#"
[alerting]
rules_dir = "{}"
packs_enabled = false
[alerting.ha]
url = "{pg_url}"
cluster = "{cluster}"
lease_ttl = "2s"
sync_interval = "1s"
[alerting.route]
receiver = "ops"
group_by = [{group_by}]
group_wait = "0s"
group_interval = "1h"
repeat_interval = "4h"
[[alerting.receivers]]
name = "ops"
[[alerting.receivers.webhook_configs]]
url = "{hook_url}"
"#,
        rules_dir.display()
    )
}

#[test]
fn one_instance_sends_and_the_other_takes_over_after_kill_9() {
    let pg = Postgres::start();
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("queues.yaml"), RULES).unwrap();
    let config = dir.path().join("didban.toml");
    let toml = ha_alerting_toml(
        &rules_dir,
        &pg.dsn("postgres"),
        "test",
        "\"alertname\", \"job\"",
        &hook.url,
    );
    std::fs::write(&config, toml).unwrap();
    let config_arg = config.display().to_string();
    let mut servers = [
        Didban::start(BIN, &dir.path().join("a"), &["--config", &config_arg]),
        Didban::start(BIN, &dir.path().join("b"), &["--config", &config_arg]),
    ];
    until("a sender", HANG, || {
        sender_pid(&pg).ok_or("no lease holder".to_string())
    });

    // Both evaluate the same data; one delivery goes out.
    for s in &servers {
        push(s, "worker1", 250.0);
    }
    until("the first notification", HANG, || {
        (hook.count() >= 1).then_some(()).ok_or("none yet".to_string())
    });
    let sender = sender_pid(&pg).unwrap();
    let (dead, survivor) = if servers[0].child.id() == sender {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(servers[dead].child.id(), sender, "the sender is one of the pair");
    // The other instance fires the same alert but stays quiet: the alert is firing there
    // (its API says so) and a few sync rounds later still one delivery.
    until("the alert firing on the other instance", HANG, || {
        let a: Value = reqwest::blocking::get(format!("http://{}/api/v1/alerts", servers[survivor].http))
            .unwrap()
            .json()
            .unwrap();
        (a["data"]["alerts"][0]["state"] == "firing")
            .then_some(())
            .ok_or(a.to_string())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(delivered_jobs(&hook), vec![vec!["worker1".to_string()]]);

    // A silence made on the sender reaches the database before the sender dies.
    let silence = json!({
        "matchers": [{"name": "job", "value": "worker3", "isRegex": false}],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2100-01-01T00:00:00Z",
        "createdBy": "ana",
        "comment": "worker3 is being rebuilt",
    });
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/api/v2/silences", servers[dead].http))
        .json(&silence)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "silence: {}", r.status());
    until("the silence in the database", HANG, || {
        let n = pg.psql("postgres", "SELECT count(*) FROM didban_silences");
        (n == "1").then_some(()).ok_or(n)
    });

    servers[dead].kill9();
    for job in ["worker1", "worker2", "worker3"] {
        push(&servers[survivor], job, 250.0);
    }
    let survivor_pid = servers[survivor].child.id();
    until("the survivor taking the lease", HANG, || {
        let pid = sender_pid(&pg);
        (pid == Some(survivor_pid))
            .then_some(())
            .ok_or(format!("{pid:?}"))
    });
    until("the survivor's notification", HANG, || {
        (hook.count() >= 2)
            .then_some(())
            .ok_or(format!("{:?}", delivered_jobs(&hook)))
    });
    // worker3 is silenced there, worker1 was delivered by the dead sender: after a few
    // more rounds, exactly one more delivery, for worker2.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        delivered_jobs(&hook),
        vec![vec!["worker1".to_string()], vec!["worker2".to_string()]]
    );
    let silences: Value =
        reqwest::blocking::get(format!("http://{}/api/v2/silences", servers[survivor].http))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(silences[0]["comment"], "worker3 is being rebuilt", "{silences}");
}
