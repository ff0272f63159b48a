//! Writers that push numbered OTLP/HTTP requests at a server until stopped and remember which
//! numbers were acknowledged (2xx), and the reading back of what a server stored: what the
//! `kill -9` tests check after a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::process::{now_ms, otlp_gauge_json, Didban};
use serde_json::Value;

/// A request body for number `n` at `t_ns`; the timestamps one writer passes strictly
/// increase (by at least a millisecond), so two requests of one writer never share one.
pub type Body = Arc<dyn Fn(u64, i64) -> String + Send + Sync>;

/// An OTLP/HTTP JSON log body with one record whose body is `<service>log<n>`.
pub fn log_json(service: &str, n: u64, t_ns: i64) -> String {
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{t_ns}","severityNumber":9,"body":{{"stringValue":"{service}log{n}"}}}}]}}]}}]}}"#
    )
}

/// An OTLP/HTTP JSON trace body: trace `n + 1` with a root span and a child.
pub fn trace_json(service: &str, n: u64, t_ns: i64) -> String {
    let trace = format!("{:032x}", n + 1);
    let span = |id: u64, parent: &str, name: &str| {
        format!(
            r#"{{"traceId":"{trace}","spanId":"{id:016x}","parentSpanId":"{parent}","name":"{name}","kind":2,"startTimeUnixNano":"{t_ns}","endTimeUnixNano":"{}"}}"#,
            t_ns + 1_000_000
        )
    };
    let root = span(1, "", "root");
    let child = span(2, &format!("{:016x}", 1), "child");
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{root},{child}]}}]}}]}}"#
    )
}

/// An OTLP/HTTP JSON gauge body: metric `<prefix><n % writers>` with value `n`, so each
/// writer has its own series.
pub fn gauge_json(service: &str, prefix: &str, writers: u64, n: u64, t_ns: i64) -> String {
    let metric = format!("{prefix}{}", n % writers.max(1));
    otlp_gauge_json(service, &metric, t_ns / 1_000_000, n as f64)
}

/// Posts numbered requests to `url` from `writers` threads until `running` is cleared;
/// writer `w` sends the numbers `w`, `w + writers`, `w + 2·writers`, …; the acknowledged
/// ones are pushed to `acked`.
pub fn spawn_writers(
    url: String,
    writers: u64,
    body: Body,
    running: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for w in 0..writers {
        let (url, running, acked, body) = (url.clone(), running.clone(), acked.clone(), body.clone());
        handles.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut i = 0u64;
            let mut last_ms = 0i64;
            while running.load(Ordering::Relaxed) {
                let n = i * writers + w;
                let t_ms = now_ms().max(last_ms + 1);
                last_ms = t_ms;
                let ok = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body(n, t_ms * 1_000_000))
                    .send()
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    acked.lock().unwrap().push(n);
                } else if !running.load(Ordering::Relaxed) {
                    break;
                } else {
                    // Refused (e.g. 429 or 503 while the server catches up) or not up: try again
                    // shortly rather than spinning.
                    std::thread::sleep(Duration::from_millis(20));
                }
                i += 1;
            }
        }));
    }
    handles
}

/// Every log record body of `service` that `server` finds.
pub fn log_bodies(client: &reqwest::blocking::Client, server: &Didban, service: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("query", format!("service:{service}")),
            ("limit", "5000".to_string()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let body: Value = client
            .get(format!("http://{}/api/logs/search", server.http))
            .query(&query)
            .send()
            .unwrap()
            .json()
            .unwrap();
        for r in body["data"]["records"].as_array().into_iter().flatten() {
            out.push(r["body"].as_str().unwrap().to_string());
        }
        match body["data"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out
}
