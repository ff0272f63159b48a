//! Delivery over the real protocols: OTLP/gRPC (the agent library's transport) for traces,
//! logs and metrics, Prometheus remote_write (snappy + protobuf) for the scraped Django
//! metrics. Retryable failures (server down, 429, 503) are retried with backoff until the
//! demo stops; the first one is reported once. Refused data (400, partial success) is
//! reported once per kind and not retried.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use didban_agent::config::ExportConfig;
use didban_agent::export::encode::{encode, ResourceInfo};
use didban_agent::export::otlp::{Accepted, Signal, Transport};
use didban_agent::export::reason::{Fate, Reason};
use didban_agent::export::retry::{parse_retry_after, Backoff, SendFailure};
use didban_agent::model::Sample;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::watch;

use super::otlp::Output;
use didban_collector::ingest::remote_write::{TimeSeries, WriteRequest};

/// Label of an agent sample that carries its own `job`/`instance` (a probe or scrape):
/// the host of the agent that sent it. The sender removes it.
pub const AGENT_HOST: &str = "__agent_host__";

/// Largest encoded request we build; bigger outputs are split.
const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

/// The demo was asked to stop while it was sending.
#[derive(Debug)]
pub struct Stopped;

/// What was delivered so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Spans sent.
    pub spans: usize,
    /// Log records sent.
    pub logs: usize,
    /// Metric samples sent.
    pub samples: usize,
    /// Requests sent.
    pub requests: usize,
}

/// Sends demo output to one Didban.
pub struct Sender {
    transport: Transport,
    http: reqwest::Client,
    base: String,
    otlp: String,
    stop: watch::Receiver<bool>,
    down_since_said: bool,
    refusal_said: BTreeMap<&'static str, bool>,
    /// Start time of the agent-shaped cumulative counters.
    pub counters_start_ms: i64,
    /// Delivered so far.
    pub totals: Totals,
}

enum Payload {
    Otlp(Signal, Vec<u8>),
    RemoteWrite(Vec<u8>),
}

