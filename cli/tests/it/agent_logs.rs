//! Log files tailed by the real agent (`didban_agent::runner::Agent`, parsing on) into the
//! real `didban serve`, and the records read back through the log API: an application log
//! (Python `logging` with a traceback and trace ids, gunicorn) and an nginx access log. The
//! severities, trace ids, event times (not read times), joined tracebacks and HTTP
//! attributes must all survive the trip and be searchable.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use didban_agent::config::Config;
use didban_agent::runner::Agent;
use serde_json::Value;

use crate::process::{now_ms, Didban, BIN};
use crate::traces_logs_python::fast_commit_config;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `/api/logs/search` until it answers `want` records for `query` (20 s at most).
fn search(server: &Didban, query: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let start = ((now_ms() - 3_600_000) / 1000).to_string();
    loop {
        let body: Value = reqwest::blocking::Client::new()
            .get(server.url("/api/logs/search"))
            .query(&[("query", query), ("start", &start), ("limit", "100")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        let records = body["data"]["records"].as_array().cloned().unwrap_or_default();
        if records.len() >= want || Instant::now() > deadline {
            assert_eq!(records.len(), want, "{query:?}: {body:#}");
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find<'a>(records: &'a [Value], body_start: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["body"].as_str().is_some_and(|b| b.starts_with(body_start)))
        .unwrap_or_else(|| panic!("no record starting {body_start:?} in {records:#?}"))
}

fn ns(t: DateTime<Utc>) -> String {
    t.timestamp_nanos_opt().unwrap().to_string()
}

#[test]
fn parsed_log_records_reach_didban_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = fast_commit_config(dir.path());
    let server = Didban::start(BIN, &dir.path().join("data"), &["--config", &config]);
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();

    // Event times two minutes ago, to the millisecond, so they differ from the read time.
    let t0 = DateTime::<Utc>::from_timestamp_millis(now_ms() - 120_000).unwrap();
    // gunicorn and nginx write whole seconds.
    let t1 = DateTime::<Utc>::from_timestamp(t0.timestamp() + 1, 0).unwrap();
    let t2 = DateTime::<Utc>::from_timestamp(t0.timestamp() + 3, 0).unwrap();
    let app = format!(
        "{} ERROR [shop.payments] charge failed trace_id={TRACE} span_id={SPAN}\n\
         Traceback (most recent call last):\n  File \"/srv/shop/payments.py\", line 20, in charge\n    \
         return gateway.post(payload)\nTimeoutError: gateway timed out\n\
         [{}] [4242] [WARNING] Worker graceful timeout (pid:4250)\n\
         INFO:shop.http:request served traceparent: 00-{TRACE}-{SPAN}-01\n",
        t0.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        t1.format("%Y-%m-%d %H:%M:%S +0000"),
    );
    let clf = t2.format("%d/%b/%Y:%H:%M:%S +0000");
    let access = format!(
        "203.0.113.7 - - [{clf}] \"GET /api/orders?page=2 HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\" 0.012\n\
         198.51.100.2 - - [{clf}] \"POST /login HTTP/1.1\" 404 27 \"-\" \"curl/8.5.0\" 0.003\n\
         203.0.113.7 - - [{clf}] \"GET /api/checkout HTTP/2.0\" 503 166 \"-\" \"Mozilla/5.0\" 30.001\n"
    );
    append(&logs.join("app.log"), &app);
    append(&logs.join("access.log"), &access);

    let text = format!(
        r#"
        [agent]
        data_dir = "{data}"
        hostname = "web-1"
        [host]
        enabled = false
        [export]
        endpoint = "http://{grpc}"
        flush_interval = "100ms"
        [[logs]]
        paths = ["{logs}/app.log"]
        service = "shop"
        start_at = "beginning"
        poll_interval = "100ms"
        [[logs]]
        paths = ["{logs}/access.log"]
        service = "nginx"
        format = "nginx_combined"
        start_at = "beginning"
        poll_interval = "100ms"
        "#,
        data = dir.path().join("agent").display(),
        grpc = server.otlp_grpc,
        logs = logs.display(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let agent = runtime.block_on(async { Agent::start(&Config::parse(&text).unwrap()).unwrap() });

    let shop = search(&server, "service:shop", 3);
    let error = find(&shop, "20");
    assert_eq!(error["severity_number"], 17, "{error:#}");
    assert_eq!(error["severity_text"], "ERROR");
    assert_eq!(error["trace_id"], TRACE);
    assert_eq!(error["span_id"], SPAN);
    assert_eq!(
        error["timestamp_unix_nano"],
        ns(t0),
        "the line's time, not the read time"
    );
    let body = error["body"].as_str().unwrap();
    assert_eq!(body.lines().count(), 5, "traceback kept with its line: {body}");
    assert!(body.ends_with("TimeoutError: gateway timed out"));
    assert_eq!(error["attributes"]["log.file.name"], "app.log");

    let warning = find(&shop, "[");
    assert_eq!(warning["severity_number"], 13, "{warning:#}");
    assert_eq!(warning["timestamp_unix_nano"], ns(t1));
    let info = find(&shop, "INFO:shop.http");
    assert_eq!(info["severity_number"], 9);
    assert_eq!(info["trace_id"], TRACE, "from the traceparent");
    let read_ns: i64 = info["timestamp_unix_nano"].as_str().unwrap().parse().unwrap();
    assert!(
        read_ns > t0.timestamp_nanos_opt().unwrap() + 60_000_000_000,
        "no time in the line: read time"
    );

    search(&server, "service:nginx", 3);
    let failed = &search(
        &server,
        "service:nginx AND attributes.http.response.status_code:503",
        1,
    )[0];
    let a = &failed["attributes"];
    assert_eq!(failed["severity_number"], 17, "5xx is an error: {failed:#}");
    assert_eq!(failed["timestamp_unix_nano"], ns(t2));
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["url.path"], "/api/checkout");
    assert_eq!(a["http.response.status_code"], 503);
    assert_eq!(a["client.address"], "203.0.113.7");
    assert_eq!(a["user_agent.original"], "Mozilla/5.0");
    assert_eq!(a["http.server.request.duration"], 30.001);
    assert_eq!(a["network.protocol.version"], "2.0");

    // The HTTP attributes are searchable as the security and latency rules need them.
    let not_found = search(&server, "attributes.http.response.status_code:[400 TO 499]", 1);
    assert_eq!(not_found[0]["severity_text"], "WARN");
    assert_eq!(not_found[0]["attributes"]["url.path"], "/login");
    assert_eq!(search(&server, "attributes.url.query:page", 1).len(), 1);
    assert_eq!(search(&server, "severity_number:[17 TO 24]", 2).len(), 2);
    let by_trace: Value = reqwest::blocking::Client::new()
        .get(server.url("/api/logs/search"))
        .query(&[
            ("trace_id", TRACE),
            ("start", &((now_ms() - 3_600_000) / 1000).to_string()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        by_trace["data"]["records"].as_array().unwrap().len(),
        2,
        "{by_trace:#}"
    );

    runtime.block_on(agent.shutdown());
}
