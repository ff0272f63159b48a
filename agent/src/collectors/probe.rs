//! Health checks: HTTP and TCP probes of configured endpoints, named as blackbox_exporter
//! names them (`probe_success`, `probe_duration_seconds`, `probe_http_status_code`, …), with
//! `job`/`instance` set the way a Prometheus blackbox job sets them (instance = target).

use std::time::Instant;

use futures::future::BoxFuture;
use regex::Regex;

use crate::collectors::Collector;
use crate::config::ProbeConfig;
use crate::error::CollectError;
use crate::model::Sample;
use didban_base::now_ms;

/// Probes one target.
pub struct ProbeCollector {
    config: ProbeConfig,
    body_match: Option<Regex>,
    client: Option<reqwest::Client>,
    /// Earliest certificate expiry seen by the client's last TLS handshake.
    expiry: Option<std::sync::Arc<crate::tls::ChainExpiry>>,
    last_error: Option<String>,
}

/// What one probe found.
struct Outcome {
    success: bool,
    status: Option<u16>,
    content_length: Option<usize>,
    cert_expiry: Option<i64>,
    failure: Option<String>,
}

impl ProbeCollector {
    /// A collector for one `[[probe]]`; fails on an invalid `body_match`.
    pub fn new(config: &ProbeConfig) -> Result<ProbeCollector, CollectError> {
        let body_match = if config.body_match.is_empty() {
            None
        } else {
            Some(Regex::new(&config.body_match).map_err(|e| CollectError::Target {
                target: config.target.clone(),
                why: e.to_string(),
            })?)
        };
        let (client, expiry) =
            crate::tls::probe_client(config.timeout, &config.tls_ca_file).map_err(|why| {
                CollectError::Target {
                    target: config.target.clone(),
                    why,
                }
            })?;
        Ok(ProbeCollector {
            config: config.clone(),
            body_match,
            client: Some(client),
            expiry: Some(expiry),
            last_error: None,
        })
    }

    async fn http(&self) -> Outcome {
        let failed = |why: String, status: Option<u16>| Outcome {
            success: false,
            status,
            content_length: None,
            cert_expiry: None,
            failure: Some(why),
        };
        let Some(client) = self.client.as_ref() else {
            return failed("HTTP client could not be built".into(), None);
        };
        if let Some(e) = &self.expiry {
            e.take();
        }
        let response = match client.get(&self.config.target).send().await {
            Ok(r) => r,
            Err(e) => return failed(format!("GET {}: {e}", self.config.target), None),
        };
        let status = response.status().as_u16();
        let cert_expiry = self.expiry.as_ref().and_then(|e| e.take());
        let status_ok = if self.config.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.config.expect_status.contains(&status)
        };
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return failed(format!("reading body: {e}"), Some(status)),
        };
        if !status_ok {
            return failed(format!("HTTP status {status} not expected"), Some(status));
        }
        if let Some(re) = &self.body_match {
            if !re.is_match(&String::from_utf8_lossy(&body)) {
                return failed(format!("body does not match {:?}", re.as_str()), Some(status));
            }
        }
        Outcome {
            success: true,
            status: Some(status),
            content_length: Some(body.len()),
            cert_expiry,
            failure: None,
        }
    }

    async fn tcp(&self, address: &str) -> Outcome {
        match tokio::net::TcpStream::connect(address).await {
            Ok(_) => Outcome {
                success: true,
                status: None,
                content_length: None,
                cert_expiry: None,
                failure: None,
            },
            Err(e) => Outcome {
                success: false,
                status: None,
                content_length: None,
                cert_expiry: None,
                failure: Some(format!("connect {address}: {e}")),
            },
        }
    }
}

impl Collector for ProbeCollector {
    fn name(&self) -> String {
        format!("probe/{}", self.config.target)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let started = Instant::now();
            let probe = async {
                match self.config.target.strip_prefix("tcp://") {
                    Some(address) => self.tcp(address).await,
                    None => self.http().await,
                }
            };
            let outcome = match tokio::time::timeout(self.config.timeout, probe).await {
                Ok(o) => o,
                Err(_) => Outcome {
                    success: false,
                    status: None,
                    content_length: None,
                    cert_expiry: None,
                    failure: Some(format!("timed out after {:?}", self.config.timeout)),
                },
            };
            let duration = started.elapsed().as_secs_f64();
            match &outcome.failure {
                Some(why) if self.last_error.as_deref() != Some(why.as_str()) => {
                    tracing::warn!(target = %self.config.target, error = %why, "probe failed");
                    self.last_error = Some(why.clone());
                }
                Some(_) => {}
                None => {
                    if self.last_error.take().is_some() {
                        tracing::info!(target = %self.config.target, "probe succeeds again");
                    }
                }
            }
            let labels = [
                ("job", self.config.job.as_str()),
                ("instance", self.config.target.as_str()),
            ];
            let mut out = vec![
                Sample::gauge(
                    "probe_success",
                    &labels,
                    f64::from(u8::from(outcome.success)),
                    now,
                ),
                Sample::gauge("probe_duration_seconds", &labels, duration, now),
            ];
            if !self.config.target.starts_with("tcp://") {
                let status = f64::from(outcome.status.unwrap_or(0));
                out.push(Sample::gauge("probe_http_status_code", &labels, status, now));
                if let Some(len) = outcome.content_length {
                    out.push(Sample::gauge(
                        "probe_http_content_length",
                        &labels,
                        len as f64,
                        now,
                    ));
                }
                let ssl = f64::from(u8::from(outcome.cert_expiry.is_some()));
                out.push(Sample::gauge("probe_http_ssl", &labels, ssl, now));
                if let Some(expiry) = outcome.cert_expiry {
                    out.push(Sample::gauge(
                        "probe_ssl_earliest_cert_expiry",
                        &labels,
                        expiry as f64,
                        now,
                    ));
                }
            }
            Ok(out)
        })
    }
}
