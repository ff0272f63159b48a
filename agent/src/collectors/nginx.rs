//! nginx connections and requests from the `stub_status` page, named exactly like
//! nginx-prometheus-exporter: `nginx_up`, `nginx_connections_{active,accepted,handled,
//! reading,writing,waiting}` and `nginx_http_requests_total`. Every sample carries
//! `instance` = the status URL's `host:port`, so several nginx servers on one agent stay
//! distinct series.
//!
//! `stub_status` has no status codes or latencies; those come from the access log
//! (`[[logs]]`), not from here.

use futures::future::BoxFuture;

use crate::collectors::Collector;
use crate::config::NginxConfig;
use crate::error::CollectError;
use crate::model::{MetricKind, Sample};
use didban_base::now_ms;

/// The figures of one `stub_status` page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StubStatus {
    /// `Active connections`, including waiting ones.
    pub active: f64,
    /// Connections accepted since start.
    pub accepted: f64,
    /// Connections handled since start (below `accepted` when a limit was hit).
    pub handled: f64,
    /// Client requests since start.
    pub requests: f64,
    /// Connections reading a request header.
    pub reading: f64,
    /// Connections writing a response.
    pub writing: f64,
    /// Idle keep-alive connections.
    pub waiting: f64,
}

/// Parses the `stub_status` text; the error names what is missing or malformed.
pub fn parse_stub_status(text: &str) -> Result<StubStatus, String> {
    let mut lines = text.lines();
    let active_line = lines.next().ok_or("empty stub_status page")?;
    let active = active_line
        .strip_prefix("Active connections:")
        .ok_or_else(|| format!("expected \"Active connections: N\", got {active_line:?}"))?;
    let active = number(active.trim(), "Active connections")?;
    let header = lines.next().unwrap_or_default();
    if header.trim() != "server accepts handled requests" {
        return Err(format!(
            "expected \"server accepts handled requests\", got {header:?}"
        ));
    }
    let counts_line = lines.next().unwrap_or_default();
    let counts: Vec<&str> = counts_line.split_whitespace().collect();
    if counts.len() != 3 {
        return Err(format!("expected three counters, got {counts_line:?}"));
    }
    let states_line = lines.next().unwrap_or_default();
    let words: Vec<&str> = states_line.split_whitespace().collect();
    if words.len() != 6 || words[0] != "Reading:" || words[2] != "Writing:" || words[4] != "Waiting:" {
        return Err(format!(
            "expected \"Reading: N Writing: N Waiting: N\", got {states_line:?}"
        ));
    }
    Ok(StubStatus {
        active,
        accepted: number(counts[0], "accepts")?,
        handled: number(counts[1], "handled")?,
        requests: number(counts[2], "requests")?,
        reading: number(words[1], "Reading")?,
        writing: number(words[3], "Writing")?,
        waiting: number(words[5], "Waiting")?,
    })
}

fn number(text: &str, what: &str) -> Result<f64, String> {
    text.parse::<u64>()
        .map(|n| n as f64)
        .map_err(|_| format!("{what}: {text:?} is not a number"))
}

/// `host:port` of an http(s) URL, the port filled in from the scheme when absent; the URL
/// itself when it does not parse (validation rejects such URLs before a collector exists).
pub fn url_instance(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            }
        }
        Err(_) => url.to_string(),
    }
}

/// Watches one nginx `stub_status` page.
pub struct NginxCollector {
    config: NginxConfig,
    instance: String,
    client: Option<reqwest::Client>,
    reachability: super::Reachability,
}

impl NginxCollector {
    /// A collector for one `[[nginx]]`.
    pub fn new(config: &NginxConfig) -> NginxCollector {
        let client = match crate::tls::http_client(config.timeout, &config.tls_ca_file, false) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(url = %config.url, error = %e, "HTTP client could not be built");
                None
            }
        };
        NginxCollector {
            instance: url_instance(&config.url),
            config: config.clone(),
            client,
            reachability: Default::default(),
        }
    }

    async fn fetch(&self) -> Result<StubStatus, String> {
        let client = self.client.as_ref().ok_or("HTTP client could not be built")?;
        let url = &self.config.url;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let body = response
            .text()
            .await
            .map_err(|e| format!("GET {url}: reading body: {e}"))?;
        parse_stub_status(&body).map_err(|e| format!("GET {url}: not a stub_status page: {e}"))
    }
}

impl Collector for NginxCollector {
    fn name(&self) -> String {
        format!("nginx/{}", self.config.url)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let fetched = self.fetch().await;
            let up = self.reachability.record("nginx", &self.config.url, &fetched);
            let labels = [("instance", self.instance.as_str())];
            let mut out = vec![Sample::gauge("nginx_up", &labels, up, now)];
            let Ok(s) = fetched else {
                return Ok(out);
            };
            let values = [
                ("nginx_connections_active", MetricKind::Gauge, s.active),
                ("nginx_connections_accepted", MetricKind::Counter, s.accepted),
                ("nginx_connections_handled", MetricKind::Counter, s.handled),
                ("nginx_connections_reading", MetricKind::Gauge, s.reading),
                ("nginx_connections_writing", MetricKind::Gauge, s.writing),
                ("nginx_connections_waiting", MetricKind::Gauge, s.waiting),
                ("nginx_http_requests_total", MetricKind::Counter, s.requests),
            ];
            for (name, kind, value) in values {
                out.push(Sample::new(name, &labels, kind, value, now));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_page_nginx_writes() {
        let page = "Active connections: 291 \nserver accepts handled requests\n 16630948 16630940 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";
        let s = parse_stub_status(page).unwrap();
        assert_eq!(s.active, 291.0);
        assert_eq!(
            (s.accepted, s.handled, s.requests),
            (16630948.0, 16630940.0, 31070465.0)
        );
        assert_eq!((s.reading, s.writing, s.waiting), (6.0, 179.0, 106.0));
    }

    #[test]
    fn other_pages_are_refused_with_the_reason() {
        let e = parse_stub_status("<html>welcome to nginx</html>").unwrap_err();
        assert!(e.contains("Active connections"), "{e}");
        let e = parse_stub_status("Active connections: 1\nserver accepts handled requests\n 1 x 3\nReading: 0 Writing: 1 Waiting: 0\n")
            .unwrap_err();
        assert!(e.contains("handled: \"x\""), "{e}");
        assert!(parse_stub_status("").is_err());
    }

    #[test]
    fn instance_is_host_and_port() {
        assert_eq!(
            url_instance("http://127.0.0.1:8080/stub_status"),
            "127.0.0.1:8080"
        );
        assert_eq!(url_instance("http://web-1/nginx_status"), "web-1:80");
        assert_eq!(url_instance("https://user:pw@web-1/s"), "web-1:443");
    }
}
