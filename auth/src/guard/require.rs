//! The route layer: what a route needs, declared by the crate that builds it.
//!
//! ```ignore
//! Router::new()
//!     .route("/api/v2/silences", get(list).post(create))
//!     .route_layer(Require::api(Need::VIEW_EDIT))
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, MethodRouter};
use tower::{Layer, Service};

use super::caller::{Caller, Credential};
use super::csrf::{check_csrf, foreign_origin};
use super::need::{is_unsafe, Need};
use super::refuse::{refuse, to_login, ErrorPage, Form};
use crate::{Auth, Role};

/// How refusals of a [`Require`] are answered.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Always as an API.
    Api,
    /// Always as a page.
    Page(ErrorPage),
    /// As an API under `/api/`, `/-/` and `/v1/`, as a page elsewhere: for a listener's
    /// fallback, which answers paths nobody declared.
    ByPath(ErrorPage),
}

/// A route layer: requests reach the route only when the caller has what it [`Need`]s.
/// Put it with `Router::route_layer` on the routes it covers (it covers their 405 answers
/// too); it reads what [`super::resolve`] found, so that layer must wrap the listener.
#[derive(Debug, Clone, Copy)]
pub struct Require {
    need: Need,
    answer: Answer,
}

impl Require {
    /// API routes needing `need`: refusals are 401/403 JSON.
    pub fn api(need: Need) -> Require {
        Require {
            need,
            answer: Answer::Api,
        }
    }

    /// Ingest routes (remote_write, OTLP/HTTP): a token with the ingest scope. A browser
    /// request from another site is refused unless it carries a bearer token (so also when
    /// sign-in is off); no CSRF token is asked for.
    pub fn ingest() -> Require {
        Require::api(Need::Ingest)
    }

    /// Page routes needing `need`: callers who are not signed in go to `/login?next=…`,
    /// other refusals are rendered with `error_page`.
    pub fn page(need: Need, error_page: ErrorPage) -> Require {
        Require {
            need,
            answer: Answer::Page(error_page),
        }
    }

    /// A listener's fallback, for paths no route matched: they need what pages need
    /// ([`Need::VIEW_EDIT`]) before the caller learns that nothing is there; refusals look
    /// like an API's under `/api/`, `/-/` and `/v1/`, like a page's elsewhere.
    pub fn unmatched(error_page: ErrorPage) -> Require {
        Require {
            need: Need::VIEW_EDIT,
            answer: Answer::ByPath(error_page),
        }
    }

    fn form(&self, path: &str) -> Form {
        match self.answer {
            Answer::Api => Form::Api,
            Answer::Page(p) => Form::Page(p),
            Answer::ByPath(p) => {
                let api = ["/api/", "/-/", "/v1/"]
                    .iter()
                    .any(|prefix| path.starts_with(prefix));
                if api {
                    Form::Api
                } else {
                    Form::Page(p)
                }
            }
        }
    }
}

impl<S> Layer<S> for Require {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            require: *self,
        }
    }
}

/// A service behind a [`Require`].
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    require: Require,
}

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone is not ready yet; the ready one goes into the future.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let require = self.require;
        Box::pin(async move {
            match authorize(require, req).await {
                Ok(req) => inner.call(req).await,
                Err(refusal) => Ok(refusal),
            }
        })
    }
}

/// A listener's fallback: `404 Not Found` for paths no route matched, behind `require`
/// (usually [`Require::unmatched`], or [`Require::ingest`] on an ingest-only listener).
pub fn not_found(require: Require) -> MethodRouter {
    any(|| async { StatusCode::NOT_FOUND.into_response() }).layer(require)
}

/// The request when the caller may go on, the refusal otherwise.
async fn authorize(require: Require, req: Request) -> Result<Request, Response> {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        // No outer layer: this router runs without auth (see the module docs).
        return Ok(req);
    };
    let form = require.form(req.uri().path());
    let need = require.need.for_method(req.method());
    let auth = &caller.auth;
    if !auth.settings.required {
        return match anonymous(auth, need, form, &req) {
            Some(refusal) => Err(refusal),
            None => Ok(req),
        };
    }
    let identity = match caller.credential {
        Credential::Valid(i) => Some(i),
        Credential::Absent => None,
        // Health checks and the sign-in page answer whatever the credentials.
        Credential::Failed(_) if need == Need::Open => None,
        Credential::Failed(f) => return Err(f.response()),
    };
    let role = match &identity {
        Some(i) => i.role,
        None => auth.settings.anonymous_role,
    };
    match need {
        Need::Open | Need::ByMethod { .. } => {}
        Need::Ingest => {
            if !identity.as_ref().is_some_and(|i| i.ingest) {
                let (status, message) = if identity.is_some() {
                    (
                        StatusCode::FORBIDDEN,
                        "this credential may not write data; ingest needs an API token with the ingest scope",
                    )
                } else {
                    (
                        StatusCode::UNAUTHORIZED,
                        "ingest needs an API token with the ingest scope (Authorization: Bearer …)",
                    )
                };
                return Err(refuse(Form::Api, status, message));
            }
        }
        Need::Role(r) => {
            if role.is_none_or(|have| have < r) {
                if identity.is_none() {
                    return Err(match form {
                        Form::Page(_) => to_login(&req),
                        Form::Api => refuse(
                            form,
                            StatusCode::UNAUTHORIZED,
                            "sign in or send an API token (Authorization: Bearer …)",
                        ),
                    });
                }
                let message = format!("this needs the {} role", r.as_str());
                return Err(refuse(form, StatusCode::FORBIDDEN, &message));
            }
        }
    }

    // A bearer token is never sent by a browser on its own, so no other site can forge it.
    if !is_unsafe(req.method()) || caller.by_bearer {
        return Ok(req);
    }
    if let Some(why) = foreign_origin(req.headers()) {
        return Err(refuse(form, StatusCode::FORBIDDEN, &why));
    }
    // Open routes (the sign-in form) need no token: a stale sign-in form submitted after
    // signing in elsewhere must not fail; the cross-site check above still holds.
    let expected = identity.and_then(|i| i.csrf).filter(|_| need != Need::Open);
    let Some(expected) = expected else {
        return Ok(req);
    };
    let (checked, ok) = check_csrf(req, &expected, form).await?;
    if !ok {
        return Err(refuse(
            form,
            StatusCode::FORBIDDEN,
            "the form's security token is missing or out of date; reload the page and try again",
        ));
    }
    Ok(checked)
}

/// Sign-in is off: everyone has the anonymous role, ingest is open; browsers may still not
/// change anything (nor write data) from another site. The refusal, if any.
fn anonymous(auth: &Auth, need: Need, form: Form, req: &Request) -> Option<Response> {
    if is_unsafe(req.method()) {
        if let Some(why) = foreign_origin(req.headers()) {
            return Some(refuse(form, StatusCode::FORBIDDEN, &why));
        }
    }
    if need == Need::Ingest {
        return None;
    }
    let role = auth.settings.anonymous_role.unwrap_or(Role::Admin);
    if let Need::Role(r) = need {
        if role < r {
            let message = format!("this needs the {} role", r.as_str());
            return Some(refuse(form, StatusCode::FORBIDDEN, &message));
        }
    }
    None
}
