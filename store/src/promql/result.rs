//! What a query returns: its [`Value`] (scalar, string, instant vector or matrix) and what
//! it cost ([`QueryStats`]), and the annotations (warnings, infos) that go with it.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{FloatHistogram, Labels, SeriesSamples};

use super::annotations::Annotations;

/// What a query returned, and what it cost.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The result value.
    pub value: Value,
    /// Work done to produce it.
    pub stats: QueryStats,
    /// Warnings and infos about the result, for the API's `warnings` / `infos`.
    pub annotations: Annotations,
}

/// Cost figures of one query, for logs and the API's `stats` field.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    /// Samples read from storage (a window of downsampled data counts as one).
    pub samples_loaded: usize,
    /// Series read from storage.
    pub series_loaded: usize,
    /// Wall-clock time spent parsing and evaluating.
    pub duration: Duration,
    /// Raw block reads (a block read by several selectors, or by several time slices of
    /// one selector, counts for each).
    pub blocks_raw: usize,
    /// Downsampled block reads (counted the same way).
    pub blocks_downsampled: usize,
    /// Coarsest resolution of downsampled data read, ms (0: raw data only).
    pub resolution_ms: i64,
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
    /// query. Series are sorted by labels; histogram points are in each series'
    /// `histograms`, float points in its `samples`.
    Matrix(Vec<SeriesSamples>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels (after whatever the expression did to them).
    pub labels: Labels,
    /// The evaluation time, ms since the epoch.
    pub t_ms: i64,
    /// The value (0 when the sample is a histogram).
    pub v: f64,
    /// The native histogram, when the sample is one (then `v` is unused).
    pub h: Option<Arc<FloatHistogram>>,
}