impl Sender {
    /// A sender to the HTTP API at `base` (`http://host:port`) and OTLP/gRPC at `otlp`
    /// (`http://host:port`).
    pub fn new(base: &str, otlp: &str, stop: watch::Receiver<bool>) -> anyhow::Result<Sender> {
        let config = ExportConfig {
            endpoint: otlp.to_string(),
            timeout: Duration::from_secs(15),
            ..Default::default()
        };
        let transport = Transport::new(&config).with_context(|| format!("OTLP endpoint {otlp}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("building the HTTP client")?;
        Ok(Sender {
            transport,
            http,
            base: base.trim_end_matches('/').to_string(),
            otlp: otlp.to_string(),
            stop,
            down_since_said: false,
            refusal_said: BTreeMap::new(),
            counters_start_ms: 0,
            totals: Totals::default(),
        })
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `d` unless the demo is stopped first.
    pub async fn sleep(&mut self, d: Duration) -> Result<(), Stopped> {
        if self.stopping() {
            return Err(Stopped);
        }
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = stop.changed() => Err(Stopped),
        }
    }

    /// Waits until `/-/ready` answers 200, retrying with backoff; failures are reported
    /// once `patience` has passed (a server starting in this process gets a few seconds).
    pub async fn wait_ready(&mut self, patience: Duration) -> Result<(), Stopped> {
        let url = format!("{}/-/ready", self.base);
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(10),
            Duration::from_secs(300),
        );
        let started = std::time::Instant::now();
        loop {
            if self.stopping() {
                return Err(Stopped);
            }
            let why = match self.http.get(&url).send().await {
                // Ready is not yet delivered: the outage is over (and said so) only when a
                // send succeeds, so a first send that still fails (a listener a moment behind
                // `/-/ready`) does not report the same outage twice.
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => format!("{url} answered {}", r.status()),
                Err(e) => format!("{url}: {e}"),
            };
            if started.elapsed() >= patience {
                self.say_unreachable(&why);
            }
            let d = backoff.next_delay(None);
            self.sleep(d).await?;
        }
    }

    /// The newest sample time (ms) of the demo's series in `[start_ms, now_ms]`, so a rerun
    /// on the same data continues after it instead of sending refused (out-of-order) data.
    pub async fn newest_demo_sample(&self, start_ms: i64, now_ms: i64) -> Option<i64> {
        let url = format!("{}/api/v1/query_range", self.base);
        let query = "timestamp(node_boot_time_seconds{job=\"didban-agent\",instance=\"db-1\"})";
        let params = [
            ("query", query.to_string()),
            ("start", format!("{:.3}", start_ms as f64 / 1000.0)),
            ("end", format!("{:.3}", now_ms as f64 / 1000.0)),
            ("step", "30".to_string()),
        ];
        let body: serde_json::Value = self
            .http
            .get(&url)
            .query(&params)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let mut newest: Option<f64> = None;
        for series in body.get("data")?.get("result")?.as_array()? {
            for v in series.get("values")?.as_array()? {
                let t = v.get(1)?.as_str()?.parse::<f64>().ok()?;
                newest = Some(newest.map_or(t, |n: f64| n.max(t)));
            }
        }
        newest.map(|s| (s * 1000.0) as i64)
    }

    fn say_unreachable(&mut self, why: &str) {
        if !self.down_since_said {
            self.down_since_said = true;
            eprintln!("didban demo: cannot reach Didban ({why}); retrying with backoff until it answers");
        }
    }

    fn say_reachable(&mut self) {
        if self.down_since_said {
            self.down_since_said = false;
            eprintln!("didban demo: Didban answers again; sending");
        }
    }

    fn say_refused(&mut self, what: &'static str, message: &str) {
        let said = self.refusal_said.entry(what).or_insert(false);
        if !*said {
            *said = true;
            eprintln!("didban demo: Didban refused some {what} (reported once): {message}");
        }
    }

    /// Sends everything in `out`, retrying until it is delivered or the demo stops.
    pub async fn send(&mut self, out: Output) -> Result<(), Stopped> {
        let counts = (out.span_count(), out.log_count(), out.sample_count());
        for chunk in chunks(out.spans) {
            let bytes = ExportTraceServiceRequest {
                resource_spans: chunk,
            }
            .encode_to_vec();
            self.deliver("spans", Payload::Otlp(Signal::Traces, bytes))
                .await?;
        }
        for chunk in chunks(out.logs) {
            let bytes = ExportLogsServiceRequest { resource_logs: chunk }.encode_to_vec();
            self.deliver("log records", Payload::Otlp(Signal::Logs, bytes))
                .await?;
        }
        for request in self.agent_requests(out.agent) {
            self.deliver("agent metrics", Payload::Otlp(Signal::Metrics, request))
                .await?;
        }
        for chunk in chunks(out.metrics) {
            let bytes = ExportMetricsServiceRequest {
                resource_metrics: chunk,
            }
            .encode_to_vec();
            self.deliver("OTLP metrics", Payload::Otlp(Signal::Metrics, bytes))
                .await?;
        }
        for chunk in chunks(merge_series(out.remote_write)) {
            let bytes = WriteRequest {
                timeseries: chunk,
                metadata: Vec::new(),
            }
            .encode_to_vec();
            match snap::raw::Encoder::new().compress_vec(&bytes) {
                Ok(compressed) => {
                    self.deliver("remote_write samples", Payload::RemoteWrite(compressed))
                        .await?;
                }
                Err(e) => self.say_refused("remote_write samples", &format!("snappy: {e}")),
            }
        }
        self.totals.spans += counts.0;
        self.totals.logs += counts.1;
        self.totals.samples += counts.2;
        Ok(())
    }

    /// Agent samples grouped by host (their `instance` label, or [`AGENT_HOST`] for
    /// samples with their own `job`/`instance`) and encoded as the agent does: one resource
    /// per host, `service.name=didban-agent`.
    fn agent_requests(&self, samples: Vec<Sample>) -> Vec<Vec<u8>> {
        let mut by_host: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for mut s in samples {
            let host = match s.label(AGENT_HOST) {
                Some(h) => {
                    let h = h.to_string();
                    s.labels.retain(|(k, _)| k != AGENT_HOST);
                    h
                }
                None => {
                    let h = s.label("instance").unwrap_or("unknown").to_string();
                    s.labels.retain(|(k, _)| k != "instance");
                    h
                }
            };
            by_host.entry(host).or_default().push(s);
        }
        let mut out = Vec::new();
        for (host, samples) in by_host {
            let resource = ResourceInfo {
                service_name: "didban-agent".to_string(),
                host_name: host,
            };
            for part in samples.chunks(20_000) {
                out.push(encode(part, &resource, self.counters_start_ms).encode_to_vec());
            }
        }
        out
    }

    async fn deliver(&mut self, what: &'static str, payload: Payload) -> Result<(), Stopped> {
        let mut backoff = Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(30),
            Duration::from_secs(300),
        );
        loop {
            if self.stopping() {
                return Err(Stopped);
            }
            let mut stop = self.stop.clone();
            let result = tokio::select! {
                r = self.attempt(&payload) => r,
                _ = stop.changed() => return Err(Stopped),
            };
            match result {
                Ok(accepted) => {
                    self.say_reachable();
                    self.totals.requests += 1;
                    if accepted.rejected > 0 {
                        let message = format!("{} refused: {}", accepted.rejected, accepted.message);
                        self.say_refused(what, &message);
                    }
                    return Ok(());
                }
                // Back-pressure is an answer, not an outage: said once as a refusal.
                Err(f) if f.reason == Reason::Throttled => {
                    self.say_refused("requests (slowing down)", &f.message);
                    let d = backoff.next_delay(f.retry_after);
                    self.sleep(d).await?;
                }
                Err(f) if f.reason.fate() == Fate::Retry => {
                    self.say_unreachable(&f.message);
                    let d = backoff.next_delay(f.retry_after);
                    self.sleep(d).await?;
                }
                Err(f) => {
                    self.say_refused(what, &f.message);
                    return Ok(());
                }
            }
        }
    }

