//! The query APIs of the main port: Prometheus-compatible (`/api/v1/…`, `/metrics`), the
//! Jaeger query API over traces, and the log API; all in one [`router`].

mod ast_json;
mod exemplars;
pub mod jaeger;
mod jaeger_json;
pub mod logs;
mod params;
mod prom;
mod query_options;
mod query_text;
mod response;
#[cfg(test)]
mod route_auth_tests;
pub mod status;
mod targets;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use didban_auth::{Need, Require, Role};
use serde_json::json;

pub use response::ApiError;

use tokio::sync::watch;

use crate::selfmon::gauges::refresh_store_gauges;
use crate::state::AppState;

/// Every query route of the main port: the Prometheus API, the Jaeger query API, the log
/// API and self-monitoring. Queries are for viewers (the Prometheus API's POSTs only carry
/// long queries), `/api/v1/admin/…` for admins, and `/metrics` for viewers unless
/// `[auth] public_metrics` opens it to scrapers without a token. `stop` ends live tails.
pub fn router(state: AppState, stop: watch::Receiver<bool>) -> Router {
    let metrics_need = if state.config.auth.public_metrics {
        Need::Open
    } else {
        Need::Role(Role::Viewer)
    };
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(Require::api(metrics_need));
    let admin = Router::new()
        .route("/api/v1/admin/tsdb/flush", axum::routing::post(flush))
        .route("/api/v1/admin/traces/flush", axum::routing::post(flush_traces))
        .route_layer(Require::api(Need::Role(Role::Admin)));
    Router::new()
        .merge(status::routes())
        .route(
            "/api/v1/format_query",
            get(query_text::format_query).post(query_text::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(query_text::parse_query).post(query_text::parse_query),
        )
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/targets/metadata", get(targets::targets_metadata))
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route(
            "/api/v1/query_range",
            get(prom::query_range).post(prom::query_range),
        )
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/metadata", get(prom::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(exemplars::query_exemplars).post(exemplars::query_exemplars),
        )
        .route("/api/services", get(jaeger::services))
        .route(
            "/api/services/{service}/operations",
            get(jaeger::service_operations),
        )
        .route("/api/operations", get(jaeger::operations))
        .route("/api/traces", get(jaeger::search))
        .route("/api/traces/{id}", get(jaeger::trace))
        .route("/api/traces/{id}/logs", get(logs::trace_logs))
        .route("/api/dependencies", get(jaeger::dependencies))
        .route("/api/logs/search", get(logs::search))
        .route("/api/logs/histogram", get(logs::histogram))
        .route("/api/logs/values", get(logs::values))
        .route("/api/logs/tail", get(logs::tail))
        .route_layer(Require::api(Need::Role(Role::Viewer)))
        .merge(metrics)
        .merge(admin)
        .layer(axum::Extension(logs::Stopping(stop)))
        .with_state(state)
}

/// `POST /api/v1/admin/tsdb/flush`: writes the head to a Parquet block now and truncates the
/// WAL, for operators who want everything in Parquet (before a backup, before reading blocks
/// with DuckDB) and for the benchmark's disk figure. Like Prometheus' snapshot, it leaves
/// compaction to its usual schedule.
async fn flush(State(state): State<AppState>) -> Result<axum::response::Response, ApiError> {
    let db = state.stores.metrics.clone();
    tokio::task::spawn_blocking(move || db.flush_head())
        .await
        .map_err(|e| ApiError::internal(format!("flush task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("flush failed: {e}")))?;
    Ok(response::success(json!(null), &[]))
}

/// `POST /api/v1/admin/traces/flush`: writes the span head to a block now (uploaded and
/// published with an object store) and truncates the trace WAL, as `/api/v1/admin/tsdb/flush`
/// does for metrics: before a backup, or to hand an ingester's spans to the bucket.
async fn flush_traces(State(state): State<AppState>) -> Result<axum::response::Response, ApiError> {
    let store = state.stores.traces.clone();
    tokio::task::spawn_blocking(move || store.flush_head())
        .await
        .map_err(|e| ApiError::internal(format!("flush task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("span flush failed: {e}")))?;
    Ok(response::success(json!(null), &[]))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_store_gauges(&state);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
