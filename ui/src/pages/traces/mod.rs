//! Traces: `GET /traces` searches (service, operation, tags, durations, time range) and
//! shows the hits as a duration-over-time scatter and a list; `GET /traces/{trace_id}`
//! draws one trace as a waterfall with its critical path.

mod search;
mod trace;
pub mod waterfall;

use axum::routing::get;
use axum::Router;

use crate::UiContext;

pub(crate) fn routes() -> Router<UiContext> {
    Router::new()
        .route("/traces", get(search::search_page))
        .route("/traces/{trace_id}", get(trace::trace_page))
}

/// The series colours services get, in order; red (`s1`) is left out because it marks errors.
const SERVICE_PALETTE: [usize; 9] = [0, 2, 3, 4, 5, 6, 7, 9, 8];

/// Colour class index of each service, in order of first appearance, cycling over the series
/// colours other than red.
pub(crate) fn service_colours<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for name in names {
        let next = SERVICE_PALETTE[out.len() % SERVICE_PALETTE.len()];
        out.entry(name.to_string()).or_insert(next);
    }
    out
}
