//! `didban-agent` as a library: collectors that turn a host, its databases and queues into
//! Prometheus-named samples, and an exporter that ships them over OTLP through a bounded
//! on-disk buffer. The `didban-agent` binary and `didban serve` both run it.

pub mod bench;
pub mod collectors;
pub mod config;
pub mod error;
pub mod export;
pub mod logs;
pub mod model;
pub mod receiver;
pub mod runner;
pub mod tls;
