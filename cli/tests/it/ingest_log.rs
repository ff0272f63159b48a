//! The NATS JetStream ingest log (`[ingest_log]`) with a real nats-server: two processes
//! share a stream of two partitions; `a` receives every write (publishing to both
//! partitions, answering after JetStream's acknowledgement) and stores partition 0, `b`
//! stores partition 1. `b` is killed with SIGKILL at random moments while writes go on,
//! then `a` right after the last write; after both are back, every acknowledged log
//! record, span and sample is stored, and none twice. Exemplars travel with their series
//! to the consuming process and are stored there once.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use didban_testkit::nats::Nats;
use didban_testkit::rng::SeededRng as Rng;
use serde_json::Value;

use crate::crash_writers::{gauge_json, log_bodies, log_json, spawn_writers, trace_json};
use crate::process::{Didban, BIN};

/// Log services: records are spread over the partitions by service.
const SERVICES: u64 = 4;

/// Metric writers; writer `w` writes the series `ilog_<w>`.
const METRIC_WRITERS: u64 = 3;

/// The configuration of the process consuming `partition`: short block and segment
/// sizes, so head cuts, WAL truncations and log commits happen under the kills.
fn config(dir: &Path, nats: &Nats, partition: u32) -> String {
    let path = dir.join(format!("didban-{partition}.toml"));
    let text = format!(
        r#"
[storage]
block_duration = "2s"
maintenance_interval = "250ms"
wal_segment_size = "64KiB"

[traces]
block_duration = "2s"

[logs]
commit_interval = "150ms"

[host_metrics]
enabled = false

[ingest_log]
url = "{}"
partitions = 2
partition = {partition}
"#,
        nats.url()
    );
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().to_string()
}

