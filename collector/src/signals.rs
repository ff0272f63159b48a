//! Traces and logs next to the metric database: the trace store, the log store and the
//! span-metric meter, opened, maintained and closed by the server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use didban_store::logs::{LogOptions, LogStore};
use didban_store::traces::{TraceOptions, TraceStore};
use tokio::sync::watch;
use tracing::warn;

use crate::config::Config;
use crate::ingest::traces::span_metrics::SpanMetrics;
use crate::selfmon::SelfMetrics;
use crate::server::stopped;
use didban_base::now_nanos;

/// The stores of traces and logs.
pub struct Signals {
    /// Spans.
    pub traces: Arc<TraceStore>,
    /// Log records.
    pub logs: Arc<LogStore>,
    /// Span-derived RED and FaaS metrics (`None` when `traces.span_metrics` is off).
    pub span_metrics: Option<SpanMetrics>,
    /// How often logs are committed.
    pub commit_interval: Duration,
}

impl Signals {
    /// Opens both stores under `config.data_dir` (replaying their WALs). Blocking.
    pub fn open(config: &Config) -> anyhow::Result<Signals> {
        let mut t = TraceOptions::new(&config.data_dir);
        t.fsync = config.storage.fsync;
        t.fsync_interval = config.storage.fsync_interval;
        t.wal_segment_bytes = config.storage.wal_segment_bytes;
        t.block_duration = config.traces.block_duration;
        t.retention_time = config.traces.retention_time;
        t.retention_bytes = config.traces.retention_bytes;
        t.head_memory_bytes = config.traces.head_memory_bytes;
        let traces = TraceStore::open(t).context("opening the trace store")?;
        let mut l = LogOptions::new(&config.data_dir);
        l.fsync = config.storage.fsync;
        l.fsync_interval = config.storage.fsync_interval;
        l.wal_segment_bytes = config.storage.wal_segment_bytes;
        l.retention_days = config.logs.retention_days;
        l.retention_bytes = config.logs.retention_bytes;
        l.writer_memory_bytes = config.logs.writer_memory_bytes;
        l.max_pending_bytes = config.logs.max_pending_bytes;
        let logs = LogStore::open(l).context("opening the log store")?;
        // Records replayed from the WAL become searchable right away.
        logs.commit().context("committing replayed log records")?;
        let span_metrics = if config.traces.span_metrics {
            Some(SpanMetrics::new(
                config.traces.duration_buckets.clone(),
                config.faas.clone(),
            ))
        } else {
            None
        };
        Ok(Signals {
            traces: Arc::new(traces),
            logs: Arc::new(logs),
            span_metrics,
            commit_interval: config.logs.commit_interval,
        })
    }

    /// Commits the logs one last time and closes both WALs.
    pub async fn close(&self) -> anyhow::Result<()> {
        let logs = self.logs.clone();
        match tokio::task::spawn_blocking(move || logs.commit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "final log commit failed; the WAL keeps the records"),
            Err(e) => warn!(error = %e, "final log commit task failed"),
        }
        self.logs.close().await.context("closing the log WAL")?;
        self.traces.close().await.context("closing the trace WAL")?;
        Ok(())
    }
}

/// Copies the trace and log stores' figures into the self-metrics.
pub fn refresh_gauges(signals: &Signals, m: &SelfMetrics) {
    let t = signals.traces.stats();
    m.set(
        "didban_trace_head_spans",
        "Spans held in memory (span head).",
        &[],
        t.head_spans as f64,
    );
    m.set(
        "didban_trace_head_memory_bytes",
        "Approximate bytes used by the span head.",
        &[],
        t.head_bytes as f64,
    );
    m.set(
        "didban_trace_blocks",
        "Parquet span blocks on disk.",
        &[],
        t.blocks as f64,
    );
    m.set(
        "didban_trace_block_bytes",
        "Bytes of Parquet span blocks on disk.",
        &[],
        t.block_bytes as f64,
    );
    m.set(
        "didban_trace_block_spans",
        "Spans stored in span blocks.",
        &[],
        t.block_spans as f64,
    );
    m.set_counter(
        "didban_trace_retention_deleted_blocks_total",
        "Span blocks deleted by retention.",
        &[],
        t.retention_deleted_blocks as f64,
    );
    let l = signals.logs.stats();
    m.set(
        "didban_log_indexes",
        "Day indexes of logs on disk.",
        &[],
        l.days as f64,
    );
    m.set(
        "didban_log_index_bytes",
        "Bytes of the log indexes on disk.",
        &[],
        l.bytes as f64,
    );
    m.set(
        "didban_log_records_committed",
        "Log records committed (searchable) in the indexes.",
        &[],
        l.committed_records as f64,
    );
    m.set_counter(
        "didban_log_retention_deleted_days_total",
        "Day indexes deleted by retention.",
        &[],
        l.retention_deleted_days as f64,
    );
}

/// Commits the logs every `commit_interval`, and every `maintenance` cuts span blocks and
/// applies trace and log retention, until `stop`; keeps the stores' gauges in `metrics`
/// current.
pub async fn maintenance_loop(
    signals: Arc<Signals>,
    metrics: Arc<SelfMetrics>,
    maintenance: Duration,
    stop: watch::Receiver<bool>,
) {
    let mut commit_tick = tokio::time::interval(signals.commit_interval.max(Duration::from_millis(100)));
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut maintain_tick = tokio::time::interval(maintenance.max(Duration::from_secs(1)));
    maintain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    maintain_tick.tick().await;
    loop {
        let maintain = tokio::select! {
            _ = commit_tick.tick() => false,
            _ = maintain_tick.tick() => true,
            _ = stopped(stop.clone()) => return,
        };
        let s = signals.clone();
        let m = metrics.clone();
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            s.logs.commit().context("log commit")?;
            if maintain {
                let now = now_nanos();
                s.traces.maintain(now).context("trace maintenance")?;
                s.logs.maintain(now);
            }
            refresh_gauges(&s, &m);
            Ok(())
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "trace/log maintenance failed; will retry"),
            Err(e) => warn!(error = %e, "trace/log maintenance task panicked"),
        }
    }
}
