//! RabbitMQ queue depth from the management API (`GET /api/queues`): messages ready,
//! unacknowledged and total, and consumers per queue, named like the RabbitMQ Prometheus
//! plugin and rabbitmq_exporter (`rabbitmq_queue_messages_ready{vhost,queue}`, …).
//!
//! Every sample carries `instance` = the management API's `host:port`, so several brokers on
//! one agent stay apart, and `rabbitmq_identity_info{rabbitmq_node, rabbitmq_cluster} 1` (from
//! `GET /api/overview`, as the RabbitMQ Prometheus plugin names it) tells which Erlang node
//! and cluster answer at that address.

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
    /// `instance` of every sample: the management API's `host:port`.
    instance: String,
    /// The management URL without credentials (also the name in logs).
    base: String,
    /// Basic-auth user and password: the URL's when it has them, else the config's.
    credentials: (String, String),
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

/// The node and cluster names of `GET /api/overview`.
#[derive(Debug, Deserialize)]
struct Overview {
    #[serde(default)]
    node: String,
    #[serde(default)]
    cluster_name: String,
}

/// `host:port` of the management URL, the scheme's default port filled in (15672 when the
/// URL does not parse, the management plugin's default).
pub fn instance_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            // IPv6 hosts come bracketed.
            let host = u.host_str().unwrap_or("localhost");
            match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => format!("{host}:15672"),
            }
        }
        Err(_) => {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            let hostport = rest.split('/').next().unwrap_or_default();
            if hostport.is_empty() {
                "localhost:15672".to_string()
            } else if hostport.contains(':') {
                hostport.to_string()
            } else {
                format!("{hostport}:15672")
            }
        }
    }
}

/// The URL without `user:password@`, and those credentials when it had a user. (Sending the
/// config's basic auth as well as the URL's would give two `Authorization` headers.)
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return (url.to_string(), None);
    };
    if u.username().is_empty() {
        return (url.to_string(), None);
    }
    let decode = |s: &str| percent_decode(s);
    let creds = (decode(u.username()), decode(u.password().unwrap_or_default()));
    let _ = u.set_username("");
    let _ = u.set_password(None);
    (u.to_string(), Some(creds))
}

/// `%XX` escapes of a URL's user or password decoded (invalid ones kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        let (base, from_url) = split_credentials(&config.url);
        let credentials = from_url.unwrap_or_else(|| (config.username.clone(), config.password.clone()));
        RabbitmqCollector {
            instance: instance_of(&config.url),
            base,
            credentials,
            config: config.clone(),
            client,
            reachability: Default::default(),
        }
    }

    async fn fetch(&self) -> Result<(Overview, Vec<QueueInfo>), String> {
        let base = self.base.trim_end_matches('/');
        let overview = self.get_json(format!("{base}/api/overview")).await?;
        let url = if self.config.vhost.is_empty() {
            format!("{base}/api/queues")
        } else {
            format!("{base}/api/queues/{}", encode_vhost(&self.config.vhost))
        };
        Ok((overview, self.get_json(url).await?))
    }

    /// `GET url` as the configured user, parsed as `T`.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: String) -> Result<T, String> {
        let client = self.client.as_ref().ok_or("HTTP client could not be built")?;
        let response = client
            .get(&url)
            .basic_auth(&self.credentials.0, Some(&self.credentials.1))
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
            .json::<T>()
            .await
            .map_err(|e| format!("GET {url}: unexpected body: {e}"))
    }
}

impl Collector for RabbitmqCollector {
    fn name(&self) -> String {
        format!("rabbitmq/{}", self.base)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let fetched = self.fetch().await;
            let up = self.reachability.record("rabbitmq", &self.base, &fetched);
            let instance = [("instance", self.instance.as_str())];
            let Ok((overview, queues)) = fetched else {
                return Ok(vec![Sample::gauge("rabbitmq_up", &instance, up, now)]);
            };
            let mut out = vec![
                Sample::gauge("rabbitmq_up", &instance, 1.0, now),
                Sample::gauge(
                    "rabbitmq_identity_info",
                    &[
                        ("instance", self.instance.as_str()),
                        ("rabbitmq_node", overview.node.as_str()),
                        ("rabbitmq_cluster", overview.cluster_name.as_str()),
                    ],
                    1.0,
                    now,
                ),
            ];
            let mut reported = 0usize;
            for q in queues {
                if !self.config.queues.is_empty() && !self.config.queues.contains(&q.name) {
                    continue;
                }
                if reported >= self.config.max_queues {
                    break;
                }
                reported += 1;
                let labels = [
                    ("instance", self.instance.as_str()),
                    ("vhost", q.vhost.as_str()),
                    ("queue", q.name.as_str()),
                ];
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

    #[test]
    fn credentials_in_the_url_are_used_once_and_never_logged() {
        let (base, creds) = split_credentials("http://app:p%40ss@mq1:15672/");
        assert_eq!(base, "http://mq1:15672/");
        assert_eq!(creds, Some(("app".to_string(), "p@ss".to_string())));
        let (base, creds) = split_credentials("http://mq1:15672");
        assert_eq!((base.as_str(), creds), ("http://mq1:15672", None));
    }

    #[test]
    fn instance_is_the_api_address() {
        assert_eq!(instance_of("http://127.0.0.1:15672"), "127.0.0.1:15672");
        assert_eq!(instance_of("http://mq1/"), "mq1:80");
        assert_eq!(instance_of("https://mq2.example"), "mq2.example:443");
        assert_eq!(instance_of("http://u:p@[::1]:15673/"), "[::1]:15673");
        assert_eq!(instance_of("not a url"), "not a url:15672");
    }
}
