//! The notification log: what was last sent to each integration of each receiver for each
//! alert group (so a restart never re-sends), and a bounded history of notifications for
//! the API. Persisted as JSON in the data directory after every change.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Entries untouched for this long are dropped (Alertmanager: 120h).
pub const LOG_RETENTION_MS: i64 = 5 * 86_400_000;
/// Notifications kept in the history.
pub const HISTORY_LEN: usize = 1000;

/// What was last sent for one group to one integration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Fingerprints of the firing alerts notified.
    pub firing: Vec<u64>,
    /// Fingerprints of the resolved alerts notified.
    pub resolved: Vec<u64>,
    /// When (ms).
    pub at_ms: i64,
}

/// One attempt of a delivery: when it ended and why it failed (`None`: delivered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When the attempt ended (ms).
    pub at_ms: i64,
    /// The error of a failed attempt.
    pub error: Option<String>,
}

/// One delivery to one integration (with all its attempts), for `GET /api/v1/notifications`
/// and the Receivers page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// When it finished (ms).
    pub at_ms: i64,
    /// Receiver name.
    pub receiver: String,
    /// `webhook[0]`, `email[1]`, …
    pub integration: String,
    /// The alert group.
    pub group_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// Firing alerts sent.
    pub firing: usize,
    /// Resolved alerts sent.
    pub resolved: usize,
    /// Attempts made.
    pub attempts: u32,
    /// True when the receiver accepted it.
    pub ok: bool,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Names of the alerts sent (`alertname` labels, sorted, without repeats).
    #[serde(default)]
    pub alertnames: Vec<String>,
    /// Every attempt in order, so retries and their errors stay visible after a success.
    #[serde(default)]
    pub tries: Vec<Attempt>,
    /// True for a test notification (`POST /api/v1/receivers/{name}/test`).
    #[serde(default)]
    pub test: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LogFile {
    entries: BTreeMap<String, LogEntry>,
    history: VecDeque<HistoryItem>,
}

/// The log, shared by the dispatcher and the API.
#[derive(Debug)]
pub struct NotificationLog {
    path: Option<PathBuf>,
    inner: Mutex<LogFile>,
}

impl NotificationLog {
    /// Loads `dir/nflog.json` (missing = empty); `None` keeps it in memory only.
    pub fn open(dir: Option<&Path>) -> NotificationLog {
        let path = dir.map(|d| d.join("nflog.json"));
        let mut file = LogFile::default();
        if let Some(p) = &path {
            match std::fs::read(p) {
                Ok(bytes) => match serde_json::from_slice(&bytes) {
                    Ok(f) => file = f,
                    Err(e) => {
                        tracing::warn!(path = %p.display(), error = %e, "ignoring unreadable notification log")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %p.display(), error = %e, "cannot read notification log"),
            }
        }
        NotificationLog {
            path,
            inner: Mutex::new(file),
        }
    }

    /// The last entry for `key` (integration + group).
    pub fn get(&self, key: &str) -> Option<LogEntry> {
        self.inner.lock().entries.get(key).cloned()
    }

    /// Records a notification: the dedup entry (when `entry` is given) and the history.
    pub fn record(&self, key: &str, entry: Option<LogEntry>, item: HistoryItem) {
        let mut inner = self.inner.lock();
        let now = item.at_ms;
        if let Some(e) = entry {
            inner.entries.insert(key.to_string(), e);
        }
        inner.entries.retain(|_, e| now - e.at_ms < LOG_RETENTION_MS);
        inner.history.push_front(item);
        inner.history.truncate(HISTORY_LEN);
        self.save(&inner);
    }

    /// Takes in the entries another instance of an HA pair recorded (shared through the
    /// database): an entry replaces the local one only when it is newer, so merging is
    /// idempotent and never undoes a later local delivery.
    pub fn merge(&self, shared: Vec<(String, LogEntry)>) {
        let mut inner = self.inner.lock();
        let mut changed = false;
        for (key, entry) in shared {
            let newer = inner
                .entries
                .get(&key)
                .is_none_or(|local| local.at_ms < entry.at_ms);
            if newer {
                inner.entries.insert(key, entry);
                changed = true;
            }
        }
        if changed {
            self.save(&inner);
        }
    }

    fn save(&self, inner: &LogFile) {
        if let Some(p) = &self.path {
            match serde_json::to_vec(inner) {
                Ok(bytes) => {
                    if let Err(e) = crate::notify::write_atomic(p, &bytes) {
                        tracing::error!(path = %p.display(), error = %e, "cannot save notification log");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode notification log"),
            }
        }
    }

    /// The newest `limit` notifications, newest first.
    pub fn history(&self, limit: usize) -> Vec<HistoryItem> {
        self.inner.lock().history.iter().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(at_ms: i64, firing: Vec<u64>) -> LogEntry {
        LogEntry {
            firing,
            resolved: Vec::new(),
            at_ms,
        }
    }

    #[test]
    fn merging_shared_entries_keeps_the_newest_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let log = NotificationLog::open(Some(dir.path()));
        let item = HistoryItem {
            at_ms: 100,
            receiver: "ops".into(),
            integration: "webhook[0]".into(),
            group_key: "g".into(),
            status: "firing".into(),
            firing: 1,
            resolved: 0,
            attempts: 1,
            ok: true,
            error: None,
            alertnames: Vec::new(),
            tries: Vec::new(),
            test: false,
        };
        log.record("ops/webhook[0]:g", Some(entry(100, vec![1])), item);
        log.merge(vec![
            ("ops/webhook[0]:g".into(), entry(90, vec![9])),
            ("ops/webhook[0]:h".into(), entry(95, vec![2])),
        ]);
        assert_eq!(
            log.get("ops/webhook[0]:g"),
            Some(entry(100, vec![1])),
            "older loses"
        );
        assert_eq!(log.get("ops/webhook[0]:h"), Some(entry(95, vec![2])));
        log.merge(vec![("ops/webhook[0]:g".into(), entry(110, vec![1, 3]))]);
        let reopened = NotificationLog::open(Some(dir.path()));
        assert_eq!(
            reopened.get("ops/webhook[0]:g"),
            Some(entry(110, vec![1, 3])),
            "saved"
        );
        assert_eq!(reopened.history(10).len(), 1, "merging adds no history");
    }
}
