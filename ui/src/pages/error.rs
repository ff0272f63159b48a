//! The error page every page answers failures with ([`error_page`]), and the route layer
//! that answers refusals with it ([`require`]).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use didban_auth::{Need, Require};

use leptos::prelude::*;

use crate::shell::{render_page, PageMeta, Section};

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
