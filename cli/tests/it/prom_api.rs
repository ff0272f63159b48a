//! The Prometheus HTTP API over a real socket against the real binary: shapes, GET and
//! POST, errors, and the metadata/labels/series endpoints Grafana calls.

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use serde_json::Value;

fn push(server: &Didban, body: String) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "push failed: {}", r.status());
}

fn get(server: &Didban, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .get(format!("http://{}{path}", server.http))
        .query(params)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn post(server: &Didban, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}{path}", server.http))
        .form(params)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

#[test]
fn prometheus_api_answers_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let server = Didban::start(BIN, dir.path(), &[]);
    let t0 = now_ms() / 1000 * 1000 - 600_000;
    for i in 0..10 {
        push(
            &server,
            otlp_gauge_json("api", "temperature", t0 + i * 60_000, 20.0 + i as f64),
        );
        push(
            &server,
            otlp_gauge_json("web", "temperature", t0 + i * 60_000, 30.0),
        );
    }
    let at = ((t0 + 9 * 60_000) / 1000).to_string();

    // Instant query, GET and POST give the same answer.
    let (code, r) = get(
        &server,
        "/api/v1/query",
        &[("query", "sum(temperature)"), ("time", &at)],
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "success");
    assert_eq!(r["data"]["resultType"], "vector");
    assert_eq!(r["data"]["result"][0]["value"][1], "59");
    assert_eq!(
        r["data"]["result"][0]["value"][0].as_f64().unwrap(),
        at.parse::<f64>().unwrap()
    );
    let (_, r2) = post(
        &server,
        "/api/v1/query",
        &[("query", "sum(temperature)"), ("time", &at)],
    );
    assert_eq!(r, r2);

    // Scalar.
    let (_, r) = get(&server, "/api/v1/query", &[("query", "1 + 2"), ("time", &at)]);
    assert_eq!(r["data"]["resultType"], "scalar");
    assert_eq!(r["data"]["result"][1], "3");

    // Range query: one point per step, labels without __name__ after a function.
    let start = ((t0 + 60_000) / 1000).to_string();
    let (code, r) = get(
        &server,
        "/api/v1/query_range",
        &[
            ("query", "temperature{job=\"api\"} * 2"),
            ("start", &start),
            ("end", &at),
            ("step", "60"),
        ],
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["data"]["resultType"], "matrix");
    let series = &r["data"]["result"][0];
    assert_eq!(series["metric"]["job"], "api");
    assert!(series["metric"].get("__name__").is_none());
    let values = series["values"].as_array().unwrap();
    assert_eq!(values.len(), 9);
    assert_eq!(values[0][1], "42");
    assert_eq!(values[8][1], "58");

    // Series, labels, label values.
    let (_, r) = get(
        &server,
        "/api/v1/series",
        &[("match[]", "temperature"), ("start", &start)],
    );
    assert_eq!(r["data"].as_array().unwrap().len(), 2, "{r}");
    let (_, r) = get(&server, "/api/v1/labels", &[("match[]", "temperature")]);
    assert_eq!(r["data"], serde_json::json!(["__name__", "job"]));
    let (_, r) = get(&server, "/api/v1/label/job/values", &[("match[]", "temperature")]);
    assert_eq!(r["data"], serde_json::json!(["api", "web"]));
    let (_, r) = get(&server, "/api/v1/label/__name__/values", &[]);
    assert!(
        r["data"]
            .as_array()
            .unwrap()
            .contains(&Value::from("temperature")),
        "{r}"
    );

    // Errors have Prometheus' shape and status codes.
    let (code, r) = get(&server, "/api/v1/query", &[("query", "sum(temperature")]);
    assert_eq!(code, 400);
    assert_eq!(r["status"], "error");
    assert_eq!(r["errorType"], "bad_data");
    assert!(!r["error"].as_str().unwrap().is_empty());
    let (code, r) = get(&server, "/api/v1/query", &[]);
    assert_eq!(code, 400);
    assert!(r["error"].as_str().unwrap().contains("query"), "{r}");
    let (code, r) = get(
        &server,
        "/api/v1/query_range",
        &[("query", "up"), ("start", "100"), ("end", "50"), ("step", "15")],
    );
    assert_eq!(code, 400);
    assert!(r["error"].as_str().unwrap().contains("end timestamp"), "{r}");
    let (code, _) = get(
        &server,
        "/api/v1/query_range",
        &[("query", "up"), ("start", "0"), ("end", "1000000"), ("step", "1")],
    );
    assert_eq!(code, 400);
    let (code, _) = get(&server, "/api/v1/series", &[]);
    assert_eq!(code, 400);
    let (code, _) = get(&server, "/api/v1/label/bad-name/values", &[]);
    assert_eq!(code, 400);

    // Exemplars: none stored, an empty list; a bad query is still a 400.
    let (code, r) = get(&server, "/api/v1/query_exemplars", &[("query", "temperature")]);
    assert_eq!((code, r["data"].clone()), (200, serde_json::json!([])));
    let (code, _) = get(&server, "/api/v1/query_exemplars", &[("query", "temperature{")]);
    assert_eq!(code, 400);

    // The admin flush writes the head as a Parquet block; queries answer the same after.
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/api/v1/admin/tsdb/flush", server.http))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let blocks = std::fs::read_dir(dir.path().join("metrics").join("blocks"))
        .unwrap()
        .count();
    assert!(blocks >= 1, "no block after flush");
    let (_, r) = get(
        &server,
        "/api/v1/query",
        &[("query", "sum(temperature)"), ("time", &at)],
    );
    assert_eq!(r["data"]["result"][0]["value"][1], "59", "{r}");

    // Build info and self-monitoring.
    let (code, r) = get(&server, "/api/v1/status/buildinfo", &[]);
    assert_eq!(code, 200);
    assert!(r["data"]["version"].is_string());
    let text = reqwest::blocking::get(format!("http://{}/metrics", server.http))
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("# TYPE didban_queries_total counter"), "{text}");
    assert!(text.contains("didban_head_series"), "{text}");
}
