//! Ingest: OTLP metrics (gRPC and HTTP) and Prometheus remote_write, decoded, limited and
//! mapped to series, then appended to the database; the reply says what was refused.

pub mod body;
pub mod delta;
pub mod histogram;
pub mod names;
mod otlp_histograms;
pub mod otlp_metrics;
pub mod validate;

use axum::Router;

use crate::state::AppState;

/// Routes served on the OTLP/HTTP port (`/v1/metrics`).
pub fn otlp_http_router(state: AppState) -> Router {
    Router::new().with_state(state)
}

/// Routes served on the main HTTP port (`/api/v1/write`).
pub fn remote_write_router(state: AppState) -> Router {
    Router::new().with_state(state)
}

/// Serves OTLP/gRPC (`MetricsService/Export`) on `listener` until `shutdown` completes.
pub async fn serve_otlp_grpc(
    _state: AppState,
    _listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}
