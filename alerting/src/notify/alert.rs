//! The alert as the notification pipeline sees it (Alertmanager's model): labels,
//! annotations, a start, an end, and a link back to the rule.

use std::collections::BTreeMap;

use didban_store::Labels;

/// An alert handed from the rule engine to the notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identity of the alert.
    pub labels: Labels,
    /// Human-readable details.
    pub annotations: BTreeMap<String, String>,
    /// When it started firing (ms).
    pub starts_at_ms: i64,
    /// When it resolved, or until when it is valid without a refresh (ms).
    pub ends_at_ms: i64,
    /// Link to the expression that produced it.
    pub generator_url: String,
    /// The sample value at the last evaluation, for e-mail bodies.
    pub value: f64,
}

impl Alert {
    /// Stable identity: the fingerprint of the labels.
    pub fn fingerprint(&self) -> u64 {
        self.labels.fingerprint()
    }

    /// True when the alert has ended at `now_ms`.
    pub fn resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }
}

/// Receives alerts from the rule engine. Must not block: the dispatcher only records them.
pub trait AlertSink: Send + Sync {
    /// New or refreshed alerts, at evaluation time `now_ms`.
    fn send(&self, alerts: Vec<Alert>, now_ms: i64);
}
