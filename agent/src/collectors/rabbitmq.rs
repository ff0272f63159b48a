//! RabbitMQ queue depth from the management API (`GET /api/queues`): messages ready,
//! unacknowledged and total, and consumers per queue, named like the RabbitMQ Prometheus
//! plugin and rabbitmq_exporter (`rabbitmq_queue_messages_ready{vhost,queue}`, …).

use futures::future::BoxFuture;
use serde::Deserialize;

use crate::collectors::Collector;
use crate::config::RabbitmqConfig;
use crate::error::CollectError;
use crate::model::Sample;
use didban_base::now_ms;

/// Watches one RabbitMQ management endpoint.
pub struct RabbitmqCollector {
    config: RabbitmqConfig,
    client: Option<reqwest::Client>,
    reachability: super::Reachability,
}

#[derive(Debug, Deserialize)]
struct QueueInfo {
    name: String,
    vhost: String,
    #[serde(default)]
    messages: Option<f64>,
    #[serde(default)]
    messages_ready: Option<f64>,
    #[serde(default)]
    messages_unacknowledged: Option<f64>,
    #[serde(default)]
    consumers: Option<f64>,
}

/// Percent-encodes a vhost for the API path (`/` → `%2F`).
fn encode_vhost(vhost: &str) -> String {
    let mut out = String::new();
    for b in vhost.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'~' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RabbitmqCollector {
    /// A collector for one `[[rabbitmq]]`.
    pub fn new(config: &RabbitmqConfig) -> RabbitmqCollector {
        let client = match crate::tls::http_client(config.timeout, &config.tls_ca_file, false) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(url = %config.url, error = %e, "HTTP client could not be built");
                None
            }
        };
        RabbitmqCollector {
            config: config.clone(),
            client,
            reachability: Default::default(),
        }
    }

    async fn fetch(&self) -> Result<Vec<QueueInfo>, String> {
        let client = self.client.as_ref().ok_or("HTTP client could not be built")?;
        let base = self.config.url.trim_end_matches('/');
        let url = if self.config.vhost.is_empty() {
            format!("{base}/api/queues")
        } else {
            format!("{base}/api/queues/{}", encode_vhost(&self.config.vhost))
        };
        let response = client
            .get(&url)
            .basic_auth(&self.config.username, Some(&self.config.password))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        if status == 401 {
            return Err(format!("GET {url}: 401 unauthorized (check username/password)"));
        }
        if !(200..300).contains(&status) {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        response
            .json::<Vec<QueueInfo>>()
            .await
            .map_err(|e| format!("GET {url}: unexpected body: {e}"))
    }
}

impl Collector for RabbitmqCollector {
    fn name(&self) -> String {
        format!("rabbitmq/{}", self.config.url)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let fetched = self.fetch().await;
            let up = self.reachability.record("rabbitmq", &self.config.url, &fetched);
            let Ok(queues) = fetched else {
                return Ok(vec![Sample::gauge("rabbitmq_up", &[], up, now)]);
            };
            let mut out = vec![Sample::gauge("rabbitmq_up", &[], 1.0, now)];
            let mut reported = 0usize;
            for q in queues {
                if !self.config.queues.is_empty() && !self.config.queues.contains(&q.name) {
                    continue;
                }
                if reported >= self.config.max_queues {
                    break;
                }
                reported += 1;
                let labels = [("vhost", q.vhost.as_str()), ("queue", q.name.as_str())];
                let values = [
                    ("rabbitmq_queue_messages_ready", q.messages_ready),
                    (
                        "rabbitmq_queue_messages_unacknowledged",
                        q.messages_unacknowledged,
                    ),
                    ("rabbitmq_queue_messages", q.messages),
                    ("rabbitmq_queue_consumers", q.consumers),
                ];
                for (name, value) in values {
                    out.push(Sample::gauge(name, &labels, value.unwrap_or(0.0), now));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_encoding() {
        assert_eq!(encode_vhost("/"), "%2F");
        assert_eq!(encode_vhost("app prod"), "app%20prod");
    }
}
