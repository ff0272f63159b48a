//! Sign-in, roles, CSRF protection and API tokens.
//!
//! - [`users`], [`password`]: accounts with Argon2id hashes in `<data_dir>/auth/users.json`;
//! - [`sessions`]: browser sessions (cookie `didban_session`), persisted by digest;
//! - [`tokens`]: API tokens for clients (`Authorization: Bearer …`), stored by digest;
//! - [`policy`]: which credential each path needs;
//! - [`middleware`]: resolves who is calling, enforces the policy and CSRF, and puts a
//!   [`Viewer`](crate::viewer::Viewer) into every request;
//! - the pages: sign-in and sign-out, `/admin/users`, `/admin/tokens`.
//!
//! The collector opens one [`Auth`] per server, merges [`Auth::router`] into its main HTTP
//! router and wraps its routers with [`guard_main`] and [`guard_otlp`].

mod admin;
mod login;
pub mod middleware;
pub mod password;
pub mod policy;
mod ratelimit;
pub mod secret;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;

pub use middleware::{guard_main, guard_otlp};

use crate::viewer::Role;
use ratelimit::RateLimiter;
use sessions::SessionStore;
use tokens::TokenStore;
use users::UserStore;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "didban_session";

/// Failures of the auth stores.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Reading or writing a file failed.
    #[error("{0}: {1}")]
    Io(String, String),
    /// A file exists but cannot be parsed.
    #[error("{0} is not valid: {1}")]
    Corrupt(String, String),
    /// The operating system's random source failed.
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A bad value from a form or the environment (the message names it).
    #[error("{0}")]
    Invalid(String),
}

/// How sign-in applies, resolved from the `[auth]` configuration.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Whether callers must sign in (or present a token). When false, every request is
    /// anonymous with `anonymous_role`, and ingest is open.
    pub required: bool,
    /// Role of requests without credentials; `None` refuses them (when `required`).
    pub anonymous_role: Option<Role>,
    /// Sessions end this long after their last use.
    pub session_ttl: Duration,
    /// Always mark the session cookie `Secure`.
    pub secure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-Proto` and `X-Forwarded-For` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Serve `/metrics` without credentials.
    pub public_metrics: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            required: true,
            anonymous_role: None,
            session_ttl: Duration::from_secs(86_400),
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            public_metrics: false,
        }
    }
}

/// The first admin account made at the first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAdmin {
    /// Its name.
    pub user: String,
    /// The generated password, to print once; `None` when it came from the environment.
    pub generated_password: Option<String>,
}

/// Users, sessions, tokens and the settings; shared by the middleware and the pages.
pub struct Auth {
    settings: AuthSettings,
    users: UserStore,
    sessions: SessionStore,
    tokens: TokenStore,
    limiter: RateLimiter,
    /// Digest of the in-memory ingest token of the in-process host collector.
    internal_token: Mutex<Option<String>>,
    /// Digest of `user:password` → (user, valid until ms): basic auth without one Argon2
    /// verification per request.
    basic_cache: Mutex<HashMap<String, (String, i64)>>,
}

/// Current time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    crate::pages::now_ms()
}

impl Auth {
    /// Opens the stores under `<data_dir>/auth/`.
    pub fn open(data_dir: &Path, settings: AuthSettings) -> Result<Arc<Auth>, AuthError> {
        let dir = data_dir.join("auth");
        let ttl_ms = settings.session_ttl.as_millis().min(i64::MAX as u128) as i64;
        Ok(Arc::new(Auth {
            users: UserStore::open(dir.join("users.json"))?,
            sessions: SessionStore::open(dir.join("sessions.json"), ttl_ms, now_ms())?,
            tokens: TokenStore::open(dir.join("tokens.json"))?,
            limiter: RateLimiter::new(10, 15 * 60_000),
            internal_token: Mutex::new(None),
            basic_cache: Mutex::new(HashMap::new()),
            settings,
        }))
    }

    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The user accounts.
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// The API tokens.
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// The browser sessions.
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// Creates the first admin when there is no user yet: from `from_env` (name, password)
    /// when given, otherwise — only when sign-in is required — user `admin` with a generated
    /// password the caller prints once. `None` when users already exist (or nothing is
    /// needed).
    pub fn bootstrap_admin(
        &self,
        from_env: Option<(String, String)>,
    ) -> Result<Option<FirstAdmin>, AuthError> {
        if !self.users.is_empty() {
            return Ok(None);
        }
        if let Some((user, pass)) = from_env {
            self.users
                .create(&user, Role::Admin, &pass, now_ms())
                .map_err(|e| AuthError::Invalid(format!("DIDBAN_ADMIN_USER/DIDBAN_ADMIN_PASSWORD: {e}")))?;
            return Ok(Some(FirstAdmin {
                user,
                generated_password: None,
            }));
        }
        if !self.settings.required {
            return Ok(None);
        }
        let pass = secret::random_password()?;
        self.users.create("admin", Role::Admin, &pass, now_ms())?;
        Ok(Some(FirstAdmin {
            user: "admin".into(),
            generated_password: Some(pass),
        }))
    }

    /// A token with the ingest scope that lives only in this process's memory, for the
    /// in-process host collector; a new one each start.
    pub fn internal_ingest_token(&self) -> Result<String, AuthError> {
        let token = format!("{}internal_{}", tokens::TOKEN_PREFIX, secret::random_hex(32)?);
        *self.internal_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(secret::digest(&token));
        Ok(token)
    }

    /// Whether an ingest request carrying the `authorization` header (or gRPC metadata)
    /// value `authorization` may write.
    pub fn ingest_allowed(&self, authorization: Option<&str>) -> bool {
        if !self.settings.required {
            return true;
        }
        let Some(token) = authorization.and_then(middleware::bearer) else {
            return false;
        };
        self.token_identity(token).is_some_and(|id| id.ingest)
    }

    /// The identity behind a bearer token.
    fn token_identity(&self, token: &str) -> Option<middleware::Identity> {
        let internal = self
            .internal_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(d) = internal {
            if secret::constant_time_eq(&d, &secret::digest(token)) {
                return Some(middleware::Identity {
                    user: Some("didban-host-metrics".into()),
                    role: None,
                    ingest: true,
                    csrf: None,
                });
            }
        }
        let t = self.tokens.find(token)?;
        Some(middleware::Identity {
            user: Some(format!("token:{}", t.name)),
            role: Some(t.role),
            ingest: t.ingest,
            csrf: None,
        })
    }

    /// Forgets cached basic-auth successes of `user` (password reset, deletion).
    pub fn forget_basic(&self, user: &str) {
        let mut cache = self.basic_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (u, _)| u != user);
    }

    /// The sign-in, sign-out and admin pages.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .merge(login::routes())
            .merge(admin::routes())
            .with_state(self.clone())
    }
}
