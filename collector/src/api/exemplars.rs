//! `GET|POST /api/v1/query_exemplars?query=&start=&end=`: the stored exemplars of every
//! series the query's selectors match, in Prometheus' shape:
//!
//! ```json
//! [{"seriesLabels": {"__name__": "…", …},
//!   "exemplars": [{"labels": {"trace_id": "…"}, "value": "0.25", "timestamp": 1700000000.123}]}]
//! ```
//!
//! As in Prometheus, the query is only parsed, not evaluated: its vector selectors (those in
//! range selectors and subqueries too) are the series looked up, so
//! `histogram_quantile(0.9, rate(x_bucket[5m]))` finds the exemplars of `x_bucket`. Series
//! are sorted by labels, each one's exemplars oldest first. A query without selectors
//! (`1+1`) answers `[]`.
//!
//! On a querier the exemplars of every live ingester join the process's own
//! (`cluster::exemplars`): an exemplar is only ever held by the ingester that consumed its
//! sample. A live ingester that does not answer makes the query fail with 503 naming it.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use didban_store::promql::PromqlError;
use didban_store::SeriesExemplars;
use serde_json::{json, Value as Json};

use super::params::{MAX_TIME_MS, MIN_TIME_MS};
use super::prom::params;
use super::response::{format_float, labels_json, seconds, success, ApiError};
use crate::cluster::exemplars::select_everywhere;
use crate::state::AppState;

/// The handler.
pub async fn query_exemplars(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, &headers, &body)?;
    let expr = p.required("query")?;
    let start = p.time_or("start", MIN_TIME_MS)?;
    let end = p.time_or("end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let bad_query = |e: PromqlError| match e {
        PromqlError::TooDeep { .. } => ApiError::unprocessable(e.to_string()),
        other => ApiError::bad_data(format!("invalid query: {other}")),
    };
    let sets = state.engine.selectors(expr).map_err(bad_query)?;
    if sets.is_empty() {
        return Ok(success(json!([]), &[]));
    }
    let store = state.stores.exemplars.clone();
    let cluster = state.cluster.clone();
    let found =
        tokio::task::spawn_blocking(move || select_everywhere(&store, cluster.as_deref(), &sets, start, end))
            .await
            .map_err(|e| ApiError::internal(format!("exemplar query task failed: {e}")))?
            .map_err(ApiError::from)?;
    Ok(success(exemplars_json(&found), &[]))
}

/// Series with their exemplars as Prometheus' API answers them.
fn exemplars_json(found: &[SeriesExemplars]) -> Json {
    let mut out = Vec::with_capacity(found.len());
    for s in found {
        let mut list = Vec::with_capacity(s.exemplars.len());
        for e in &s.exemplars {
            list.push(json!({
                "labels": labels_json(&e.labels),
                "value": format_float(e.value),
                "timestamp": seconds(e.timestamp_ms),
            }));
        }
        out.push(json!({"seriesLabels": labels_json(&s.series), "exemplars": list}));
    }
    Json::Array(out)
}
