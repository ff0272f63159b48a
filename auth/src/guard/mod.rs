//! The layers in front of routes. Two steps, so that no crate needs a table of other crates'
//! paths:
//!
//! 1. [`resolve`] (an outer layer, `Router::layer`, one per listener) finds out who is
//!    calling — bearer token, basic auth, session cookie, or nobody — and puts the result and
//!    a [`Viewer`](crate::Viewer) into the request. It refuses nothing itself.
//! 2. [`Require`] (a `Router::route_layer`, put by the crate that builds the routes) checks
//!    that the caller has what the route [`Need`]s, refuses cross-site and CSRF-less changes
//!    made with a session or basic auth, and answers refusals the way the route's callers
//!    expect ([`Kind`]): a redirect to sign-in or an HTML page for pages, 401/403 JSON for APIs.
//!
//! A router used without [`resolve`] in front (in-process tests of one crate) lets every
//! request through, as if sign-in were off: auth is the server's decision, not the router's.

mod caller;
mod csrf;
pub(crate) mod refuse;
mod require;

use axum::http::Method;

use crate::Role;

pub(crate) use caller::Identity;
pub use caller::{bearer, client_ip, cookie, over_tls, resolve};
pub use csrf::{cross_site, CSRF_HEADER};
pub use refuse::ErrorPage;
pub use require::{not_found, Guarded, Require};

/// The least credential a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nobody needs to sign in (health, the sign-in page, static assets).
    Open,
    /// A token with the ingest scope.
    Ingest,
    /// At least this role, whatever the method.
    Role(Role),
    /// `read` for GET, HEAD and OPTIONS; `change` for every method that may change something.
    ByMethod {
        /// What reading needs.
        read: Role,
        /// What changing needs.
        change: Role,
    },
}

impl Need {
    /// Viewers read, editors change: what pages and most APIs need.
    pub const VIEW_EDIT: Need = Need::ByMethod {
        read: Role::Viewer,
        change: Role::Editor,
    };

    /// What a request with `method` needs: [`Need::ByMethod`] resolved to a [`Need::Role`].
    pub fn for_method(self, method: &Method) -> Need {
        match self {
            Need::ByMethod { read, change } => Need::Role(if is_unsafe(method) { change } else { read }),
            other => other,
        }
    }
}

/// How a refused request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page: redirect to sign-in when nobody is signed in, HTML error pages otherwise.
    Page,
    /// An API: JSON errors with 401/403 (`WWW-Authenticate` on 401).
    Api,
}

/// Whether `method` may change something (and so needs CSRF protection).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_method_resolves_to_a_role() {
        assert_eq!(Need::VIEW_EDIT.for_method(&Method::GET), Need::Role(Role::Viewer));
        assert_eq!(
            Need::VIEW_EDIT.for_method(&Method::HEAD),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            Need::VIEW_EDIT.for_method(&Method::POST),
            Need::Role(Role::Editor)
        );
        assert_eq!(
            Need::VIEW_EDIT.for_method(&Method::DELETE),
            Need::Role(Role::Editor)
        );
        assert_eq!(Need::Open.for_method(&Method::POST), Need::Open);
        assert_eq!(Need::Ingest.for_method(&Method::POST), Need::Ingest);
    }
}
