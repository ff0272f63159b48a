//! `didban-agent`: collects host, database and queue metrics and ships them over OTLP.
//!
//! `didban-agent --config agent.toml`; with no config it collects host metrics and sends them
//! to `http://localhost:4317`. `--check` validates the config and prints one collection.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use didban_agent::config::Config;
use didban_agent::runner::{build_collectors, Agent};

#[derive(Debug, Parser)]
#[command(
    name = "didban-agent",
    version,
    about = "Collects host, database and queue metrics and ships them over OTLP"
)]
struct Cli {
    /// TOML config file (see agent/agent.example.toml); without it: host metrics to localhost:4317.
    #[arg(long, short, env = "DIDBAN_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides export.endpoint.
    #[arg(long, env = "DIDBAN_AGENT_ENDPOINT")]
    endpoint: Option<String>,
    /// Overrides export.bearer_token.
    #[arg(long, env = "DIDBAN_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Overrides agent.data_dir.
    #[arg(long, env = "DIDBAN_AGENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Validate the config, run every collector once, print the samples and exit.
    #[arg(long)]
    check: bool,
    /// Run a benchmark and print its figures: `logs` (tail throughput) or `host`.
    #[arg(long, value_parser = ["logs", "host"])]
    bench: Option<String>,
    /// Lines written for `--bench logs`, collections for `--bench host`.
    #[arg(long, default_value_t = 1_000_000)]
    bench_size: usize,
}

/// The agent runs on one thread (a current-thread runtime; file and buffer I/O go to the
/// blocking pool as before): its work is small and mostly waiting, every thread costs memory
/// (its stack and, with glibc, a malloc arena), and with two workers the runtime wakes the
/// other worker when a task becomes ready — a share of the agent's CPU its profile put under
/// "wake-ups" (issue 12; not measured apart from the other changes of that step).
fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

/// The arena cap set by [`limit_malloc_arenas`].
const MALLOC_ARENAS: &str = "2";

/// Allocations glibc serves from its arenas rather than from a fresh `mmap` (4 MiB), and how
/// much free memory an arena keeps at its top before returning it (8 MiB), set by
/// [`limit_malloc_arenas`] unless the operator set them. The agent's per-round buffers (a log
/// poll's requests, up to `export.batch_max_bytes`) are above glibc's default threshold: each
/// was a fresh mapping, zero-filled page by page and unmapped again, which was a sixth of the
/// agent's CPU while tailing 4,000 lines/s (issue 12). Reused from the arena they cost nothing.
const MALLOC_TUNING: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "4194304"),
    ("MALLOC_TRIM_THRESHOLD_", "8388608"),
];

/// glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and every
/// arena keeps what was freed in it: with the runtime's workers and the blocking pool that was
/// 19 of the agent's 34 MiB RSS while tailing 4,000 lines/s (issue 12). `MALLOC_ARENA_MAX` caps
/// them, but glibc reads it only when a process starts (and `mallopt` would need `unsafe`), so
/// the agent executes itself once more with it set — same pid, same arguments — and with
/// [`MALLOC_TUNING`]. An operator's own `MALLOC_ARENA_MAX` is kept (and then nothing is set);
/// if the exec fails the agent runs as it is.
fn limit_malloc_arenas() {
    if !cfg!(target_os = "linux") || std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    command.args(args).env("MALLOC_ARENA_MAX", MALLOC_ARENAS);
    for (name, value) in MALLOC_TUNING {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    let error = command.exec();
    eprintln!("didban-agent: could not restart with MALLOC_ARENA_MAX={MALLOC_ARENAS} ({error}); running with glibc's default malloc arenas");
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if let Some(which) = cli.bench.as_deref() {
        return bench(which, cli.bench_size).await;
    }
    let mut config = match &cli.config {
        Some(path) => Config::load(path).with_context(|| format!("loading {}", path.display()))?,
        None => Config::parse("").context("default config")?,
    };
    if let Some(e) = cli.endpoint {
        config.export.endpoint = e;
    }
    if let Some(t) = cli.token {
        config.export.bearer_token = t;
    }
    if let Some(d) = cli.data_dir {
        config.agent.data_dir = d;
    }
    if cli.check {
        return check(&config).await;
    }
    let agent = Agent::start(&config).context("starting the agent")?;
    tracing::info!(endpoint = %config.export.endpoint, data_dir = %config.agent.data_dir.display(), "didban-agent running");
    shutdown_signal().await;
    tracing::info!("stopping: flushing collected data to the disk buffer");
    agent.shutdown().await;
    tracing::debug!("agent stopped");
    Ok(())
}

async fn bench(which: &str, size: usize) -> anyhow::Result<()> {
    if which == "host" {
        let (mean, samples) = didban_agent::bench::host(size.min(10_000))
            .await
            .map_err(anyhow::Error::msg)?;
        println!(
            "host collector: {:.2} ms per collection, {samples} samples",
            mean * 1000.0
        );
        return Ok(());
    }
    let dir = tempfile::tempdir().context("temp dir")?;
    let (rate, elapsed) = didban_agent::bench::log_tail(size, dir.path())
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "log tail: {size} lines in {:.2} s = {rate:.0} lines/s (to the disk buffer)",
        elapsed.as_secs_f64()
    );
    Ok(())
}

async fn check(config: &Config) -> anyhow::Result<()> {
    let collectors = build_collectors(config).context("building collectors")?;
    for (mut collector, _) in collectors {
        match collector.collect().await {
            Ok(samples) => {
                println!("# collector {}: {} samples", collector.name(), samples.len());
                for s in samples {
                    let mut labels = Vec::new();
                    for (k, v) in &s.labels {
                        labels.push(format!("{k}={v:?}"));
                    }
                    println!("{}{{{}}} {}", s.name, labels.join(","), s.value);
                }
            }
            Err(e) => println!("# collector {}: error: {e}", collector.name()),
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
