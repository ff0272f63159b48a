//! `didban-bench`: the side-by-side benchmark of Didban, a real Prometheus and a real
//! VictoriaMetrics.
//!
//! It generates node-exporter-like data once, starts each system as a child process on free
//! ports in a temp dir, sends the same remote_write requests to all (and OTLP to Didban),
//! then measures ingest throughput, CPU per million samples, peak RSS, bytes per sample on
//! disk and dashboard range-query latency, and prints every figure with the ratios
//! Didban ÷ Prometheus and Didban ÷ VictoriaMetrics. `--mode series-memory` measures memory
//! per active series instead, `--mode head-threads` the head's append path and `--mode
//! block-size` the bytes per sample of a block, per column. See docs/benchmarks.md.

mod block_size;
mod disk;
mod head_threads;
mod ingest_log;
mod load;
mod measure;
mod otlp;
mod remote_write;
mod report;
mod scenario;
mod series_memory;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use targets::System;

/// Benchmark Didban against Prometheus and VictoriaMetrics on this machine: ingest
/// (remote_write, OTLP), CPU-s per million samples, peak RSS, bytes/sample on disk and
/// range-query latency, or memory per active series. Every figure is printed for the three
/// systems with the ratios Didban ÷ Prometheus and Didban ÷ VictoriaMetrics.
#[derive(Parser, Debug, Clone)]
#[command(name = "didban-bench", version, about, long_about = None)]
pub struct Args {
    /// Number of simulated hosts; each has ~484 series with --cpus 4 (32 hosts ≈ 15.5k series).
    #[arg(long, default_value_t = 32)]
    pub hosts: usize,
    /// CPUs per host; node_cpu_seconds_total has 8 × cpus series per host (the first
    /// dashboard query aggregates hosts × cpus × 8 series: 1024 by default).
    #[arg(long, default_value_t = 4)]
    pub cpus: usize,
    /// Time span of the data, ending now (e.g. 6h, 24h, 90m).
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    pub span: Duration,
    /// Sample interval (the scrape interval being simulated).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Hosts per request: every request carries all series of this many hosts.
    #[arg(long, default_value_t = 4)]
    pub batch_hosts: usize,
    /// Consecutive samples of every series per request.
    #[arg(long, default_value_t = 4)]
    pub batch_samples: usize,
    /// Parallel senders (each owns a fixed set of host groups, so series stay in time order).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Senders wait for each other after every this much data time, so none runs ahead by
    /// more than Prometheus' appendable window (1 h behind its newest sample).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub sync: Duration,
    /// What to measure: the full side-by-side run, or memory per active series
    /// (RSS growth ÷ series after ingesting --hosts hosts' series with --series-samples
    /// samples each).
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    pub mode: Mode,
    /// Appender thread counts in --mode head-threads, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 4, 8])]
    pub threads: Vec<usize>,
    /// Samples per series in --mode series-memory.
    #[arg(long, default_value_t = 4)]
    pub series_samples: usize,
    /// Systems to run, comma-separated (they always run in the order Prometheus,
    /// VictoriaMetrics, Didban).
    #[arg(long, value_delimiter = ',', default_values = ["prometheus", "victoriametrics", "didban"])]
    pub targets: Vec<System>,
    /// Skip the OTLP ingest phase (Didban only: Prometheus 2.42 has no OTLP receiver).
    #[arg(long)]
    pub skip_otlp: bool,
    /// Skip the range-query latency phase.
    #[arg(long)]
    pub skip_queries: bool,
    /// Run the queries over blocks: Didban's head written as a block and VictoriaMetrics'
    /// parts merged first (by default the queries run right after ingest, so Didban
    /// answers from its head).
    #[arg(long)]
    pub queries_on_blocks: bool,
    /// Ingesters (processes, partitions) of the last run of --mode ingest-log.
    #[arg(long, default_value_t = 3)]
    pub ingesters: usize,
    /// The nats-server binary (Debian's `nats-server` package), for --mode ingest-log.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/nats-server")]
    pub nats_bin: PathBuf,
    /// The didban binary [default: $CARGO_TARGET_DIR/release/didban, else target/release/didban
    /// in the workspace].
    #[arg(long, value_name = "PATH")]
    pub didban_bin: Option<PathBuf>,
    /// The prometheus binary (Debian's `prometheus` package).
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/prometheus")]
    pub prometheus_bin: PathBuf,
    /// The victoria-metrics binary (Debian's `victoria-metrics` package, single-node).
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/victoria-metrics")]
    pub victoriametrics_bin: PathBuf,
    /// Extra argument for victoria-metrics (repeatable), e.g.
    /// --victoriametrics-arg=-memory.allowedPercent=20.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub victoriametrics_arg: Vec<String>,
    /// Extra argument for `didban serve` (repeatable), e.g. --didban-arg=--fsync=interval.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub didban_arg: Vec<String>,
    /// Extra argument for prometheus (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub prometheus_arg: Vec<String>,
    /// Set Prometheus' storage.tsdb.out_of_order_time_window (e.g. 7h). Not needed: the load
    /// generator sends every series in time order. Off by default.
    #[arg(long, value_name = "DURATION")]
    pub prometheus_ooo_window: Option<String>,
    /// Give up an ingest phase after this long (the remaining requests count as failed).
    #[arg(long, default_value = "20m", value_parser = parse_duration)]
    pub ingest_timeout: Duration,
    /// Stop the timed runs of one query once they have taken this long in total (the report
    /// says how many runs were made).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub query_budget: Duration,
    /// Timed runs of each dashboard query per system.
    #[arg(long, default_value_t = 20)]
    pub query_runs: usize,
    /// Untimed warm-up runs of each query before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub query_warmup: usize,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Directory for the systems' data dirs and logs [default: a new temp dir, deleted at the
    /// end unless --keep].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Keep the temp dir (data dirs, logs, prometheus.yml) for inspection.
    #[arg(long)]
    pub keep: bool,
}

