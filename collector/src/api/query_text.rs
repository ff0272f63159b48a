//! `/api/v1/format_query` and `/api/v1/parse_query`: a query pretty-printed (promql-parser's
//! port of Prometheus' prettifier) or parsed into Prometheus' JSON tree, without evaluating
//! it. Both check the query the way `/api/v1/query` does (depth limit, then syntax).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use didban_store::promql::PromqlError;
use promql_parser::parser::Expr;
use serde_json::json;

use super::ast_json::ast_json;
use super::prom::params;
use super::response::{success, ApiError};
use crate::state::AppState;

fn parse(state: &AppState, q: Option<String>, headers: &HeaderMap, body: &Bytes) -> Result<Expr, ApiError> {
    let p = params(q, headers, body)?;
    let expr = p.required("query")?;
    state.engine.parse(expr).map_err(|e| match e {
        PromqlError::TooDeep { .. } => ApiError::unprocessable(e.to_string()),
        other => ApiError::bad_data(other.to_string()),
    })
}

/// `GET|POST /api/v1/format_query`: the query laid out over lines as Prometheus' formatter
/// does (one argument per line past 100 characters).
pub async fn format_query(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let expr = parse(&state, q, &headers, &body)?;
    Ok(success(json!(expr.prettify()), &[]))
}

/// `GET|POST /api/v1/parse_query`: the query's syntax tree as JSON (see [`ast_json`]).
pub async fn parse_query(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let expr = parse(&state, q, &headers, &body)?;
    Ok(success(ast_json(&expr), &[]))
}
