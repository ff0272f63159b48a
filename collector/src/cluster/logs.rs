//! The ingester's side for logs: `POST /internal/v1/logs` answers a querier's search,
//! histogram or top values over what this process holds that the bucket does not hold
//! yet — its writable day indexes and the sealed days not uploaded yet — and the steps of
//! a querier's live tail (the records committed after the querier's cursor for this
//! process). Only callers with the cluster secret as bearer token are answered.
//!
//! Requests and answers are JSON: a log record is a JSON document already (the store
//! keeps each record's JSON as its stored source), so JSON costs no conversion on either
//! side, and a page is at most a few thousand records.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use didban_auth::{Need, Require};
use didban_store::logs::{HistogramBucket, LogError, LogQuery, LogRecord, LogStore};
use serde::{Deserialize, Serialize};

/// The path of the internal logs API.
pub const LOGS_PATH: &str = "/internal/v1/logs";

/// The part of a log search every request shares (no cursor: a querier pages over the
/// merged answers itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireLogQuery {
    /// The query text (the store's syntax).
    pub query: String,
    /// Only records of this trace, when set.
    pub trace_id: Option<String>,
    /// Earliest timestamp, nanoseconds (inclusive).
    pub start_unix_nano: i64,
    /// Latest timestamp, nanoseconds (inclusive).
    pub end_unix_nano: i64,
    /// Most records (searches only).
    pub limit: usize,
}

impl WireLogQuery {
    /// The wire form of `q` (its cursor left out).
    pub fn of(q: &LogQuery) -> WireLogQuery {
        WireLogQuery {
            query: q.query.clone(),
            trace_id: q.trace_id.clone(),
            start_unix_nano: q.start_unix_nano,
            end_unix_nano: q.end_unix_nano,
            limit: q.limit,
        }
    }

    /// The store's query.
    pub fn to_query(&self) -> LogQuery {
        LogQuery {
            query: self.query.clone(),
            trace_id: self.trace_id.clone(),
            start_unix_nano: self.start_unix_nano,
            end_unix_nano: self.end_unix_nano,
            limit: self.limit,
            cursor: None,
        }
    }
}

/// What a querier asks an ingester about its unpublished log records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum LogsRequest {
    /// The newest `query.limit` matching records: a [`SearchAnswer`].
    Search {
        /// The search.
        query: WireLogQuery,
    },
    /// Record counts per `step_ms` bucket by severity: a list of
    /// [`WireBucket`].
    Histogram {
        /// The search.
        query: WireLogQuery,
        /// Bucket width, milliseconds.
        step_ms: i64,
    },
    /// The `size` most frequent values of `field`: a list of `[value, count]`.
    Values {
        /// The search.
        query: WireLogQuery,
        /// The field.
        field: String,
        /// Most values.
        size: usize,
    },
    /// A live tail's step: the first `limit` records matching `query` committed after
    /// `after` (this process's ingest sequence), in ingest order; without `after`, none
    /// and where a tail starting now starts. A [`TailAnswer`].
    Tail {
        /// The query text.
        query: String,
        /// The cursor the last answer gave.
        after: Option<u64>,
        /// Most records.
        limit: usize,
    },
}

/// Answer to [`LogsRequest::Tail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailAnswer {
    /// The records, in ingest order.
    pub records: Vec<LogRecord>,
    /// The cursor to ask after next time.
    pub last: u64,
}

/// Answer to [`LogsRequest::Search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchAnswer {
    /// Matching records, newest first, at most the limit.
    pub records: Vec<LogRecord>,
    /// More records match than were returned.
    pub more: bool,
}

/// One histogram bucket on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireBucket {
    /// Bucket start, milliseconds since the epoch.
    pub start_ms: i64,
    /// Records in the bucket.
    pub count: u64,
    /// Records per severity text.
    pub by_severity: std::collections::BTreeMap<String, u64>,
}

impl WireBucket {
    /// The store's bucket.
    pub fn into_bucket(self) -> HistogramBucket {
        HistogramBucket {
            start_ms: self.start_ms,
            count: self.count,
            by_severity: self.by_severity,
        }
    }
}

/// What the handler needs.
#[derive(Clone)]
struct Logs {
    store: Arc<LogStore>,
    secret: Arc<str>,
}

/// The internal logs API of an ingester (open to the user guard; the handler checks the
/// cluster secret itself).
pub fn router(store: Arc<LogStore>, secret: &str) -> Router {
    Router::new()
        .route(LOGS_PATH, post(answer))
        .route_layer(Require::api(Need::Open))
        .with_state(Logs {
            store,
            secret: Arc::from(secret),
        })
}

/// A store error as the querier should see it: the request's fault as 400 (the querier
/// passes it on as the user's mistake), anything else as 500.
fn error_response(e: LogError) -> Response {
    let status = match e {
        LogError::Query { .. } | LogError::BadRequest(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{e}\n")).into_response()
}

async fn answer(State(h): State<Logs>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refused) = super::wire::refuse_without_secret(&headers, &h.secret) {
        return refused;
    }
    let req: LogsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid logs request: {e}\n")).into_response(),
    };
    let store = h.store.clone();
    let answered = tokio::task::spawn_blocking(move || -> Result<Response, LogError> {
        Ok(match req {
            LogsRequest::Search { query } => {
                let page = store.search_unpublished(&query.to_query())?;
                Json(SearchAnswer {
                    more: page.next_cursor.is_some(),
                    records: page.records,
                })
                .into_response()
            }
            LogsRequest::Histogram { query, step_ms } => {
                let buckets = store.histogram_unpublished(&query.to_query(), step_ms)?;
                let mut out = Vec::with_capacity(buckets.len());
                for b in buckets {
                    out.push(WireBucket {
                        start_ms: b.start_ms,
                        count: b.count,
                        by_severity: b.by_severity,
                    });
                }
                Json(out).into_response()
            }
            LogsRequest::Values { query, field, size } => {
                Json(store.top_values_unpublished(&query.to_query(), &field, size)?).into_response()
            }
            LogsRequest::Tail { query, after, limit } => {
                let (records, last) = match after {
                    Some(after) => store.tail(&query, after, limit)?,
                    None => (Vec::new(), store.tail_start()),
                };
                Json(TailAnswer { records, last }).into_response()
            }
        })
    })
    .await;
    match answered {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(e),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("log read failed: {e}\n"),
        )
            .into_response(),
    }
}
