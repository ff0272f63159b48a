//! Durability of traces and logs: every span and log record acknowledged before a
//! `kill -9` is found after a restart, and no log record is indexed twice (the commit
//! payload says which WAL segments are already in each day's index).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crash_writers::{log_bodies, log_json, spawn_writers, trace_json};
use crate::process::{Didban, BIN};
use serde_json::Value;

fn config(dir: &std::path::Path) -> String {
    let path = dir.join("didban.toml");
    std::fs::write(&path, "[logs]\ncommit_interval = \"150ms\"\n").unwrap();
    path.to_string_lossy().to_string()
}

#[test]
fn acknowledged_spans_and_log_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let data = dir.path().join("data");
    let mut server = Didban::start(BIN, &data, &["--config", &config]);
    let running = Arc::new(AtomicBool::new(true));
    let logs_acked = Arc::new(Mutex::new(Vec::new()));
    let spans_acked = Arc::new(Mutex::new(Vec::new()));
    let mut threads = spawn_writers(
        format!("http://{}/v1/logs", server.otlp_http),
        3,
        Arc::new(|n, t| log_json("crash", n, t)),
        running.clone(),
        logs_acked.clone(),
    );
    threads.extend(spawn_writers(
        format!("http://{}/v1/traces", server.otlp_http),
        2,
        Arc::new(|n, t| trace_json("crash", n, t)),
        running.clone(),
        spans_acked.clone(),
    ));
    // Long enough for several log commits (and so WAL truncations) during the writes. The
    // counts, not the clock, end the writes; the deadline only bounds a machine so loaded
    // that CI's other tests hold the disk (a commit every 150 ms fsyncs each time).
    let deadline = Instant::now() + Duration::from_secs(180);
    while (logs_acked.lock().unwrap().len() < 600 || spans_acked.lock().unwrap().len() < 300)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    running.store(false, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let logs: Vec<u64> = logs_acked.lock().unwrap().clone();
    let spans: Vec<u64> = spans_acked.lock().unwrap().clone();
    assert!(
        logs.len() >= 600 && spans.len() >= 300,
        "{} {}",
        logs.len(),
        spans.len()
    );

    let server = Didban::start(BIN, &data, &["--config", &config]);
    let client = reqwest::blocking::Client::new();
    // Replayed records are committed at start-up: one search sees them all, once.
    let bodies = log_bodies(&client, &server, "crash");
    let unique: HashSet<&String> = bodies.iter().collect();
    assert_eq!(unique.len(), bodies.len(), "a log record was indexed twice");
    for n in &logs {
        assert!(
            unique.contains(&format!("crashlog{n}")),
            "acknowledged log record {n} lost"
        );
    }
    for n in &spans {
        let body: Value = client
            .get(format!("http://{}/api/traces/{:032x}", server.http, n + 1))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let found = body["data"][0]["spans"].as_array().map(|s| s.len()).unwrap_or(0);
        assert_eq!(found, 2, "acknowledged trace {n} lost or incomplete: {body}");
    }
}
