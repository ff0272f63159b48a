//! Silences: matchers plus a time window that mute matching alerts, with author and
//! comment, in Alertmanager v2's JSON shape; kept in a JSON file in the data directory.

use std::path::{Path, PathBuf};

use didban_store::{LabelMatcher, Labels, MatchOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Expired silences are forgotten after this long (Alertmanager: 5 days).
pub const SILENCE_RETENTION_MS: i64 = 5 * 86_400_000;

/// One matcher of a silence, as in Alertmanager's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// `value` is a regex.
    pub is_regex: bool,
    /// Equal (true, default) or not equal.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    fn compile(&self) -> Result<LabelMatcher, SilenceError> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::RegexMatch,
            (true, false) => MatchOp::RegexNoMatch,
        };
        LabelMatcher::new(op, self.name.clone(), self.value.clone())
            .map_err(|e| SilenceError::Invalid(format!("matcher {}: {e}", self.name)))
    }
}

/// A silence as stored and as the API shows it (times in ms; the API converts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique id.
    pub id: String,
    /// What it mutes.
    pub matchers: Vec<SilenceMatcher>,
    /// Start (ms).
    pub starts_at_ms: i64,
    /// End (ms).
    pub ends_at_ms: i64,
    /// Last change (ms).
    pub updated_at_ms: i64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl Silence {
    /// `pending`, `active` or `expired` at `now_ms`.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if now_ms < self.starts_at_ms {
            "pending"
        } else if now_ms < self.ends_at_ms {
            "active"
        } else {
            "expired"
        }
    }

    /// True when the silence mutes `labels` at `now_ms`.
    pub fn mutes(&self, labels: &Labels, now_ms: i64) -> bool {
        if self.state(now_ms) != "active" {
            return false;
        }
        for m in &self.matchers {
            match m.compile() {
                Ok(c) if c.matches_labels(labels) => {}
                _ => return false,
            }
        }
        true
    }
}

/// Why a silence was refused or not found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SilenceError {
    /// The request is invalid; the message names what.
    #[error("{0}")]
    Invalid(String),
    /// No silence with this id.
    #[error("silence {0:?} not found")]
    NotFound(String),
    /// The silence file could not be written.
    #[error("saving silences: {0}")]
    Io(String),
}

/// All silences, persisted to `silences.json` after every change.
#[derive(Debug)]
pub struct Silences {
    path: Option<PathBuf>,
    items: Mutex<Vec<Silence>>,
    /// Woken by every change made here, so an HA pair shares it at once.
    changed: tokio::sync::Notify,
}

