//! Ingest: OTLP metrics (gRPC and HTTP) and Prometheus remote_write, decoded, limited and
//! mapped to series, then appended to the database; the reply says what was refused.
//!
//! - [`otlp_http`], [`otlp_grpc`], [`remote_write`]: the receivers;
//! - [`body`]: size limits and decompression;
//! - [`otlp_metrics`] (with [`names`], [`histogram`], [`delta`]): OTLP → Prometheus mapping;
//! - [`validate`]: per-series label rules and limits;
//! - [`pipeline`]: appending, replies and self-metrics shared by all receivers.
//! - traces and logs: [`otlp_signals`] (receivers), [`otlp_traces`], [`otlp_logs`],
//!   [`otlp_common`] (mapping), [`signal_pipeline`] (storing), [`span_metrics`] and
//!   [`faas`] (span-derived metrics).

pub mod body;
pub mod delta;
pub mod error;
pub mod faas;
pub mod histogram;
mod label_cache;
pub mod names;
pub mod otlp_common;
pub mod otlp_grpc;
mod otlp_histograms;
pub mod otlp_http;
pub mod otlp_logs;
pub mod otlp_metrics;
#[cfg(test)]
mod otlp_metrics_tests;
pub mod otlp_signals;
pub mod otlp_traces;
pub mod otlp_wire;
pub mod pipeline;
pub mod remote_write;
pub mod signal_pipeline;
pub mod span_metrics;
pub mod validate;

use axum::Router;
use didban_auth::Require;

use std::sync::Arc;

use crate::signals::Signals;
use crate::state::AppState;
use pipeline::Ingestor;
use signal_pipeline::SignalIngestor;

/// Routes served on the OTLP/HTTP port (`/v1/metrics`); they need the ingest scope.
pub fn otlp_http_router(state: AppState) -> Router {
    otlp_http::router(Ingestor::new(state)).route_layer(Require::ingest())
}

/// Routes served on the main HTTP port (`/api/v1/write`); they need the ingest scope.
pub fn remote_write_router(state: AppState) -> Router {
    remote_write::router(Ingestor::new(state)).route_layer(Require::ingest())
}

/// Serves OTLP/gRPC (`MetricsService/Export`) on `listener` until `shutdown` completes.
pub async fn serve_otlp_grpc(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    otlp_grpc::serve(Ingestor::new(state), None, None, listener, shutdown).await
}

/// The ingestor of traces and logs over the server's stores.
pub fn signal_ingestor(state: AppState, signals: Arc<Signals>) -> Arc<SignalIngestor> {
    SignalIngestor::new(Ingestor::new(state), signals)
}

/// Routes served on the OTLP/HTTP port for traces and logs (`/v1/traces`, `/v1/logs`); they
/// need the ingest scope.
pub fn otlp_signals_router(ingestor: Arc<SignalIngestor>) -> Router {
    otlp_signals::router(ingestor).route_layer(Require::ingest())
}

/// Serves OTLP/gRPC for metrics, traces and logs on `listener` until `shutdown`; with
/// `auth`, each call's `authorization` metadata must pass it.
pub async fn serve_otlp_grpc_all(
    state: AppState,
    signals: Arc<SignalIngestor>,
    auth: Option<otlp_grpc::IngestCheck>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    otlp_grpc::serve(Ingestor::new(state), Some(signals), auth, listener, shutdown).await
}
