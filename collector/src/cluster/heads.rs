//! The ingester's side: `POST /internal/v1/heads` answers a querier with the series its
//! live and frozen heads hold for the matchers and range asked (what no published block
//! holds yet); `POST /internal/v1/heads/batch` answers every read of one query at once,
//! one series set per read in the order asked. Only callers with the cluster's shared
//! secret as bearer token are answered.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use didban_auth::{Need, Require};
use didban_store::metrics::exchange::{encode_series, encode_series_sets};
use didban_store::{Db, PlannedRead};

use super::wire::{
    HeadsBatchRequest, HeadsRequest, HEADS_BATCH_PATH, HEADS_PATH, SERIES_MEDIA_TYPE, SERIES_SETS_MEDIA_TYPE,
};

/// What the handlers need.
#[derive(Clone)]
struct Heads {
    db: Arc<Db>,
    secret: Arc<str>,
}

/// The internal heads API of an ingester (the routes are open to the user guard; the
/// handlers check the cluster secret themselves).
pub fn router(db: Arc<Db>, secret: &str) -> Router {
    Router::new()
        .route(HEADS_PATH, post(answer))
        .route(HEADS_BATCH_PATH, post(answer_batch))
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
    let read = serde_json::from_slice::<HeadsRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| r.read());
    let read = match read {
        Ok(r) => r,
        Err(e) => return invalid(&e),
    };
    read_heads(h.db, SERIES_MEDIA_TYPE, move |db| {
        encode_series(&select(db, &read))
    })
    .await
}

async fn answer_batch(State(h): State<Heads>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refused) = super::wire::refuse_without_secret(&headers, &h.secret) {
        return refused;
    }
    let reads = serde_json::from_slice::<HeadsBatchRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| r.reads());
    let reads = match reads {
        Ok(r) => r,
        Err(e) => return invalid(&e),
    };
    read_heads(h.db, SERIES_SETS_MEDIA_TYPE, move |db| {
        let mut sets = Vec::with_capacity(reads.len());
        for read in &reads {
            sets.push(select(db, read));
        }
        encode_series_sets(&sets)
    })
    .await
}

fn select(db: &Db, read: &PlannedRead) -> Vec<didban_store::SeriesSamples> {
    db.select_heads(&read.matchers, read.start_ms, read.end_ms)
}

/// 400 naming what is wrong with the request.
fn invalid(e: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("invalid heads request: {e}\n")).into_response()
}

/// The bytes `encode` makes of the heads (on a blocking thread), as `media_type`.
async fn read_heads(
    db: Arc<Db>,
    media_type: &'static str,
    encode: impl FnOnce(&Db) -> Vec<u8> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || encode(&db)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, media_type)], bytes).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("heads read failed: {e}\n"),
        )
            .into_response(),
    }
}
