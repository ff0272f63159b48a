//! Didban's alert engine: Prometheus rule files, evaluation with Prometheus' alert state
//! machine, Alertmanager-style routing, grouping, silences and inhibition, and e-mail and
//! webhook notifications. See `docs/alerting.md`.

#![warn(missing_docs)]

pub mod eval;
pub mod ha;
pub mod http;
pub mod notify;
pub mod receivers;
pub mod rules;
pub mod service;

pub use service::{Alerting, AlertingError, AlertingSettings};

/// The wall clock in Unix milliseconds; every time the engine stamps comes from here.
pub use didban_base::now_ms;
