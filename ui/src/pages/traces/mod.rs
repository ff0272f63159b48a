//! Traces: `GET /traces` searches (service, operation, tags, durations, time range) and
//! shows the hits as a duration-over-time scatter and a list; `GET /traces/{trace_id}`
//! draws one trace as a waterfall with its critical path.

mod search;
mod trace;
pub mod waterfall;

use axum::routing::get;
use axum::Router;

use crate::UiContext;

pub(crate) use trace::normalize_trace_id;

pub(crate) fn routes() -> Router<UiContext> {
    Router::new()
        .route("/traces", get(search::search_page))
        .route("/traces/{trace_id}", get(trace::trace_page))
}
