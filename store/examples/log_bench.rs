//! Log store benchmark (figures, not assertions): ingest through the store against bare
//! Tantivy indexing the same documents with the same schema, index size, search latency
//! and peak RSS.
//!
//! `cargo run --release -p didban-store --example log_bench -- [records] [batch] [writers] [fsync] [searches] [body_bytes]`
//! (defaults 200000, 1000, 4, batch, 50, 200). Records span one day (the same UTC day), 12
//! services, 4 severities, bodies of about `body_bytes` bytes with 5 attributes. Prints records/s and MB/s
//! of body for both, their ratio, index bytes / raw bytes, p50/p99 of a term query in a
//! 1-hour window, a phrase query over the day and a severity histogram over the day, and
//! the process's peak RSS.

use std::sync::Arc;
use std::time::Instant;

use didban_store::logs::{LogOptions, LogQuery, LogRecord, LogSchema, LogStore};
use didban_store::FsyncMode;
use serde_json::{Map, Value};

const DAY: i64 = 86_400 * 1_000_000_000;
const T0: i64 = 1_764_115_200_000_000_000; // 2025-11-26T00:00:00Z
const WORDS: [&str; 16] = [
    "payment",
    "declined",
    "order",
    "cart",
    "user",
    "session",
    "timeout",
    "retry",
    "upstream",
    "cache",
    "miss",
    "connection",
    "reset",
    "queue",
    "worker",
    "latency",
];

fn record(i: u64, n: u64, body_bytes: usize) -> LogRecord {
    let severities = [("INFO", 9), ("WARN", 13), ("ERROR", 17), ("DEBUG", 5)];
    let (sev, num) = severities[(i % 4) as usize];
    let mut body = format!("request {i} ");
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    while body.len() < body_bytes {
        body.push_str(WORDS[(x % 16) as usize]);
        body.push(' ');
        x = x.rotate_left(7).wrapping_add(i);
    }
    let mut attributes = Map::new();
    attributes.insert(
        "http.method".into(),
        Value::from(["GET", "POST"][(i % 2) as usize]),
    );
    attributes.insert(
        "http.status_code".into(),
        Value::from([200, 404, 500][(i % 3) as usize]),
    );
    attributes.insert("user.id".into(), Value::from(format!("u{}", i % 5000)));
    attributes.insert("region".into(), Value::from(["eu", "us", "ap"][(i % 3) as usize]));
    attributes.insert("attempt".into(), Value::from(i % 5));
    let t = T0 + (i as i64) * (DAY / n.max(1) as i64);
    LogRecord {
        timestamp_unix_nano: t,
        observed_unix_nano: t,
        severity_number: num,
        severity_text: sev.into(),
        service: format!("service-{}", i % 12),
        body,
        attributes,
        resource: Map::new(),
        trace_id: format!("{:032x}", i / 4 + 1),
        span_id: format!("{:016x}", i + 1),
        scope_name: String::new(),
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmHWM:") {
            let kb: f64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0.0);
            return kb / 1024.0;
        }
    }
    0.0
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let n = arg(1, 200_000);
    let batch = arg(2, 1000).max(1);
    let writers = arg(3, 4).max(1);
    let fsync = match args.get(4).map(String::as_str) {
        Some("off") => FsyncMode::Off,
        Some("interval") => FsyncMode::Interval,
        _ => FsyncMode::Batch,
    };
    let searches = arg(5, 50).max(1) as usize;
    let body_size = arg(6, 200).max(1) as usize;
    let mut raw_bytes = 0u64;
    let mut body_bytes = 0u64;
    for i in 0..n {
        let r = record(i, n, body_size);
        body_bytes += r.body.len() as u64;
        raw_bytes += serde_json::to_vec(&r)?.len() as u64;
    }

    // Bare Tantivy, same schema and documents, one writer with the store's memory budget.
    let bare_dir = tempfile::tempdir()?;
    let schema = LogSchema::new();
    let started = Instant::now();
    {
        let index = tantivy::Index::create_in_dir(bare_dir.path(), schema.schema())?;
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 64 * 1024 * 1024)?;
        for i in 0..n {
            writer.add_document(schema.document(&record(i, n, body_size), i))?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
    }
    let bare_s = started.elapsed().as_secs_f64();

    // The store: `writers` concurrent appenders of `batch` records, then one commit.
    let dir = tempfile::tempdir()?;
    let mut options = LogOptions::new(dir.path());
    options.fsync = fsync;
    options.retention_days = 0;
    let store = Arc::new(LogStore::open(options)?);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut i = w * batch;
            while i < n {
                let mut list = Vec::with_capacity(batch as usize);
                for j in i..(i + batch).min(n) {
                    list.push(record(j, n, body_size));
                }
                if let Err(e) = store.append(list).await {
                    eprintln!("append failed: {e}");
                    return;
                }
                i += writers * batch;
            }
        }));
    }
    for h in handles {
        h.await?;
    }
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.commit()).await??;
    let store_s = started.elapsed().as_secs_f64();
    let index_bytes = dir_bytes(&dir.path().join("logs"));

    let mb = body_bytes as f64 / 1e6;
    println!("records {n}, body {mb:.1} MB, raw JSON {:.1} MB, fsync {fsync:?}, {writers} writers × {batch}/append", raw_bytes as f64 / 1e6);
    println!(
        "bare tantivy: {:.0} records/s, {:.1} MB/s of body",
        n as f64 / bare_s,
        mb / bare_s
    );
    println!(
        "didban store: {:.0} records/s, {:.1} MB/s of body ({:.2}× bare)",
        n as f64 / store_s,
        mb / store_s,
        bare_s / store_s
    );
    println!(
        "index bytes / raw JSON bytes: {:.2}",
        index_bytes as f64 / raw_bytes as f64
    );

    let query = |text: &str, start: i64, end: i64| LogQuery {
        query: text.to_string(),
        trace_id: None,
        start_unix_nano: start,
        end_unix_nano: end,
        limit: 100,
        cursor: None,
    };
    let mut term = Vec::new();
    let mut phrase = Vec::new();
    let mut hist = Vec::new();
    for k in 0..searches {
        let hour = (k as i64 % 24) * 3_600_000_000_000;
        let q = query(
            &format!("service:service-{}", k % 12),
            T0 + hour,
            T0 + hour + 3_600_000_000_000,
        );
        let t = Instant::now();
        store.search(&q)?;
        term.push(t.elapsed().as_secs_f64() * 1e3);
        let q = query("\"payment declined\"", T0, T0 + DAY - 1);
        let t = Instant::now();
        store.search(&q)?;
        phrase.push(t.elapsed().as_secs_f64() * 1e3);
        let q = query("", T0, T0 + DAY - 1);
        let t = Instant::now();
        store.histogram(&q, 300_000)?;
        hist.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (name, v) in [
        ("term query, 1 h window", term),
        ("phrase query, 1 day", phrase),
        ("histogram by severity, 1 day, 5 min buckets", hist),
    ] {
        let (p50, p99) = percentiles(v);
        println!("{name}: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
    store.close().await?;
    println!("peak RSS {:.0} MiB", peak_rss_mib());
    Ok(())
}
