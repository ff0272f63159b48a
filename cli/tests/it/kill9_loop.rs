//! The `kill -9` fault loop (`scripts/kill9.sh`): the real `didban serve`, configured so that
//! head cuts, block writes, compactions, retention, span-block writes and log-index commits
//! happen every second or so, is fed metrics, logs and traces and killed with SIGKILL at
//! random moments — during ingest, or while it is still starting — and restarted, many times
//! over one data directory. After every start it checks: the start succeeded, every
//! acknowledged sample, log record and span is queryable, and none is there twice.
//!
//! Ignored in CI (it runs for minutes); `KILL9_ITERATIONS` (default 20), `KILL9_SEED` (the
//! random kill moments; printed, so a failing run can be repeated) and `DIDBAN_BIN` (another
//! binary, e.g. a release build) steer it.
//!
//! Retention is short (1 minute for metric and span blocks) so that deletions run under the
//! kills too; data of iterations that started more than [`CHECK_WITHIN_MS`] ago may have been
//! deleted by it and is checked no more. Log records are kept for days and are all checked
//! every time.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use didban_testkit::rng::SeededRng as Rng;
use didban_testkit::Start;
use serde_json::Value;

use crate::crash_writers::{gauge_json, log_json, spawn_writers, trace_json};
use crate::process::{now_ms, Didban, BIN};

/// Service name of everything the loop writes.
const SERVICE: &str = "kill9";

/// Metric writers; writer `w` writes the series `kill9_writer_<w>`.
const METRIC_WRITERS: u64 = 2;

/// Numbers of iteration `i` start at `i * STRIDE`, so they are unique over the whole run.
const STRIDE: u64 = 1_000_000;

/// Metric and span blocks entirely older than this are deleted by retention.
const RETENTION: &str = "1m";

/// Metrics and spans are checked for iterations that started at most this long ago: well
/// inside [`RETENTION`], so retention cannot have deleted them yet.
const CHECK_WITHIN_MS: i64 = 50_000;

/// The server's configuration: every maintenance step runs about once a second.
fn config_text() -> String {
    format!(
        r#"
[storage]
block_duration = "1s"
maintenance_interval = "250ms"
retention_time = "{RETENTION}"
wal_segment_size = "256KiB"

[traces]
block_duration = "1s"
retention_time = "{RETENTION}"

[logs]
commit_interval = "100ms"
"#
    )
}

/// What one iteration had acknowledged.
struct Acked {
    started_ms: i64,
    samples: Vec<u64>,
    logs: Vec<u64>,
    traces: Vec<u64>,
}

/// Running totals for the summary.
#[derive(Default)]
struct Totals {
    starts: u64,
    kills_in_startup: u64,
    kills_in_ingest: u64,
    samples: u64,
    logs: u64,
    traces: u64,
    samples_checked: u64,
    logs_checked: u64,
    traces_checked: u64,
    torn_tails: u64,
    temp_dirs_left: u64,
    /// Maintenance done by the killed processes (their counters, read just before a kill).
    head_cuts: u64,
    compactions: u64,
    retention_deleted: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `.tmp-` directories left where blocks are written: a kill landed inside a block write.
fn temp_dirs(data: &Path) -> u64 {
    let mut n = 0;
    for dir in [data.join("metrics/blocks"), data.join("traces/blocks")] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    n += 1;
                }
            }
        }
    }
    n
}

