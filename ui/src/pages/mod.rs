//! The pages, one module per section. Each module exposes `routes()` with its handlers;
//! handlers read their view state from the query string, query the stores through
//! [`UiContext`], and render with [`crate::shell::render_page`].
//!
//! What a page needs is declared here, where the routes are built: viewers read every page
//! and editors change (pages check finer rights themselves); [`account`] declares its own
//! (sign-in open, sign-out for any signed-in user, `/admin/…` for admins).

pub mod account;
mod alerts;
mod dashboards;
mod explore;
mod home;
mod logs;
pub mod pagefmt;
mod serverless;
mod services;
mod traces;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use didban_auth::{Need, Require};

use leptos::prelude::*;

use crate::shell::{render_page, PageMeta, Section};
use crate::UiContext;

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
        .route_layer(require(Need::VIEW_EDIT))
}

/// A route layer for pages needing `need`: callers who are not signed in are sent to sign
/// in, other refusals are rendered with [`error_page`].
pub fn require(need: Need) -> Require {
    Require::page(need, error_page)
}

/// A complete error page with `status` and a message (escaped).
pub fn error_page(status: StatusCode, title: &str, message: String) -> Response {
    let meta = PageMeta::new(title, Section::None);
    let title = title.to_string();
    let Html(html) = render_page(meta, move || {
        view! {
            <section class="error">
                <h1>{title}</h1>
                <p role="alert">{message}</p>
            </section>
        }
    });
    (status, Html(html)).into_response()
}

/// Current time in Unix milliseconds (the alert engine's clock, shared by every page).
pub use didban_alerting::now_ms;
