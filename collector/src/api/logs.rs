//! The log API over the log store (documented in `docs/api.md`):
//!
//! - `GET /api/logs/search?query=&start=&end=&limit=&cursor=&trace_id=`: newest first,
//!   one page at a time;
//! - `GET /api/logs/histogram?query=&start=&end=&step=`: volume per bucket by severity;
//! - `GET /api/logs/values?field=&query=&start=&end=&limit=`: top values of a field;
//! - `GET /api/logs/tail?query=`: Server-Sent Events, one `log` event per new record;
//! - `GET /api/traces/{traceID}/logs`: the records of a trace (linked from the Jaeger API).
//!
//! Times are Unix seconds (with fraction) or RFC 3339, as in the Prometheus API; the
//! default range is the last hour. On a querier search, histogram and values also cover
//! the live ingesters' unpublished records (`cluster::log_read`); one that does not
//! answer makes the request fail with 503 naming it. The live tail follows this
//! process's own store and, on a querier, every live ingester (`cluster::log_tail`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use didban_store::logs::{Cursor, LogError, LogQuery, LogRecord};
use serde_json::{json, Value};

use super::params::{parse_duration_ms, Params};
use super::response::{success, ApiError};
use crate::cluster::log_read::{ClusterLogs, LogReadError};
use crate::cluster::log_tail::ClusterTail;
use crate::shutdown::stopped;
use crate::state::AppState;
use didban_base::now_ms;

/// Most records a page may hold.
pub const MAX_LIMIT: usize = 5000;

