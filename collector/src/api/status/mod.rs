//! `/api/v1/status/…`: what the server is (buildinfo), how it runs (runtimeinfo), how it is
//! configured (flags) and what its head holds (tsdb: cardinality), in Prometheus' shapes so
//! Grafana, `promtool` and Prometheus' own UI read them.

pub mod flags;

use std::time::{Duration, Instant, SystemTime};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use didban_store::cardinality::{self, CardinalityError, CardinalityStats, Stat};
use didban_store::promql::{AdmitError, Lane};
use serde_json::{json, Value as Json};

use super::params::Params;
use super::response::{success, ApiError};
use crate::state::AppState;

/// Rows of each `status/tsdb` list when the request names no `limit` (Prometheus' default).
const DEFAULT_TSDB_LIMIT: usize = 10;

/// When the server started, for `runtimeinfo`.
#[derive(Debug, Clone, Copy)]
struct Started(SystemTime);

/// The status routes; the start time they report is the time this is called.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/status/flags", get(flags_handler))
        .route("/api/v1/status/tsdb", get(tsdb))
        .layer(Extension(Started(SystemTime::now())))
}

/// The version, git revision and branch, and rustc version this binary was built from
/// (embedded by `collector/build.rs`). `goVersion` is left out, as VictoriaMetrics and Mimir
/// do for fields that do not apply; `rustVersion` says what built it.
pub fn build_info() -> Json {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": env!("DIDBAN_GIT_REVISION"),
        "branch": env!("DIDBAN_GIT_BRANCH"),
        "buildUser": "",
        "buildDate": "",
        "rustVersion": env!("DIDBAN_RUSTC_VERSION"),
        "application": "didban",
    })
}

async fn buildinfo() -> Response {
    success(build_info(), &[])
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// `GET /api/v1/status/runtimeinfo`. Go runtime fields get their Rust counterparts:
/// `goroutineCount` the tokio tasks alive, `GOMAXPROCS` the runtime's worker threads,
/// `GOMEMLIMIT` `storage.memory_limit`. The configuration is read once at start, so
/// `lastConfigTime` is the start time and `reloadConfigSuccess` true (alert rule reloads
/// report through `didban_config_last_reload_successful`).
async fn runtimeinfo(
    State(state): State<AppState>,
    Extension(Started(started)): Extension<Started>,
) -> Response {
    let metrics = tokio::runtime::Handle::current().metrics();
    let db = state.stores.metrics.stats();
    let c = &state.config;
    let mut retention = Vec::new();
    if !c.storage.retention_time.is_zero() {
        retention.push(flags::duration(c.storage.retention_time));
    }
    if c.storage.retention_bytes > 0 {
        retention.push(flags::bytes(c.storage.retention_bytes));
    }
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let data = json!({
        "startTime": rfc3339(started),
        "CWD": cwd,
        "hostname": hostname(),
        "serverTime": rfc3339(SystemTime::now()),
        "reloadConfigSuccess": true,
        "lastConfigTime": rfc3339(started),
        "corruptionCount": db.wal_torn_tail_repairs + db.wal_undecodable_records,
        "goroutineCount": metrics.num_alive_tasks(),
        "GOMAXPROCS": metrics.num_workers(),
        "GOMEMLIMIT": c.storage.memory_limit_bytes,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": if retention.is_empty() { "forever".to_string() } else { retention.join(" or ") },
    });
    success(data, &[])
}

/// `GET /api/v1/status/flags`: the effective configuration, see [`flags::flags`].
async fn flags_handler(State(state): State<AppState>) -> Response {
    success(json!(flags::flags(&state.config)), &[])
}

fn tsdb_limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit").filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_TSDB_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ApiError::bad_data(format!(
                "invalid parameter \"limit\": {v:?} must be a positive number"
            ))),
        },
    }
}

fn stats_json(rows: &[Stat]) -> Json {
    let rows: Vec<Json> = rows
        .iter()
        .map(|s| json!({"name": s.name, "value": s.value}))
        .collect();
    Json::Array(rows)
}

/// The `status/tsdb` answer: `headStats` from the head's own figures, the four top lists
/// from `stats` (series with samples in the head's time range).
pub fn tsdb_json(db: &didban_store::DbStats, stats: &CardinalityStats) -> Json {
    json!({
        "headStats": {
            "numSeries": db.head_series,
            "numLabelPairs": stats.num_label_pairs,
            "numSeriesWithSamples": stats.num_series,
            "numSamples": db.head_samples,
            "minTime": db.head_min_time_ms,
            "maxTime": db.head_max_time_ms,
        },
        "seriesCountByMetricName": stats_json(&stats.series_count_by_metric_name),
        "labelValueCountByLabelName": stats_json(&stats.label_value_count_by_label_name),
        "memoryInBytesByLabelName": stats_json(&stats.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": stats_json(&stats.series_count_by_label_value_pair),
    })
}

/// `GET /api/v1/status/tsdb?limit=N`: cardinality of the head — every series with a sample
/// between the oldest and newest sample in memory (live and frozen heads; a block overlapping
/// that range contributes its series too). The walk takes a slot of the heavy query lane
/// and is bounded by `query.timeout`.
async fn tsdb(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_parts(q.as_deref(), None)?;
    let limit = tsdb_limit(&p)?;
    let timeout: Duration = state.config.query.timeout;
    let deadline = Instant::now().checked_add(timeout);
    let permit = state
        .query_limiter
        .admit(Lane::Heavy, deadline)
        .await
        .map_err(|e| match e {
            AdmitError::QueueFull(_) => ApiError::overloaded(e.to_string(), 1),
            AdmitError::Timeout => ApiError::timeout(e.to_string()),
        })?;
    let db = state.stores.metrics.clone();
    let (head, stats) = tokio::task::spawn_blocking(move || {
        let head = db.stats();
        let stats = match (head.head_min_time_ms, head.head_max_time_ms) {
            (Some(min), Some(max)) => cardinality::walk(db.as_ref(), min, max, deadline, limit),
            _ => Ok(CardinalityStats::default()),
        };
        drop(permit);
        stats.map(|s| (head, s))
    })
    .await
    .map_err(|e| ApiError::internal(format!("cardinality task failed: {e}")))?
    .map_err(|e| match e {
        CardinalityError::Timeout { .. } => ApiError::timeout(e.to_string()),
        CardinalityError::Read(e) => ApiError::internal(e.to_string()),
    })?;
    Ok(success(tsdb_json(&head, &stats), &[]))
}
