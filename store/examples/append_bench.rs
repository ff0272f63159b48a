//! Append/cut/query benchmark for the metric engine (figures, not assertions).
//!
//! `cargo run -p didban-store --example append_bench -- [writers] [batches] [series_per_batch] [fsync]`
//! with fsync = batch | interval | off. Each writer appends `batches` requests of
//! `series_per_batch` series × 10 samples into a temporary directory, then the head is
//! written as a block and read back.

use std::sync::Arc;
use std::time::Instant;

use didban_store::{Db, DbOptions, FsyncMode, LabelMatcher, Labels, Queryable, Sample, SeriesSamples};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let writers = arg(1, 8);
    let batches = arg(2, 200);
    let series_per_batch = arg(3, 100);
    let fsync = match args.get(4).map(String::as_str) {
        Some("interval") => FsyncMode::Interval,
        Some("off") => FsyncMode::Off,
        _ => FsyncMode::Batch,
    };
    let dir = tempfile::tempdir()?;
    let mut options = DbOptions::new(dir.path());
    options.fsync = fsync;
    let db = Arc::new(Db::open(options)?);
    let t0 = 1_700_000_000_000i64;

    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let mut accepted = 0u64;
            for b in 0..batches {
                let mut batch = Vec::with_capacity(series_per_batch);
                for s in 0..series_per_batch {
                    let labels = Labels::from_pairs([
                        ("__name__", "bench_metric".to_string()),
                        ("writer", w.to_string()),
                        ("series", s.to_string()),
                    ]);
                    let mut samples = Vec::with_capacity(10);
                    for k in 0..10i64 {
                        let t = t0 + (b as i64 * 10 + k) * 1000;
                        samples.push(Sample::new(t, (s as f64) * 0.5 + k as f64));
                    }
                    batch.push(SeriesSamples::floats(labels, samples));
                }
                match db.append(batch).await {
                    Ok(r) => accepted += r.accepted,
                    Err(e) => eprintln!("append failed: {e}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for h in handles {
        accepted += h.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = db.stats();
    println!(
        "append: {accepted} samples in {secs:.2}s = {:.0} samples/s, {} requests, {} fsyncs ({:.3}s total), {} WAL bytes ({:.1} B/sample), head {} MB",
        accepted as f64 / secs,
        writers * batches,
        stats.wal_fsyncs,
        stats.wal_fsync_seconds_total,
        stats.wal_bytes_written,
        stats.wal_bytes_written as f64 / accepted.max(1) as f64,
        stats.head_bytes / 1_000_000
    );

    let started = Instant::now();
    db.flush_head()?;
    let stats = db.stats();
    println!(
        "block write: {:.2}s, {} bytes on disk ({:.2} B/sample)",
        started.elapsed().as_secs_f64(),
        stats.block_bytes,
        stats.block_bytes as f64 / accepted.max(1) as f64
    );

    let started = Instant::now();
    let one = db.select(
        &[
            LabelMatcher::equal("writer", "0"),
            LabelMatcher::equal("series", "7"),
        ],
        i64::MIN,
        i64::MAX,
    )?;
    let n: usize = one.iter().map(|s| s.samples.len()).sum();
    println!(
        "block query, 1 series: {n} samples in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    let all = db.select(
        &[LabelMatcher::equal("__name__", "bench_metric")],
        i64::MIN,
        i64::MAX,
    )?;
    let n: usize = all.iter().map(|s| s.samples.len()).sum();
    println!(
        "block query, all series: {n} samples in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    db.close().await?;
    Ok(())
}
