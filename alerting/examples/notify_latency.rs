//! Latency from a condition becoming true to the alert e-mail being accepted by an SMTP
//! server, with `for: 0` and `group_wait: 0s`: the whole path (sample appended → group
//! evaluation in its slot → notifier flush → SMTP) through the real engine and a real SMTP
//! server (Python's aiosmtpd from tests/requirements.txt, started by `didban_testkit::smtp`).
//!
//! `cargo run --release -p didban-alerting --example notify_latency -- [rounds]` (default 5).
//! Prints each round and the median; the goal is < 2 s plus `group_wait`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use didban_alerting::{Alerting, AlertingSettings};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::{Db, DbOptions, FsyncMode, Labels, Sample, SeriesSamples};
use didban_testkit::smtp::Smtp;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = Smtp::start(&maildir);
    let port = smtp.port;
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(
        rules_dir.join("latency.yaml"),
        "groups:\n  - name: latency\n    interval: 1s\n    rules:\n      - alert: LatencyProbe\n        expr: latency_probe > 0\n",
    )
    .unwrap();
    let settings: AlertingSettings = toml::from_str(&format!(
        r#"
rules_dir = "{}"
packs_enabled = false
[route]
receiver = "mail"
group_by = ["round"]
group_wait = "0s"
[[receivers]]
name = "mail"
[[receivers.email_configs]]
to = "oncall@example.com"
from = "didban@example.com"
smarthost = "127.0.0.1:{port}"
tls = "none"
"#,
        rules_dir.display()
    ))
    .unwrap();
    let mut opts = DbOptions::new(dir.path().join("data"));
    opts.fsync = FsyncMode::Off;
    let db = Arc::new(Db::open(opts).unwrap());
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let alerting = Alerting::new(
        &settings,
        dir.path(),
        "http://localhost:9480",
        db.clone(),
        engine,
        None,
    )
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(alerting.clone().run(stop_rx));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let before = count(&maildir);
        let started = Instant::now();
        let labels = Labels::from_pairs([
            ("__name__", "latency_probe".to_string()),
            ("round", round.to_string()),
        ]);
        db.append(vec![SeriesSamples {
            labels,
            samples: vec![Sample::new(didban_alerting::now_ms(), 1.0)],
            histograms: Vec::new(),
        }])
        .await
        .unwrap();
        while count(&maildir) == before {
            assert!(started.elapsed() < Duration::from_secs(30), "no mail after 30 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let l = started.elapsed();
        println!("round {round}: {:.3} s", l.as_secs_f64());
        latencies.push(l);
    }
    latencies.sort();
    if let Some(m) = latencies.get(latencies.len() / 2) {
        println!(
            "median condition-to-SMTP latency: {:.3} s (goal: < 2 s + group_wait 0 s)",
            m.as_secs_f64()
        );
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    drop(smtp);
}

fn count(maildir: &std::path::Path) -> usize {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}
