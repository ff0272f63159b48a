//! Didban's alert engine: Prometheus rule files, evaluation with Prometheus' alert state
//! machine, Alertmanager-style routing, grouping, silences and inhibition, and e-mail and
//! webhook notifications. See `docs/alerting.md`.

#![warn(missing_docs)]

pub mod eval;
pub mod http;
pub mod notify;
pub mod receivers;
pub mod rules;
pub mod service;

pub use service::{Alerting, AlertingError, AlertingSettings};

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
