//! Users: name, role and Argon2id password hash, kept in `<data_dir>/auth/users.json` and
//! rewritten atomically on every change.

use std::path::PathBuf;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::{password, secret, AuthError};
use crate::viewer::Role;

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// Sign-in name (any printable text without `:`; shown escaped).
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// PHC string of the Argon2id hash.
    pub password_hash: String,
    /// When the account was created (Unix ms).
    pub created_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    version: u32,
    users: Vec<User>,
}

/// All users, in memory and on disk.
pub struct UserStore {
    path: PathBuf,
    users: RwLock<Vec<User>>,
}

/// Checks a user name: 1–64 characters, no control characters, no `:` (basic auth).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err("the user name must have 1 to 64 characters".into());
    }
    if name.chars().any(|c| c.is_control() || c == ':') {
        return Err("the user name must not contain ':' or control characters".into());
    }
    if name.trim() != name {
        return Err("the user name must not start or end with a space".into());
    }
    Ok(())
}

impl UserStore {
    /// Loads `path` (an absent file means no users yet).
    pub fn open(path: PathBuf) -> Result<UserStore, AuthError> {
        let file: UsersFile = secret::read_json(&path)?.unwrap_or_default();
        Ok(UserStore {
            path,
            users: RwLock::new(file.users),
        })
    }

    fn save(&self, users: &[User]) -> Result<(), AuthError> {
        let file = UsersFile {
            version: 1,
            users: users.to_vec(),
        };
        secret::write_json(&self.path, &file)
    }

    /// Every user, sorted by name.
    pub fn list(&self) -> Vec<User> {
        let mut users = self.users.read().unwrap_or_else(|e| e.into_inner()).clone();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    /// Whether there is no user at all.
    pub fn is_empty(&self) -> bool {
        self.users.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// The user called `name`.
    pub fn get(&self, name: &str) -> Option<User> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.iter().find(|u| u.name == name).cloned()
    }

    /// Creates a user (the password is hashed here; it takes tens of milliseconds).
    pub fn create(&self, name: &str, role: Role, password: &str, now_ms: i64) -> Result<(), AuthError> {
        check_name(name).map_err(AuthError::Invalid)?;
        password::check_new(password).map_err(AuthError::Invalid)?;
        let hash = password::hash(password)?;
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if users.iter().any(|u| u.name == name) {
            return Err(AuthError::Invalid(format!(
                "a user named {name:?} already exists"
            )));
        }
        let mut next = users.clone();
        next.push(User {
            name: name.to_string(),
            role,
            password_hash: hash,
            created_ms: now_ms,
        });
        self.save(&next)?;
        *users = next;
        Ok(())
    }

    /// Changes one user with `change`; refuses to leave no admin behind.
    fn update(&self, name: &str, change: impl FnOnce(&mut Vec<User>, usize)) -> Result<(), AuthError> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let Some(i) = users.iter().position(|u| u.name == name) else {
            return Err(AuthError::Invalid(format!("there is no user named {name:?}")));
        };
        let had_admin = users.iter().any(|u| u.role == Role::Admin);
        let mut next = users.clone();
        change(&mut next, i);
        if had_admin && !next.iter().any(|u| u.role == Role::Admin) {
            return Err(AuthError::Invalid(
                "this would leave no admin; make another user admin first".into(),
            ));
        }
        self.save(&next)?;
        *users = next;
        Ok(())
    }

    /// Gives `name` the role `role`.
    pub fn set_role(&self, name: &str, role: Role) -> Result<(), AuthError> {
        self.update(name, |users, i| users[i].role = role)
    }

    /// Sets a new password for `name`.
    pub fn set_password(&self, name: &str, new_password: &str) -> Result<(), AuthError> {
        password::check_new(new_password).map_err(AuthError::Invalid)?;
        let hash = password::hash(new_password)?;
        self.update(name, |users, i| users[i].password_hash = hash)
    }

    /// Deletes `name`.
    pub fn delete(&self, name: &str) -> Result<(), AuthError> {
        self.update(name, |users, i| {
            users.remove(i);
        })
    }

    /// The user when `password` is theirs. Always runs one Argon2 verification, also for an
    /// unknown name, so the answer time does not tell which part was wrong. [`Busy`] when no
    /// verification slot freed up within [`password::VERIFY_WAIT`]: the caller answers
    /// "try again later" (429), not "wrong password".
    ///
    /// [`Busy`]: password::Busy
    pub fn authenticate(&self, name: &str, password: &str) -> Result<Option<User>, password::Busy> {
        let user = self.get(name);
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::decoy_hash().to_string());
        let ok = password::verify_within(password, &stored, password::VERIFY_WAIT)?;
        Ok(if ok { user } else { None })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn users_persist_and_keep_one_admin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = UserStore::open(path.clone()).unwrap();
        assert!(store.is_empty());
        store.create("alice", Role::Admin, "password1", 1).unwrap();
        store.create("bob", Role::Viewer, "password2", 2).unwrap();
        assert!(store.create("bob", Role::Viewer, "password2", 2).is_err());
        assert!(store.create("a:b", Role::Viewer, "password2", 2).is_err());
        assert!(store.create("carol", Role::Viewer, "short", 2).is_err());
        assert_eq!(
            store.authenticate("alice", "password1").unwrap().unwrap().role,
            Role::Admin
        );
        assert!(store.authenticate("alice", "password2").unwrap().is_none());
        assert!(store.authenticate("nobody", "password1").unwrap().is_none());

        let err = store.set_role("alice", Role::Editor).unwrap_err().to_string();
        assert!(err.contains("no admin"), "{err}");
        assert!(store.delete("alice").is_err());
        store.set_role("bob", Role::Admin).unwrap();
        store.delete("alice").unwrap();
        store.set_password("bob", "new password").unwrap();

        let reopened = UserStore::open(path).unwrap();
        let names: Vec<String> = reopened.list().into_iter().map(|u| u.name).collect();
        assert_eq!(names, vec!["bob"]);
        assert!(reopened.authenticate("bob", "new password").unwrap().is_some());
        assert!(reopened.authenticate("bob", "password2").unwrap().is_none());
    }
}