#[test]
fn acknowledged_batches_are_stored_once_across_kill_9_of_the_consumers() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (config_a, config_b) = (config(dir.path(), &nats, 0), config(dir.path(), &nats, 1));
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = Didban::start(BIN, &data_a, &["--config", &config_a]);
    let mut b = Didban::start(BIN, &data_b, &["--config", &config_b]);

    let running = Arc::new(AtomicBool::new(true));
    let logs_acked = Arc::new(Mutex::new(Vec::new()));
    let spans_acked = Arc::new(Mutex::new(Vec::new()));
    let samples_acked = Arc::new(Mutex::new(Vec::new()));
    let mut threads = spawn_writers(
        format!("http://{}/v1/logs", a.otlp_http),
        2,
        Arc::new(|n, t| log_json(&format!("ilog{}", n % SERVICES), n, t)),
        running.clone(),
        logs_acked.clone(),
    );
    threads.extend(spawn_writers(
        format!("http://{}/v1/traces", a.otlp_http),
        2,
        Arc::new(|n, t| trace_json("ilog", n, t)),
        running.clone(),
        spans_acked.clone(),
    ));
    threads.extend(spawn_writers(
        format!("http://{}/v1/metrics", a.otlp_http),
        METRIC_WRITERS,
        Arc::new(|n, t| gauge_json("ilog", "ilog_", METRIC_WRITERS, n, t)),
        running.clone(),
        samples_acked.clone(),
    ));

    // Kill the consumer of partition 1 three times at random moments while `a` keeps
    // acknowledging writes; the seed is printed so a failing run can be repeated.
    let seed = std::env::var("INGEST_LOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| didban_testkit::now_ms() as u64);
    eprintln!("INGEST_LOG_SEED={seed}");
    let mut rng = Rng::new(seed);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400 + rng.below(1200)));
        b.kill9();
        std::thread::sleep(Duration::from_millis(rng.below(800)));
        b = Didban::start(BIN, &data_b, &["--config", &config_b]);
    }
    std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
    running.store(false, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    // `a` dies with whatever of partition 0 it has not stored yet still in the stream.
    a.kill9();
    let a = Didban::start(BIN, &data_a, &["--config", &config_a]);

    let logs: Vec<u64> = logs_acked.lock().unwrap().clone();
    let spans: Vec<u64> = spans_acked.lock().unwrap().clone();
    let samples: Vec<u64> = samples_acked.lock().unwrap().clone();
    assert!(
        logs.len() > 50 && spans.len() > 50 && samples.len() > 50,
        "too few writes acknowledged: {} logs, {} traces, {} samples",
        logs.len(),
        spans.len(),
        samples.len()
    );

    // Both consumers catch up with the stream; then everything is there exactly once.
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let bodies = loop {
        let mut bodies = Vec::new();
        for server in [&a, &b] {
            for s in 0..SERVICES {
                bodies.extend(log_bodies(&client, server, &format!("ilog{s}")));
            }
        }
        let found: HashSet<&String> = bodies.iter().collect();
        let missing = logs
            .iter()
            .filter(|n| !found.contains(&format!("ilog{}log{n}", *n % SERVICES)));
        if missing.count() == 0 || Instant::now() > deadline {
            break bodies;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut seen: HashMap<&String, usize> = HashMap::new();
    for body in &bodies {
        *seen.entry(body).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "log records stored twice: {twice:?}");
    for n in &logs {
        let body = format!("ilog{}log{n}", n % SERVICES);
        assert!(seen.contains_key(&body), "acknowledged log record {body} lost");
    }

    for n in &spans {
        let mut found = 0;
        for server in [&a, &b] {
            let reply: Value = client
                .get(format!("http://{}/api/traces/{:032x}", server.http, n + 1))
                .send()
                .unwrap()
                .json()
                .unwrap_or(Value::Null);
            found += reply["data"][0]["spans"].as_array().map_or(0, |s| s.len());
        }
        assert_eq!(
            found, 2,
            "acknowledged trace {n}: {found} spans stored (2 written)"
        );
    }

    // Each metric writer's samples have distinct timestamps: the stored count per series,
    // summed over both processes, is what was acknowledged (and more only for a write that
    // reached the stream but whose answer did not reach the writer, which cannot happen
    // here: the receiver was never killed during the writes).
    let now_s = didban_testkit::now_ms() as f64 / 1000.0;
    for w in 0..METRIC_WRITERS {
        let acked = samples.iter().filter(|n| *n % METRIC_WRITERS == w).count() as f64;
        let mut stored = 0.0;
        for server in [&a, &b] {
            let reply = server.query(&format!("count_over_time(ilog_{w}[10m])"), now_s);
            if let Some(v) = reply["data"]["result"][0]["value"][1].as_str() {
                stored += v.parse::<f64>().unwrap();
            }
        }
        assert_eq!(
            stored, acked,
            "series ilog_{w}: {stored} samples stored, {acked} acknowledged"
        );
    }
}

#[test]
fn without_jetstream_writes_get_503_and_queries_go_on() {
    // A port nothing listens on: the ingest log cannot store anything.
    let reserved = didban_testkit::ports::reserve();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("didban.toml");
    let text = format!(
        "[host_metrics]\nenabled = false\n[ingest_log]\nurl = \"nats://127.0.0.1:{}\"\npublish_timeout = \"1s\"\n",
        reserved.port()
    );
    std::fs::write(&path, text).unwrap();
    let server = Didban::start(
        BIN,
        &dir.path().join("data"),
        &["--config", path.to_str().unwrap()],
    );
    let client = reqwest::blocking::Client::new();
    let reply = client
        .post(format!("http://{}/v1/logs", server.otlp_http))
        .header("content-type", "application/json")
        .body(log_json("down", 1, didban_testkit::now_nanos()))
        .send()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 503);
    let text = reply.text().unwrap();
    assert!(
        text.contains("ingest log"),
        "the error names the ingest log: {text}"
    );
    let up = server.query("vector(1)", didban_testkit::now_ms() as f64 / 1000.0);
    assert_eq!(up["status"], "success", "queries go on: {up}");
    drop(reserved);
}

#[test]
fn a_backlog_larger_than_one_fetch_is_stored_whole() {
    // Partition 1 has no consumer while `a` publishes: its backlog grows past what one
    // fetch may bring (8 MiB), so `b`, started afterwards, reads it in several fetches
    // that each end at the byte budget.
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (config_a, config_b) = (config(dir.path(), &nats, 0), config(dir.path(), &nats, 1));
    let a = Didban::start(BIN, &dir.path().join("a"), &["--config", &config_a]);
    let client = reqwest::blocking::Client::new();
    let filler = "x".repeat(100_000);
    let requests = 400u64;
    for n in 0..requests {
        let body = log_json(&format!("big{}", n % SERVICES), n, didban_testkit::now_nanos()).replace(
            &format!("\"big{}log{n}\"", n % SERVICES),
            &format!("\"big{}log{n} {filler}\"", n % SERVICES),
        );
        let reply = client
            .post(format!("http://{}/v1/logs", a.otlp_http))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert!(reply.status().is_success(), "request {n}: {}", reply.status());
    }
    let b = Didban::start(BIN, &dir.path().join("b"), &["--config", &config_b]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut found = 0;
        for server in [&a, &b] {
            for s in 0..SERVICES {
                found += log_bodies(&client, server, &format!("big{s}")).len() as u64;
            }
        }
        if found == requests {
            break;
        }
        assert!(found < requests, "{found} records stored, {requests} sent");
        assert!(
            Instant::now() < deadline,
            "{found} of {requests} records stored in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An OTLP/HTTP JSON body: the monotonic sum `ex_orders` of job `job` at `time_ms` with
/// one exemplar pointing at trace `n + 1`.
fn sum_with_exemplar(job: &str, n: u64, time_ms: i64) -> String {
    let ns = i128::from(time_ms) * 1_000_000;
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{job}"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"ex_orders","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":{n},"exemplars":[{{"timeUnixNano":"{ns}","asDouble":1,"traceId":"{:032x}","spanId":"{:016x}"}}]}}]}}}}]}}]}}]}}"#,
        n + 1,
        n + 1
    )
}

/// The trace ids of the exemplars `server` answers for `ex_orders_total` over the last hour.
fn exemplar_traces(client: &reqwest::blocking::Client, server: &Didban) -> Vec<String> {
    let now = didban_testkit::now_ms() / 1000;
    let reply: Value = client
        .get(format!("http://{}/api/v1/query_exemplars", server.http))
        .query(&[
            ("query", "ex_orders_total".to_string()),
            ("start", (now - 3600).to_string()),
            ("end", (now + 60).to_string()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut out = Vec::new();
    for series in reply["data"].as_array().cloned().unwrap_or_default() {
        for e in series["exemplars"].as_array().cloned().unwrap_or_default() {
            out.push(e["labels"]["trace_id"].as_str().unwrap_or_default().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn exemplars_travel_with_their_series_and_are_stored_once_by_the_consuming_ingester() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (config_a, config_b) = (config(dir.path(), &nats, 0), config(dir.path(), &nats, 1));
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = Didban::start(BIN, &data_a, &["--config", &config_a]);
    let mut b = Didban::start(BIN, &data_b, &["--config", &config_b]);
    // Every write goes to `a`; eight jobs' series spread over both partitions.
    let client = reqwest::blocking::Client::new();
    let t0 = didban_testkit::now_ms() - 60_000;
    let write = |range: std::ops::Range<u64>| {
        for n in range {
            let reply = client
                .post(format!("http://{}/v1/metrics", a.otlp_http))
                .header("content-type", "application/json")
                .body(sum_with_exemplar(
                    &format!("job{}", n % 8),
                    n,
                    t0 + n as i64 * 1000,
                ))
                .send()
                .unwrap();
            assert!(reply.status().is_success(), "write {n}: {}", reply.status());
        }
    };
    // Waits until `a` and `b` together hold the exemplars of writes `0..count`, each once;
    // answers how many `b` holds.
    let await_stored_once = |b: &Didban, count: u64| {
        let mut want: Vec<String> = (0..count).map(|n| format!("{:032x}", n + 1)).collect();
        want.sort();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut all = exemplar_traces(&client, &a);
            let on_b = exemplar_traces(&client, b);
            all.extend(on_b.iter().cloned());
            all.sort();
            if all == want {
                return on_b.len();
            }
            assert!(all.len() <= want.len(), "exemplars stored twice: {all:?}");
            assert!(
                Instant::now() < deadline,
                "{} of {count} exemplars stored",
                all.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let count = 40u64;
    write(0..count);
    let on_b = await_stored_once(&b, count);
    assert!(
        on_b > 0 && on_b < count as usize,
        "the consumer of partition 1 stored its series' exemplars ({on_b} of {count})"
    );
    // Restarted over its data directory, `b` has them from its WAL and stores none again
    // (checked once eight more writes, one per job, are stored after the restart).
    b.kill9();
    b = Didban::start(BIN, &data_b, &["--config", &config_b]);
    write(count..count + 8);
    await_stored_once(&b, count + 8);
}
