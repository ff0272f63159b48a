//! Processes of split roles working together (`[cluster]`, `--role`): ingesters announce
//! themselves in the metastore's database and answer queriers with their heads; queriers
//! read the published blocks and every live ingester's heads and merge them.
//!
//! Spans and logs go the same way: ingesters answer with what they hold that the bucket
//! does not hold yet (span heads, writable and staged log days), and queriers merge that
//! with the published span blocks and sealed log days. Exemplars are never published:
//! queriers merge every ingester's exemplar store with their own.
//!
//! - `wire`: the internal heads requests (one read, or all reads of one query) and their
//!   paths, matchers on the wire.
//! - `heads`: the ingester's handlers for metric heads.
//! - `spans`, `logs`: the ingester's handlers for unpublished spans and log records, and
//!   their requests.
//! - `exemplars`: the ingester's handler for its exemplars and the querier's merge of
//!   them (`/api/v1/query_exemplars`).
//! - `figures`: the ingester's handler for its unpublished counts and the querier's home
//!   page figures over them (a short ask; an ingester not answering is listed, not fatal).
//! - `reader`: the querier's [`reader::ClusterReader`]: the live ingesters, the fan-out
//!   to them (for metric heads, spans and logs alike), heads merged with blocks;
//!   `metric_read`: the `Queryable` it is, and its view for one PromQL evaluation (every
//!   ingester asked once for all the query's reads).
//! - `trace_read`, `log_read`: the querier's trace and log reads over the ingesters'
//!   answers and the bucket, merged; `log_tail`: its live tail, one cursor per ingester.

pub mod exemplars;
pub mod figures;
pub mod heads;
pub mod log_read;
pub mod log_tail;
pub mod logs;
pub mod metric_read;
pub mod reader;
pub mod spans;
pub mod trace_read;
pub mod wire;

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use didban_auth::{Need, Require};

use crate::config::cluster::Role;
use crate::selfmon::SelfMetrics;
use crate::stores::Stores;

/// Every internal route of a process whose head queriers read (`/internal/v1/heads`,
/// `/heads/batch`, `/spans`, `/logs`, `/exemplars`, `/figures`), answering only callers
/// with `secret` as bearer token, each answer counted in `metrics`.
pub fn internal_router(stores: &Stores, secret: &str, metrics: Arc<SelfMetrics>) -> Router {
    heads::router(stores.metrics.clone(), secret)
        .merge(spans::router(stores.traces.clone(), secret))
        .merge(logs::router(stores.logs.clone(), secret))
        .merge(exemplars::router(stores.exemplars.clone(), secret))
        .merge(figures::router(stores.local_figures(), secret))
        .route_layer(axum::middleware::from_fn_with_state(metrics, count_answer))
}

/// Counts each answer of an internal route by path and status code
/// (`didban_internal_requests_total`): what queriers and alerting instances ask of this
/// process, and how often it was refused or failed.
async fn count_answer(
    State(metrics): State<Arc<SelfMetrics>>,
    path: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let path = path.as_str().to_string();
    let response = next.run(request).await;
    metrics.inc(
        "didban_internal_requests_total",
        "Internal API requests answered (queriers and alerting instances asking this process), by path and status code.",
        &[("path", &path), ("code", response.status().as_str())],
        1.0,
    );
    response
}

/// Answers every write path (remote_write, OTLP/HTTP) of a process whose role does not
/// ingest with 421 Misdirected Request naming the role, so a misrouted client learns where
/// to send instead of having its data land in a head nobody reads.
pub fn refuse_writes(role: Role) -> Router {
    let message = format!(
        "this process runs as {}; send writes to an ingester (or a process with role \"all\")\n",
        role.name()
    );
    let refuse = move || {
        let message = message.clone();
        async move { (StatusCode::MISDIRECTED_REQUEST, message) }
    };
    Router::new()
        .route("/api/v1/write", post(refuse.clone()))
        .route("/v1/metrics", post(refuse.clone()))
        .route("/v1/traces", post(refuse.clone()))
        .route("/v1/logs", post(refuse))
        .route_layer(Require::api(Need::Open))
}
