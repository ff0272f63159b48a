//! Running PromQL for pages: range queries become chart [`Series`], instant queries become
//! table rows. Evaluation is CPU work, so it runs on the blocking pool, never on the async
//! workers that serve other requests.

use didban_store::model::Labels;
use didban_store::promql::{PromqlError, QueryStats, Value};

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
    /// The value at the evaluation time.
    pub value: f64,
}

/// Why a page's query failed; shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Parse or evaluation error from the engine (carries the position for parse errors).
    #[error(transparent)]
    Promql(#[from] PromqlError),
    /// The blocking task died.
    #[error("query task failed: {0}")]
    Task(String),
}

impl UiContext {
    /// Evaluates `expr` from `start_ms` to `end_ms` every `step_ms`.
    pub async fn range_query(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<RangeResult, QueryError> {
        let ctx = self.clone();
        let expr = expr.to_string();
        let result = tokio::task::spawn_blocking(move || {
            ctx.engine
                .range_query(ctx.db.as_ref(), &expr, start_ms, end_ms, step_ms)
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
        let mut series = Vec::new();
        if let Value::Matrix(matrix) = result.value {
            for s in matrix {
                let points = s.samples.iter().map(|p| (p.timestamp_ms, p.value)).collect();
                series.push(Series::new(s.labels, points));
            }
        }
        Ok(RangeResult {
            series,
            stats: result.stats,
        })
    }

    /// Evaluates `expr` at `time_ms`; a scalar becomes one row with empty labels.
    pub async fn instant_query(&self, expr: &str, time_ms: i64) -> Result<Vec<InstantRow>, QueryError> {
        let ctx = self.clone();
        let expr = expr.to_string();
        let result =
            tokio::task::spawn_blocking(move || ctx.engine.instant_query(ctx.db.as_ref(), &expr, time_ms))
                .await
                .map_err(|e| QueryError::Task(e.to_string()))??;
        let mut rows = Vec::new();
        match result.value {
            Value::Vector(v) => {
                for s in v {
                    rows.push(InstantRow {
                        labels: s.labels,
                        value: s.v,
                    });
                }
            }
            Value::Scalar { v, .. } => rows.push(InstantRow {
                labels: Labels::default(),
                value: v,
            }),
            Value::Matrix(m) => {
                for s in m {
                    if let Some(last) = s.samples.last() {
                        rows.push(InstantRow {
                            labels: s.labels,
                            value: last.value,
                        });
                    }
                }
            }
            Value::String { .. } => {}
        }
        Ok(rows)
    }
}
