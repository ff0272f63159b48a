//! The Jaeger HTTP query API over the trace store, so Grafana's Jaeger data source and
//! the Jaeger UI work against Didban (documented in `docs/api.md`):
//!
//! - `GET /api/services`
//! - `GET /api/services/{service}/operations` (names) and `GET /api/operations?service=`
//!   (`{name, spanKind}`)
//! - `GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&start=&end=&limit=&lookback=`
//! - `GET /api/traces/{traceID}`
//! - `GET /api/dependencies?endTs=&lookback=`
//!
//! Replies use Jaeger's envelope `{data, total, limit, offset, errors}`. On a querier every
//! read also covers the live ingesters' unpublished spans (`cluster::trace_read`); one
//! that does not answer makes the read fail with 503 naming it.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeMap;

use didban_store::traces::{kind_name, Operation, TraceQuery};
use serde_json::{json, Value};

use super::jaeger_json::trace_json;
use super::params::Params;
use crate::cluster::trace_read::{ClusterTraces, TraceReadError};
use crate::state::AppState;
use didban_base::now_nanos;

/// Most traces one search returns.
pub const MAX_LIMIT: usize = 1500;

fn envelope(data: Value, total: usize) -> Response {
    Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null})).into_response()
}

/// A Jaeger error reply naming what was wrong.
fn jaeger_error(status: StatusCode, message: impl Into<String>) -> Response {
    let msg = message.into();
    (
        status,
        Json(json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                    "errors": [{"code": status.as_u16(), "msg": msg}]})),
    )
        .into_response()
}

/// The trace reads of this process: the local store, and on a querier every live
/// ingester's unpublished spans too.
fn traces(s: &AppState) -> ClusterTraces {
    ClusterTraces::new(s.stores.traces.clone(), s.cluster.clone())
}

/// A failed read as a Jaeger error: 503 naming the ingester that did not answer, 500
/// for the store.
fn read_error(e: TraceReadError) -> Response {
    match e {
        TraceReadError::Ingester(e) if e.rejected => jaeger_error(StatusCode::BAD_REQUEST, e.message),
        TraceReadError::Ingester(e) => jaeger_error(StatusCode::SERVICE_UNAVAILABLE, e.message),
        TraceReadError::Store(e) => jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Runs the blocking read `f` off the async workers; the error names what failed.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, TraceReadError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(read_error(e)),
        Err(e) => Err(jaeger_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} failed: {e}"),
        )),
    }
}

/// Services with their operations, from everywhere.
async fn all_services(s: &AppState) -> Result<BTreeMap<String, Vec<Operation>>, Response> {
    let reads = traces(s);
    blocking("listing services", move || reads.services()).await
}

/// `GET /api/services`.
pub async fn services(State(s): State<AppState>) -> Response {
    let services = match all_services(&s).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut names = Vec::new();
    for name in services.into_keys() {
        names.push(Value::from(name));
    }
    let n = names.len();
    envelope(Value::Array(names), n)
}

/// `GET /api/services/{service}/operations`: operation names.
pub async fn service_operations(State(s): State<AppState>, Path(service): Path<String>) -> Response {
    let services = match all_services(&s).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut names: Vec<String> = Vec::new();
    if let Some(ops) = services.get(&service) {
        for op in ops {
            names.push(op.name.clone());
        }
    }
    names.sort();
    names.dedup();
    let n = names.len();
    envelope(json!(names), n)
}

