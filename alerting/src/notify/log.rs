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
        if let Some(p) = &self.path {
            match serde_json::to_vec(&*inner) {
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
