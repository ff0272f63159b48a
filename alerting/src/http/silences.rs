//! Silences in Alertmanager API v2's JSON shape.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::notify::silence::{Silence, SilenceError, SilenceMatcher};
use crate::notify::{parse_rfc3339, rfc3339};
use crate::service::Alerting;

/// The body of `POST /api/v2/silences`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

fn silence_json(s: &Silence, now_ms: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now_ms)},
        "updatedAt": rfc3339(s.updated_at_ms),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": rfc3339(s.ends_at_ms),
        "matchers": s.matchers,
        "startsAt": rfc3339(s.starts_at_ms),
    })
}

fn error(status: StatusCode, msg: String) -> Response {
    (status, Json(Value::String(msg))).into_response()
}

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
        SilenceError::NotFound(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        SilenceError::Io(_) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub(super) async fn list(State(a): State<Arc<Alerting>>) -> Response {
    let now = crate::now_ms();
    let mut out = Vec::new();
    for s in a.notifier.silences.list(now) {
        out.push(silence_json(&s, now));
    }
    Json(Value::Array(out)).into_response()
}

pub(super) async fn get_one(State(a): State<Arc<Alerting>>, Path(id): Path<String>) -> Response {
    match a.notifier.silences.get(&id) {
        Some(s) => Json(silence_json(&s, crate::now_ms())).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("silence {id:?} not found")),
    }
}

pub(super) async fn create(State(a): State<Arc<Alerting>>, body: axum::body::Bytes) -> Response {
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    let Some(starts) = parse_rfc3339(&p.starts_at) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("startsAt {:?} is not an RFC 3339 time", p.starts_at),
        );
    };
    let Some(ends) = parse_rfc3339(&p.ends_at) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("endsAt {:?} is not an RFC 3339 time", p.ends_at),
        );
    };
    if p.created_by.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "createdBy is missing".into());
    }
    if p.comment.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "comment is missing".into());
    }
    let now = crate::now_ms();
    let s = Silence {
        id: p.id.unwrap_or_default(),
        matchers: p.matchers,
        starts_at_ms: starts.max(now),
        ends_at_ms: ends,
        updated_at_ms: now,
        created_by: p.created_by,
        comment: p.comment,
    };
    match a.notifier.silences.upsert(s, now) {
        Ok(id) => Json(json!({ "silenceID": id })).into_response(),
        Err(e) => silence_error(e),
    }
}

pub(super) async fn expire(State(a): State<Arc<Alerting>>, Path(id): Path<String>) -> Response {
    match a.notifier.silences.expire(&id, crate::now_ms()) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => silence_error(e),
    }
}
