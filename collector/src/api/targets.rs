//! `/api/v1/targets` and `/api/v1/targets/metadata`, derived from what scrapers write:
//! Didban does not scrape itself — `didban-agent` (and any Prometheus remote-writing to it)
//! does, and writes one `up` series per target with `job` and `instance`, plus
//! `scrape_duration_seconds`. Every `up` series with a sample within `query.lookback_delta`
//! is an active target: health from the newest value, `lastScrape` from its time, the
//! interval from the two newest samples. What only the scraper knows (URL, scrape timeout,
//! the error text, dropped targets) is not stored, so it is empty.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use didban_base::now_ms;
use didban_store::promql::parse_matchers;
use didban_store::{LabelMatcher, Labels, Queryable, SeriesSamples};
use serde_json::{json, Value as Json};

use super::params::Params;
use super::response::{format_float, labels_json, success, ApiError};
use super::status::flags::duration;
use crate::metadata::MetricMetadata;
use crate::state::AppState;

/// One active target as read from its newest `up` sample.
#[derive(Debug, Clone)]
struct Target {
    /// The `up` series' labels without `__name__`.
    labels: Labels,
    job: String,
    instance: String,
    up: f64,
    last_ms: i64,
    interval_ms: Option<i64>,
    duration_s: Option<f64>,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The active targets, sorted by job then labels.
fn active_targets(db: &dyn Queryable, now: i64, window_ms: i64) -> Result<Vec<Target>, ApiError> {
    let read = |name: &str| -> Result<Vec<SeriesSamples>, ApiError> {
        db.select(&[LabelMatcher::equal("__name__", name)], now - window_ms, now)
            .map_err(|e| ApiError::internal(e.to_string()))
    };
    let mut durations: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
    for s in read("scrape_duration_seconds")? {
        if let Some(last) = s.samples.last() {
            durations.insert(s.labels.without_metric_name(), (last.timestamp_ms, last.value));
        }
    }
    let mut out = Vec::new();
    for s in read("up")? {
        let Some(last) = s.samples.last() else {
            continue;
        };
        let labels = s.labels.without_metric_name();
        let interval_ms = match s.samples.len() {
            n if n >= 2 => s.samples.get(n - 2).map(|p| last.timestamp_ms - p.timestamp_ms),
            _ => None,
        };
        let duration_s = durations
            .get(&labels)
            .filter(|(t, _)| *t == last.timestamp_ms)
            .map(|(_, v)| *v);
        out.push(Target {
            job: labels.get("job").unwrap_or("").to_string(),
            instance: labels.get("instance").unwrap_or("").to_string(),
            labels,
            up: last.value,
            last_ms: last.timestamp_ms,
            interval_ms,
            duration_s,
        });
    }
    out.sort_by(|a, b| a.job.cmp(&b.job).then_with(|| a.labels.cmp(&b.labels)));
    Ok(out)
}

fn target_json(t: &Target) -> Json {
    let health = if t.up == 1.0 { "up" } else { "down" };
    let last_error = if t.up == 1.0 {
        String::new()
    } else {
        format!(
            "the last scrape failed (up = {}); the scraper's log has the reason",
            format_float(t.up)
        )
    };
    json!({
        "discoveredLabels": {"__address__": t.instance, "job": t.job},
        "labels": labels_json(&t.labels),
        "scrapePool": t.job,
        "scrapeUrl": "",
        "globalUrl": "",
        "lastError": last_error,
        "lastScrape": rfc3339(t.last_ms),
        "lastScrapeDuration": t.duration_s.unwrap_or(0.0),
        "health": health,
        "scrapeInterval": t.interval_ms.map(|ms| duration(std::time::Duration::from_millis(ms.max(0) as u64))).unwrap_or_default(),
        "scrapeTimeout": "",
    })
}

fn window_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.query.lookback_delta.as_millis()).unwrap_or(i64::MAX)
}

async fn read_targets(state: &AppState) -> Result<Vec<Target>, ApiError> {
    let db = state.stores.metrics.clone();
    let window = window_ms(state);
    tokio::task::spawn_blocking(move || active_targets(db.as_ref(), now_ms(), window))
        .await
        .map_err(|e| ApiError::internal(format!("targets task failed: {e}")))?
}

