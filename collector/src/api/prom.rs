//! Handlers of the Prometheus HTTP API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `metadata`), accepting GET and form POST like Prometheus, so
//! Grafana's Prometheus data source works unchanged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use didban_store::promql::{
    check_depth, parse_matchers, AdmitError, Engine, Lane, PromqlError, QueryControl, QueryResult, Value,
};
use didban_store::{LabelMatcher, Queryable};
use serde_json::{json, Value as Json};

use super::params::{parse_duration_ms, Params, MAX_TIME_MS, MIN_TIME_MS};
use super::query_options::{take_limit, QueryOptions};
use super::response::{
    histogram_point_json, labels_json, point_json, series_json, success, success_annotated, ApiError,
};
use crate::state::AppState;
use didban_base::now_ms;

/// Most points a range query may return per series, as in Prometheus.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The request's parameters: query string, plus the body of a form POST.
pub(super) fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form && !body.is_empty() {
        Some(&body[..])
    } else {
        None
    };
    Params::from_parts(query.as_deref(), form)
}

fn promql_error(e: PromqlError) -> ApiError {
    let message = e.to_string();
    if let PromqlError::TooDeep { .. } = e {
        return ApiError::unprocessable(message);
    }
    match e.error_type() {
        "canceled" => ApiError::canceled(message),
        "bad_data" => ApiError::bad_data(message),
        "timeout" => ApiError::timeout(message),
        "unavailable" => ApiError::overloaded(message, 1),
        "execution" => ApiError::execution(message),
        _ => ApiError::internal(message),
    }
}

fn value_json(result: &QueryResult) -> Json {
    match &result.value {
        Value::Scalar { t_ms, v } => json!({"resultType": "scalar", "result": point_json(*t_ms, *v)}),
        Value::String { t_ms, v } => {
            json!({"resultType": "string", "result": [super::response::seconds(*t_ms), v]})
        }
        Value::Vector(samples) => {
            let mut out = Vec::with_capacity(samples.len());
            for s in samples {
                out.push(match &s.h {
                    Some(h) => json!({"metric": labels_json(&s.labels), "histogram": histogram_point_json(s.t_ms, h)}),
                    None => json!({"metric": labels_json(&s.labels), "value": point_json(s.t_ms, s.v)}),
                });
            }
            json!({"resultType": "vector", "result": out})
        }
        Value::Matrix(series) => {
            let mut out = Vec::with_capacity(series.len());
            for s in series {
                out.push(series_json(s));
            }
            json!({"resultType": "matrix", "result": out})
        }
    }
}

/// A query's answer with its annotations (`warnings`, `infos`).
fn query_success(result: &QueryResult) -> Response {
    let a = &result.annotations;
    success_annotated(value_json(result), &a.warnings, &a.infos)
}

fn record_query(state: &AppState, kind: &'static str, started: Instant, ok: bool) {
    let m = &state.metrics;
    let status = if ok { "success" } else { "error" };
    m.inc(
        "didban_queries_total",
        "PromQL queries answered.",
        &[("type", kind), ("status", status)],
        1.0,
    );
    m.inc(
        "didban_query_seconds_total",
        "Time spent answering PromQL queries.",
        &[("type", kind)],
        started.elapsed().as_secs_f64(),
    );
}

/// Runs a closure over the database on a blocking thread (queries are CPU-bound).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Queryable, &Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = state.reader.clone();
    let engine: Arc<Engine> = state.engine.clone();
    tokio::task::spawn_blocking(move || f(db.as_ref(), engine.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

/// The request's `timeout` (a Prometheus duration or float seconds) and `query.timeout`:
/// the smaller wins.
fn timeout(state: &AppState, p: &Params) -> Result<Duration, ApiError> {
    let configured = state.config.query.timeout;
    match p.get("timeout").filter(|v| !v.is_empty()) {
        None => Ok(configured),
        Some(v) => {
            let ms = parse_duration_ms(v)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"timeout\": {e}")))?;
            let ms = u64::try_from(ms).ok().filter(|ms| *ms > 0).ok_or_else(|| {
                ApiError::bad_data(format!("invalid parameter \"timeout\": {v:?} must be positive"))
            })?;
            Ok(configured.min(Duration::from_millis(ms)))
        }
    }
}

/// Sets the cancel flag of an evaluation (and counts a cancelled query) when dropped before
/// being disarmed: axum drops the handler's future when the client goes away.
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    state: AppState,
    kind: &'static str,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
            self.state.metrics.inc(
                "didban_queries_cancelled_total",
                "PromQL queries whose client went away before the answer; their evaluation stops.",
                &[("type", self.kind)],
                1.0,
            );
        }
    }
}

/// Runs one PromQL evaluation of the query API with its bounds: a slot from the query
/// limiter (`lane`), a deadline from the request's arrival (`timeout`, queueing included),
/// and a cancel flag set if the client goes away.
async fn evaluate(
    state: &AppState,
    kind: &'static str,
    lane: Lane,
    timeout: Duration,
    eval: impl FnOnce(&dyn Queryable, &Engine, &QueryControl) -> Result<QueryResult, PromqlError> + Send + 'static,
) -> Result<QueryResult, ApiError> {
    let arrived = Instant::now();
    let deadline = arrived.checked_add(timeout);
    let flag = Arc::new(AtomicBool::new(false));
    let mut guard = CancelOnDrop {
        flag: flag.clone(),
        state: state.clone(),
        kind,
        armed: true,
    };
    let admitted = state.query_limiter.admit(lane, deadline).await;
    let permit = match admitted {
        Ok(p) => p,
        Err(e) => {
            guard.armed = false;
            record_query(state, kind, arrived, false);
            return Err(match e {
                AdmitError::QueueFull(_) => ApiError::overloaded(e.to_string(), 1),
                AdmitError::Timeout => ApiError::timeout(format!("{e} (timeout {}ms)", timeout.as_millis())),
            });
        }
    };
    let ctl = QueryControl {
        deadline,
        cancel: Some(flag),
    };
    let db = state.reader.clone();
    let engine: Arc<Engine> = state.engine.clone();
    let result = tokio::task::spawn_blocking(move || {
        let r = eval(db.as_ref(), engine.as_ref(), &ctl);
        drop(permit);
        r
    })
    .await;
    guard.armed = false;
    let result = match result {
        Ok(r) => r.map_err(promql_error),
        Err(e) => Err(ApiError::internal(format!("query task failed: {e}"))),
    };
    record_query(state, kind, arrived, result.is_ok());
    result
}

