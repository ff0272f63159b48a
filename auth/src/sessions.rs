//! Browser sessions: a random 256-bit id in the `didban_session` cookie, kept in memory by
//! its SHA-256 digest (so the file never holds a usable id) and persisted to
//! `<data_dir>/auth/sessions.json` so a restart does not sign everyone out.
//!
//! Expiry is sliding: a session ends `ttl` after its last use, and in any case
//! [`MAX_LIFETIME_MS`] after sign-in. Uses move the expiry in memory at once; the file is
//! rewritten when a session is created or ended, and at most once every
//! [`PERSIST_TOUCH_MS`] for sliding updates.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{secret, AuthError};

/// Absolute lifetime of a session, however active: 30 days.
pub const MAX_LIFETIME_MS: i64 = 30 * 86_400_000;
/// Sliding-expiry updates are written to disk at most this often.
pub const PERSIST_TOUCH_MS: i64 = 5 * 60_000;

/// One signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Who signed in.
    pub user: String,
    /// The CSRF token forms of this session carry.
    pub csrf: String,
    /// Sign-in time (Unix ms).
    pub created_ms: i64,
    /// The session ends at this time unless used again (Unix ms).
    pub expires_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionsFile {
    version: u32,
    /// SHA-256 (hex) of the session id → session.
    sessions: HashMap<String, Session>,
}

struct Inner {
    sessions: HashMap<String, Session>,
    last_saved_ms: i64,
}

/// The live sessions.
pub struct SessionStore {
    path: PathBuf,
    ttl_ms: i64,
    inner: Mutex<Inner>,
}

impl SessionStore {
    /// Loads `path`, dropping sessions that expired while the server was down.
    pub fn open(path: PathBuf, ttl_ms: i64, now_ms: i64) -> Result<SessionStore, AuthError> {
        let file: SessionsFile = secret::read_json(&path)?.unwrap_or_default();
        let mut sessions = file.sessions;
        sessions.retain(|_, s| s.expires_ms > now_ms);
        Ok(SessionStore {
            path,
            ttl_ms: ttl_ms.max(60_000),
            inner: Mutex::new(Inner {
                sessions,
                last_saved_ms: now_ms,
            }),
        })
    }

    fn save(&self, inner: &mut Inner, now_ms: i64) -> Result<(), AuthError> {
        inner.sessions.retain(|_, s| s.expires_ms > now_ms);
        let file = SessionsFile {
            version: 1,
            sessions: inner.sessions.clone(),
        };
        inner.last_saved_ms = now_ms;
        secret::write_json(&self.path, &file)
    }

    /// Starts a session for `user`; returns the id for the cookie (never stored).
    pub fn create(&self, user: &str, now_ms: i64) -> Result<(String, Session), AuthError> {
        let id = secret::random_hex(32)?;
        let session = Session {
            user: user.to_string(),
            csrf: secret::random_hex(32)?,
            created_ms: now_ms,
            expires_ms: now_ms + self.ttl_ms,
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.sessions.insert(secret::digest(&id), session.clone());
        self.save(&mut inner, now_ms)?;
        Ok((id, session))
    }

    /// The live session with cookie value `id`, its expiry moved forward.
    pub fn touch(&self, id: &str, now_ms: i64) -> Option<Session> {
        let key = secret::digest(id);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let session = inner.sessions.get_mut(&key)?;
        if session.expires_ms <= now_ms {
            inner.sessions.remove(&key);
            return None;
        }
        session.expires_ms = (now_ms + self.ttl_ms).min(session.created_ms + MAX_LIFETIME_MS);
        let found = session.clone();
        if now_ms - inner.last_saved_ms >= PERSIST_TOUCH_MS {
            if let Err(e) = self.save(&mut inner, now_ms) {
                tracing::warn!(error = %e, "could not save sessions");
            }
        }
        Some(found)
    }

    /// Ends the session with cookie value `id`.
    pub fn remove(&self, id: &str, now_ms: i64) -> Result<(), AuthError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.sessions.remove(&secret::digest(id)).is_some() {
            self.save(&mut inner, now_ms)?;
        }
        Ok(())
    }

    /// Ends every session of `user` (deleted, or password reset).
    pub fn remove_user(&self, user: &str, now_ms: i64) -> Result<(), AuthError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| s.user != user);
        if inner.sessions.len() != before {
            self.save(&mut inner, now_ms)?;
        }
        Ok(())
    }

    /// Writes the current expiries to disk (at shutdown).
    pub fn flush(&self, now_ms: i64) -> Result<(), AuthError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.save(&mut inner, now_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sessions_slide_expire_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let ttl = 3_600_000;
        let store = SessionStore::open(path.clone(), ttl, 0).unwrap();
        let (id, s) = store.create("alice", 1_000).unwrap();
        assert_eq!(s.expires_ms, 1_000 + ttl);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&id), "the file must not hold the id");
        assert!(text.contains(&secret::digest(&id)));

        let later = 1_000 + ttl - 1;
        assert_eq!(store.touch(&id, later).unwrap().expires_ms, later + ttl);
        assert!(store.touch("wrong", later).is_none());

        let reopened = SessionStore::open(path.clone(), ttl, later + 10).unwrap();
        assert_eq!(reopened.touch(&id, later + 10).unwrap().user, "alice");
        assert!(reopened.touch(&id, later + 10 + 2 * ttl).is_none(), "expired");

        let (id2, _) = reopened.create("bob", 5).unwrap();
        reopened.remove_user("bob", 6).unwrap();
        assert!(reopened.touch(&id2, 7).is_none());
        // The absolute lifetime caps sliding.
        let (id3, _) = reopened.create("carol", 0).unwrap();
        let mut t = 0;
        while t < MAX_LIFETIME_MS {
            t += ttl / 2;
            let _ = reopened.touch(&id3, t);
        }
        assert!(reopened.touch(&id3, MAX_LIFETIME_MS + 1).is_none());
    }
}
