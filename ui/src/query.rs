//! Running PromQL for pages: range queries become chart [`Series`], instant queries become
//! table rows. Native histogram samples are kept beside the float ones (a series'
//! `histograms`, a row's `histogram`) for heatmaps, stats and tables. Evaluation is CPU
//! work, so it runs on the blocking pool, never on the async workers that serve other
//! requests.
//!
//! Every page query has the query API's bounds: a slot from the shared [`QueryLimiter`]
//! (instant queries in the light lane, range queries in the heavy one), a deadline
//! `query_timeout` after the call (queueing counts), and a cancel flag set when the caller's
//! future is dropped (the browser went away), which stops the evaluation at its next check.
//!
//! [`QueryLimiter`]: didban_store::promql::QueryLimiter

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use didban_store::model::{FloatHistogram, Labels};
use didban_store::promql::{
    AdmitError, Engine, Lane, PromqlError, QueryControl, QueryResult, QueryStats, Value,
};
use didban_store::Queryable;

use crate::chart::Series;
use crate::UiContext;

/// A range query's series with the work it took.
#[derive(Debug, Clone, Default)]
pub struct RangeResult {
    /// One entry per result series, sorted by labels.
    pub series: Vec<Series>,
    /// Samples and series loaded, and the time taken.
    pub stats: QueryStats,
}

/// One row of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantRow {
    /// The series' labels.
    pub labels: Labels,
    /// The value at the evaluation time; `NaN` when the row is a native histogram.
    pub value: f64,
    /// The native histogram at the evaluation time, when the row is one.
    pub histogram: Option<Arc<FloatHistogram>>,
}

impl InstantRow {
    /// A float row.
    pub fn float(labels: Labels, value: f64) -> InstantRow {
        InstantRow {
            labels,
            value,
            histogram: None,
        }
    }

    /// A native histogram row (its `value` is `NaN`).
    pub fn of_histogram(labels: Labels, h: Arc<FloatHistogram>) -> InstantRow {
        InstantRow {
            labels,
            value: f64::NAN,
            histogram: Some(h),
        }
    }

    /// What the row sorts by: its value, or a histogram's count.
    pub fn sort_key(&self) -> f64 {
        match &self.histogram {
            Some(h) => h.count,
            None => self.value,
        }
    }
}

/// Why a page's query failed; shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Parse or evaluation error from the engine (carries the position for parse errors).
    #[error(transparent)]
    Promql(#[from] PromqlError),
    /// No evaluation slot: the queue was full or the deadline passed while waiting.
    #[error(transparent)]
    Admit(#[from] AdmitError),
    /// The blocking task died.
    #[error("query task failed: {0}")]
    Task(String),
    /// A read besides the query's own failed (an ingester that did not answer), named in
    /// the message.
    #[error("{0}")]
    Read(String),
}

/// Sets the evaluation's cancel flag when dropped before being disarmed.
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

impl UiContext {
    /// Runs one evaluation with the bounds above: waits for a slot of `lane` until the
    /// deadline, evaluates on the blocking pool holding the slot, and cancels the evaluation
    /// if this future is dropped first.
    pub async fn bounded_query(
        &self,
        lane: Lane,
        eval: impl FnOnce(&dyn Queryable, &Engine, &QueryControl) -> Result<QueryResult, PromqlError>
            + Send
            + 'static,
    ) -> Result<QueryResult, QueryError> {
        let deadline = Instant::now().checked_add(self.query_timeout);
        let flag = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop {
            flag: flag.clone(),
            armed: true,
        };
        let permit = self.query_limiter.admit(lane, deadline).await?;
        let ctl = QueryControl {
            deadline,
            cancel: Some(flag),
        };
        let ctx = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let r = eval(ctx.reader.as_ref(), ctx.engine.as_ref(), &ctl);
            drop(permit);
            r
        })
        .await;
        guard.armed = false;
        Ok(result.map_err(|e| QueryError::Task(e.to_string()))??)
    }

    /// Evaluates `expr` from `start_ms` to `end_ms` every `step_ms`.
    pub async fn range_query(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<RangeResult, QueryError> {
        let expr = expr.to_string();
        let result = self
            .bounded_query(Lane::Heavy, move |db, engine, ctl| {
                engine.range_query_with(db, &expr, start_ms, end_ms, step_ms, ctl)
            })
            .await?;
        let mut series = Vec::new();
        if let Value::Matrix(matrix) = result.value {
            for s in matrix {
                let points = s.samples.iter().map(|p| (p.timestamp_ms, p.value)).collect();
                let mut out = Series::new(s.labels, points);
                if !s.histograms.is_empty() {
                    out.histograms = s.histograms.into_iter().map(|h| (h.timestamp_ms, h.h)).collect();
                }
                series.push(out);
            }
        }
        Ok(RangeResult {
            series,
            stats: result.stats,
        })
    }

    /// Evaluates `expr` at `time_ms`; a scalar becomes one row with empty labels.
    pub async fn instant_query(&self, expr: &str, time_ms: i64) -> Result<Vec<InstantRow>, QueryError> {
        let expr = expr.to_string();
        let result = self
            .bounded_query(Lane::Light, move |db, engine, ctl| {
                engine.instant_query_with(db, &expr, time_ms, ctl)
            })
            .await?;
        let mut rows = Vec::new();
        match result.value {
            Value::Vector(v) => {
                for s in v {
                    rows.push(match s.h {
                        Some(h) => InstantRow::of_histogram(s.labels, h),
                        None => InstantRow::float(s.labels, s.v),
                    });
                }
            }
            Value::Scalar { v, .. } => rows.push(InstantRow::float(Labels::default(), v)),
            Value::Matrix(m) => {
                for s in m {
                    // the later of the last float and the last histogram
                    let histogram = match (s.samples.last(), s.histograms.last()) {
                        (Some(f), Some(h)) => (h.timestamp_ms > f.timestamp_ms).then(|| h.h.clone()),
                        (None, Some(h)) => Some(h.h.clone()),
                        _ => None,
                    };
                    let last_float = s.samples.last().map(|f| f.value);
                    match (histogram, last_float) {
                        (Some(h), _) => rows.push(InstantRow::of_histogram(s.labels, h)),
                        (None, Some(v)) => rows.push(InstantRow::float(s.labels, v)),
                        (None, None) => {}
                    }
                }
            }
            Value::String { .. } => {}
        }
        Ok(rows)
    }
}
