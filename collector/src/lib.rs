//! The Didban server: configuration, ingest receivers, query APIs and the composition root.
//! The `didban` binary is a thin CLI over [`server::run`].

pub mod api;
pub mod cluster;
pub mod config;
pub mod datadir;
pub mod host_metrics;
pub mod ingest;
pub mod ingest_log;
pub mod listen;
pub mod memory_limit;
pub mod metadata;
pub mod selfmon;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod stores;
