//! The load generator: sends pre-encoded requests with parallel senders, in time order.
//!
//! Requests are encoded before the clock starts, so the figures measure the target, not the
//! encoder (both run on the same cores). `requests[chunk][group]`: a group (a set of hosts) is
//! always sent by the same sender, chunk after chunk, so every series' samples arrive in time
//! order; senders meet at a barrier every `sync` of data time so none runs ahead of the others
//! by more than that (Prometheus rejects samples older than its head's appendable window).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One encoded request body and the number of samples it carries.
#[derive(Debug, Clone)]
pub struct Request {
    /// Body exactly as sent (already compressed where the protocol compresses).
    pub body: Bytes,
    /// Prometheus-equivalent samples in the body.
    pub samples: u64,
}

/// All requests of one protocol for the whole data set.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `requests[chunk][group]`, chunks in time order.
    pub requests: Vec<Vec<Request>>,
    /// Data time covered by one chunk, in milliseconds.
    pub chunk_ms: i64,
}

impl Plan {
    /// Total samples in the plan.
    pub fn samples(&self) -> u64 {
        self.requests.iter().flatten().map(|r| r.samples).sum()
    }
    /// Total bytes on the wire (bodies only).
    pub fn bytes(&self) -> u64 {
        self.requests.iter().flatten().map(|r| r.body.len() as u64).sum()
    }
    /// Number of requests.
    pub fn len(&self) -> usize {
        self.requests.iter().map(Vec::len).sum()
    }
}

/// Where and how to send a plan.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full URLs, e.g. `http://127.0.0.1:9090/api/v1/write`: sender `w` sends to
    /// `urls[w % urls.len()]` (several when the load is spread over processes).
    pub urls: Vec<String>,
    /// Headers of every request.
    pub headers: Vec<(&'static str, &'static str)>,
}

/// What happened while sending a plan.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Wall time from the first request to the last answer.
    pub wall: Duration,
    /// Samples in requests answered with 2xx.
    pub samples_ok: u64,
    /// Requests answered with 2xx.
    pub requests_ok: u64,
    /// Requests that failed (after retries for 429/503).
    pub requests_failed: u64,
    /// Retries after 429/503.
    pub retries: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

/// Sends `plan` to `target` with `concurrency` senders.
pub async fn run(
    client: &reqwest::Client,
    target: &Target,
    plan: Arc<Plan>,
    concurrency: usize,
    sync: Duration,
    deadline: Duration,
) -> LoadResult {
    let groups = plan.requests.first().map(Vec::len).unwrap_or(0);
    let workers = concurrency.clamp(1, groups.max(1));
    let sync_chunks = ((sync.as_millis() as i64 / plan.chunk_ms.max(1)).max(1)) as usize;
    let barrier = Arc::new(tokio::sync::Barrier::new(workers));
    let ok = Arc::new(AtomicU64::new(0));
    let ok_samples = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, target, plan, barrier) = (client.clone(), target.clone(), plan.clone(), barrier.clone());
        let (ok, ok_samples, failed, retries, first_error) = (
            ok.clone(),
            ok_samples.clone(),
            failed.clone(),
            retries.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for (c, chunk) in plan.requests.iter().enumerate() {
                for req in chunk.iter().skip(w).step_by(workers) {
                    // Give up early when the target clearly does not take this protocol.
                    let (o, f) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
                    if f >= 5 && f > o {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // ... or is too slow to finish in time.
                    if start.elapsed() > deadline {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut g) = first_error.lock() {
                            g.get_or_insert(format!("ingest took longer than {} s", deadline.as_secs()));
                        }
                        continue;
                    }
                    let url = &target.urls[w % target.urls.len().max(1)];
                    match send(&client, url, &target.headers, req, &retries).await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            ok_samples.fetch_add(req.samples, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut g) = first_error.lock() {
                                g.get_or_insert(e);
                            }
                        }
                    }
                }
                if (c + 1) % sync_chunks == 0 {
                    barrier.wait().await;
                }
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            if let Ok(mut g) = first_error.lock() {
                g.get_or_insert(format!("sender task failed: {e}"));
            }
        }
    }
    let first_error = first_error.lock().ok().and_then(|g| g.clone());
    LoadResult {
        wall: start.elapsed(),
        samples_ok: ok_samples.load(Ordering::Relaxed),
        requests_ok: ok.load(Ordering::Relaxed),
        requests_failed: failed.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
        first_error,
    }
}

/// Sends one request, retrying 429 and 503 (honouring `Retry-After`) up to 60 times.
async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, &'static str)],
    req: &Request,
    retries: &AtomicU64,
) -> Result<(), String> {
    let mut attempt = 0u32;
    loop {
        let mut rb = client.post(url).body(req.body.clone());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let text = resp.text().await.unwrap_or_default();
        let retryable = status.as_u16() == 429 || status.as_u16() == 503;
        if !retryable || attempt >= 60 {
            return Err(format!(
                "HTTP {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            ));
        }
        attempt += 1;
        retries.fetch_add(1, Ordering::Relaxed);
        let wait = retry_after
            .map(Duration::from_secs)
            .unwrap_or_else(|| Duration::from_millis(50 << attempt.min(5)));
        tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
    }
}
