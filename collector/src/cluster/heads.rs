//! The ingester's side: `POST /internal/v1/heads` answers a querier with the series its
//! live and frozen heads hold for the matchers and range asked (what no published block
//! holds yet). Only callers with the cluster's shared secret as bearer token are answered.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use didban_auth::{Need, Require};
use didban_store::Db;

use super::wire::{HeadsRequest, HEADS_PATH, SERIES_MEDIA_TYPE};

/// What the handler needs.
#[derive(Clone)]
struct Heads {
    db: Arc<Db>,
    secret: Arc<str>,
}

/// The internal heads API of an ingester (the route is open to the user guard; the
/// handler checks the cluster secret itself).
pub fn router(db: Arc<Db>, secret: &str) -> Router {
    Router::new()
        .route(HEADS_PATH, post(answer))
        .route_layer(Require::api(Need::Open))
        .with_state(Heads {
            db,
            secret: Arc::from(secret),
        })
}

async fn answer(State(h): State<Heads>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refused) = super::wire::refuse_without_secret(&headers, &h.secret) {
        return refused;
    }
    let req: HeadsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid heads request: {e}\n")).into_response(),
    };
    let matchers = match req.matchers() {
        Ok(m) => m,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid heads request: {e}\n")).into_response(),
    };
    if matchers.is_empty() || req.end_ms < req.start_ms {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "invalid heads request: needs a matcher and start <= end ({} > {})\n",
                req.start_ms, req.end_ms
            ),
        )
            .into_response();
    }
    let db = h.db.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        didban_store::metrics::exchange::encode_series(&db.select_heads(&matchers, req.start_ms, req.end_ms))
    })
    .await;
    match bytes {
        Ok(bytes) => ([(header::CONTENT_TYPE, SERIES_MEDIA_TYPE)], bytes).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("heads read failed: {e}\n"),
        )
            .into_response(),
    }
}