impl Silences {
    /// Loads `dir/silences.json` (missing = none); `None` keeps silences in memory only.
    pub fn open(dir: Option<&Path>) -> Silences {
        let path = dir.map(|d| d.join("silences.json"));
        let mut items = Vec::new();
        if let Some(p) = &path {
            match std::fs::read(p) {
                Ok(bytes) => match serde_json::from_slice(&bytes) {
                    Ok(v) => items = v,
                    Err(e) => {
                        tracing::warn!(path = %p.display(), error = %e, "ignoring unreadable silences file")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %p.display(), error = %e, "cannot read silences file"),
            }
        }
        Silences {
            path,
            items: Mutex::new(items),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Creates a silence (or updates one when `id` names an existing silence that has not
    /// expired). Returns its id.
    pub fn upsert(&self, mut s: Silence, now_ms: i64) -> Result<String, SilenceError> {
        if s.matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "a silence needs at least one matcher".into(),
            ));
        }
        let mut all_match_empty = true;
        for m in &s.matchers {
            if m.name.is_empty() {
                return Err(SilenceError::Invalid("matcher with an empty label name".into()));
            }
            if !m.compile()?.matches_empty() {
                all_match_empty = false;
            }
        }
        if all_match_empty {
            return Err(SilenceError::Invalid(
                "at least one matcher must not match the empty string (it would silence everything)".into(),
            ));
        }
        if s.ends_at_ms <= s.starts_at_ms {
            return Err(SilenceError::Invalid(format!(
                "endsAt must be after startsAt ({} <= {})",
                crate::notify::rfc3339(s.ends_at_ms),
                crate::notify::rfc3339(s.starts_at_ms)
            )));
        }
        if s.ends_at_ms <= now_ms {
            return Err(SilenceError::Invalid("endsAt is in the past".into()));
        }
        s.updated_at_ms = now_ms;
        let mut items = self.items.lock();
        if !s.id.is_empty() {
            let Some(existing) = items.iter_mut().find(|x| x.id == s.id) else {
                return Err(SilenceError::NotFound(s.id));
            };
            if existing.state(now_ms) == "expired" {
                return Err(SilenceError::Invalid(format!(
                    "silence {} has expired and cannot be changed",
                    s.id
                )));
            }
            *existing = s.clone();
        } else {
            s.id = new_id(now_ms, items.len());
            items.push(s.clone());
        }
        self.save(&items)?;
        self.changed.notify_one();
        Ok(s.id)
    }

    /// Ends a silence now.
    pub fn expire(&self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        let mut items = self.items.lock();
        let Some(s) = items.iter_mut().find(|x| x.id == id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        if s.state(now_ms) == "expired" {
            return Err(SilenceError::Invalid(format!("silence {id} is already expired")));
        }
        if s.starts_at_ms > now_ms {
            s.starts_at_ms = now_ms;
        }
        s.ends_at_ms = now_ms;
        s.updated_at_ms = now_ms;
        self.save(&items)?;
        self.changed.notify_one();
        Ok(())
    }

    /// Every silence held, expired ones not yet forgotten included (what an HA pair
    /// shares).
    pub fn all(&self) -> Vec<Silence> {
        self.items.lock().clone()
    }

    /// Takes in silences shared by the other instances of an HA pair: one replaces the
    /// local silence of the same id only when it was updated later, so merging is
    /// idempotent and a local change is never undone by an older copy.
    pub fn merge(&self, shared: Vec<Silence>) {
        let mut items = self.items.lock();
        let mut changed = false;
        for s in shared {
            match items.iter_mut().find(|x| x.id == s.id) {
                Some(local) if local.updated_at_ms >= s.updated_at_ms => {}
                Some(local) => {
                    *local = s;
                    changed = true;
                }
                None => {
                    items.push(s);
                    changed = true;
                }
            }
        }
        if changed {
            if let Err(e) = self.save(&items) {
                tracing::error!(error = %e, "cannot save silences shared by the HA pair");
            }
        }
    }

    /// Resolves when a silence was created, changed or expired here since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Every silence not yet forgotten, newest first.
    pub fn list(&self, now_ms: i64) -> Vec<Silence> {
        let mut items = self.items.lock();
        let before = items.len();
        items.retain(|s| now_ms - s.ends_at_ms < SILENCE_RETENTION_MS);
        if items.len() != before {
            let _ = self.save(&items);
        }
        let mut out = items.clone();
        out.sort_by_key(|s| std::cmp::Reverse(s.updated_at_ms));
        out
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.items.lock().iter().find(|s| s.id == id).cloned()
    }

    /// Ids of the active silences that mute `labels`.
    pub fn muting(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        let items = self.items.lock();
        let mut out = Vec::new();
        for s in items.iter() {
            if s.mutes(labels, now_ms) {
                out.push(s.id.clone());
            }
        }
        out
    }

    fn save(&self, items: &[Silence]) -> Result<(), SilenceError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(items).map_err(|e| SilenceError::Io(e.to_string()))?;
        crate::notify::write_atomic(path, &bytes).map_err(|e| SilenceError::Io(e.to_string()))
    }
}

/// A UUID-shaped id from the time, a counter, the process id and a per-call random key
/// (std's hasher keys), so the instances of an HA pair never pick the same id.
fn new_id(now_ms: i64, n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let seed = Labels::from_pairs([
        ("k", random.to_string()),
        ("t", now_ms.to_string()),
        ("n", n.to_string()),
        ("p", std::process::id().to_string()),
        ("r", format!("{:?}", std::time::Instant::now())),
    ])
    .fingerprint();
    let hi = seed;
    let lo = seed.rotate_left(29) ^ u64::try_from(now_ms).unwrap_or(0);
    let hex = format!("{hi:016x}{lo:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or(""),
        hex.get(8..12).unwrap_or(""),
        hex.get(12..16).unwrap_or(""),
        hex.get(16..20).unwrap_or(""),
        hex.get(20..32).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn silence(matchers: Vec<SilenceMatcher>, start: i64, end: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers,
            starts_at_ms: start,
            ends_at_ms: end,
            updated_at_ms: 0,
            created_by: "ana".into(),
            comment: "maintenance".into(),
        }
    }

    fn m(name: &str, value: &str, is_regex: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal: true,
        }
    }

