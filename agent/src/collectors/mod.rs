//! Collectors: each turns one source (the host, a scrape target, a Redis or PostgreSQL
//! server) into samples named like the Prometheus exporter for that source.

pub mod host;
pub mod postgres;
pub mod probe;
pub mod rabbitmq;
pub mod redis;
pub mod scrape;
pub mod statsd;

use futures::future::BoxFuture;

use crate::error::CollectError;
use crate::model::Sample;

/// A source of samples, collected once per interval by the runner.
pub trait Collector: Send {
    /// Stable name for logs and self-metrics (`host`, `scrape/django/localhost:8000`, …).
    fn name(&self) -> String;

    /// One collection. An `Err` means nothing could be collected this time; partial failures
    /// (one query of several) are logged by the collector and the rest is returned.
    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>>;
}
