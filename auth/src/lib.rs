//! Didban's sign-in: who may do what, and the axum layers that enforce it.
//!
//! - [`users`], [`password`]: accounts with Argon2id hashes in `<data_dir>/auth/users.json`;
//! - [`sessions`]: browser sessions (cookie `didban_session`), persisted by digest;
//! - [`tokens`]: API tokens for clients (`Authorization: Bearer …`), stored by digest;
//! - [`ratelimit`]: failed sign-ins per client address;
//! - [`secret`]: random tokens, digests, constant-time comparison, private files;
//! - [`Role`] and [`Viewer`]: what a caller may do, as handlers see it;
//! - [`guard`]: the outer layer [`resolve`] that finds out who is calling, and the route
//!   layer [`Require`] with which each crate declares what its routes need.
//!
//! There is no table of paths here: the crate that builds a router puts
//! `.route_layer(Require::…)` on it. The server opens one [`Auth`], wraps each listener's
//! router with [`resolve`], and passes [`Auth::ingest_allowed`] to the gRPC receiver.
//! The sign-in and admin pages are in the UI crate.

#![warn(missing_docs)]

pub mod guard;
pub mod password;
pub mod ratelimit;
pub mod secret;
pub mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod users;
mod viewer;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use guard::{not_found, resolve, ErrorPage, Kind, Need, Require};
pub use viewer::{Role, Viewer};

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
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            required: true,
            anonymous_role: None,
            session_ttl: Duration::from_secs(86_400),
            secure_cookies: false,
            trusted_proxies: Vec::new(),
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

/// Users, sessions, tokens and the settings; shared by the layers and the pages.
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

pub(crate) use didban_base::now_ms;

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

    /// Failed sign-ins per client address; the sign-in page and basic auth share it.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
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
        let Some(token) = authorization.and_then(guard::bearer) else {
            return false;
        };
        self.token_identity(token).is_some_and(|id| id.ingest)
    }

    /// The identity behind a bearer token.
    pub(crate) fn token_identity(&self, token: &str) -> Option<guard::Identity> {
        let internal = self
            .internal_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(d) = internal {
            if secret::constant_time_eq(&d, &secret::digest(token)) {
                return Some(guard::Identity {
                    user: Some("didban-host-metrics".into()),
                    role: None,
                    ingest: true,
                    csrf: None,
                });
            }
        }
        let t = self.tokens.find(token)?;
        Some(guard::Identity {
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
}
