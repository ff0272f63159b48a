//! The storage's health as self-metrics: whether each store's WAL is in a fault, how often
//! writing failed, and the headroom of the data directory's file system (what the
//! `DidbanDiskSpaceLow` rule of the Didban pack alerts on).

use didban_store::{disk_space, WalHealth};

use super::SelfMetrics;
use crate::state::AppState;

/// Copies the WALs' health and the data directory's disk space into the self-metrics.
pub fn refresh_storage_health(state: &AppState) {
    let m = &state.metrics;
    for (store, health) in state.stores.wal_health() {
        wal_health(m, store, &health);
    }
    match disk_space(&state.config.data_dir) {
        Ok(space) => {
            m.set(
                "didban_storage_free_bytes",
                "Bytes still free (for this server) on the file system of the data directory.",
                &[],
                space.free_bytes as f64,
            );
            m.set(
                "didban_storage_total_bytes",
                "Size of the file system holding the data directory.",
                &[],
                space.total_bytes as f64,
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %state.config.data_dir.display(), "cannot read the data directory's disk space")
        }
    }
}

fn wal_health(m: &SelfMetrics, store: &str, health: &WalHealth) {
    let labels = [("store", store)];
    m.set(
        "didban_storage_fault",
        "1 while the store's write-ahead log is in an I/O fault and refuses appends (503).",
        &labels,
        if health.fault.is_some() { 1.0 } else { 0.0 },
    );
    m.set_counter(
        "didban_wal_errors_total",
        "Write, fsync or segment-creation failures of the store's write-ahead log.",
        &labels,
        health.errors as f64,
    );
    m.set_counter(
        "didban_wal_recoveries_total",
        "Times the store's write-ahead log left a fault and accepted appends again.",
        &labels,
        health.recoveries as f64,
    );
}
