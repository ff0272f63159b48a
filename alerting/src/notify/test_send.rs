//! Test notifications, as Grafana's "Test" button and `amtool`-style checks do: one clearly
//! labelled alert (`alertname="DidbanTestNotification"`) sent once through every integration
//! of one receiver, bypassing routes, grouping, silences and the dedup log, with the outcome
//! of each integration returned. Used by `POST /api/v1/receivers/{name}/test`, the Receivers
//! page and `didban notify test`.

use std::collections::BTreeMap;
use std::sync::Arc;

use didban_store::Labels;
use serde::Serialize;

use super::alert::Alert;
use super::config::{ConfigError, NotifyConfig};
use super::dispatch::Notifier;
use super::log::{Attempt, HistoryItem};
use crate::receivers::{Integration, Notification};

/// The `alertname` of test notifications.
pub const TEST_ALERTNAME: &str = "DidbanTestNotification";

/// The group key test notifications carry (never the key of a real group).
pub const TEST_GROUP_KEY: &str = "{}:{alertname=\"DidbanTestNotification\"}";

/// How long the test alert claims to be valid.
const TEST_ALERT_MS: i64 = 5 * 60_000;

/// The outcome of a test notification for one integration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestOutcome {
    /// `webhook[0]`, `email[1]`, …
    pub integration: String,
    /// True when the integration accepted it.
    pub ok: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// Why a test notification could not be sent at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TestError {
    /// No receiver has this name.
    #[error("no receiver named {0:?}; configured receivers: {1}")]
    UnknownReceiver(String, String),
    /// The receiver has neither a webhook nor an e-mail integration.
    #[error("receiver {0:?} has no webhook or e-mail integration to test")]
    NoIntegrations(String),
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// The notification a test sends to `receiver` at `now_ms`: one firing alert with the test
/// labels and annotations that say what it is.
pub fn test_notification(receiver: &str, now_ms: i64, external_url: &str) -> Notification {
    let labels = Labels::from_pairs([
        ("alertname", TEST_ALERTNAME),
        ("instance", "didban"),
        ("receiver", receiver),
        ("severity", "info"),
    ]);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_string(),
        format!("Test notification from Didban to receiver {receiver:?}"),
    );
    annotations.insert(
        "description".to_string(),
        "Someone asked Didban to send this test to check that the receiver works. No action is needed."
            .to_string(),
    );
    let alert = Alert {
        labels: labels.clone(),
        annotations,
        starts_at_ms: now_ms,
        ends_at_ms: now_ms + TEST_ALERT_MS,
        generator_url: format!("{}/alerts/receivers", external_url.trim_end_matches('/')),
        value: 1.0,
    };
    Notification {
        receiver: receiver.to_string(),
        group_key: TEST_GROUP_KEY.to_string(),
        group_labels: Labels::from_pairs([("alertname", TEST_ALERTNAME)]),
        alerts: vec![alert],
        now_ms,
        external_url: external_url.to_string(),
    }
}

/// Sends `n` once through each integration (no retries: the caller wants the answer now).
async fn send_each(list: &[Arc<dyn Integration>], n: &Notification) -> Vec<(String, Attempt)> {
    let mut out = Vec::new();
    for (i, integ) in list.iter().enumerate() {
        let result = integ.notify(n).await;
        out.push((
            format!("{}[{i}]", integ.kind()),
            Attempt {
                at_ms: crate::now_ms(),
                error: result.err().map(|e| e.to_string()),
            },
        ));
    }
    out
}

fn outcomes(sent: &[(String, Attempt)]) -> Vec<TestOutcome> {
    let mut out = Vec::new();
    for (integration, a) in sent {
        out.push(TestOutcome {
            integration: integration.clone(),
            ok: a.error.is_none(),
            error: a.error.clone(),
        });
    }
    out
}

/// Sends a test notification to `receiver` of `cfg` directly, without a server (for
/// `didban notify test`).
pub async fn send_test_with_config(
    cfg: &NotifyConfig,
    receiver: &str,
    external_url: &str,
) -> Result<Vec<TestOutcome>, TestError> {
    cfg.validate()?;
    let Some(rc) = cfg.receivers.iter().find(|r| r.name == receiver) else {
        let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
        return Err(TestError::UnknownReceiver(receiver.to_string(), names.join(", ")));
    };
    let list = crate::receivers::build::integrations(rc, &cfg.global)?;
    if list.is_empty() {
        return Err(TestError::NoIntegrations(receiver.to_string()));
    }
    let n = test_notification(receiver, crate::now_ms(), external_url);
    Ok(outcomes(&send_each(&list, &n).await))
}

impl Notifier {
    /// Sends a test notification through every integration of the running configuration's
    /// `receiver`; each attempt is counted and recorded in the history (marked as a test).
    pub async fn send_test(&self, receiver: &str) -> Result<Vec<TestOutcome>, TestError> {
        let Some(list) = self.integrations(receiver) else {
            let names: Vec<String> = self.receivers().into_iter().map(|(n, _)| n).collect();
            return Err(TestError::UnknownReceiver(receiver.to_string(), names.join(", ")));
        };
        if list.is_empty() {
            return Err(TestError::NoIntegrations(receiver.to_string()));
        }
        let now = crate::now_ms();
        let n = test_notification(receiver, now, self.external_url());
        let sent = send_each(&list, &n).await;
        for ((integration, attempt), integ) in sent.iter().zip(&list) {
            self.metrics
                .attempt(receiver, integ.kind(), attempt.error.is_none());
            match &attempt.error {
                None => tracing::info!(receiver, integration = %integration, "test notification delivered"),
                Some(e) => {
                    tracing::warn!(receiver, integration = %integration, error = %e, "test notification failed")
                }
            }
            let item = HistoryItem {
                at_ms: attempt.at_ms,
                receiver: receiver.to_string(),
                integration: integration.clone(),
                group_key: TEST_GROUP_KEY.to_string(),
                status: "firing".to_string(),
                firing: 1,
                resolved: 0,
                attempts: 1,
                ok: attempt.error.is_none(),
                error: attempt.error.clone(),
                alertnames: vec![TEST_ALERTNAME.to_string()],
                tries: vec![attempt.clone()],
                test: true,
            };
            self.log
                .record(&format!("test/{receiver}/{integration}"), None, item);
        }
        Ok(outcomes(&sent))
    }
}
