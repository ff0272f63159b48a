//! Receivers over HTTP: `GET /api/v1/receivers` (each receiver's integrations with their
//! delivery counts, and the outcome of the last configuration reload) and
//! `POST /api/v1/receivers/{name}/test` (send a test notification now and answer with each
//! integration's outcome).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::envelope::success;
use crate::notify::rfc3339;
use crate::notify::test_send::TestError;
use crate::service::Alerting;

pub(super) async fn list(State(a): State<Arc<Alerting>>) -> Response {
    let mut receivers = Vec::new();
    for (name, integrations) in a.notifier.receivers() {
        let mut list = Vec::new();
        for integration in integrations {
            let kind = integration.split('[').next().unwrap_or("");
            // Counters are per integration kind, as Alertmanager's are.
            let c = a.notifier.metrics.counts(&name, kind);
            list.push(json!({
                "name": integration,
                "kind": kind,
                "attemptsTotal": c.total,
                "failedTotal": c.failed,
            }));
        }
        receivers.push(json!({"name": name, "integrations": list}));
    }
    let r = a.notifier.metrics.reload_status();
    success(json!({
        "receivers": receivers,
        "lastReload": {
            "successful": r.ok,
            "lastSuccess": rfc3339(r.last_success_ms),
            "lastAttempt": rfc3339(r.last_attempt_ms),
            "error": r.error,
        },
    }))
}

fn error(status: StatusCode, kind: &str, msg: String, data: Value) -> Response {
    (
        status,
        Json(json!({"status": "error", "errorType": kind, "error": msg, "data": data})),
    )
        .into_response()
}

pub(super) async fn test(State(a): State<Arc<Alerting>>, Path(name): Path<String>) -> Response {
    match a.notifier.send_test(&name).await {
        Ok(outcomes) => {
            let mut failed = Vec::new();
            for o in &outcomes {
                if let Some(e) = &o.error {
                    failed.push(format!("{}: {e}", o.integration));
                }
            }
            let data = json!({"receiver": name, "integrations": outcomes});
            if failed.is_empty() {
                success(data)
            } else {
                error(
                    StatusCode::BAD_GATEWAY,
                    "notification_failed",
                    format!("receiver {name:?}: {}", failed.join("; ")),
                    data,
                )
            }
        }
        Err(e @ TestError::UnknownReceiver(..)) => {
            error(StatusCode::NOT_FOUND, "not_found", e.to_string(), Value::Null)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_data", e.to_string(), Value::Null),
    }
}
