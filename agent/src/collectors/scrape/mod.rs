//! Prometheus scrape of one target: GET its metrics page, parse 0.0.4 or OpenMetrics, attach
//! `job`/`instance` as Prometheus does (clashing labels of the target become `exported_job`/
//! `exported_instance`), and add `up`, `scrape_duration_seconds`, `scrape_samples_scraped`.

pub mod nhcb;
pub mod parse;

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::collectors::Collector;
use crate::config::ScrapeConfig;
use crate::error::CollectError;
use crate::model::{MetricKind, Sample};
use didban_base::now_ms;
use nhcb::{group_histograms, ScrapedHistogram};
use parse::{parse, Format, ParsedSample};

/// Largest metrics page accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Scrapes one target of one job.
pub struct ScrapeCollector {
    job: String,
    instance: String,
    url: String,
    timeout: Duration,
    /// Classic histograms are sent whole, to be stored as NHCB (the `nhcb` module).
    convert_to_nhcb: bool,
    client: Option<reqwest::Client>,
    last_error: Option<String>,
}

impl ScrapeCollector {
    /// A collector for `target` (`host:port`) of `job`.
    pub fn new(job: &ScrapeConfig, target: &str) -> ScrapeCollector {
        let path = if job.metrics_path.starts_with('/') {
            job.metrics_path.clone()
        } else {
            format!("/{}", job.metrics_path)
        };
        let client = match crate::tls::http_client(job.timeout, &job.tls_ca_file, false) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(job = %job.job, error = %e, "HTTP client could not be built");
                None
            }
        };
        ScrapeCollector {
            job: job.job.clone(),
            instance: target.to_string(),
            url: format!("{}://{}{}", job.scheme, target, path),
            timeout: job.timeout,
            convert_to_nhcb: job.convert_classic_histograms_to_nhcb,
            client,
            last_error: None,
        }
    }

    async fn fetch(&self) -> Result<(String, Format), String> {
        let client = self.client.as_ref().ok_or("HTTP client could not be built")?;
        let mut response = client
            .get(&self.url)
            .header("accept", ACCEPT)
            .header(
                "x-prometheus-scrape-timeout-seconds",
                self.timeout.as_secs_f64().to_string(),
            )
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {}: HTTP {}", self.url, status.as_u16()));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let format = if content_type.starts_with("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading {}: {e}", self.url))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(format!("{}: body larger than {MAX_BODY_BYTES} bytes", self.url));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| format!("{}: body is not UTF-8", self.url))?;
        Ok((text, format))
    }

    /// The target's labels with `job` and `instance` attached (clashing ones renamed
    /// `exported_job` / `exported_instance`, as Prometheus does).
    fn target_labels(&self, exposed: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut labels = Vec::with_capacity(exposed.len() + 2);
        for (k, v) in exposed {
            match k.as_str() {
                "job" => labels.push(("exported_job".to_string(), v)),
                "instance" => labels.push(("exported_instance".to_string(), v)),
                _ => labels.push((k, v)),
            }
        }
        labels.push(("job".to_string(), self.job.clone()));
        labels.push(("instance".to_string(), self.instance.clone()));
        labels
    }

    fn to_sample(&self, p: ParsedSample, scrape_ms: i64) -> Sample {
        Sample {
            name: p.name,
            labels: self.target_labels(p.labels),
            kind: p.kind,
            value: p.value,
            timestamp_ms: p.timestamp_ms.unwrap_or(scrape_ms),
            histogram: None,
        }
    }

    /// A histogram put back together as one sample carrying it (`value` is its count).
    fn histogram_sample(&self, h: ScrapedHistogram, scrape_ms: i64) -> Sample {
        Sample {
            name: h.name,
            labels: self.target_labels(h.labels),
            kind: MetricKind::Counter,
            value: h.histogram.count as f64,
            timestamp_ms: h.timestamp_ms.unwrap_or(scrape_ms),
            histogram: Some(Box::new(h.histogram)),
        }
    }
}

impl Collector for ScrapeCollector {
    fn name(&self) -> String {
        format!("scrape/{}/{}", self.job, self.instance)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let scrape_ms = now_ms();
            let started = Instant::now();
            let result = match tokio::time::timeout(self.timeout, self.fetch()).await {
                Ok(r) => r.and_then(|(text, format)| {
                    parse(&text, format).map_err(|e| format!("{}: {e}", self.url))
                }),
                Err(_) => Err(format!("GET {}: timed out after {:?}", self.url, self.timeout)),
            };
            let duration = started.elapsed().as_secs_f64();
            let mut out = Vec::new();
            let (up, scraped) = match result {
                Ok(parsed) => {
                    if self.last_error.take().is_some() {
                        tracing::info!(job = %self.job, instance = %self.instance, "scrape target is back up");
                    }
                    let n = parsed.len();
                    out.reserve(n + 4);
                    let (series, histograms) = if self.convert_to_nhcb {
                        group_histograms(parsed)
                    } else {
                        (parsed, Vec::new())
                    };
                    for p in series {
                        out.push(self.to_sample(p, scrape_ms));
                    }
                    for h in histograms {
                        out.push(self.histogram_sample(h, scrape_ms));
                    }
                    (1.0, n)
                }
                Err(e) => {
                    if self.last_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(job = %self.job, instance = %self.instance, error = %e, "scrape failed");
                    }
                    self.last_error = Some(e);
                    (0.0, 0)
                }
            };
            let labels = [("job", self.job.as_str()), ("instance", self.instance.as_str())];
            out.push(Sample::gauge("up", &labels, up, scrape_ms));
            out.push(Sample::gauge(
                "scrape_duration_seconds",
                &labels,
                duration,
                scrape_ms,
            ));
            out.push(Sample::gauge(
                "scrape_samples_scraped",
                &labels,
                scraped as f64,
                scrape_ms,
            ));
            out.push(Sample::gauge(
                "scrape_samples_post_metric_relabeling",
                &labels,
                scraped as f64,
                scrape_ms,
            ));
            Ok(out)
        })
    }
}
