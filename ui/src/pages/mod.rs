//! The pages, one module per section. Each module exposes `routes()` with its handlers;
//! handlers read their view state from the query string, query the stores through
//! [`UiContext`], and render with [`crate::shell::render_page`].

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
