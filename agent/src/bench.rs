//! Benchmark commands (`didban-agent --bench logs|host`): figures come from running the real
//! code paths, never from assertions in tests. Build with `--release` for numbers worth
//! quoting.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::collectors::host::HostCollector;
use crate::collectors::Collector;
use crate::config::{ExportConfig, HostConfig, LogsConfig, StartAt};
use crate::export::encode::ResourceInfo;
use crate::export::Exporter;
use crate::logs::checkpoint::Checkpoints;
use crate::logs::{checkpoint_path, LogTailer};

/// Tails a file of `lines` lines (about 120 bytes each) into the disk buffer, as the agent
/// does (OTLP encoding, fsynced appends, checkpoints), with the collector unreachable so the
/// network is not measured. Returns (lines per second, elapsed).
pub async fn log_tail(lines: usize, work_dir: &Path) -> Result<(f64, Duration), String> {
    let log_dir = work_dir.join("logs-in");
    std::fs::create_dir_all(&log_dir).map_err(|e| e.to_string())?;
    let file = log_dir.join("bench.log");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| e.to_string())?);
        for i in 0..lines {
            writeln!(out, "2026-01-01T00:00:00Z INFO request_id={i:010} method=GET path=/api/orders/{i} status=200 duration_ms=12")
                .map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    let size = std::fs::metadata(&file).map_err(|e| e.to_string())?.len();
    let export = ExportConfig {
        endpoint: "http://127.0.0.1:9".to_string(),
        buffer_max_bytes: 8 * 1024 * 1024 * 1024,
        buffer_segment_bytes: 64 * 1024 * 1024,
        retry_initial_backoff: Duration::from_secs(60),
        ..ExportConfig::default()
    };
    let resource = ResourceInfo {
        service_name: "bench".into(),
        host_name: "bench".into(),
    };
    let exporter = Exporter::start(&export, &work_dir.join("buffer"), resource).map_err(|e| e.to_string())?;
    let config = LogsConfig {
        paths: vec![format!("{}/*.log", log_dir.display())],
        exclude: vec![],
        service: "bench".into(),
        start_at: StartAt::Beginning,
        poll_interval: Duration::from_millis(5),
        ..LogsConfig::default()
    };
    let checkpoints = checkpoint_path(work_dir, &config);
    let started = Instant::now();
    let tailer = LogTailer::start(
        std::slice::from_ref(&config),
        work_dir,
        "bench",
        exporter.otlp_sink(),
    );
    loop {
        let done = Checkpoints::load(&checkpoints)
            .files
            .values()
            .any(|(_, offset)| *offset >= size);
        if done {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("log tail benchmark did not finish in 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    tailer.shutdown().await;
    exporter.shutdown().await;
    Ok((lines as f64 / elapsed.as_secs_f64(), elapsed))
}

/// Runs the host collector `runs` times; returns (mean seconds per collection, samples).
pub async fn host(runs: usize) -> Result<(f64, usize), String> {
    let mut c = HostCollector::new(&HostConfig::default()).map_err(|e| e.to_string())?;
    let mut samples = 0;
    let started = Instant::now();
    for _ in 0..runs.max(1) {
        samples = c.collect().await.map_err(|e| e.to_string())?.len();
    }
    Ok((started.elapsed().as_secs_f64() / runs.max(1) as f64, samples))
}