/// Every log record body of the loop, over all pages of the search.
fn log_bodies(server: &Didban, since_ms: i64) -> Vec<String> {
    let client = reqwest::blocking::Client::new();
    let mut bodies = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("query", format!("service:{SERVICE}")),
            ("limit", "5000".to_string()),
            ("start", format!("{}", since_ms / 1000 - 60)),
            ("end", format!("{}", now_ms() / 1000 + 60)),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let body: Value = client
            .get(server.url("/api/logs/search"))
            .query(&query)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let records = body["data"]["records"].as_array().cloned().unwrap_or_default();
        assert!(body["status"] == "success", "log search failed: {body}");
        for r in records {
            bodies.push(r["body"].as_str().unwrap_or_default().to_string());
        }
        match body["data"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    bodies
}

/// The values of each metric writer's series over the last two minutes, as numbers.
fn sample_values(server: &Didban) -> Vec<u64> {
    let mut out = Vec::new();
    let at = now_ms() as f64 / 1000.0;
    for w in 0..METRIC_WRITERS {
        let r = server.query(&format!("kill9_writer_{w}[2m]"), at);
        assert_eq!(r["status"], "success", "{r}");
        let values = r["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for p in values {
            let v = p[1].as_str().unwrap_or("nan").parse::<f64>().unwrap_or(f64::NAN);
            out.push(v as u64);
        }
    }
    out
}

/// Checks everything acknowledged so far against the restarted server; panics naming what
/// is lost or duplicated.
fn check(server: &Didban, history: &[Acked], since_ms: i64, totals: &mut Totals) {
    let recent_from = now_ms() - CHECK_WITHIN_MS;
    let recent = || history.iter().filter(|a| a.started_ms >= recent_from);

    let values = sample_values(server);
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for v in &values {
        *seen.entry(*v).or_default() += 1;
    }
    if let Some((v, n)) = seen.iter().find(|(_, n)| **n > 1) {
        panic!("sample value {v} stored {n} times");
    }
    for a in recent() {
        for n in &a.samples {
            assert!(seen.contains_key(n), "acknowledged sample {n} lost after kill -9");
            totals.samples_checked += 1;
        }
    }

    let bodies = log_bodies(server, since_ms);
    let unique: HashSet<&String> = bodies.iter().collect();
    assert_eq!(unique.len(), bodies.len(), "a log record is stored twice");
    for a in history {
        for n in &a.logs {
            let body = format!("{SERVICE}log{n}");
            assert!(
                unique.contains(&body),
                "acknowledged log record {n} lost after kill -9"
            );
            totals.logs_checked += 1;
        }
    }

    let client = reqwest::blocking::Client::new();
    for a in recent() {
        for n in &a.traces {
            let body: Value = client
                .get(server.url(&format!("/api/traces/{:032x}", n + 1)))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let spans = body["data"][0]["spans"].as_array().map(Vec::len).unwrap_or(0);
            assert_eq!(
                spans, 2,
                "acknowledged trace {n} lost, incomplete or doubled: {body}"
            );
            totals.traces_checked += 1;
        }
    }
}

fn start(bin: &str, data: &Path, config: &str, stderr: &Path) -> Didban {
    Didban::start_with(
        bin,
        data,
        Start {
            args: &["--config", config],
            stderr: Some(stderr),
            ..Start::default()
        },
    )
}

/// Feeds all three signals until a random moment, then `kill -9`s the server.
fn ingest_and_kill(server: &mut Didban, rng: &mut Rng, offset: u64, totals: &mut Totals) -> Acked {
    let started_ms = now_ms();
    let running = Arc::new(AtomicBool::new(true));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let logs = Arc::new(Mutex::new(Vec::new()));
    let traces = Arc::new(Mutex::new(Vec::new()));
    let otlp = server.otlp_http.clone();
    let mut threads = spawn_writers(
        format!("http://{otlp}/v1/metrics"),
        METRIC_WRITERS,
        Arc::new(move |n, t| gauge_json(SERVICE, "kill9_writer_", METRIC_WRITERS, offset + n, t)),
        running.clone(),
        samples.clone(),
    );
    threads.extend(spawn_writers(
        format!("http://{otlp}/v1/logs"),
        2,
        Arc::new(move |n, t| log_json(SERVICE, offset + n, t)),
        running.clone(),
        logs.clone(),
    ));
    threads.extend(spawn_writers(
        format!("http://{otlp}/v1/traces"),
        1,
        Arc::new(move |n, t| trace_json(SERVICE, offset + n, t)),
        running.clone(),
        traces.clone(),
    ));
    std::thread::sleep(Duration::from_millis(200 + rng.below(2800)));
    totals.head_cuts += server.self_metric("didban_head_cuts_total") as u64;
    totals.compactions += server.self_metric("didban_compactions_total") as u64;
    totals.retention_deleted += server.self_metric("didban_retention_deleted_blocks_total") as u64
        + server.self_metric("didban_trace_retention_deleted_blocks_total") as u64;
    server.kill9();
    running.store(false, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let take =
        |v: &Arc<Mutex<Vec<u64>>>| -> Vec<u64> { v.lock().unwrap().iter().map(|n| offset + n).collect() };
    Acked {
        started_ms,
        samples: take(&samples),
        logs: take(&logs),
        traces: take(&traces),
    }
}

#[test]
#[ignore = "a fault loop of minutes; run by scripts/kill9.sh"]
fn kill9_loop() {
    let iterations = env_u64("KILL9_ITERATIONS", 20);
    let seed = env_u64("KILL9_SEED", now_ms() as u64) | 1;
    let bin = std::env::var("DIDBAN_BIN").unwrap_or_else(|_| BIN.to_string());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, config_text()).unwrap();
    let config = config.to_string_lossy().to_string();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    let since_ms = now_ms();
    let began = Instant::now();
    println!("kill9: {iterations} iterations, KILL9_SEED={seed}, binary {bin}");

    let mut rng = Rng::new(seed);
    let mut totals = Totals::default();
    let mut history: Vec<Acked> = Vec::new();
    for i in 0..iterations {
        // One kill in four lands while the server is still starting (WAL replay, the
        // first maintenance pass over what the previous kill left).
        if rng.below(4) == 0 {
            let mut early = Didban::spawn(
                &bin,
                &data,
                Start {
                    args: &["--config", &config],
                    stderr: Some(&stderr),
                    ..Start::default()
                },
            );
            std::thread::sleep(Duration::from_millis(rng.below(600)));
            early.kill9();
            totals.kills_in_startup += 1;
        }
        totals.temp_dirs_left += temp_dirs(&data);
        let mut server = start(&bin, &data, &config, &stderr);
        totals.starts += 1;
        totals.torn_tails += server.self_metric("didban_wal_torn_tail_repairs_total") as u64;
        check(&server, &history, since_ms, &mut totals);
        let acked = ingest_and_kill(&mut server, &mut rng, i * STRIDE, &mut totals);
        totals.kills_in_ingest += 1;
        totals.samples += acked.samples.len() as u64;
        totals.logs += acked.logs.len() as u64;
        totals.traces += acked.traces.len() as u64;
        println!(
            "kill9: iteration {}/{iterations}: acknowledged {} samples, {} log records, {} traces; killed",
            i + 1,
            acked.samples.len(),
            acked.logs.len(),
            acked.traces.len()
        );
        history.push(acked);
    }
    totals.temp_dirs_left += temp_dirs(&data);
    let mut server = start(&bin, &data, &config, &stderr);
    totals.starts += 1;
    totals.torn_tails += server.self_metric("didban_wal_torn_tail_repairs_total") as u64;
    check(&server, &history, since_ms, &mut totals);
    let status = server.terminate();
    assert!(status.success(), "clean shutdown after the loop failed: {status}");

    println!(
        "kill9 summary: {iterations} iterations in {:.0?}, seed {seed}\n\
         - starts: {} (all succeeded); kills: {} during ingest, {} during start-up\n\
         - acknowledged: {} samples, {} log records, {} traces (2 spans each)\n\
         - checks after restarts: {} samples, {} log records, {} traces found; 0 lost, 0 duplicated\n\
         - maintenance by the killed processes: {} head cuts, {} compactions, {} blocks deleted by retention\n\
         - torn WAL tails repaired at start: {}; block temp dirs left by a kill (cleaned at start): {}",
        began.elapsed(),
        totals.starts,
        totals.kills_in_ingest,
        totals.kills_in_startup,
        totals.samples,
        totals.logs,
        totals.traces,
        totals.samples_checked,
        totals.logs_checked,
        totals.traces_checked,
        totals.head_cuts,
        totals.compactions,
        totals.retention_deleted,
        totals.torn_tails,
        totals.temp_dirs_left,
    );
}
