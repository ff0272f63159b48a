//! Figures for docs/benchmarks.md ("Object storage"), not a check: the bench's two
//! dashboard queries over a day of node-exporter-like data, from local disk, from the
//! bucket with an empty cache (a new process on an empty data directory) and with a warm
//! cache. Run by hand:
//! `cargo nextest run -p didban-store --run-ignored only object_storage_figures --no-capture`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use didban_store::promql::{Engine, EngineOptions};
use didban_store::{BlockStorage, Db, DbOptions, Labels, S3Config, Sample, SeriesSamples};
use didban_testkit::garage::{Garage, REGION};
use didban_testkit::wait::{until, HANG};

const HOSTS: usize = 16;
const CPUS: usize = 4;
const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const HANDLERS: [&str; 4] = ["/", "/api", "/login", "/static"];
const LES: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const STEP_MS: i64 = 60_000;
const HOURS: i64 = 24;

fn options(dir: &Path, storage: BlockStorage) -> DbOptions {
    let mut o = DbOptions::new(dir);
    o.retention_time = Duration::ZERO;
    o.max_sample_age = Duration::from_secs(48 * 3600);
    o.block_storage = storage;
    o
}

fn s3(garage: &Garage) -> BlockStorage {
    BlockStorage::S3(S3Config {
        endpoint: garage.endpoint(0),
        bucket: garage.bucket.clone(),
        region: REGION.to_string(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone(),
        allow_http: true,
        cache_bytes: 1 << 30,
    })
}

/// One 2-hour chunk of the data set ending at `end`: CPU counters and a request-duration
/// histogram per host.
fn chunk(end: i64, c: i64) -> Vec<SeriesSamples> {
    let from = end - HOURS * 3600 * 1000 + c * 2 * 3600 * 1000;
    let mut out = Vec::new();
    for h in 0..HOSTS {
        let instance = format!("host{h:02}:9100");
        for cpu in 0..CPUS {
            for (m, mode) in MODES.iter().enumerate() {
                let cpu = cpu.to_string();
                let labels = Labels::from_pairs([
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", cpu.as_str()),
                    ("instance", instance.as_str()),
                    ("job", "node"),
                    ("mode", *mode),
                ]);
                out.push(counter(labels, from, (m + 1) as f64 * 0.1));
            }
        }
        for handler in HANDLERS {
            for (i, le) in LES.iter().enumerate() {
                let labels = Labels::from_pairs([
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("handler", handler),
                    ("instance", instance.as_str()),
                    ("job", "web"),
                    ("le", *le),
                ]);
                out.push(counter(labels, from, (i + 1) as f64));
            }
        }
    }
    out
}

fn counter(labels: Labels, from: i64, rate: f64) -> SeriesSamples {
    let mut samples = Vec::new();
    for k in 0..(2 * 3600 * 1000 / STEP_MS) {
        let t = from + k * STEP_MS;
        samples.push(Sample::new(t, rate * (t / 1000) as f64));
    }
    SeriesSamples::floats(labels, samples)
}

fn queries(end: i64) -> Vec<(&'static str, &'static str, i64, i64)> {
    vec![
        (
            "Q1 sum(rate) 6h@15s",
            "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
            end - 6 * 3600 * 1000,
            15_000,
        ),
        (
            "Q2 histogram_quantile 24h@60s",
            "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
            end - 24 * 3600 * 1000,
            60_000,
        ),
    ]
}

fn time_query(db: &Db, expr: &str, start: i64, end: i64, step: i64) -> Duration {
    let engine = Engine::new(EngineOptions::default());
    let t = Instant::now();
    engine.range_query(db, expr, start, end, step).unwrap();
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test]
#[ignore = "figures for docs/benchmarks.md, run by hand"]
async fn dashboard_queries_from_disk_and_from_the_bucket() {
    let garage = Garage::start();
    let end = didban_base::now_ms() / STEP_MS * STEP_MS;
    let local_dir = tempfile::tempdir().unwrap();
    let writer_dir = tempfile::tempdir().unwrap();
    let local = Db::open(options(local_dir.path(), BlockStorage::File)).unwrap();
    let writer = Db::open(options(writer_dir.path(), s3(&garage))).unwrap();
    for c in 0..HOURS / 2 {
        let data = chunk(end, c);
        local.append(data.clone()).await.unwrap();
        local.flush_head().unwrap();
        writer.append(data).await.unwrap();
        writer.flush_head().unwrap();
    }
    let stats = local.stats();
    println!(
        "data: {} blocks, {} samples, {} bytes of blocks",
        stats.blocks, stats.block_samples, stats.block_bytes
    );
    writer.close().await.unwrap();
    drop(writer);

    for (name, expr, start, step) in queries(end) {
        let _ = time_query(&local, expr, start, end, step);
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(time_query(&local, expr, start, end, step));
        }
        let local_ms = median(runs);

        let cold_dir = tempfile::tempdir().unwrap();
        let opened = Instant::now();
        let remote = Db::open(options(cold_dir.path(), s3(&garage))).unwrap();
        let open_time = opened.elapsed();
        let cold = time_query(&remote, expr, start, end, step);
        until("the cache to fill", HANG, || {
            let s = remote.stats().object_cache.unwrap();
            if s.loading == 0 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        });
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(time_query(&remote, expr, start, end, step));
        }
        let warm = median(runs);
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(local_ms),
            ms(cold),
            ms(warm),
            ms(open_time)
        );
    }
}
