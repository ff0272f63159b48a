//! HTTP APIs of the alert engine: Prometheus' `GET /api/v1/rules` and `GET /api/v1/alerts`,
//! Alertmanager v2-style silences (`/api/v2/silences`, `/api/v2/silence/{id}`), the
//! notification history (`GET /api/v1/notifications`), receivers (`GET /api/v1/receivers`,
//! `POST /api/v1/receivers/{name}/test`) and `POST /-/reload`. [`router`]
//! declares what each route needs with `didban_auth`'s route layers.

mod envelope;
mod receivers;
mod rules;
mod silences;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use didban_auth::{Need, Require, Role};
use serde::Deserialize;
use serde_json::json;

use crate::notify::rfc3339;
use crate::service::Alerting;
use envelope::{bad_data, success};

/// The routes, to be merged into the server's main router. Viewers read; creating and
/// expiring silences, reloading the rules and sending test notifications need an editor.
pub fn router(alerting: Arc<Alerting>) -> Router {
    let reload = Router::new()
        .route("/-/reload", post(reload).put(reload))
        .route("/api/v1/receivers/{name}/test", post(receivers::test))
        .route_layer(Require::api(Need::Role(Role::Editor)));
    Router::new()
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/receivers", get(receivers::list))
        .route("/api/v2/silences", get(silences::list).post(silences::create))
        .route(
            "/api/v2/silence/{id}",
            get(silences::get_one).delete(silences::expire),
        )
        .route_layer(Require::api(Need::VIEW_EDIT))
        .merge(reload)
        .with_state(alerting)
}

#[derive(Debug, Deserialize)]
struct HistoryParams {
    limit: Option<String>,
}

async fn notifications(State(a): State<Arc<Alerting>>, Query(p): Query<HistoryParams>) -> Response {
    let limit = match p.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return bad_data(format!("invalid limit {l:?}: must be a non-negative integer")),
        },
    };
    let mut items = Vec::new();
    for h in a.notifier.log.history(limit) {
        items.push(json!({
            "time": rfc3339(h.at_ms),
            "receiver": h.receiver,
            "integration": h.integration,
            "groupKey": h.group_key,
            "status": h.status,
            "firing": h.firing,
            "resolved": h.resolved,
            "attempts": h.attempts,
            "ok": h.ok,
            "error": h.error,
            "alertnames": h.alertnames,
            "tries": h.tries.iter().map(|t| json!({"time": rfc3339(t.at_ms), "error": t.error})).collect::<Vec<_>>(),
            "test": h.test,
        }));
    }
    success(serde_json::Value::Array(items))
}

async fn reload(State(a): State<Arc<Alerting>>) -> Response {
    match a.reload().await {
        Ok(_) => (StatusCode::OK, "OK\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
