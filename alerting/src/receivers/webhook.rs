//! The webhook integration: POSTs Alertmanager's v4 JSON payload, optionally with a bearer
//! token and an HMAC-SHA256 signature (`X-Didban-Signature: sha256=<hex>`) over the send time
//! and the body (`<X-Didban-Timestamp>.<body>`), so a receiver can refuse a replayed request.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::{Integration, Notification, ReceiverError};
use crate::eval::storage::BoxFuture;
use crate::notify::config::{opt_duration, ConfigError, WebhookConfig};
use crate::notify::rfc3339;

/// The header carrying the signature of `<timestamp>.<body>`.
pub const SIGNATURE_HEADER: &str = "X-Didban-Signature";

/// The header carrying the signed send time, in whole seconds since the Unix epoch; a receiver
/// refuses requests whose time is too far from its own clock (a replay).
pub const TIMESTAMP_HEADER: &str = "X-Didban-Timestamp";

/// Alertmanager's webhook payload, version 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// Always `"4"`.
    pub version: String,
    /// The alert group's key.
    pub group_key: String,
    /// Alerts left out because of `max_alerts`.
    pub truncated_alerts: usize,
    /// `firing` or `resolved`.
    pub status: String,
    /// Receiver name.
    pub receiver: String,
    /// Labels the group is keyed by.
    pub group_labels: BTreeMap<String, String>,
    /// Labels common to all alerts.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations common to all alerts.
    pub common_annotations: BTreeMap<String, String>,
    /// Didban's URL.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a v4 payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    /// Link to the rule's expression.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// 16 hex digits identifying the label set.
    pub fingerprint: String,
}

/// Builds the payload; at most `max_alerts` alerts (0 = all).
pub fn payload(n: &Notification, max_alerts: usize) -> WebhookPayload {
    let mut alerts = Vec::new();
    for a in &n.alerts {
        let mut labels = BTreeMap::new();
        for l in a.labels.iter() {
            labels.insert(l.name.to_string(), l.value.to_string());
        }
        alerts.push(WebhookAlert {
            status: if a.resolved_at(n.now_ms) {
                "resolved"
            } else {
                "firing"
            }
            .to_string(),
            labels,
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.starts_at_ms),
            ends_at: rfc3339(a.ends_at_ms),
            generator_url: a.generator_url.clone(),
            fingerprint: format!("{:016x}", a.fingerprint()),
        });
    }
    let mut truncated = 0;
    if max_alerts > 0 && alerts.len() > max_alerts {
        truncated = alerts.len() - max_alerts;
        alerts.truncate(max_alerts);
    }
    let mut group_labels = BTreeMap::new();
    for l in n.group_labels.iter() {
        group_labels.insert(l.name.to_string(), l.value.to_string());
    }
    WebhookPayload {
        version: "4".into(),
        group_key: n.group_key.clone(),
        truncated_alerts: truncated,
        status: n.status().to_string(),
        receiver: n.receiver.clone(),
        group_labels,
        common_labels: n.common_labels(),
        common_annotations: n.common_annotations(),
        external_url: n.external_url.clone(),
        alerts,
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 under `secret` of `<timestamp>.<body>`: the decimal
/// send time (seconds since the epoch, as sent in [`TIMESTAMP_HEADER`]), a dot, then the exact
/// body bytes. Binding the time into the signature is what lets a receiver refuse replays.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A configured webhook.
pub struct Webhook {
    cfg: WebhookConfig,
    client: reqwest::Client,
}

impl Webhook {
    /// Builds the HTTP client with the configured timeout (default 10s).
    pub fn new(cfg: &WebhookConfig) -> Result<Webhook, ConfigError> {
        let timeout = opt_duration(&cfg.timeout, "webhook timeout")?.unwrap_or(Duration::from_secs(10));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("didban/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid(format!("webhook {}: {e}", cfg.url)))?;
        Ok(Webhook {
            cfg: cfg.clone(),
            client,
        })
    }
}

impl Integration for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.cfg.send_resolved.unwrap_or(true)
    }

    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ReceiverError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&payload(n, self.cfg.max_alerts))
                .map_err(|e| ReceiverError::Build(format!("encoding payload: {e}")))?;
            let mut req = self
                .client
                .post(&self.cfg.url)
                .header("Content-Type", "application/json");
            if let Some(t) = &self.cfg.bearer_token {
                req = req.bearer_auth(t.expose());
            }
            if let Some(secret) = &self.cfg.hmac_secret {
                // Each attempt is signed afresh, so a retry is not mistaken for a replay.
                let timestamp = didban_base::now_ms().div_euclid(1000);
                req = req
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, signature(secret.expose(), timestamp, &body));
            }
            let resp = req
                .body(body)
                .send()
                .await
                .map_err(|e| ReceiverError::Transport(format!("POST {}: {e}", self.cfg.url)))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let text = resp.text().await.unwrap_or_default();
            Err(ReceiverError::Status {
                url: self.cfg.url.clone(),
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            })
        })
    }
}
