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
mod need;
pub(crate) mod refuse;
mod require;

pub(crate) use caller::Identity;
pub use caller::{bearer, client_ip, cookie, over_tls, resolve, BUSY_RETRY_S};
pub use csrf::{cross_site, foreign_origin, CSRF_HEADER};
pub use need::{is_unsafe, Need};
pub use refuse::{ErrorPage, Kind};
pub use require::{not_found, Guarded, Require};