    async fn attempt(&mut self, payload: &Payload) -> Result<Accepted, SendFailure> {
        match payload {
            Payload::Otlp(signal, bytes) => self.transport.send(*signal, bytes).await,
            Payload::RemoteWrite(body) => {
                let url = format!("{}/api/v1/write", self.base);
                let sent = self
                    .http
                    .post(&url)
                    .header("Content-Type", "application/x-protobuf")
                    .header("Content-Encoding", "snappy")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body.clone())
                    .send()
                    .await;
                let r = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        return Err(SendFailure {
                            reason: Reason::Unavailable,
                            retry_after: None,
                            message: format!("{url}: {e}"),
                        })
                    }
                };
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let text = r.text().await.unwrap_or_default();
                match status {
                    200..=299 => Ok(Accepted::default()),
                    // Prometheus semantics: the valid rest of the request is stored.
                    400 => Ok(Accepted {
                        rejected: 1,
                        message: text.trim().to_string(),
                    }),
                    s => Err(SendFailure {
                        reason: Reason::of_http_status(s),
                        retry_after,
                        message: format!("{url} answered {s}: {}", text.trim()),
                    }),
                }
            }
        }
    }

    /// The OTLP/gRPC endpoint.
    pub fn otlp_endpoint(&self) -> &str {
        &self.otlp
    }
}

/// Splits `items` into runs whose encoded size stays under [`MAX_REQUEST_BYTES`].
fn chunks<T: Message>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for item in items {
        let n = item.encoded_len() + 8;
        if size + n > MAX_REQUEST_BYTES && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += n;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// One time series per label set, samples in time order (remote_write senders do so).
fn merge_series(series: Vec<TimeSeries>) -> Vec<TimeSeries> {
    let mut merged: BTreeMap<Vec<(String, String)>, TimeSeries> = BTreeMap::new();
    for ts in series {
        let key: Vec<(String, String)> = ts
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        match merged.get_mut(&key) {
            Some(existing) => existing.samples.extend(ts.samples),
            None => {
                merged.insert(key, ts);
            }
        }
    }
    let mut out: Vec<TimeSeries> = merged.into_values().collect();
    for ts in &mut out {
        ts.samples.sort_by_key(|s| s.timestamp);
    }
    out
}