/// `GET /api/v1/targets?state=active|dropped|any&scrapePool=<job>`.
pub async fn targets(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_parts(q.as_deref(), None)?;
    let which = p.get("state").filter(|s| !s.is_empty()).unwrap_or("any");
    let active = match which.to_ascii_lowercase().as_str() {
        "any" | "active" => true,
        "dropped" => false,
        _ => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"state\": {which:?} is not active, dropped or any"
            )))
        }
    };
    let pool = p.get("scrapePool").filter(|s| !s.is_empty()).map(str::to_string);
    let mut list = Vec::new();
    if active {
        for t in read_targets(&state).await? {
            if pool.as_ref().is_none_or(|p| *p == t.job) {
                list.push(target_json(&t));
            }
        }
    }
    // Relabeling happens in the scraper: Didban never sees a dropped target.
    let data = json!({"activeTargets": list, "droppedTargets": [], "droppedTargetCounts": {}});
    Ok(success(data, &[]))
}

/// The metadata a target's metric name has: its own, else its histogram or summary
/// family's (`x_bucket`, `x_sum`, `x_count` → `x`), else `unknown`.
fn metadata_for(state: &AppState, name: &str) -> (String, MetricMetadata) {
    if let Some(m) = state.metadata.get(name) {
        return (name.to_string(), m);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(m) = state.metadata.get(base) {
                return (base.to_string(), m);
            }
        }
    }
    let unknown = MetricMetadata {
        kind: "unknown".into(),
        help: String::new(),
        unit: String::new(),
    };
    (name.to_string(), unknown)
}

/// Metric names of the series a target wrote within the window, without the series the
/// scraper adds itself (`up`, `scrape_*`).
fn target_metrics(
    db: &dyn Queryable,
    t: &Target,
    now: i64,
    window_ms: i64,
) -> Result<BTreeSet<String>, ApiError> {
    let matchers = [
        LabelMatcher::equal("job", t.job.as_str()),
        LabelMatcher::equal("instance", t.instance.as_str()),
    ];
    let mut names = BTreeSet::new();
    let values = db
        .label_values("__name__", &matchers, now - window_ms, now)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    for name in values {
        if name != "up" && !name.starts_with("scrape_") {
            names.insert(name);
        }
    }
    Ok(names)
}

/// `GET /api/v1/targets/metadata?match_target=<selector>&metric=<name>&limit=<n>`: per
/// active target, the metric names it wrote within the window with their type, help and
/// unit as clients reported them (Didban keeps one metadata entry per metric name, not per
/// target).
pub async fn targets_metadata(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q.as_deref(), None)?;
    let target_matchers = match p.get("match_target").filter(|s| !s.is_empty()) {
        Some(s) => parse_matchers(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match_target\" {s:?}: {e}")))?,
        None => Vec::new(),
    };
    let metric = p.get("metric").filter(|s| !s.is_empty()).map(str::to_string);
    let limit = match p.get("limit").filter(|s| !s.is_empty()) {
        None => usize::MAX,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => usize::MAX,
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Err(_) => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {v:?} is not a number"
                )))
            }
        },
    };
    let targets = read_targets(&state).await?;
    let db = state.stores.metrics.clone();
    let window = window_ms(&state);
    let st = state.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Json>, ApiError> {
        let now = now_ms();
        let mut rows = Vec::new();
        for t in &targets {
            if !target_matchers.iter().all(|m| m.matches_labels(&t.labels)) {
                continue;
            }
            let mut seen = BTreeSet::new();
            for name in target_metrics(db.as_ref(), t, now, window)? {
                let (family, meta) = metadata_for(&st, &name);
                if metric.as_ref().is_some_and(|m| *m != family) || !seen.insert(family.clone()) {
                    continue;
                }
                if rows.len() >= limit {
                    return Ok(rows);
                }
                rows.push(json!({
                    "target": labels_json(&t.labels),
                    "metric": family,
                    "type": meta.kind,
                    "help": meta.help,
                    "unit": meta.unit,
                }));
            }
        }
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError::internal(format!("targets metadata task failed: {e}")))??;
    Ok(success(Json::Array(rows), &[]))
}
