//! Receivers' integrations: webhook (Alertmanager v4 JSON) and e-mail (SMTP via lettre).

pub mod build;
pub mod email;
pub mod webhook;

use std::collections::BTreeMap;

use didban_store::Labels;

use crate::eval::storage::BoxFuture;
use crate::notify::Alert;

/// One notification for one integration: a group's alerts at one moment.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Receiver name.
    pub receiver: String,
    /// The alert group's key.
    pub group_key: String,
    /// The labels the group is keyed by.
    pub group_labels: Labels,
    /// The alerts to tell about (firing first, then resolved).
    pub alerts: Vec<Alert>,
    /// When (ms); decides which alerts count as resolved.
    pub now_ms: i64,
    /// Didban's external URL, for links.
    pub external_url: String,
}

impl Notification {
    /// `firing` when any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|a| !a.resolved_at(self.now_ms)) {
            "firing"
        } else {
            "resolved"
        }
    }

    /// Firing alerts.
    pub fn firing(&self) -> Vec<&Alert> {
        self.alerts
            .iter()
            .filter(|a| !a.resolved_at(self.now_ms))
            .collect()
    }

    /// Resolved alerts.
    pub fn resolved(&self) -> Vec<&Alert> {
        self.alerts
            .iter()
            .filter(|a| a.resolved_at(self.now_ms))
            .collect()
    }

    /// Labels with the same value in every alert.
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        let mut maps = Vec::new();
        for a in &self.alerts {
            let mut m = BTreeMap::new();
            for l in a.labels.iter() {
                m.insert(l.name.to_string(), l.value.to_string());
            }
            maps.push(m);
        }
        common(&maps)
    }

    /// Annotations with the same value in every alert.
    pub fn common_annotations(&self) -> BTreeMap<String, String> {
        let maps: Vec<BTreeMap<String, String>> = self.alerts.iter().map(|a| a.annotations.clone()).collect();
        common(&maps)
    }
}

fn common(maps: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for m in maps.iter().skip(1) {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// Why an integration could not deliver.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReceiverError {
    /// The server answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// Connecting, TLS, timeout, or the SMTP dialogue failed.
    #[error("{0}")]
    Transport(String),
    /// The message could not be built (bad address, …); retrying will not help.
    #[error("{0}")]
    Build(String),
}

impl ReceiverError {
    /// True when a retry may succeed (transport errors, 5xx and 429).
    pub fn retryable(&self) -> bool {
        match self {
            ReceiverError::Status { status, .. } => *status >= 500 || *status == 429,
            ReceiverError::Transport(_) => true,
            ReceiverError::Build(_) => false,
        }
    }
}

/// Something that delivers notifications.
pub trait Integration: Send + Sync {
    /// `webhook` or `email`.
    fn kind(&self) -> &'static str;
    /// Whether resolved alerts are sent.
    fn send_resolved(&self) -> bool;
    /// Delivers one notification.
    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ReceiverError>>;
}
