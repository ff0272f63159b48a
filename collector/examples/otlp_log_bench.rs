//! Log ingest over OTLP/HTTP into a real server, side by side with bare Tantivy indexing
//! the same records with the same schema; then search latency through the log API, and
//! peak RSS (figures, not assertions).
//!
//! `cargo run --release -p didban-collector --example otlp_log_bench -- [records] [per_request] [senders] [searches]`
//! (defaults 500000, 1000, 4, 50). The server runs in this process on free ports with a
//! temporary data directory and default settings (`fsync = batch`, 5 s log commits).
//! Records cover one hour ending now: 12 services, 4 severities, ~200-byte bodies, 4
//! attributes, half of them in a trace.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use didban_collector::config::Config;
use didban_collector::ingest::attributes::FutureLimit;
use didban_collector::ingest::logs::map::map_logs;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

const WORDS: [&str; 12] = [
    "checkout", "payment", "declined", "cache", "miss", "upstream", "timeout", "retry", "queue", "worker",
    "session", "expired",
];

fn kv(key: &str, value: V) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0);
    format!("127.0.0.1:{port}")
}

/// One request of `per` records numbered from `first`, spread over the hour before `now`.
fn request(first: u64, per: u64, total: u64, now: u64) -> ExportLogsServiceRequest {
    let mut by_service: Vec<Vec<LogRecord>> = vec![Vec::new(); 12];
    for i in first..first + per {
        let mut body = format!("request {i} ");
        let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        while body.len() < 200 {
            body.push_str(WORDS[(x % 12) as usize]);
            body.push(' ');
            x = x.rotate_left(5).wrapping_add(i);
        }
        let t = now - 3_600_000_000_000 + i * (3_600_000_000_000 / total.max(1));
        let severity = [9, 13, 17, 5][(i % 4) as usize];
        by_service[(i % 12) as usize].push(LogRecord {
            time_unix_nano: t,
            observed_time_unix_nano: t,
            severity_number: severity,
            body: Some(AnyValue {
                value: Some(V::StringValue(body)),
            }),
            attributes: vec![
                kv(
                    "http.method",
                    V::StringValue(["GET", "POST"][(i % 2) as usize].into()),
                ),
                kv("http.status_code", V::IntValue([200, 404, 500][(i % 3) as usize])),
                kv("user.id", V::StringValue(format!("u{}", i % 5000))),
                kv("attempt", V::IntValue((i % 5) as i64)),
            ],
            trace_id: if i % 2 == 0 {
                (i + 1).to_be_bytes().repeat(2)
            } else {
                Vec::new()
            },
            ..LogRecord::default()
        });
    }
    let mut resource_logs = Vec::new();
    for (s, records) in by_service.into_iter().enumerate() {
        if records.is_empty() {
            continue;
        }
        resource_logs.push(ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", V::StringValue(format!("service-{s}")))],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        });
    }
    ExportLogsServiceRequest { resource_logs }
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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let total = arg(1, 500_000);
    let per = arg(2, 1000).max(1);
    let senders = arg(3, 4).max(1);
    let searches = arg(4, 50).max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;

    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut body_bytes = 0u64;
    let mut first = 0;
    while first < total {
        let n = per.min(total - first);
        let r = request(first, n, total, now);
        for rl in &r.resource_logs {
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    if let Some(AnyValue {
                        value: Some(V::StringValue(b)),
                    }) = &lr.body
                    {
                        body_bytes += b.len() as u64;
                    }
                }
            }
        }
        bodies.push(r.encode_to_vec());
        first += n;
    }

    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().join("data"),
        http_addr: free_addr().parse()?,
        otlp_http_addr: free_addr().parse()?,
        otlp_grpc_addr: free_addr().parse()?,
        self_scrape_interval: Duration::ZERO,
        ..Config::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = runtime.spawn(didban_collector::server::run_until(config.clone(), stop_rx));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("http://{}/-/ready", config.http_addr))
        .send()
        .is_err()
    {
        if Instant::now() > deadline {
            anyhow::bail!("server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let ingest_started = Instant::now();
    let chunks: Vec<Vec<Vec<u8>>> = {
        let mut c: Vec<Vec<Vec<u8>>> = vec![Vec::new(); senders as usize];
        for (i, b) in bodies.iter().enumerate() {
            c[i % senders as usize].push(b.clone());
        }
        c
    };
    let url = format!("http://{}/v1/logs", config.otlp_http_addr);
    let mut threads = Vec::new();
    for chunk in chunks {
        let (client, url) = (client.clone(), url.clone());
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            for body in chunk {
                let r = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()?;
                if !r.status().is_success() {
                    anyhow::bail!("ingest answered {}", r.status());
                }
            }
            Ok(())
        }));
    }
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    }
    let ingest_s = ingest_started.elapsed().as_secs_f64();

    // Until every record is searchable (the next log commit after the last ack).
    let end_s = now as f64 / 1e9;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = client
            .get(format!("http://{}/api/logs/values", config.http_addr))
            .query(&[
                ("field", "severity_text".to_string()),
                ("start", (end_s - 3700.0).to_string()),
                ("end", end_s.to_string()),
                ("limit", "10".to_string()),
            ])
            .send()?
            .json::<serde_json::Value>()?;
        let mut n = 0;
        for b in v["data"].as_array().cloned().unwrap_or_default() {
            n += b["count"].as_u64().unwrap_or(0);
        }
        if n >= total {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("only {n} of {total} records became searchable");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let searchable_s = ingest_started.elapsed().as_secs_f64();

    // Bare Tantivy on the same records, mapped by the same code.
    let mut records = Vec::with_capacity(total as usize);
    for b in &bodies {
        let r = ExportLogsServiceRequest::decode(b.as_slice())?;
        records.extend(
            map_logs(
                &r,
                FutureLimit::new(now as i64, std::time::Duration::ZERO),
                i64::MIN,
            )
            .records,
        );
    }
    let bare_dir = tempfile::tempdir()?;
    let started = Instant::now();
    didban_store::logs::index_bare(bare_dir.path(), &records, config.logs.writer_memory_bytes)?;
    let bare_s = started.elapsed().as_secs_f64();
    let mb = body_bytes as f64 / 1e6;
    println!("{total} records in requests of {per}, {senders} senders, {mb:.1} MB of body");
    println!(
        "OTLP/HTTP into didban, acknowledged (fsynced): {:.0} records/s, {:.1} MB/s",
        total as f64 / ingest_s,
        mb / ingest_s
    );
    println!(
        "OTLP/HTTP into didban, searchable (committed): {:.0} records/s, {:.1} MB/s (includes up to one commit interval)",
        total as f64 / searchable_s,
        mb / searchable_s
    );
    println!(
        "bare tantivy, committed:                      {:.0} records/s, {:.1} MB/s (didban searchable / bare = {:.2})",
        total as f64 / bare_s,
        mb / bare_s,
        bare_s / searchable_s
    );

    let search = |query: &[(&str, String)]| -> anyhow::Result<serde_json::Value> {
        Ok(client
            .get(format!("http://{}/api/logs/search", config.http_addr))
            .query(query)
            .send()?
            .json()?)
    };
    let index_bytes = {
        let mut total_bytes = 0;
        let logs = config.data_dir.join("logs");
        for day in std::fs::read_dir(&logs)?.flatten() {
            for f in std::fs::read_dir(day.path())?.flatten() {
                total_bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        total_bytes
    };
    println!(
        "index bytes / body bytes: {:.2}",
        index_bytes as f64 / body_bytes as f64
    );
    let mut term = Vec::new();
    let mut phrase = Vec::new();
    let mut hist = Vec::new();
    for k in 0..searches {
        let t = Instant::now();
        search(&[
            ("query", format!("service:service-{}", k % 12)),
            ("start", (end_s - 3600.0).to_string()),
            ("end", end_s.to_string()),
        ])?;
        term.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        search(&[
            ("query", "\"payment declined\"".to_string()),
            ("start", (end_s - 86_400.0).to_string()),
            ("end", end_s.to_string()),
        ])?;
        phrase.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        client
            .get(format!("http://{}/api/logs/histogram", config.http_addr))
            .query(&[
                ("start", (end_s - 86_400.0).to_string()),
                ("end", end_s.to_string()),
                ("step", "5m".to_string()),
            ])
            .send()?
            .bytes()?;
        hist.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (name, v) in [
        ("term query, 1 h", term),
        ("phrase query, 1 day", phrase),
        ("histogram, 1 day, 5 min", hist),
    ] {
        let (p50, p99) = percentiles(v);
        println!("{name}: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
    let _ = stop_tx.send(true);
    runtime.block_on(server)??;
    println!(
        "peak RSS (server and client in one process) {:.0} MiB",
        peak_rss_mib()
    );
    Ok(())
}