fn api_error(e: LogError) -> ApiError {
    match e {
        LogError::Query { .. } | LogError::BadRequest(_) => ApiError::bad_data(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// A failed cluster read: 503 naming the ingester that did not answer (400 when it
/// refused the query as invalid), else as [`api_error`].
fn read_error(e: LogReadError) -> ApiError {
    match e {
        LogReadError::Ingester(e) => e.into(),
        LogReadError::Store(e) => api_error(e),
    }
}

/// The log reads of this process: the local store, and on a querier every live
/// ingester's unpublished records too.
fn logs(s: &AppState) -> ClusterLogs {
    ClusterLogs::new(s.stores.logs.clone(), s.cluster.clone())
}

fn params(query: Option<&str>) -> Result<Params, ApiError> {
    Params::from_parts(query, None)
}

/// The query, time range and trace filter shared by every endpoint.
fn base_query(p: &Params) -> Result<LogQuery, ApiError> {
    let end_ms = p.time_or("end", now_ms())?;
    let start_ms = p.time_or("start", end_ms.saturating_sub(3_600_000))?;
    if start_ms > end_ms {
        return Err(ApiError::bad_data(format!(
            "invalid time range: start {start_ms}ms is after end {end_ms}ms"
        )));
    }
    let trace_id = match p.get("trace_id").filter(|v| !v.is_empty()) {
        Some(v) => Some(super::jaeger::normalize_trace_id(v).map_err(ApiError::bad_data)?),
        None => None,
    };
    Ok(LogQuery {
        query: p.get("query").unwrap_or_default().to_string(),
        trace_id,
        start_unix_nano: start_ms.saturating_mul(1_000_000),
        end_unix_nano: end_ms.saturating_mul(1_000_000).saturating_add(999_999),
        limit: 100,
        cursor: None,
    })
}

fn limit(p: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match p.get("limit").filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 && n <= max => Ok(n),
            _ => Err(ApiError::bad_data(format!(
                "invalid parameter \"limit\": {v:?} is not a number from 1 to {max}"
            ))),
        },
    }
}

/// A record as the API returns it: nanosecond times as strings (JSON numbers lose them)
/// and an RFC 3339 `time`.
pub fn record_json(r: &LogRecord) -> Value {
    let time = chrono::DateTime::from_timestamp_nanos(r.timestamp_unix_nano)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    json!({
        "time": time,
        "timestamp_unix_nano": r.timestamp_unix_nano.to_string(),
        "observed_unix_nano": r.observed_unix_nano.to_string(),
        "severity_number": r.severity_number,
        "severity_text": r.severity_text,
        "service": r.service,
        "body": r.body,
        "attributes": r.attributes,
        "resource": r.resource,
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "scope_name": r.scope_name,
    })
}

async fn run_search(s: &AppState, q: LogQuery) -> Result<Response, ApiError> {
    let reads = logs(s);
    let page = tokio::task::spawn_blocking(move || reads.search(&q))
        .await
        .map_err(|e| ApiError::internal(format!("log search failed: {e}")))?
        .map_err(read_error)?;
    let mut records = Vec::with_capacity(page.records.len());
    for r in &page.records {
        records.push(record_json(r));
    }
    Ok(success(
        json!({"records": records, "next_cursor": page.next_cursor}),
        &[],
    ))
}

/// `GET /api/logs/search`.
pub async fn search(State(s): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let p = params(query.as_deref())?;
        let mut q = base_query(&p)?;
        q.limit = limit(&p, 100, MAX_LIMIT)?;
        if let Some(c) = p.get("cursor").filter(|v| !v.is_empty()) {
            q.cursor = Some(Cursor::decode(c).map_err(api_error)?);
        }
        run_search(&s, q).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/traces/{traceID}/logs`: every record of the trace (all time), newest first.
pub async fn trace_logs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let p = params(query.as_deref())?;
        let trace_id = super::jaeger::normalize_trace_id(&id).map_err(ApiError::bad_data)?;
        let q = LogQuery {
            query: String::new(),
            trace_id: Some(trace_id),
            start_unix_nano: 0,
            end_unix_nano: i64::MAX,
            limit: limit(&p, 1000, MAX_LIMIT)?,
            cursor: None,
        };
        run_search(&s, q).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/logs/histogram`.
pub async fn histogram(State(s): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let p = params(query.as_deref())?;
        let q = base_query(&p)?;
        let range_ms = (q.end_unix_nano - q.start_unix_nano) / 1_000_000;
        let step_ms = match p.get("step").filter(|v| !v.is_empty()) {
            Some(v) => parse_duration_ms(v)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?,
            None => (range_ms / 60).max(1000),
        };
        let reads = logs(&s);
        let buckets = tokio::task::spawn_blocking(move || reads.histogram(&q, step_ms))
            .await
            .map_err(|e| ApiError::internal(format!("log histogram failed: {e}")))?
            .map_err(read_error)?;
        let mut out = Vec::with_capacity(buckets.len());
        for b in buckets {
            out.push(
                json!({"time": b.start_ms as f64 / 1000.0, "count": b.count, "by_severity": b.by_severity}),
            );
        }
        Ok::<Response, ApiError>(success(
            json!({"step_seconds": step_ms as f64 / 1000.0, "buckets": out}),
            &[],
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/logs/values`.
pub async fn values(State(s): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let p = params(query.as_deref())?;
        let field = p.required("field")?.to_string();
        let q = base_query(&p)?;
        let size = limit(&p, 10, 1000)?;
        let reads = logs(&s);
        let top = tokio::task::spawn_blocking(move || reads.top_values(&q, &field, size))
            .await
            .map_err(|e| ApiError::internal(format!("top values failed: {e}")))?
            .map_err(read_error)?;
        let mut out = Vec::with_capacity(top.len());
        for (value, count) in top {
            out.push(json!({"value": value, "count": count}));
        }
        Ok::<Response, ApiError>(success(Value::Array(out), &[]))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Turns true when the server stops; ends the live tails of `/api/logs/tail`.
#[derive(Clone)]
pub struct Stopping(pub tokio::sync::watch::Receiver<bool>);

/// `GET /api/logs/tail`: polls the committed index every `poll` for records appended
/// after the tail started and sends each as a `log` event; ends when the server stops.
/// On a querier each step also asks every live ingester for its new records.
pub async fn tail(
    State(s): State<AppState>,
    Extension(Stopping(stop)): Extension<Stopping>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match params(query.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let text = p.get("query").unwrap_or_default().to_string();
    let store = s.stores.logs.clone();
    // Check the query once so a typo is a 400, not an empty stream.
    let check = store.clone();
    let probe = text.clone();
    match tokio::task::spawn_blocking(move || check.tail(&probe, u64::MAX - 1, 1)).await {
        Ok(Err(e)) => return api_error(e).into_response(),
        Err(e) => return ApiError::internal(format!("tail failed: {e}")).into_response(),
        Ok(Ok(_)) => {}
    }
    let poll = (s.config.logs.commit_interval / 5).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let tail = ClusterTail::new(store, s.cluster.clone());
    let starting = tail.clone();
    let probe = text.clone();
    let start = match tokio::task::spawn_blocking(move || starting.start(&probe)).await {
        Ok(cursors) => cursors,
        Err(e) => return ApiError::internal(format!("tail failed: {e}")).into_response(),
    };
    let stream = futures::stream::unfold(
        (start, Vec::<Event>::new(), false),
        move |(mut after, mut pending, done)| {
            let tail = tail.clone();
            let text = text.clone();
            let stop = stop.clone();
            async move {
                loop {
                    if let Some(e) = pending.pop() {
                        return Some((Ok::<Event, Infallible>(e), (after, pending, done)));
                    }
                    if done {
                        return None;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(poll) => {},
                        _ = stopped(stop.clone()) => return None,
                    }
                    let q = text.clone();
                    let tail = tail.clone();
                    let batch = tokio::task::spawn_blocking(move || {
                        let records = tail.step(&q, &mut after, 500);
                        (records, after)
                    })
                    .await;
                    match batch {
                        Ok((Ok(records), moved)) => {
                            after = moved;
                            for r in records.iter().rev() {
                                pending.push(Event::default().event("log").data(record_json(r).to_string()));
                            }
                        }
                        Ok((Err(e), moved)) => {
                            let event = Event::default().event("error").data(e.to_string());
                            return Some((Ok(event), (moved, pending, true)));
                        }
                        Err(_) => return None,
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
