//! Trace store benchmark (figures, not assertions): span ingest, block writing, and
//! trace-by-id lookups through the bloom filters.
//!
//! `cargo run --release -p didban-store --example span_bench -- [spans] [batch] [writers] [fsync] [lookups] [blocks]`
//! (defaults 1000000, 1000, 4, batch, 200, 4). Traces of 8 spans over 20 services; the
//! spans are written as `blocks` blocks, then random traces are looked up by id. Prints
//! spans/s appended, seconds to write the blocks, bytes per span, p50/p99 of a lookup (from
//! blocks) and of a service search, and the peak RSS.

use std::sync::Arc;
use std::time::Instant;

use didban_store::traces::{kind, Span, TraceOptions, TraceQuery, TraceStore};
use didban_store::FsyncMode;
use serde_json::{Map, Value};

const T0: i64 = 1_764_115_200_000_000_000;

fn span(i: u64) -> Span {
    let trace = i / 8 + 1;
    let pos = i % 8;
    let mut attributes = Map::new();
    attributes.insert("http.method".into(), Value::from("GET"));
    attributes.insert(
        "http.status_code".into(),
        Value::from([200, 500][(i % 2) as usize]),
    );
    attributes.insert(
        "http.route".into(),
        Value::from(format!("/api/v1/items/{}", i % 50)),
    );
    let mut resource = Map::new();
    resource.insert("service.name".into(), Value::from(format!("svc-{}", trace % 20)));
    resource.insert("host.name".into(), Value::from(format!("host-{}", trace % 7)));
    Span {
        trace_id: format!("{:032x}", trace.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        span_id: format!("{:016x}", i + 1),
        parent_span_id: if pos == 0 {
            String::new()
        } else {
            format!("{:016x}", i - pos + 1)
        },
        trace_state: String::new(),
        name: format!("op-{}", pos),
        kind: if pos == 0 { kind::SERVER } else { kind::CLIENT },
        service: format!("svc-{}", trace % 20),
        start_unix_nano: T0 + i as i64 * 1_000_000,
        duration_nano: 1_000_000 + (i % 1000) as i64 * 1000,
        status_code: 0,
        status_message: String::new(),
        attributes,
        resource: resource.into(),
        scope_name: "bench".into(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
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

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmHWM:") {
            return v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .unwrap_or(0.0)
                / 1024.0;
        }
    }
    0.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let n = arg(1, 1_000_000);
    let batch = arg(2, 1000).max(1);
    let writers = arg(3, 4).max(1);
    let fsync = match args.get(4).map(String::as_str) {
        Some("off") => FsyncMode::Off,
        Some("interval") => FsyncMode::Interval,
        _ => FsyncMode::Batch,
    };
    let lookups = arg(5, 200).max(1);
    let blocks = arg(6, 4).max(1);
    let dir = tempfile::tempdir()?;
    let mut options = TraceOptions::new(dir.path());
    options.fsync = fsync;
    options.retention_time = std::time::Duration::ZERO;
    options.head_memory_bytes = u64::MAX;
    let store = Arc::new(TraceStore::open(options)?);
    let per_block = n.div_ceil(blocks);
    let mut append_s = 0.0;
    let mut write_s = 0.0;
    for b in 0..blocks {
        let (from, to) = (b * per_block, ((b + 1) * per_block).min(n));
        let started = Instant::now();
        let mut handles = Vec::new();
        for w in 0..writers {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut i = from + w * batch;
                while i < to {
                    let mut list = Vec::with_capacity(batch as usize);
                    for j in i..(i + batch).min(to) {
                        list.push(span(j));
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
        append_s += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.flush_head()).await??;
        write_s += started.elapsed().as_secs_f64();
    }
    let stats = store.stats();
    println!(
        "spans {n}, fsync {fsync:?}, {writers} writers × {batch}/append, {} blocks",
        stats.blocks
    );
    println!("ingest: {:.0} spans/s", n as f64 / append_s);
    println!(
        "block writing: {write_s:.2} s, {:.1} bytes/span",
        stats.block_bytes as f64 / n as f64
    );
    let mut by_id = Vec::new();
    for k in 0..lookups {
        let i = k.wrapping_mul(2_654_435_761) % n;
        let id = span(i).trace_id;
        let s = store.clone();
        let started = Instant::now();
        let spans = tokio::task::spawn_blocking(move || s.trace(&id)).await??;
        by_id.push(started.elapsed().as_secs_f64() * 1e3);
        if spans.is_empty() {
            eprintln!("trace of span {i} not found");
        }
    }
    let (p50, p99) = percentiles(by_id);
    println!("trace by id: p50 {p50:.1} ms, p99 {p99:.1} ms");
    let mut search = Vec::new();
    for k in 0..10u64 {
        let q = TraceQuery {
            service: Some(format!("svc-{}", k % 20)),
            start_unix_nano: T0,
            end_unix_nano: i64::MAX,
            limit: 20,
            ..TraceQuery::default()
        };
        let s = store.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || s.find_traces(&q)).await??;
        search.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99) = percentiles(search);
    println!("search by service (20 traces): p50 {p50:.0} ms, p99 {p99:.0} ms");
    store.close().await?;
    println!("peak RSS {:.0} MiB", peak_rss_mib());
    Ok(())
}
