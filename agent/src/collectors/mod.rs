//! Collectors: each turns one source (the host, a scrape target, a Redis or PostgreSQL
//! server) into samples named like the Prometheus exporter for that source.

pub mod celery;
pub mod host;
pub mod nginx;
pub mod pgbouncer;
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

/// Whether a remote service (PostgreSQL, Redis, RabbitMQ) answered, remembered so a failure
/// is logged once until its message changes and a recovery is logged once.
#[derive(Debug, Default)]
pub struct Reachability {
    last_error: Option<String>,
}

impl Reachability {
    /// Logs a change of state for `what` at `target` and returns the `up` value (1 or 0).
    pub fn record<T>(&mut self, what: &str, target: &str, result: &Result<T, String>) -> f64 {
        match result {
            Ok(_) => {
                if self.last_error.take().is_some() {
                    tracing::info!(%target, "{what} reachable again");
                }
                1.0
            }
            Err(e) => {
                if self.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(%target, error = %e, "{what} collection failed");
                }
                self.last_error = Some(e.clone());
                0.0
            }
        }
    }
}