    #[test]
    fn create_mute_expire_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let s = Silences::open(Some(dir.path()));
        let id = s
            .upsert(silence(vec![m("job", "db|cache", true)], 0, 1000), 10)
            .unwrap();
        let labels = Labels::from_pairs([("job", "db"), ("alertname", "X")]);
        assert_eq!(s.muting(&labels, 500), vec![id.clone()]);
        assert!(s.muting(&Labels::from_pairs([("job", "web")]), 500).is_empty());
        assert!(s.muting(&labels, 1000).is_empty(), "ended");
        let reopened = Silences::open(Some(dir.path()));
        assert_eq!(reopened.get(&id).unwrap().comment, "maintenance");
        reopened.expire(&id, 600).unwrap();
        assert!(reopened.muting(&labels, 700).is_empty());
        assert_eq!(reopened.get(&id).unwrap().state(700), "expired");
        assert!(reopened.expire(&id, 700).is_err());
        assert_eq!(
            reopened.list(600 + SILENCE_RETENTION_MS + 1).len(),
            0,
            "forgotten after retention"
        );
    }

    #[test]
    fn merging_shared_silences_keeps_the_newest_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let s = Silences::open(Some(dir.path()));
        let id = s
            .upsert(silence(vec![m("job", "db", false)], 0, 1000), 50)
            .unwrap();
        let mut older = s.get(&id).unwrap();
        older.comment = "stale copy".into();
        older.updated_at_ms = 40;
        let mut other = silence(vec![m("job", "web", false)], 0, 1000);
        other.id = "from-the-other-instance".into();
        other.updated_at_ms = 60;
        s.merge(vec![older, other.clone()]);
        assert_eq!(s.get(&id).unwrap().comment, "maintenance", "an older copy loses");
        assert_eq!(s.get(&other.id), Some(other.clone()));
        let mut newer = other.clone();
        newer.ends_at_ms = 70;
        newer.updated_at_ms = 70;
        s.merge(vec![newer.clone()]);
        assert_eq!(
            Silences::open(Some(dir.path())).get(&other.id),
            Some(newer),
            "saved"
        );
        assert_eq!(s.all().len(), 2);
    }

    #[test]
    fn invalid_silences_are_refused_with_reasons() {
        let s = Silences::open(None);
        let e = s.upsert(silence(vec![], 0, 10), 0).unwrap_err();
        assert!(e.to_string().contains("at least one matcher"));
        let e = s
            .upsert(silence(vec![m("job", ".*", true)], 0, 10), 0)
            .unwrap_err();
        assert!(e.to_string().contains("empty string"));
        let e = s
            .upsert(silence(vec![m("job", "(", true)], 0, 10), 0)
            .unwrap_err();
        assert!(e.to_string().contains("job"), "{e}");
        let e = s
            .upsert(silence(vec![m("job", "a", false)], 10, 5), 0)
            .unwrap_err();
        assert!(e.to_string().contains("endsAt must be after startsAt"));
        let mut x = silence(vec![m("job", "a", false)], 0, 10);
        x.id = "nope".into();
        assert_eq!(s.upsert(x, 0).unwrap_err(), SilenceError::NotFound("nope".into()));
    }
}
