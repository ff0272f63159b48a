//! The storage engine's integration tests, one module per area, linked into one test
//! binary (`cargo test -p didban-store --test it`); filter by module, e.g.
//! `cargo test -p didban-store --test it wal::`. Data they read lives beside this folder:
//! `tests/promql/*.test` (promqltest scripts) and `tests/python/` (pyarrow checks).

mod append;
mod block_index_cache;
mod block_values;
mod blocks;
mod common;
mod crash;
mod downsampling;
mod faults;
mod faults_tmpfs;
mod faults_traces_logs;
mod ingest_positions;
mod memory;
mod metastore;
mod native_histograms;
mod object_logs;
mod object_spans;
mod object_storage;
mod object_storage_figures;
mod promql_api;
mod promql_operator_chains;
mod promql_series_major;
mod promqltest;
mod pyarrow_block;
mod pyarrow_spans;
mod query_limits;
mod time_sanity;
mod wal;