/// What one run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Ingest, CPU, RSS, disk and query latency (docs/benchmarks.md).
    Full,
    /// Memory per active series.
    SeriesMemory,
    /// In-process appends to the metric database from `--threads` threads on disjoint series
    /// (no other system is run).
    HeadThreads,
    /// In-process: the bench's data written as one block, its bytes per sample and per
    /// column (no other system is run).
    BlockSize,
    /// Didban only: ingest directly, through the NATS JetStream ingest log into one
    /// process, and into --ingesters processes (the hop's cost, 1 vs N ingesters).
    IngestLog,
}

/// Parses a Prometheus duration (`90s`, `15m`, `6h`, `1d`) or a plain number of seconds;
/// zero is refused (every use is a length or interval of data).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = didban_base::parse_seconds_or_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(d)
}

/// The default didban binary: under CARGO_TARGET_DIR if set, else the workspace's target/.
fn default_didban_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("release").join("didban")
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.didban_bin.is_none() {
        args.didban_bin = Some(default_didban_bin());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match args.mode {
        Mode::Full => runtime.block_on(scenario::run(&args))?,
        Mode::SeriesMemory => runtime.block_on(series_memory::run(&args))?,
        // Runs its own threads, each with a runtime of its own, and prints its own table.
        Mode::HeadThreads => return head_threads::run(&args),
        Mode::BlockSize => return block_size::run(&args),
        Mode::IngestLog => return ingest_log::run(&args),
    };
    println!("\n{}", report.to_text());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn flags_parse() {
        let a = Args::parse_from([
            "didban-bench",
            "--targets",
            "prometheus,victoriametrics",
            "--didban-arg=--fsync=off",
            "--victoriametrics-arg=-memory.allowedPercent=20",
            "--mode",
            "series-memory",
        ]);
        assert_eq!(a.targets, vec![System::Prometheus, System::VictoriaMetrics]);
        assert_eq!(a.mode, Mode::SeriesMemory);
        assert_eq!(
            a.victoriametrics_arg,
            vec!["-memory.allowedPercent=20".to_string()]
        );
        let d = Args::parse_from(["didban-bench"]);
        assert_eq!(d.targets.len(), 3);
        assert_eq!(d.mode, Mode::Full);
        assert_eq!(a.didban_arg, vec!["--fsync=off".to_string()]);
    }
}
