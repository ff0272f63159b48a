//! A 30-day query at a 1 h step with and without downsampling (figures for
//! docs/benchmarks.md, not assertions).
//!
//! `cargo run --release -p didban-store --example downsample_bench -- [series] [interval_s] [days]`
//! writes `series` counters and as many gauges (default 100 each, a sample every 15 s, 30
//! days) through the head with 1-day blocks, maintenance once a simulated day (5-minute
//! blocks after 1 day, 1-hour blocks after 2), then runs each query 5 times downsampled
//! (`max_source_resolution` auto) and forced raw, and prints samples read, median latency
//! and the disk each resolution takes.

use std::time::{Duration, Instant};

use didban_store::promql::{Engine, EngineOptions, QueryResult};
use didban_store::{Db, DbOptions, FsyncMode, Labels, Sample, SeriesSamples};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_699_999_200_000;

/// A deterministic value in `0..m`.
fn noise(t: i64, salt: u64, m: u64) -> u64 {
    let mut x = (t as u64) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % m
}

fn labels(name: &str, i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", name),
        ("instance", &format!("host-{i:04}")),
        ("job", "node"),
    ])
}

/// Median wall time of 5 runs of `q`, and the last result.
fn timed(
    engine: &Engine,
    db: &Db,
    q: &str,
    start: i64,
    end: i64,
) -> Result<(Duration, QueryResult), Box<dyn std::error::Error>> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let t = Instant::now();
        let r = engine.range_query(db, q, start, end, HOUR)?;
        times.push(t.elapsed());
        last = Some(r);
    }
    times.sort();
    let result = last.ok_or("no run")?;
    Ok((times[2], result))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: i64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let series = arg(1, 100) as usize;
    let interval = arg(2, 15) * 1000;
    let days = arg(3, 30);
    let dir = tempfile::tempdir()?;
    let mut o = DbOptions::new(dir.path());
    o.fsync = FsyncMode::Off;
    o.block_duration = Duration::from_secs(86_400);
    o.max_future = Duration::ZERO;
    o.retention_time = Duration::ZERO;
    o.downsample_5m_after = Duration::from_secs(86_400);
    o.downsample_1h_after = Duration::from_secs(2 * 86_400);
    let db = Db::open(o)?;
    let counter_labels: Vec<Labels> = (0..series).map(|i| labels("requests_total", i)).collect();
    let gauge_labels: Vec<Labels> = (0..series).map(|i| labels("temperature", i)).collect();
    let mut counters = vec![0.0f64; series];
    let started = Instant::now();
    for h in 0..days * 24 {
        let mut batch = Vec::with_capacity(2 * series);
        for i in 0..series {
            let mut c = Vec::new();
            let mut g = Vec::new();
            let mut t = h * HOUR;
            while t < (h + 1) * HOUR {
                counters[i] += 1.0 + noise(t, i as u64, 20) as f64;
                c.push(Sample::new(T0 + t, counters[i]));
                let phase = 2.0 * std::f64::consts::PI * (t as f64 / DAY as f64) + i as f64;
                g.push(Sample::new(
                    T0 + t,
                    40.0 + 10.0 * phase.sin() + noise(t, 7 + i as u64, 100) as f64 / 100.0,
                ));
                t += interval;
            }
            batch.push(SeriesSamples::floats(counter_labels[i].clone(), c));
            batch.push(SeriesSamples::floats(gauge_labels[i].clone(), g));
        }
        db.append(batch).await?;
        if h % 24 == 23 {
            db.maintain(T0 + (h + 1) * HOUR)?;
        }
    }
    db.flush_head()?;
    // A round writes a few downsampled blocks at most: run rounds until none is due.
    loop {
        let before = db.stats().blocks_downsampled;
        db.maintain(T0 + (days + 3) * DAY)?;
        if db.stats().blocks_downsampled == before {
            break;
        }
    }
    let s = db.stats();
    let samples = 2 * series as i64 * days * DAY / interval;
    println!(
        "{} series × {days} days every {} s = {samples} samples written, cut, compacted and downsampled in {:.1} s",
        2 * series,
        interval / 1000,
        started.elapsed().as_secs_f64()
    );
    let raw_bytes = s.block_bytes - s.block_bytes_5m - s.block_bytes_1h;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("\n| resolution | blocks | disk | bytes per raw sample |\n|---|---|---|---|");
    for (name, blocks, bytes) in [
        ("raw", s.blocks - s.blocks_5m - s.blocks_1h, raw_bytes),
        ("5m", s.blocks_5m, s.block_bytes_5m),
        ("1h", s.blocks_1h, s.block_bytes_1h),
    ] {
        println!(
            "| {name} | {blocks} | {:.1} MiB | {:.3} |",
            mib(bytes),
            bytes as f64 / samples as f64
        );
    }
    let auto = Engine::new(EngineOptions::default());
    let raw = Engine::new(EngineOptions {
        max_source_resolution: Some(Duration::ZERO),
        ..EngineOptions::default()
    });
    let (start, end) = (T0 + DAY, T0 + days * DAY);
    println!("\n| query (30 d, 1 h step) | read | resolution | blocks | samples read | median latency |\n|---|---|---|---|---|---|");
    for q in [
        "sum(rate(requests_total[1h]))",
        "sum(rate(requests_total[4h]))",
        "avg(avg_over_time(temperature[1h]))",
        "max(max_over_time(temperature[1h]))",
    ] {
        for (mode, engine) in [("downsampled", &auto), ("raw", &raw)] {
            let (median, r) = timed(engine, &db, q, start, end)?;
            println!(
                "| `{q}` | {mode} | {} | {} | {} | {:.1} ms |",
                if r.stats.resolution_ms == 0 {
                    "raw".to_string()
                } else {
                    format!("{} min", r.stats.resolution_ms / 60_000)
                },
                r.stats.blocks_raw + r.stats.blocks_downsampled,
                r.stats.samples_loaded,
                median.as_secs_f64() * 1000.0
            );
        }
    }
    db.close().await?;
    Ok(())
}
