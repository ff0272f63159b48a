//! For the route tests of the crates that own routes (feature `testing`): a [`Probe`] wraps a
//! router in [`crate::resolve`] with sign-in required and finds the least credential a
//! request passes with, so a test reads like the table it checks:
//!
//! ```ignore
//! let probe = Probe::new();
//! let app = probe.wrap(router);
//! assert_eq!(probe.need(&app, Method::POST, "/-/reload").await, Need::Role(Role::Editor));
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method};
use axum::response::Response;
use axum::Router;
use tower::ServiceExt;

use crate::guard::refuse::Refused;
use crate::{Auth, AuthSettings, Kind, Need, Role};

/// Sign-in required, no anonymous role, and one bearer token per credential.
pub struct Probe {
    auth: Arc<Auth>,
    /// The in-memory ingest-only token (no role).
    ingest: String,
    /// Tokens without the ingest scope, weakest role first.
    roles: Vec<(Role, String)>,
    _dir: tempfile::TempDir,
}

impl Probe {
    /// A probe with sign-in required.
    pub fn new() -> Probe {
        Probe::with_settings(AuthSettings::default())
    }

    /// A probe with `settings` (for example an anonymous role).
    pub fn with_settings(settings: AuthSettings) -> Probe {
        let dir = tempfile::tempdir().expect("a temporary directory for the probe's auth files");
        let auth = Auth::open(dir.path(), settings).expect("opening the probe's auth files");
        let ingest = auth.internal_ingest_token().expect("an ingest token");
        let mut roles = Vec::new();
        for role in Role::ALL {
            let (token, _) = auth
                .tokens()
                .create(role.as_str(), role, false, "probe", 0)
                .expect("a token");
            roles.push((role, token));
        }
        Probe {
            auth,
            ingest,
            roles,
            _dir: dir,
        }
    }

    /// The probe's [`Auth`].
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// `router` behind [`crate::resolve`] with this probe's [`Auth`], as a server wraps it.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.auth.clone(),
            crate::resolve,
        ))
    }

    /// The answer to `method path` with `authorization` (or none).
    pub async fn send(
        &self,
        app: &Router,
        method: Method,
        path: &str,
        authorization: Option<&str>,
    ) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        app.clone()
            .oneshot(req.body(Body::empty()).expect("a request"))
            .await
            .expect("routers do not fail")
    }

    /// Whether the guard refused `response` (rather than the handler answering).
    pub fn refused(response: &Response) -> Option<Kind> {
        response.extensions().get::<Refused>().map(|r| r.0)
    }

    /// The least credential with which `method path` passes the guard: nobody
    /// ([`Need::Open`]), the ingest-only token ([`Need::Ingest`]), or a token of the weakest
    /// role that passes. Panics when even an admin is refused.
    pub async fn need(&self, app: &Router, method: Method, path: &str) -> Need {
        let anonymous = self.send(app, method.clone(), path, None).await;
        if Probe::refused(&anonymous).is_none() {
            return Need::Open;
        }
        let ingest = format!("Bearer {}", self.ingest);
        let r = self.send(app, method.clone(), path, Some(&ingest)).await;
        if Probe::refused(&r).is_none() {
            return Need::Ingest;
        }
        for (role, token) in &self.roles {
            let r = self
                .send(app, method.clone(), path, Some(&format!("Bearer {token}")))
                .await;
            if Probe::refused(&r).is_none() {
                return Need::Role(*role);
            }
        }
        panic!("{method} {path}: refused to every credential");
    }

    /// How the guard refuses an anonymous `GET path`: a page (redirect to sign-in) or an API
    /// (401 JSON). Panics when the path is open.
    pub async fn kind(&self, app: &Router, path: &str) -> Kind {
        let r = self.send(app, Method::GET, path, None).await;
        Probe::refused(&r).unwrap_or_else(|| panic!("GET {path} is open"))
    }
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}
