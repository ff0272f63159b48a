//! The PromQL evaluator: Prometheus 2.x semantics over any [`Queryable`].
//!
//! Parsing is done by the `promql-parser` crate; evaluation is ours. Every expression node is
//! evaluated once over the whole step grid of the query (an instant query is a grid of one
//! step), and every selector reads storage once for the whole grid. See `docs/promql.md` for
//! what is supported and how it differs from Prometheus.
//!
//! [`Queryable`]: crate::query::Queryable

#![warn(missing_docs)]

mod aggregate;
mod binary;
mod engine;
mod error;
mod functions;
mod memstorage;
mod parse;
pub mod promqltest;
mod selector;
mod value;

use std::time::Duration;

use crate::model::{Labels, SeriesSamples};

pub use engine::Engine;
pub use error::PromqlError;
pub use memstorage::MemStorage;
pub use parse::parse_matchers;

/// Limits and defaults of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant vector selector looks for a sample (Prometheus: 5m).
    pub lookback_delta: Duration,
    /// Longest a single query may run before it fails with [`PromqlError::Timeout`].
    pub timeout: Duration,
    /// Most samples a query may load from storage and produce, to bound memory.
    pub max_samples: usize,
}

impl Default for EngineOptions {
    /// Prometheus' defaults: 5m lookback, 2m timeout, 50 million samples.
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
        }
    }
}

/// What a query returned, and what it cost.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The result value.
    pub value: Value,
    /// Work done to produce it.
    pub stats: QueryStats,
}

/// Cost figures of one query, for logs and the API's `stats` field.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    /// Samples read from storage.
    pub samples_loaded: usize,
    /// Series read from storage.
    pub series_loaded: usize,
    /// Wall-clock time spent parsing and evaluating.
    pub duration: Duration,
}

/// A PromQL result value, as the Prometheus HTTP API distinguishes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number at the evaluation time.
    Scalar {
        /// Evaluation time, ms since the epoch.
        t_ms: i64,
        /// The number.
        v: f64,
    },
    /// A string literal at the evaluation time.
    String {
        /// Evaluation time, ms since the epoch.
        t_ms: i64,
        /// The string.
        v: String,
    },
    /// An instant vector (instant queries).
    Vector(Vec<InstantSample>),
    /// Series over time: every range query, and a range vector at the top of an instant
    /// query. Series are sorted by labels.
    Matrix(Vec<SeriesSamples>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels (after whatever the expression did to them).
    pub labels: Labels,
    /// The evaluation time, ms since the epoch.
    pub t_ms: i64,
    /// The value.
    pub v: f64,
}
