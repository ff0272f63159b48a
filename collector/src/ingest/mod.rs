//! Ingest: OTLP metrics (gRPC and HTTP) and Prometheus remote_write, decoded, limited and
//! mapped to series, then appended to the database; the reply says what was refused.
//!
//! - [`otlp_http`], [`otlp_grpc`], [`remote_write`]: the receivers;
//! - [`body`]: size limits and decompression;
//! - [`otlp_metrics`] (with [`names`], [`histogram`], [`delta`]): OTLP → Prometheus mapping;
//! - [`validate`]: per-series label rules and limits;
//! - [`pipeline`]: appending, replies and self-metrics shared by all receivers.

pub mod body;
pub mod delta;
pub mod error;
pub mod histogram;
pub mod names;
pub mod otlp_grpc;
mod otlp_histograms;
pub mod otlp_http;
pub mod otlp_metrics;
#[cfg(test)]
mod otlp_metrics_tests;
pub mod pipeline;
pub mod remote_write;
pub mod validate;

use axum::Router;

use crate::state::AppState;
use pipeline::Ingestor;

/// Routes served on the OTLP/HTTP port (`/v1/metrics`).
pub fn otlp_http_router(state: AppState) -> Router {
    otlp_http::router(Ingestor::new(state))
}

/// Routes served on the main HTTP port (`/api/v1/write`).
pub fn remote_write_router(state: AppState) -> Router {
    remote_write::router(Ingestor::new(state))
}

/// Serves OTLP/gRPC (`MetricsService/Export`) on `listener` until `shutdown` completes.
pub async fn serve_otlp_grpc(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    otlp_grpc::serve(Ingestor::new(state), listener, shutdown).await
}
