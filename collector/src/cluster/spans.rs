//! The ingester's side for spans: `POST /internal/v1/spans` answers a querier with what
//! this process's live and frozen span heads hold (the spans no published block holds
//! yet). Only callers with the cluster secret as bearer token are answered.
//!
//! Requests and most answers are JSON: they are small (trace ids, a search, services)
//! and JSON is what the trace store's model already serialises to. Spans travel in the
//! trace store's exchange form ([`didban_store::traces::encode_spans`]: JSON with each
//! resource once), since the spans of one request share their resource.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use didban_auth::{Need, Require};
use didban_store::traces::{encode_spans, CallEdge, Operation, TraceQuery, TraceStore};
use serde::{Deserialize, Serialize};

/// The path of the internal spans API.
pub const SPANS_PATH: &str = "/internal/v1/spans";

/// Media type of an answer holding spans.
pub const SPANS_MEDIA_TYPE: &str = "application/x-didban-spans";

/// What a querier asks an ingester about its unpublished spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum SpansRequest {
    /// The newest `query.limit` traces with a span matching `query`: [`Matches`].
    Matches {
        /// The search.
        query: TraceQuery,
    },
    /// Every span of these traces, in the exchange form.
    Traces {
        /// Trace ids, 32 lowercase hex digits.
        trace_ids: Vec<String>,
    },
    /// Services and their operations: [`Services`].
    Services,
    /// The call edges of the spans started in the range: a list of [`CallEdge`].
    Edges {
        /// Earliest start, nanoseconds (inclusive).
        start_unix_nano: i64,
        /// Latest start, nanoseconds (inclusive).
        end_unix_nano: i64,
    },
}

/// Answer to [`SpansRequest::Matches`]: trace id → the start of its newest matching span.
pub type Matches = HashMap<String, i64>;

/// Answer to [`SpansRequest::Services`]: service → operations.
pub type Services = BTreeMap<String, Vec<Operation>>;

/// What the handler needs.
#[derive(Clone)]
struct Spans {
    store: Arc<TraceStore>,
    secret: Arc<str>,
}

/// The internal spans API of an ingester (open to the user guard; the handler checks the
/// cluster secret itself).
pub fn router(store: Arc<TraceStore>, secret: &str) -> Router {
    Router::new()
        .route(SPANS_PATH, post(answer))
        .route_layer(Require::api(Need::Open))
        .with_state(Spans {
            store,
            secret: Arc::from(secret),
        })
}

async fn answer(State(h): State<Spans>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refused) = super::wire::refuse_without_secret(&headers, &h.secret) {
        return refused;
    }
    let req: SpansRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid spans request: {e}\n")).into_response(),
    };
    let store = h.store.clone();
    let answered = tokio::task::spawn_blocking(move || match req {
        SpansRequest::Matches { query } => {
            Json(newest(store.unpublished_matches(&query), query.limit)).into_response()
        }
        SpansRequest::Traces { trace_ids } => (
            [(header::CONTENT_TYPE, SPANS_MEDIA_TYPE)],
            encode_spans(&store.unpublished_traces(&trace_ids)),
        )
            .into_response(),
        SpansRequest::Services => Json(store.unpublished_services()).into_response(),
        SpansRequest::Edges {
            start_unix_nano,
            end_unix_nano,
        } => {
            let edges: Vec<CallEdge> = store.unpublished_edges(start_unix_nano, end_unix_nano);
            Json(edges).into_response()
        }
    })
    .await;
    answered.unwrap_or_else(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("span read failed: {e}\n"),
        )
            .into_response()
    })
}

/// The newest `limit` (at least one) of `found`: enough for the querier, since a trace
/// among the newest `limit` of all sources (each trace at its newest time anywhere) is
/// among the newest `limit` of the source holding that time.
fn newest(found: Matches, limit: usize) -> Matches {
    let mut list: Vec<(i64, String)> = found.into_iter().map(|(id, t)| (t, id)).collect();
    list.sort_by(|a, b| b.cmp(a));
    list.truncate(limit.max(1));
    list.into_iter().map(|(t, id)| (id, t)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_are_tagged_json() {
        let req = SpansRequest::Traces {
            trace_ids: vec!["ab".repeat(16)],
        };
        let text = serde_json::to_string(&req).unwrap();
        assert!(text.starts_with(r#"{"ask":"traces","#), "{text}");
        assert_eq!(serde_json::from_str::<SpansRequest>(&text).unwrap(), req);
        let search = SpansRequest::Matches {
            query: TraceQuery {
                service: Some("shop".into()),
                tags: vec![("http.status_code".into(), "500".into())],
                start_unix_nano: 1,
                end_unix_nano: 2,
                limit: 20,
                ..TraceQuery::default()
            },
        };
        let text = serde_json::to_string(&search).unwrap();
        assert_eq!(serde_json::from_str::<SpansRequest>(&text).unwrap(), search);
        assert!(serde_json::from_str::<SpansRequest>(r#"{"ask":"everything"}"#).is_err());
    }

    #[test]
    fn an_ingester_answers_its_newest_matches_only() {
        let found: Matches = [("a".to_string(), 1), ("b".to_string(), 3), ("c".to_string(), 2)]
            .into_iter()
            .collect();
        let top = newest(found, 2);
        assert_eq!(top.len(), 2);
        assert_eq!((top.get("b"), top.get("c")), (Some(&3), Some(&2)));
    }
}
