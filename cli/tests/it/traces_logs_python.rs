//! The real OpenTelemetry Python SDK exports nested spans (with an error and an exception
//! event) and logs inside those spans to the real `didban` binary over OTLP/HTTP and
//! OTLP/gRPC; the Jaeger API and the log API find them with the right parent/child
//! structure, durations and trace correlation. Needs `python3` with
//! `tests/requirements.txt` installed; fails (does not skip) without them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::process::{Didban, BIN};
use serde_json::Value;

/// A config file making logs searchable within 200 ms.
pub fn fast_commit_config(dir: &std::path::Path) -> String {
    let path = dir.join("didban.toml");
    std::fs::write(&path, "[logs]\ncommit_interval = \"200ms\"\n").unwrap();
    path.to_string_lossy().to_string()
}

fn get(server: &Didban, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .get(format!("http://{}{path}", server.http))
        .query(query)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Polls the log search until it returns `want` records (logs are searchable after the
/// next commit).
fn logs_eventually(server: &Didban, query: &[(&str, &str)], want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(server, "/api/logs/search", query);
        assert_eq!(status, 200, "{body}");
        let records = body["data"]["records"].as_array().cloned().unwrap_or_default();
        if records.len() >= want || Instant::now() > deadline {
            assert_eq!(records.len(), want, "{query:?}: {body}");
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

#[test]
fn python_sdk_traces_and_logs_are_found_through_the_jaeger_and_log_apis() {
    let dir = tempfile::tempdir().unwrap();
    let config = fast_commit_config(dir.path());
    let server = Didban::start(BIN, &dir.path().join("data"), &["--config", &config]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/otlp_traces_logs_client.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(format!("http://{}", server.otlp_http))
        .arg(&server.otlp_grpc)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the Python client failed ({}); is `pip install -r tests/requirements.txt` done?\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let runs: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(runs.len(), 2, "{stdout}");

    let (_, services) = get(&server, "/api/services", &[]);
    let names: Vec<&str> = services["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(names, ["py-grpc", "py-http"]);
    let (_, ops) = get(&server, "/api/services/py-http/operations", &[]);
    assert_eq!(
        ops["data"],
        serde_json::json!(["checkout", "db.query", "payment"])
    );

    for run in &runs {
        let transport = run["transport"].as_str().unwrap();
        let service = format!("py-{transport}");
        let trace_id = run["trace_id"].as_str().unwrap();

        // By id: three spans, db.query and payment children of checkout.
        let (status, body) = get(&server, &format!("/api/traces/{trace_id}"), &[]);
        assert_eq!(status, 200, "{body}");
        let trace = &body["data"][0];
        assert_eq!(trace["traceID"], trace_id);
        let spans = trace["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 3, "{transport}: {trace}");
        let by_name = |name: &str| spans.iter().find(|s| s["operationName"] == name).unwrap();
        let (root, db, payment) = (by_name("checkout"), by_name("db.query"), by_name("payment"));
        assert_eq!(root["spanID"], run["checkout"]);
        assert!(root["references"].as_array().unwrap().is_empty());
        for child in [db, payment] {
            assert_eq!(child["references"][0]["refType"], "CHILD_OF");
            assert_eq!(child["references"][0]["spanID"], run["checkout"]);
        }
        assert_eq!(
            trace["processes"][root["processID"].as_str().unwrap()]["serviceName"],
            service.as_str()
        );
        // Durations (µs): db.query slept 20 ms; the root covers both children.
        let dur = |s: &Value| s["duration"].as_i64().unwrap();
        let start = |s: &Value| s["startTime"].as_i64().unwrap();
        assert!(dur(db) >= 20_000, "{db}");
        assert!(dur(root) >= dur(db) + dur(payment), "{root}");
        assert!(start(db) >= start(root) && start(payment) >= start(db) + dur(db));
        assert_eq!(tag(root, "span.kind"), Some(&Value::from("server")));
        assert_eq!(tag(root, "http.status_code"), Some(&Value::from(200)));
        assert_eq!(tag(db, "rows"), Some(&Value::from(3)));
        assert_eq!(tag(payment, "error"), Some(&Value::from(true)));
        assert_eq!(
            tag(payment, "otel.status_description"),
            Some(&Value::from("card declined"))
        );
        assert_eq!(payment["logs"][0]["fields"][0]["value"], "exception");
        assert_eq!(trace["didbanLogs"], format!("/api/traces/{trace_id}/logs"));

        // Search by service, tag and duration finds the trace; an impossible one does not.
        let found = |q: &[(&str, &str)]| -> usize {
            let (status, body) = get(&server, "/api/traces", q);
            assert_eq!(status, 200, "{body}");
            body["data"].as_array().unwrap().len()
        };
        assert_eq!(found(&[("service", &service)]), 1);
        assert_eq!(
            found(&[
                ("service", &service),
                ("operation", "db.query"),
                ("minDuration", "15ms")
            ]),
            1
        );
        assert_eq!(
            found(&[("service", &service), ("tags", r#"{"error":"true"}"#)]),
            1
        );
        assert_eq!(
            found(&[("service", &service), ("tags", "db.system=postgresql")]),
            1
        );
        assert_eq!(found(&[("service", &service), ("minDuration", "10s")]), 0);

        // Logs: the two inside spans carry their trace and span ids.
        let query = format!("service:{service}");
        let all = logs_eventually(&server, &[("query", &query)], 3);
        assert_eq!(all[0]["body"], "worker started", "newest first");
        let (_, trace_logs) = get(&server, &format!("/api/traces/{trace_id}/logs"), &[]);
        let records = trace_logs["data"]["records"].as_array().unwrap();
        assert_eq!(records.len(), 2, "{trace_logs}");
        let error = records.iter().find(|r| r["severity_text"] == "ERROR").unwrap();
        assert_eq!(error["body"], "payment declined for order A-17");
        assert_eq!(error["span_id"], run["payment"]);
        let info = records.iter().find(|r| r["body"] == "loaded cart").unwrap();
        assert_eq!(info["span_id"], run["db"]);
        assert_eq!(info["attributes"]["cart.items"], 3);
        let hits = logs_eventually(
            &server,
            &[
                (
                    "query",
                    &format!("{query} AND severity_text:ERROR AND \"payment declined\""),
                ),
                ("trace_id", trace_id),
            ],
            1,
        );
        assert_eq!(hits[0]["trace_id"], trace_id);
        logs_eventually(
            &server,
            &[("query", &format!("{query} AND attributes.cart.items:3"))],
            1,
        );
    }

    // Volume histogram and top values over both services.
    let (_, hist) = get(&server, "/api/logs/histogram", &[("step", "1h")]);
    let buckets = hist["data"]["buckets"].as_array().unwrap();
    let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    let errors: u64 = buckets
        .iter()
        .map(|b| b["by_severity"]["ERROR"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!((total, errors), (6, 2), "{hist}");
    let (_, top) = get(&server, "/api/logs/values", &[("field", "service")]);
    assert_eq!(top["data"][0]["count"], 3, "{top}");

    // The stores' figures are in /metrics (refreshed at every log commit).
    let text = reqwest::blocking::get(format!("http://{}/metrics", server.http))
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("didban_log_records_committed 6"), "{text}");
    assert!(text.contains("didban_trace_head_spans 6"), "{text}");
    assert!(
        text.contains("didban_spans_ingested_total{protocol=\"otlp_grpc\"} 3"),
        "{text}"
    );

    // RED metrics from the spans are PromQL.
    let now_s = crate::process::now_ms() as f64 / 1000.0;
    let calls = server.query(
        r#"sum(traces_span_metrics_calls_total{service_name="py-http",status_code="STATUS_CODE_ERROR"})"#,
        now_s,
    );
    assert_eq!(calls["data"]["result"][0]["value"][1], "1", "{calls}");
    let count = server.query(
        r#"histogram_count(traces_span_metrics_duration_seconds{service_name="py-grpc",span_name="db.query"})"#,
        now_s,
    );
    assert_eq!(count["data"]["result"][0]["value"][1], "1", "{count}");
}
