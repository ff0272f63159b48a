//! Static assets compiled into the binary: the stylesheet (light and dark themes) and the one
//! progressive-enhancement script. Served with a long cache lifetime under a versioned path
//! so a new release is never mixed with a stale cached file.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::UiContext;

/// The stylesheet's URL, versioned by the crate version.
pub const CSS_PATH: &str = concat!("/ui/static/", env!("CARGO_PKG_VERSION"), "/didban.css");
/// The script's URL, versioned by the crate version.
pub const JS_PATH: &str = concat!("/ui/static/", env!("CARGO_PKG_VERSION"), "/didban.js");

/// One stylesheet from one file per area, so work on one area does not touch another's file.
const CSS: &str = concat!(
    include_str!("../assets/base.css"),
    include_str!("../assets/charts.css"),
    include_str!("../assets/dashboards.css"),
    include_str!("../assets/pages.css"),
    include_str!("../assets/auth.css"),
);
const JS: &str = concat!(
    include_str!("../assets/didban.js"),
    include_str!("../assets/pages.js")
);

/// Routes for the static assets.
pub fn router() -> Router<UiContext> {
    Router::new().route(CSS_PATH, get(css)).route(JS_PATH, get(js))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        JS,
    )
}
