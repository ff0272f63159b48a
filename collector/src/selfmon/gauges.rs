//! The stores' figures as gauges and counters of the self-metrics (`didban_head_series`,
//! `didban_trace_blocks`, `didban_log_indexes`, …), refreshed before `/metrics` answers,
//! before each self-scrape and after each maintenance round.

use didban_store::block::BlockIndexCacheStats;
use didban_store::Db;

use super::SelfMetrics;
use crate::state::AppState;
use crate::stores::Stores;

/// Copies the figures of all the stores into the self-metrics.
pub fn refresh_store_gauges(state: &AppState) {
    metric_gauges(&state.stores.metrics, &state.metrics);
    trace_and_log_gauges(&state.stores, &state.metrics);
    exemplar_gauges(&state.stores, &state.metrics);
    super::storage_health::refresh_storage_health(state);
}

/// Copies the metric database's statistics into the self-metrics.
fn metric_gauges(db: &Db, m: &SelfMetrics) {
    let s = db.stats();
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
    for (resolution, blocks, bytes) in [
        ("5m", s.blocks_5m, s.block_bytes_5m),
        ("1h", s.blocks_1h, s.block_bytes_1h),
    ] {
        m.set(
            "didban_downsampled_blocks",
            "Downsampled Parquet blocks on disk (part of didban_blocks), by resolution.",
            &[("resolution", resolution)],
            blocks as f64,
        );
        m.set(
            "didban_downsampled_block_bytes",
            "Bytes of downsampled Parquet blocks (part of didban_block_bytes), by resolution.",
            &[("resolution", resolution)],
            bytes as f64,
        );
    }
    block_index_cache_gauges(&s.block_index_cache, m);
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
    m.set(
        "didban_compactor",
        "1 while this process compacts and applies retention (always without a metastore; with one, while it holds the compactor lease).",
        &[],
        if s.compactor { 1.0 } else { 0.0 },
    );
    m.set_counter(
        "didban_gc_deleted_blocks_total",
        "Blocks the metastore compactor's garbage collection deleted from the bucket.",
        &[],
        s.gc_deleted_blocks as f64,
    );
    m.set_counter(
        "didban_wal_torn_tail_repairs_total",
        "Torn WAL tails cut at start-up.",
        &[],
        s.wal_torn_tail_repairs as f64,
    );
}

/// The block index cache's figures (`storage.block_index_cache_size`).
fn block_index_cache_gauges(c: &BlockIndexCacheStats, m: &SelfMetrics) {
    m.set(
        "didban_block_index_cache_bytes",
        "Bytes of block series lists and postings held in the block index cache.",
        &[],
        c.bytes as f64,
    );
    m.set(
        "didban_block_index_cache_limit_bytes",
        "Byte limit of the block index cache (storage.block_index_cache_size).",
        &[],
        c.limit_bytes as f64,
    );
    m.set(
        "didban_block_index_cache_entries",
        "Block indexes held in the block index cache.",
        &[],
        c.entries as f64,
    );
    m.set_counter(
        "didban_block_index_cache_hits_total",
        "Block index lookups answered from the cache.",
        &[],
        c.hits as f64,
    );
    m.set_counter(
        "didban_block_index_cache_misses_total",
        "Block index lookups that read series.parquet.",
        &[],
        c.misses as f64,
    );
    m.set_counter(
        "didban_block_index_cache_evictions_total",
        "Block indexes dropped from the cache to stay under its limit.",
        &[],
        c.evictions as f64,
    );
}

/// Copies the trace and log stores' figures into the self-metrics.
fn trace_and_log_gauges(stores: &Stores, m: &SelfMetrics) {
    let t = stores.traces.stats();
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
    let l = stores.logs.stats();
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

/// The exemplar store's fill level (`storage.max_exemplars`).
fn exemplar_gauges(stores: &Stores, m: &SelfMetrics) {
    let s = stores.exemplars.stats();
    m.set(
        "didban_exemplars_stored",
        "Exemplars held in the in-memory buffer.",
        &[],
        s.stored as f64,
    );
    m.set(
        "didban_exemplars_max",
        "Size of the exemplar buffer (storage.max_exemplars).",
        &[],
        s.capacity as f64,
    );
    m.set(
        "didban_exemplar_series",
        "Series with at least one exemplar in the buffer.",
        &[],
        s.series as f64,
    );
}
