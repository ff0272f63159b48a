//! Security headers on every response of the UI/API port: the page may run only this origin's
//! script, may not be framed (clickjacking), is not MIME-sniffed, does not leak its URL (which
//! can hold a query) to other sites, and signed-in pages are not kept in caches.

use axum::extract::Request;
use axum::http::header::{self, HeaderName};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The UI loads one script and its stylesheets from this origin and fetches fragments from it;
/// charts and the trace view set positions and colours in `style` attributes, hence
/// `style-src-attr 'unsafe-inline'` (attributes cannot run script). No inline `<script>` or
/// `<style>` element is allowed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Middleware adding the headers a response has not set itself; a response without
/// `Cache-Control` gets `no-store` (static assets set their own long-lived one).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
