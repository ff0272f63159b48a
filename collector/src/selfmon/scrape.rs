//! Keeps the self-metrics current with the store's figures and writes them into Didban's
//! own database every `self_scrape_interval`, as a Prometheus scraping Didban would.

use std::time::Duration;

use tokio::sync::watch;
use tracing::debug;

use crate::server::stopped;
use crate::state::AppState;
use didban_base::now_ms;

/// Copies the database's statistics into the self-metrics registry.
pub fn refresh_store_gauges(state: &AppState) {
    let s = state.db.stats();
    let m = &state.metrics;
    m.set(
        "didban_head_series",
        "Series held in the in-memory head.",
        &[],
        s.head_series as f64,
    );
    m.set(
        "didban_head_samples",
        "Samples held in the in-memory head.",
        &[],
        s.head_samples as f64,
    );
    m.set(
        "didban_head_memory_bytes",
        "Approximate bytes used by the head.",
        &[],
        s.head_bytes as f64,
    );
    m.set("didban_blocks", "Parquet blocks on disk.", &[], s.blocks as f64);
    m.set(
        "didban_block_bytes",
        "Bytes of Parquet blocks on disk.",
        &[],
        s.block_bytes as f64,
    );
    m.set(
        "didban_wal_segments",
        "WAL segment files on disk.",
        &[],
        s.wal_segments as f64,
    );
    m.set_counter(
        "didban_wal_written_bytes_total",
        "Bytes written to the WAL.",
        &[],
        s.wal_bytes_written as f64,
    );
    m.set_counter(
        "didban_wal_fsyncs_total",
        "WAL fsync calls.",
        &[],
        s.wal_fsyncs as f64,
    );
    m.set_counter(
        "didban_wal_fsync_seconds_total",
        "Time spent in WAL fsync calls.",
        &[],
        s.wal_fsync_seconds_total,
    );
    m.set_counter(
        "didban_compactions_total",
        "Block compactions done.",
        &[],
        s.compactions as f64,
    );
    m.set_counter(
        "didban_head_cuts_total",
        "Heads cut into blocks.",
        &[],
        s.blocks_cut as f64,
    );
    m.set_counter(
        "didban_retention_deleted_blocks_total",
        "Blocks deleted by retention.",
        &[],
        s.retention_deleted_blocks as f64,
    );
    m.set_counter(
        "didban_wal_torn_tail_repairs_total",
        "Torn WAL tails cut at start-up.",
        &[],
        s.wal_torn_tail_repairs as f64,
    );
}

/// Writes the self-metrics into the database periodically until `stop`.
pub async fn self_scrape_loop(state: AppState, stop: watch::Receiver<bool>) {
    let every = state.config.self_scrape_interval;
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let instance = state.config.http_addr.to_string();
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stopped(stop.clone()) => return,
        }
        refresh_store_gauges(&state);
        let batch = state.metrics.snapshot(now_ms(), &instance);
        if let Err(e) = state.db.append(batch).await {
            debug!(error = %e, "self-metrics not stored this round");
        }
    }
}
