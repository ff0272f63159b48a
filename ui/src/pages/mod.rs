//! The pages, one module per section. Each module exposes `routes()` with its handlers;
//! handlers read their view state from the query string, query the stores through
//! [`UiContext`], and render with [`crate::shell::render_page`].
//!
//! What a page needs is declared here, where the routes are built: viewers read every page
//! and editors change (pages check finer rights themselves); [`account`] declares its own
//! (sign-in open, sign-out for any signed-in user, `/admin/…` for admins).

pub mod account;
mod alerts;
mod cardinality;
mod dashboards;
mod error;
mod explore;
mod home;
mod logs;
pub mod pagefmt;
mod serverless;
mod services;
mod traces;

use axum::Router;
use didban_auth::Need;

use crate::UiContext;

pub use error::{error_page, require};
// Trace ids as the trace page reads them (also what exemplar dots link to).
/// Current time in Unix milliseconds (the alert engine's clock, shared by every page).
pub use pagefmt::now_ms;
pub(crate) use traces::normalize_trace_id;

/// Every page route.
pub fn router() -> Router<UiContext> {
    Router::new()
        .merge(home::routes())
        .merge(dashboards::routes())
        .merge(explore::routes())
        .merge(logs::routes())
        .merge(traces::routes())
        .merge(services::routes())
        .merge(serverless::routes())
        .merge(alerts::routes())
        .merge(cardinality::routes())
        .route_layer(require(Need::VIEW_EDIT))
}
