//! Prometheus' JSON envelopes for API answers: `success` with data, `error` with
//! `bad_data`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Prometheus' error envelope with `errorType` `bad_data` and HTTP 400.
pub(crate) fn bad_data(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "error", "errorType": "bad_data", "error": msg.into()})),
    )
        .into_response()
}

/// Prometheus' success envelope.
pub(crate) fn success(data: serde_json::Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}
