//! Who is calling: the signed-in user (or anonymous), their role, and the CSRF token every
//! form must carry. The outer layer ([`crate::resolve`]) puts a [`Viewer`] into every
//! request's extensions; handlers extract it, pages show the user in the frame, hide what the
//! role may not do, and send the token back in a hidden [`Viewer::CSRF_FIELD`] field (the
//! UI crate renders that field).

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

/// What a user may do, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read every page and API.
    Viewer,
    /// Also create and change dashboards, silences and rules.
    Editor,
    /// Also manage users and tokens.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// The lowercase name used in config, forms and files: `viewer`, `editor`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (as written by [`Role::as_str`]).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// The person (or client) behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// User name; `None` for anonymous access.
    pub user: Option<String>,
    /// What they may do.
    pub role: Role,
    /// The session's CSRF token; forms send it back as the `_csrf` field.
    pub csrf: String,
}

impl Viewer {
    /// Name of the hidden form field that carries the CSRF token.
    pub const CSRF_FIELD: &'static str = "_csrf";

    /// Anonymous access with full rights: what a server bound to loopback without auth gives.
    pub fn anonymous_admin() -> Viewer {
        Viewer {
            user: None,
            role: Role::Admin,
            csrf: String::new(),
        }
    }

    /// Whether this viewer has at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Infallible;

    /// The viewer the outer layer stored; anonymous admin when no outer layer ran (a router
    /// used without auth, as in-process tests do).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Viewer, Infallible> {
        Ok(parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .unwrap_or_else(Viewer::anonymous_admin))
    }
}
