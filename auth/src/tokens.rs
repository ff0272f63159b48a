//! API tokens: created by admins, shown once, stored as SHA-256 digests in
//! `<data_dir>/auth/tokens.json`. Each has a role and optionally the ingest scope.

use std::path::PathBuf;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::{secret, AuthError};
use crate::viewer::Role;

/// Every token starts with this, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "didban_";

/// A token as stored (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiToken {
    /// Short random id, used to revoke.
    pub id: String,
    /// What the admin called it (e.g. "grafana", "prometheus remote_write").
    pub name: String,
    /// Role for query and alerting APIs.
    pub role: Role,
    /// Whether it may write data (remote_write, OTLP).
    pub ingest: bool,
    /// SHA-256 (hex) of the token.
    pub digest: String,
    /// Who created it.
    pub created_by: String,
    /// When (Unix ms).
    pub created_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokensFile {
    version: u32,
    tokens: Vec<ApiToken>,
}

/// All API tokens.
pub struct TokenStore {
    path: PathBuf,
    tokens: RwLock<Vec<ApiToken>>,
}

impl TokenStore {
    /// Loads `path` (absent = no tokens).
    pub fn open(path: PathBuf) -> Result<TokenStore, AuthError> {
        let file: TokensFile = secret::read_json(&path)?.unwrap_or_default();
        Ok(TokenStore {
            path,
            tokens: RwLock::new(file.tokens),
        })
    }

    fn save(&self, tokens: &[ApiToken]) -> Result<(), AuthError> {
        let file = TokensFile {
            version: 1,
            tokens: tokens.to_vec(),
        };
        secret::write_json(&self.path, &file)
    }

    /// Every token, newest first.
    pub fn list(&self) -> Vec<ApiToken> {
        let mut t = self.tokens.read().unwrap_or_else(|e| e.into_inner()).clone();
        t.sort_by_key(|x| std::cmp::Reverse(x.created_ms));
        t
    }

    /// Creates a token; returns the secret (to show once) and its record.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        ingest: bool,
        created_by: &str,
        now_ms: i64,
    ) -> Result<(String, ApiToken), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AuthError::Invalid(
                "the token name must have 1 to 100 characters".into(),
            ));
        }
        let token = format!("{TOKEN_PREFIX}{}", secret::random_hex(32)?);
        let record = ApiToken {
            id: secret::random_hex(6)?,
            name: name.to_string(),
            role,
            ingest,
            digest: secret::digest(&token),
            created_by: created_by.to_string(),
            created_ms: now_ms,
        };
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let mut next = tokens.clone();
        next.push(record.clone());
        self.save(&next)?;
        *tokens = next;
        Ok((token, record))
    }

    /// Revokes the token with `id`.
    pub fn revoke(&self, id: &str) -> Result<(), AuthError> {
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let next: Vec<ApiToken> = tokens.iter().filter(|t| t.id != id).cloned().collect();
        if next.len() == tokens.len() {
            return Err(AuthError::Invalid(format!("there is no token with id {id:?}")));
        }
        self.save(&next)?;
        *tokens = next;
        Ok(())
    }

    /// The record of the presented token `token`.
    pub fn find(&self, token: &str) -> Option<ApiToken> {
        let digest = secret::digest(token);
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        tokens
            .iter()
            .find(|t| secret::constant_time_eq(&t.digest, &digest))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let store = TokenStore::open(path.clone()).unwrap();
        let (token, rec) = store.create("grafana", Role::Viewer, false, "admin", 1).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token));
        let reopened = TokenStore::open(path).unwrap();
        assert_eq!(reopened.find(&token).unwrap().name, "grafana");
        assert!(reopened.find("didban_nope").is_none());
        assert!(reopened.create(" ", Role::Viewer, false, "admin", 1).is_err());
        reopened.revoke(&rec.id).unwrap();
        assert!(reopened.find(&token).is_none());
        assert!(reopened.revoke(&rec.id).is_err());
    }
}
