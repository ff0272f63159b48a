//! Ingest: OTLP metrics (gRPC and HTTP) and Prometheus remote_write, decoded, limited and
//! mapped to series, then appended to the database; the reply says what was refused.
//!
//! By transport: [`http`] (OTLP/HTTP), [`grpc`] (OTLP/gRPC, decoding through the agent's
//! `receiver::grpc_decode`, which both share), [`remote_write`], with
//! [`body`] (size limits, decompression) and [`error`] (one error type, one mapping to
//! HTTP and gRPC status). By signal: [`metrics`], [`traces`], [`logs`] (OTLP → store
//! types), [`attributes`] (what the trace and log mappings share). [`protowire`]: the
//! protobuf reader of the borrowing decoders. [`pipeline`]: appending, replies and
//! self-metrics shared by every receiver.

pub mod attributes;
pub mod body;
pub mod error;
pub mod grpc;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod protowire;
pub mod remote_write;
pub mod traces;

use axum::Router;
use didban_auth::Require;

use crate::state::AppState;
use pipeline::Ingestor;

/// Routes served on the OTLP/HTTP port (`/v1/metrics`, `/v1/traces`, `/v1/logs`); they need
/// the ingest scope.
pub fn otlp_http_router(state: AppState) -> Router {
    http::router(Ingestor::new(state)).route_layer(Require::ingest())
}

/// Routes served on the main HTTP port (`/api/v1/write`); they need the ingest scope.
pub fn remote_write_router(state: AppState) -> Router {
    remote_write::router(Ingestor::new(state)).route_layer(Require::ingest())
}

/// The OTLP/gRPC services (metrics, traces, logs) as a router for `listen::serve`; with
/// `auth`, each call's `authorization` metadata must pass it.
pub fn otlp_grpc_router(state: AppState, auth: Option<grpc::IngestCheck>) -> Router {
    grpc::router(Ingestor::new(state), auth)
}

/// Serves OTLP/gRPC for metrics, traces and logs on `listener` until `shutdown`; with
/// `auth`, each call's `authorization` metadata must pass it.
pub async fn serve_otlp_grpc(
    state: AppState,
    auth: Option<grpc::IngestCheck>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    grpc::serve(Ingestor::new(state), auth, listener, shutdown).await
}
