//! Forwarding alerts to external Alertmanagers through their v2 API
//! (`POST /api/v2/alerts`), as Prometheus does, alongside Didban's own notifier.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{rfc3339, Alert, AlertSink};

/// One alert in Alertmanager's `postableAlert` shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
}

/// Sends every alert batch to each configured Alertmanager, in the background; failures
/// are logged (the next evaluation re-sends firing alerts anyway).
pub struct AlertmanagerForwarder {
    urls: Vec<String>,
    client: reqwest::Client,
}

impl AlertmanagerForwarder {
    /// Forwarder to Alertmanager base URLs like `http://alertmanager:9093`.
    pub fn new(urls: Vec<String>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("alertmanager client: {e}"))?;
        Ok(AlertmanagerForwarder { urls, client })
    }
}

impl AlertSink for AlertmanagerForwarder {
    fn send(&self, alerts: Vec<Alert>, _now_ms: i64) {
        let mut body = Vec::with_capacity(alerts.len());
        for a in alerts {
            let mut labels = std::collections::BTreeMap::new();
            for l in a.labels.iter() {
                labels.insert(l.name.to_string(), l.value.to_string());
            }
            body.push(PostableAlert {
                labels,
                annotations: a.annotations,
                starts_at: rfc3339(a.starts_at_ms),
                ends_at: rfc3339(a.ends_at_ms),
                generator_url: a.generator_url,
            });
        }
        let body = Arc::new(body);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime; alerts not forwarded to Alertmanager");
            return;
        };
        for url in &self.urls {
            let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
            let client = self.client.clone();
            let body = body.clone();
            handle.spawn(async move {
                match client.post(&endpoint).json(&*body).send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => {
                        tracing::warn!(url = %endpoint, status = %r.status(), "Alertmanager refused alerts")
                    }
                    Err(e) => tracing::warn!(url = %endpoint, error = %e, "cannot reach Alertmanager"),
                }
            });
        }
    }
}

/// Hands every batch to several sinks (Didban's notifier and forwarders).
pub struct FanOut(pub Vec<Arc<dyn AlertSink>>);

impl AlertSink for FanOut {
    fn send(&self, alerts: Vec<Alert>, now_ms: i64) {
        for s in &self.0 {
            s.send(alerts.clone(), now_ms);
        }
    }
}