/// `GET /api/operations?service=&spanKind=`: `{name, spanKind}` objects.
pub async fn operations(State(s): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = match Params::from_parts(query.as_deref(), None) {
        Ok(p) => p,
        Err(e) => return jaeger_error(StatusCode::BAD_REQUEST, e.message),
    };
    let Some(service) = params.get("service").filter(|v| !v.is_empty()) else {
        return jaeger_error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    let want_kind = params.get("spanKind").unwrap_or_default();
    let services = match all_services(&s).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut out = Vec::new();
    if let Some(ops) = services.get(service) {
        for op in ops {
            let k = kind_name(op.kind);
            if want_kind.is_empty() || want_kind == k {
                out.push(json!({"name": op.name, "spanKind": k}));
            }
        }
    }
    let n = out.len();
    envelope(Value::Array(out), n)
}

/// `GET /api/traces/{traceID}`.
pub async fn trace(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let id = match normalize_trace_id(&id) {
        Ok(id) => id,
        Err(e) => return jaeger_error(StatusCode::BAD_REQUEST, e),
    };
    let reads = traces(&s);
    let lookup = id.clone();
    match blocking("trace lookup", move || reads.trace(&lookup)).await {
        Ok(spans) if spans.is_empty() => jaeger_error(StatusCode::NOT_FOUND, format!("trace {id} not found")),
        Ok(spans) => envelope(json!([trace_json(&spans)]), 1),
        Err(r) => r,
    }
}

/// `GET /api/traces?…`: search.
pub async fn search(State(s): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = match Params::from_parts(query.as_deref(), None) {
        Ok(p) => p,
        Err(e) => return jaeger_error(StatusCode::BAD_REQUEST, e.message),
    };
    let q = match parse_search(&params, now_nanos()) {
        Ok(q) => q,
        Err(e) => return jaeger_error(StatusCode::BAD_REQUEST, e),
    };
    let reads = traces(&s);
    match blocking("trace search", move || reads.find_traces(&q)).await {
        Ok(found) => {
            let mut data = Vec::with_capacity(found.len());
            for t in &found {
                data.push(trace_json(t));
            }
            let n = data.len();
            envelope(Value::Array(data), n)
        }
        Err(r) => r,
    }
}

/// `GET /api/dependencies?endTs=&lookback=` (Unix ms and ms, default now and 1 day):
/// `[{parent, child, callCount}]` between services.
pub async fn dependencies(State(s): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = match Params::from_parts(query.as_deref(), None) {
        Ok(p) => p,
        Err(e) => return jaeger_error(StatusCode::BAD_REQUEST, e.message),
    };
    let millis = |key: &str, default: i64| -> Result<i64, String> {
        match params.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| format!("invalid parameter {key:?}: {v:?} is not milliseconds")),
        }
    };
    let range =
        millis("endTs", now_nanos() / 1_000_000).and_then(|end| Ok((end, millis("lookback", 86_400_000)?)));
    let (end_ms, lookback_ms) = match range {
        Ok(r) => r,
        Err(e) => return jaeger_error(StatusCode::BAD_REQUEST, e),
    };
    let end = end_ms.saturating_mul(1_000_000);
    let start = end.saturating_sub(lookback_ms.saturating_mul(1_000_000));
    let reads = traces(&s);
    match blocking("dependencies", move || reads.dependencies(start, end)).await {
        Ok(deps) => {
            let mut data = Vec::with_capacity(deps.len());
            for d in deps {
                data.push(json!({"parent": d.parent, "child": d.child, "callCount": d.call_count}));
            }
            let n = data.len();
            envelope(Value::Array(data), n)
        }
        Err(r) => r,
    }
}

/// A trace id as 32 lowercase hex digits (shorter ids, as Jaeger prints them without
/// leading zeros, are padded).
pub fn normalize_trace_id(id: &str) -> Result<String, String> {
    let id = id.trim().to_ascii_lowercase();
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid trace id {id:?}: want up to 32 hex digits"));
    }
    Ok(format!("{id:0>32}"))
}

