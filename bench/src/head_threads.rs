//! `--mode head-threads`: how the metric database's append path scales with appender threads.
//!
//! In-process, no HTTP: for each thread count the database is opened fresh in a temp dir
//! (WAL fsync off, so the head and the WAL's encoding are measured rather than the disk),
//! and that many threads append disjoint series — thread `t` owns the series whose number
//! is `t` modulo the thread count — in requests of `--batch-hosts` × 500 series ×
//! `--batch-samples` samples, every series in time order. The batches are built before the
//! clock starts. Printed: samples/s in all and per thread, and the speedup over one thread.
//! On this 2-core machine the figure that matters is 2 threads ≈ 2× one; past the cores,
//! threads only share them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use didban_store::{Db, DbOptions, FsyncMode, Labels, Sample, SeriesLimits, SeriesSamples};

use crate::report::Machine;
use crate::Args;

/// Series per simulated host in this mode.
const SERIES_PER_HOST: usize = 500;
/// Distinct metric names the series are spread over.
const METRICS: usize = 50;

/// One thread count's result.
struct Run {
    threads: usize,
    samples: u64,
    elapsed: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.samples as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the head-threads mode and prints its table.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let machine = Machine::detect(&args.prometheus_bin, &args.victoriametrics_bin);
    let series = args.hosts * SERIES_PER_HOST;
    let interval_ms = i64::try_from(args.interval.as_millis()).context("interval")?;
    let samples_per_series = (args.span.as_millis() / args.interval.as_millis().max(1)).max(1) as usize;
    println!(
        "head-threads: {series} series × {samples_per_series} samples, requests of {} series × {} samples, fsync off",
        args.batch_hosts * SERIES_PER_HOST,
        args.batch_samples
    );
    println!(
        "machine: {} ({} CPUs, {} GiB), revision {}",
        machine.cpu, machine.cores, machine.ram_gib, machine.git_revision
    );
    let mut runs = Vec::new();
    for &threads in &args.threads {
        let run = run_one(args, threads.max(1), series, samples_per_series, interval_ms)?;
        println!(
            "  {:>2} threads: {:>12.0} samples/s ({:.0} per thread), {:.2} s",
            run.threads,
            run.per_second(),
            run.per_second() / run.threads as f64,
            run.elapsed.as_secs_f64()
        );
        runs.push(run);
    }
    print_table(&runs);
    Ok(())
}

fn print_table(runs: &[Run]) {
    let Some(first) = runs.first() else {
        return;
    };
    let base = first.per_second();
    println!(
        "\n| threads | samples/s | per thread | speedup over {} |",
        first.threads
    );
    println!("|---|---|---|---|");
    for r in runs {
        println!(
            "| {} | {:.2} M | {:.2} M | {:.2}× |",
            r.threads,
            r.per_second() / 1e6,
            r.per_second() / r.threads as f64 / 1e6,
            r.per_second() / base
        );
    }
}

/// The labels of series number `i`.
fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("bench_metric_{}", i % METRICS)),
        ("instance", format!("host-{}:9100", i / SERIES_PER_HOST)),
        ("series", i.to_string()),
    ])
}

/// The requests thread `t` of `threads` sends, in order.
fn batches_for(
    t: usize,
    threads: usize,
    args: &Args,
    series: usize,
    samples_per_series: usize,
    t0: i64,
    interval_ms: i64,
) -> Vec<Vec<SeriesSamples>> {
    let mine: Vec<(usize, Labels)> = (0..series)
        .filter(|i| i % threads == t)
        .map(|i| (i, labels(i)))
        .collect();
    let per_request = (args.batch_hosts * SERIES_PER_HOST).max(1);
    let step = args.batch_samples.max(1);
    let mut out = Vec::new();
    let mut k0 = 0;
    while k0 < samples_per_series {
        let k1 = (k0 + step).min(samples_per_series);
        for chunk in mine.chunks(per_request) {
            let mut batch = Vec::with_capacity(chunk.len());
            for (i, l) in chunk {
                let mut samples = Vec::with_capacity(k1 - k0);
                for k in k0..k1 {
                    let t = t0 + k as i64 * interval_ms;
                    samples.push(Sample::new(t, (*i as f64) + k as f64));
                }
                batch.push(SeriesSamples {
                    labels: l.clone(),
                    samples,
                    histograms: Vec::new(),
                });
            }
            out.push(batch);
        }
        k0 = k1;
    }
    out
}

fn run_one(
    args: &Args,
    threads: usize,
    series: usize,
    samples_per_series: usize,
    interval_ms: i64,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let mut options = DbOptions::new(dir.path());
    options.fsync = FsyncMode::Off;
    options.head_memory_bytes = 0;
    options.limits = SeriesLimits {
        max_series: 0,
        max_series_per_metric: 0,
        ..SeriesLimits::default()
    };
    let db = Arc::new(Db::open(options).context("opening the database")?);
    let span_ms = samples_per_series as i64 * interval_ms;
    let t0 = didban_base::now_ms() - span_ms;
    let mut work = Vec::with_capacity(threads);
    for t in 0..threads {
        work.push(batches_for(
            t,
            threads,
            args,
            series,
            samples_per_series,
            t0,
            interval_ms,
        ));
    }
    let start = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    for batches in work {
        let db = db.clone();
        handles.push(std::thread::spawn(move || append_all(&db, batches)));
    }
    let mut samples = 0;
    for h in handles {
        samples += h
            .join()
            .map_err(|_| anyhow::anyhow!("an appender thread panicked"))??;
    }
    let elapsed = start.elapsed();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(db.close())?;
    Ok(Run {
        threads,
        samples,
        elapsed,
    })
}

/// Appends `batches` one after the other; returns the samples accepted.
fn append_all(db: &Db, batches: Vec<Vec<SeriesSamples>>) -> anyhow::Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut accepted = 0;
    for batch in batches {
        let report = runtime.block_on(db.append(batch))?;
        anyhow::ensure!(report.rejected_total() == 0, "samples refused: {report:?}");
        accepted += report.accepted;
    }
    Ok(accepted)
}