/// `GET|POST /api/v1/query`.
pub async fn query(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, &headers, &body)?;
    let expr = p.required("query")?.to_string();
    // Before admission: a refused shape must not take a slot or a queue place.
    check_depth(&expr, state.engine.options().max_depth).map_err(promql_error)?;
    let time = p.time_or("time", now_ms())?;
    let timeout = timeout(&state, &p)?;
    let opts = QueryOptions::from_params(&p)?;
    let mut result = evaluate(&state, "instant", Lane::Light, timeout, move |db, engine, ctl| {
        opts.engine(engine).instant_query_with(db, &expr, time, ctl)
    })
    .await?;
    let truncated = opts.truncate(&mut result);
    result.annotations.warnings.extend(truncated);
    Ok(query_success(&result))
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, &headers, &body)?;
    let expr = p.required("query")?.to_string();
    // Before admission: a refused shape must not take a slot or a queue place.
    check_depth(&expr, state.engine.options().max_depth).map_err(promql_error)?;
    let start = p
        .time_or("start", i64::MIN)
        .and_then(|t| require_set(t, "start"))?;
    let end = p.time_or("end", i64::MIN).and_then(|t| require_set(t, "end"))?;
    let step = parse_duration_ms(p.required("step")?)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = timeout(&state, &p)?;
    let opts = QueryOptions::from_params(&p)?;
    let mut result = evaluate(&state, "range", Lane::Heavy, timeout, move |db, engine, ctl| {
        opts.engine(engine)
            .range_query_with(db, &expr, start, end, step, ctl)
    })
    .await?;
    let truncated = opts.truncate(&mut result);
    result.annotations.warnings.extend(truncated);
    Ok(query_success(&result))
}

fn require_set(t: i64, key: &str) -> Result<i64, ApiError> {
    if t == i64::MIN {
        Err(ApiError::bad_data(format!("missing required parameter {key:?}")))
    } else {
        Ok(t)
    }
}

/// The `match[]` selectors of a request, each parsed into matchers.
fn match_sets(p: &Params, required: bool) -> Result<Vec<Vec<LabelMatcher>>, ApiError> {
    let selectors = p.all("match[]");
    if selectors.is_empty() && required {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let mut sets = Vec::with_capacity(selectors.len());
    for s in selectors {
        let matchers =
            parse_matchers(s).map_err(|e| ApiError::bad_data(format!("invalid match[] {s:?}: {e}")))?;
        sets.push(matchers);
    }
    Ok(sets)
}

fn range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((p.time_or("start", MIN_TIME_MS)?, p.time_or("end", MAX_TIME_MS)?))
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") | Some("0") => Ok(usize::MAX),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_data(format!("invalid parameter \"limit\": {v:?} is not a number"))),
    }
}

/// `GET|POST /api/v1/series`.
pub async fn series(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, &headers, &body)?;
    let sets = match_sets(&p, true)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let all = blocking(&state, move |db, _| {
        union_over_sets(sets, |m| db.series(m, start, end))
    })
    .await?;
    let (all, warnings) = take_limit(all, limit);
    let mut out = Vec::new();
    for labels in &all {
        out.push(labels_json(labels));
    }
    Ok(success(Json::Array(out), &warnings))
}

/// The sorted, distinct union of `read` over every matcher set; no `match[]` at all means
/// one empty set (everything).
fn union_over_sets<T: Ord>(
    sets: Vec<Vec<LabelMatcher>>,
    read: impl Fn(&[LabelMatcher]) -> Result<Vec<T>, didban_store::ReadError>,
) -> Result<Vec<T>, ApiError> {
    let sets = if sets.is_empty() { vec![Vec::new()] } else { sets };
    let mut out = Vec::new();
    for m in &sets {
        out.extend(read(m).map_err(|e| ApiError::internal(e.to_string()))?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, &headers, &body)?;
    let sets = match_sets(&p, false)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let names = blocking(&state, move |db, _| {
        union_over_sets(sets, |m| db.label_names(m, start, end))
    })
    .await?;
    let (names, warnings) = take_limit(names, limit);
    Ok(success(json!(names), &warnings))
}

/// `GET /api/v1/label/<name>/values`.
pub async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(q, &headers, &body)?;
    if name != "__name__" && !didban_store::model::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = match_sets(&p, false)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let values = blocking(&state, move |db, _| {
        union_over_sets(sets, |m| db.label_values(&name, m, start, end))
    })
    .await?;
    let (values, warnings) = take_limit(values, limit);
    Ok(success(json!(values), &warnings))
}

/// `GET /api/v1/metadata`: type, help and unit per metric name as reported by clients.
pub async fn metadata(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_parts(q.as_deref(), None)?;
    let limit = limit(&p)?;
    let metric = p.get("metric").filter(|m| !m.is_empty()).map(str::to_string);
    let data = state.metadata.to_json(metric.as_deref(), limit);
    Ok(success(data, &[]))
}
