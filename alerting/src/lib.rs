//! Didban's alert engine: Prometheus rule files, evaluation with Prometheus' alert state
//! machine, Alertmanager-style routing, grouping, silences and inhibition, and e-mail and
//! webhook notifications. See `docs/alerting.md`.

#![warn(missing_docs)]

pub mod rules;
