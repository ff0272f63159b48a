//! How refusals look: JSON in Prometheus' error envelope for APIs, a redirect to sign-in or
//! an HTML page (rendered by the crate that owns the pages) for pages. Every refusal carries
//! a [`Refused`] response extension, so tests can tell the guard's answers from a handler's.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;

/// How a refused request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page: redirect to sign-in when nobody is signed in, HTML error pages otherwise.
    Page,
    /// An API: JSON errors with 401/403 (`WWW-Authenticate` on 401).
    Api,
}

/// Renders a complete HTML error page from a status, a title and a message (which the
/// renderer escapes). The UI crate passes its own, so refusals look like the other pages.
pub type ErrorPage = fn(StatusCode, &str, String) -> Response;

/// How one refusal is answered: [`Kind`] plus, for pages, the renderer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Form {
    Api,
    Page(ErrorPage),
}

impl Form {
    /// The kind, without the renderer.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Form::Api => Kind::Api,
            Form::Page(_) => Kind::Page,
        }
    }
}

/// Marks a response as the guard's refusal (of this kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused(pub Kind);

/// Prometheus' error envelope; 401 adds `WWW-Authenticate: Bearer`.
pub(crate) fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({"status": "error", "errorType": error_type, "error": message});
    let mut r = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"didban\""),
        );
    }
    r.extensions_mut().insert(Refused(Kind::Api));
    r
}

/// A refusal of a page or API request.
pub(crate) fn refuse(form: Form, status: StatusCode, message: &str) -> Response {
    let mut r = match form {
        Form::Api => {
            let t = match status {
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::FORBIDDEN => "forbidden",
                _ => "bad_data",
            };
            return api_error(status, t, message);
        }
        Form::Page(error_page) => {
            let title = status.canonical_reason().unwrap_or("Refused");
            error_page(status, title, message.to_string())
        }
    };
    r.extensions_mut().insert(Refused(form.kind()));
    r
}

/// `/login?next=<path and query>`: where a page sends a caller who is not signed in.
pub(crate) fn to_login(req: &Request) -> Response {
    let next = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    let mut r = Redirect::to(&format!("/login?{query}")).into_response();
    r.extensions_mut().insert(Refused(Kind::Page));
    r
}
