//! Spans and log records in a split cluster (real Garage, PostgreSQL and processes): sent
//! over OTLP to two ingesters, they are found from either querier as soon as the
//! ingesters acknowledged them — the queriers ask every live ingester for what it has not
//! published yet — with exact counts; after an ingester publishes its span block they
//! are still found exactly once (in the bucket now, not twice).

use crate::cluster_roles::{Cluster, SECRET};
use crate::process::Didban;
use didban_testkit::wait::{until, HANG};
use serde_json::Value;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Config sections after `[cluster]`: no alerting; log records searchable soon after
/// they arrive (the single-node commit interval, shortened for the test).
const EXTRA: &str = "[alerting]\nenabled = false\n[logs]\ncommit_interval = \"300ms\"\n";

fn now_ns() -> i64 {
    didban_base::now_nanos()
}

fn post(server: &Didban, path: &str, body: String) -> u16 {
    reqwest::blocking::Client::new()
        .post(format!("http://{}{path}", server.otlp_http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// One span of [`TRACE`] from `service`, `id` a child of `parent` (0: a root span).
fn send_span(server: &Didban, service: &str, id: u8, parent: u8, name: &str, start_ns: i64) {
    let parent = if parent == 0 {
        String::new()
    } else {
        format!("{parent:016x}")
    };
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{TRACE}","spanId":"{id:016x}","parentSpanId":"{parent}","name":"{name}","kind":2,"startTimeUnixNano":"{start_ns}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        start_ns + 5_000_000
    );
    assert_eq!(post(server, "/v1/traces", body), 200);
}

/// Log records of `service`: `(time, body, in TRACE)`.
fn send_logs(server: &Didban, service: &str, records: &[(i64, &str, bool)]) {
    let mut list = Vec::new();
    for (t, body, traced) in records {
        let trace = if *traced {
            format!(r#","traceId":"{TRACE}""#)
        } else {
            String::new()
        };
        list.push(format!(
            r#"{{"timeUnixNano":"{t}","severityNumber":9,"body":{{"stringValue":"{body}"}}{trace}}}"#
        ));
    }
    let body = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        list.join(",")
    );
    assert_eq!(post(server, "/v1/logs", body), 200);
}

fn get(server: &Didban, path: &str, query: &[(&str, String)]) -> Result<(u16, Value), String> {
    let r = reqwest::blocking::Client::new()
        .get(server.url(path))
        .query(query)
        .send()
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body: Value = r.json().map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// The span ids of [`TRACE`] as the querier answers, sorted.
fn trace_spans(q: &Didban) -> Result<Vec<String>, String> {
    let (status, body) = get(q, &format!("/api/traces/{TRACE}"), &[])?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    let mut ids: Vec<String> = body["data"][0]["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s["spanID"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    Ok(ids)
}

/// The traces a search for `service`'s spans finds, each as its number of spans.
fn search(q: &Didban, service: &str) -> Result<Vec<usize>, String> {
    let (status, body) = get(
        q,
        "/api/traces",
        &[("service", service.to_string()), ("lookback", "1h".to_string())],
    )?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| t["spans"].as_array().map_or(0, Vec::len))
        .collect())
}

/// The bodies of the records matching `query` in the last hour, newest first, read in
/// pages of `limit`.
fn log_bodies(q: &Didban, query: &str, limit: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut params = vec![("query", query.to_string()), ("limit", limit.to_string())];
        if !cursor.is_empty() {
            params.push(("cursor", cursor.clone()));
        }
        let (status, body) = get(q, "/api/logs/search", &params)?;
        if status != 200 {
            return Err(format!("{status}: {body}"));
        }
        for r in body["data"]["records"].as_array().cloned().unwrap_or_default() {
            out.push(r["body"].as_str().unwrap_or_default().to_string());
        }
        match body["data"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return Ok(out),
        }
    }
}

fn services(q: &Didban) -> Result<Vec<String>, String> {
    let (status, body) = get(q, "/api/services", &[])?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    let mut names: Vec<String> = serde_json::from_value(body["data"].clone()).map_err(|e| e.to_string())?;
    names.sort();
    Ok(names)
}

fn dependencies(q: &Didban) -> Result<Value, String> {
    let (status, body) = get(q, "/api/dependencies", &[])?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(body["data"].clone())
}

#[test]
fn spans_and_logs_are_found_from_either_querier_at_once_and_once_after_publication() {
    let cluster = Cluster::new();
    // a seals a day a second after it ended, and looks every second.
    let a = cluster.start_configured(
        "ingester-a",
        "ingester",
        "maintenance_interval = \"1s\"",
        &format!("{EXTRA}seal_after = \"1s\"\n"),
    );
    let b = cluster.start_with("ingester-b", "ingester", EXTRA);
    let queriers = [
        cluster.start_with("querier-1", "querier", EXTRA),
        cluster.start_with("querier-2", "querier", EXTRA),
    ];

    // One trace across both ingesters: the front's root span on a, the back's child on b.
    let t0 = now_ns() - 60_000_000_000;
    send_span(&a, "front", 1, 0, "GET /checkout", t0);
    send_span(&b, "back", 2, 1, "charge", t0 + 1_000_000);
    // Log records on both: 3 on a, 4 on b (two of them identical: a client that sent the
    // same record twice), one of b's in the trace.
    send_logs(
        &a,
        "front",
        &[
            (t0, "order 1 placed", false),
            (t0 + 10, "order 2 placed", false),
            (t0 + 20, "order 3 placed", false),
        ],
    );
    send_logs(
        &b,
        "back",
        &[
            (t0 + 5, "order 1 charged", true),
            (t0 + 15, "order 2 charged", false),
            (t0 + 15, "order 2 charged", false),
            (t0 + 25, "order 3 charged", false),
        ],
    );
    let both_spans = vec![format!("{:016x}", 1), format!("{:016x}", 2)];
    let mut bodies = vec![
        "order 3 charged",
        "order 3 placed",
        "order 2 charged",
        "order 2 charged",
        "order 2 placed",
        "order 1 charged",
        "order 1 placed",
    ];

    // Nothing is published yet (no span block, no sealed day): both queriers find
    // everything through the ingesters, each span and record once.
    let published = |signal: &str| {
        cluster.pg.psql(
            "postgres",
            &format!("SELECT count(*) FROM didban_blocks WHERE signal = '{signal}' AND deleted_at IS NULL"),
        )
    };
    assert_eq!(published("traces"), "0");
    assert_eq!(published("logs"), "0");
    for q in &queriers {
        // Spans are visible once acknowledged: no waiting.
        assert_eq!(trace_spans(q).unwrap(), both_spans);
        assert_eq!(
            search(q, "back").unwrap(),
            vec![2],
            "the trace, with the spans of both ingesters"
        );
        assert_eq!(services(q).unwrap(), vec!["back", "front"]);
        assert_eq!(
            dependencies(q).unwrap(),
            serde_json::json!([{"parent": "front", "child": "back", "callCount": 1}])
        );
        // Log records are searchable once committed (as on one node): poll for them,
        // then the whole answer must be exact — newest first, across pages of 2.
        let got = until("the log records on the querier", HANG, || {
            let got = log_bodies(q, "order", 100)?;
            (got.len() >= bodies.len())
                .then_some(got.clone())
                .ok_or(format!("{got:?}"))
        });
        assert_eq!(got, bodies);
        assert_eq!(log_bodies(q, "order", 2).unwrap(), bodies, "paged");
        assert_eq!(log_bodies(q, "charged", 100).unwrap().len(), 4);
        let (_, trace_logs) = get(q, &format!("/api/traces/{TRACE}/logs"), &[]).unwrap();
        assert_eq!(
            trace_logs["data"]["records"].as_array().unwrap().len(),
            1,
            "{trace_logs}"
        );
        let (_, histogram) = get(q, "/api/logs/histogram", &[("query", "order".to_string())]).unwrap();
        let total: u64 = histogram["data"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 7, "{histogram}");
        // The UI's pages read the same way.
        let page = |path: &str| {
            let r = reqwest::blocking::Client::new().get(q.url(path)).send().unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().unwrap()
        };
        let trace_page = page(&format!("/traces/{TRACE}"));
        assert!(
            trace_page.contains("GET /checkout") && trace_page.contains("charge"),
            "{trace_page}"
        );
        let logs_page = page("/logs?q=order");
        assert!(logs_page.contains("order 1 charged") && logs_page.contains("order 3 placed"));
        let (_, values) = get(q, "/api/logs/values", &[("field", "service".to_string())]).unwrap();
        assert_eq!(
            values["data"],
            serde_json::json!([{"value": "back", "count": 4}, {"value": "front", "count": 3}])
        );
    }

    // a publishes its span block (uploaded, row in the metastore) and lets go of its
    // head: at once, not eventually, each querier finds the trace whole and each span
    // once — the bucket's copy of span 1 and not a second one.
    let flushed = reqwest::blocking::Client::new()
        .post(a.url("/api/v1/admin/traces/flush"))
        .send()
        .unwrap();
    assert!(flushed.status().is_success(), "{}", flushed.status());
    assert_eq!(published("traces"), "1");
    for q in &queriers {
        assert_eq!(trace_spans(q).unwrap(), both_spans);
        assert_eq!(search(q, "front").unwrap(), vec![2]);
        assert_eq!(search(q, "back").unwrap(), vec![2]);
    }
    // More spans and records after the publication join the rest.
    send_span(&a, "front", 3, 1, "render", t0 + 2_000_000);
    send_logs(&a, "front", &[(t0 + 30, "order 4 placed", false)]);
    bodies.insert(0, "order 4 placed");
    for q in &queriers {
        assert_eq!(trace_spans(q).unwrap().len(), 3);
        let got = until("the new record on the querier", HANG, || {
            let got = log_bodies(q, "order", 3)?;
            (got.len() >= bodies.len())
                .then_some(got.clone())
                .ok_or(format!("{got:?}"))
        });
        assert_eq!(got, bodies);
    }

    // Records of a past day on a: sealed and uploaded within seconds, then found once
    // from the bucket — neither missed between a's answer and the bucket nor counted in
    // both (the histogram adds counts without deduplicating: a must no longer answer
    // for an uploaded day).
    let old = now_ns() - 2 * 86_400_000_000_000;
    send_logs(
        &a,
        "front",
        &[
            (old, "archived 1", false),
            (old + 1_000, "archived 2", false),
            (old + 2_000, "archived 3", false),
        ],
    );
    let range = [
        ("start", format!("{}", (old / 1_000_000_000) - 60)),
        ("end", format!("{}", now_ns() / 1_000_000_000)),
    ];
    until("the past day sealed and recorded", HANG, || {
        let n = published("logs");
        (n == "1").then_some(()).ok_or(n)
    });
    for q in &queriers {
        let mut params = vec![("query", "archived".to_string())];
        params.extend(range.iter().cloned());
        let (status, found) = get(q, "/api/logs/search", &params).unwrap();
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["data"]["records"].as_array().unwrap().len(), 3, "{found}");
        let (_, histogram) = get(q, "/api/logs/histogram", &params).unwrap();
        let total: u64 = histogram["data"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 3, "{histogram}");
    }

    // The internal span and log APIs answer only with the cluster secret.
    for path in ["/internal/v1/spans", "/internal/v1/logs"] {
        for auth in [None, Some("Bearer not-the-secret".to_string())] {
            let mut r = reqwest::blocking::Client::new()
                .post(b.url(path))
                .body(r#"{"ask":"services"}"#);
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            assert_eq!(
                r.send().unwrap().status(),
                reqwest::StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
    }
    let ok = reqwest::blocking::Client::new()
        .post(b.url("/internal/v1/spans"))
        .bearer_auth(SECRET)
        .body(r#"{"ask":"services"}"#)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);

    // A live ingester that does not answer (announced, nothing listening at its
    // address) makes the queriers fail naming it, rather than answer without its spans
    // and records; once it is gone from the members table they answer again.
    cluster.announce_silent_ingester();
    for q in &queriers {
        for path in [format!("/api/traces/{TRACE}"), "/api/logs/search".to_string()] {
            until("a 503 naming the silent ingester", HANG, || {
                let (status, body) = get(q, &path, &[])?;
                let text = body.to_string();
                (status == 503 && text.contains("ingester ghost at http://127.0.0.1"))
                    .then_some(())
                    .ok_or(format!("{status}: {text}"))
            });
        }
    }
    cluster.forget_silent_ingester();
    for q in &queriers {
        until("the querier without the ghost", HANG, || {
            let got = trace_spans(q)?;
            (got.len() == 3).then_some(()).ok_or(format!("{got:?}"))
        });
    }
}

#[test]
fn a_querier_tails_every_ingester() {
    use std::io::{BufRead, BufReader};
    let cluster = Cluster::new();
    let a = cluster.start_with("ingester-a", "ingester", EXTRA);
    let b = cluster.start_with("ingester-b", "ingester", EXTRA);
    let q = cluster.start_with("querier-1", "querier", EXTRA);
    // Both ingesters are listed once a search asks them.
    until("the querier lists both ingesters", HANG, || {
        send_logs(&a, "front", &[(now_ns(), "warming up", false)]);
        send_logs(&b, "back", &[(now_ns(), "warming up", false)]);
        let found = log_bodies(&q, "warming", 100)?;
        (found.len() >= 2).then_some(()).ok_or(format!("{found:?}"))
    });
    let tail = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
        .get(q.url("/api/logs/tail"))
        .query(&[("query", "tailed")])
        .send()
        .unwrap();
    assert_eq!(tail.status().as_u16(), 200);
    send_logs(&a, "front", &[(now_ns(), "tailed on a", false)]);
    send_logs(
        &b,
        "back",
        &[
            (now_ns(), "tailed on b", false),
            (now_ns(), "not this one", false),
        ],
    );
    // The stream is read on its own thread, so a tail that shows nothing fails the test
    // at the deadline instead of blocking it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(tail).lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data:") {
                let record: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                let body = record["body"].as_str().unwrap_or_default().to_string();
                if tx.send(body).is_err() {
                    return;
                }
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(body) => seen.push(body),
            Err(_) => panic!("the querier's tail showed only {seen:?}"),
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        ["tailed on a", "tailed on b"],
        "each record once, from both ingesters"
    );
}