/// Parses the search parameters; times are Unix microseconds as Jaeger sends them.
pub fn parse_search(p: &Params, now_nano: i64) -> Result<TraceQuery, String> {
    let micros = |key: &str| -> Result<Option<i64>, String> {
        match p.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|us| Some(us.saturating_mul(1000)))
                .map_err(|_| format!("invalid parameter {key:?}: {v:?} is not Unix microseconds")),
        }
    };
    let end = micros("end")?.unwrap_or(now_nano);
    let lookback = match p.get("lookback").filter(|v| !v.is_empty() && *v != "custom") {
        Some(v) => didban_base::parse_go_duration_nanos(v)
            .map_err(|e| format!("invalid parameter \"lookback\": {e}"))?,
        None => 3600 * 1_000_000_000,
    };
    let start = micros("start")?.unwrap_or(end.saturating_sub(lookback));
    if start > end {
        return Err(format!("start {start} is after end {end}"));
    }
    let limit = match p.get("limit").filter(|v| !v.is_empty()) {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("invalid parameter \"limit\": {v:?} is not a number"))?,
        None => 20,
    };
    let duration = |key: &str| -> Result<Option<i64>, String> {
        match p.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => didban_base::parse_go_duration_nanos(v)
                .map(Some)
                .map_err(|e| format!("invalid parameter {key:?}: {e}")),
        }
    };
    let mut tags = Vec::new();
    if let Some(text) = p.get("tags").filter(|v| !v.is_empty()) {
        parse_tags(text, &mut tags)?;
    }
    for t in p.all("tag") {
        let (k, v) = t
            .split_once(':')
            .ok_or_else(|| format!("invalid parameter \"tag\": {t:?} is not key:value"))?;
        tags.push((k.to_string(), v.to_string()));
    }
    let text = |key: &str| p.get(key).filter(|v| !v.is_empty()).map(str::to_string);
    Ok(TraceQuery {
        service: text("service"),
        operation: text("operation"),
        tags,
        min_duration_nano: duration("minDuration")?,
        max_duration_nano: duration("maxDuration")?,
        start_unix_nano: start,
        end_unix_nano: end,
        limit: limit.clamp(1, MAX_LIMIT),
    })
}

/// Tags as Jaeger sends them (a JSON object) or as typed in its UI (`k=v k2="a b"`).
fn parse_tags(text: &str, out: &mut Vec<(String, String)>) -> Result<(), String> {
    if text.trim_start().starts_with('{') {
        let map: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|e| format!("invalid parameter \"tags\": {e}"))?;
        for (k, v) in map {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.push((k, v));
        }
        return Ok(());
    }
    for part in text.split_whitespace() {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid parameter \"tags\": {part:?} is not key=value"))?;
        out.push((k.to_string(), v.trim_matches('"').to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn search_parameters_parse_like_jaeger() {
        let p = Params::from_parts(
            Some("service=shop&operation=GET&tags=%7B%22http.status_code%22%3A%22500%22%7D&minDuration=1.5ms&maxDuration=2s&start=1000&end=5000&limit=3"),
            None,
        )
        .unwrap();
        let q = parse_search(&p, 0).unwrap();
        assert_eq!(q.service.as_deref(), Some("shop"));
        assert_eq!(q.tags, vec![("http.status_code".to_string(), "500".to_string())]);
        assert_eq!(q.min_duration_nano, Some(1_500_000));
        assert_eq!(q.max_duration_nano, Some(2_000_000_000));
        assert_eq!(
            (q.start_unix_nano, q.end_unix_nano, q.limit),
            (1_000_000, 5_000_000, 3)
        );
        let p = Params::from_parts(Some("tags=error%3Dtrue%20a%3D%22b%22&lookback=2h"), None).unwrap();
        let q = parse_search(&p, 10_000_000_000_000).unwrap();
        assert_eq!(q.tags.len(), 2);
        assert_eq!(q.start_unix_nano, 10_000_000_000_000 - 7_200_000_000_000);
        let p = Params::from_parts(Some("minDuration=fast"), None).unwrap();
        assert!(parse_search(&p, 0).unwrap_err().contains("minDuration"));
        assert_eq!(
            didban_base::parse_go_duration_nanos("1h30m").unwrap(),
            5_400_000_000_000
        );
        assert_eq!(normalize_trace_id("ABC").unwrap(), format!("{:0>32}", "abc"));
        assert!(normalize_trace_id("xyz").is_err());
    }
}
