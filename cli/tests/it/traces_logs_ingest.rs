//! Trace and log ingest against the real binary: serverless spans give the hand-computed
//! cold-start count and cost; bad input gets a clear 4xx or a partial success naming the
//! problem, and the server stays healthy.

use crate::process::{now_ms, Didban, BIN};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

fn attr(key: &str, value: V) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn span(trace: u8, id: u8, start_ns: u64, duration_ns: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        name: "handler".into(),
        kind: 2,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + duration_ns,
        attributes,
        ..Span::default()
    }
}

/// A key-value list nested `levels` deep.
fn nested(levels: usize) -> V {
    let mut value = V::StringValue("leaf".into());
    for _ in 0..levels {
        value = V::KvlistValue(KeyValueList {
            values: vec![attr("k", value)],
        });
    }
    value
}

fn post(server: &Didban, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}{path}", server.otlp_http))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

fn scalar(server: &Didban, expr: &str) -> f64 {
    let v = server.query(expr, now_ms() as f64 / 1000.0);
    v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("{expr}: {v}"))
        .parse()
        .unwrap()
}

#[test]
fn serverless_cold_starts_and_cost_equal_the_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let server = Didban::start(BIN, dir.path(), &[]);
    let now = now_ms() as u64 * 1_000_000;
    let lambda = |name: &str, memory: i64, arch: &str| {
        vec![
            attr("service.name", V::StringValue(name.into())),
            attr("faas.name", V::StringValue(name.into())),
            attr("faas.max_memory", V::IntValue(memory)),
            attr("cloud.provider", V::StringValue("aws".into())),
            attr("cloud.region", V::StringValue("eu-west-1".into())),
            attr("host.arch", V::StringValue(arch.into())),
        ]
    };
    let cold = |c: bool| {
        vec![
            attr("faas.coldstart", V::BoolValue(c)),
            attr("faas.trigger", V::StringValue("http".into())),
        ]
    };
    // resize: 128 MiB on x86_64, 100/200/300 ms, the first a cold start.
    let resize = request(
        lambda("resize", 134_217_728, "amd64"),
        vec![
            span(1, 1, now, 100_000_000, cold(true)),
            span(2, 1, now, 200_000_000, cold(false)),
            span(3, 1, now, 300_000_000, cold(false)),
        ],
    );
    // thumb: 1024 MiB on arm64, two 50.2 ms invocations (billed 51 ms each), both cold.
    let thumb = request(
        lambda("thumb", 1_073_741_824, "arm64"),
        vec![
            span(4, 1, now, 50_200_000, cold(true)),
            span(5, 1, now, 50_200_000, cold(true)),
        ],
    );
    for r in [resize, thumb] {
        let (status, body) = post(&server, "/v1/traces", "application/x-protobuf", r.encode_to_vec());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(
        scalar(&server, r#"faas_invocations_total{faas_name="resize"}"#),
        3.0
    );
    assert_eq!(
        scalar(&server, r#"faas_coldstarts_total{faas_name="resize"}"#),
        1.0
    );
    assert_eq!(
        scalar(&server, r#"faas_coldstarts_total{faas_name="thumb"}"#),
        2.0
    );
    // 0.6 s × 0.125 GiB = 0.075 GB-s; 3 × $0.20/1M + 0.075 × $0.0000166667.
    let resize_cost = 3.0 * 0.20 / 1e6 + 0.075 * 0.0000166667;
    let got = scalar(
        &server,
        r#"faas_estimated_cost_usd_total{faas_name="resize",host_arch="x86_64"}"#,
    );
    assert!((got - resize_cost).abs() < 1e-15, "{got} vs {resize_cost}");
    // 2 × 0.051 s × 1 GiB = 0.102 GB-s at the arm64 price.
    let thumb_cost = 2.0 * 0.20 / 1e6 + 0.102 * 0.0000133334;
    let got = scalar(
        &server,
        r#"faas_estimated_cost_usd_total{faas_name="thumb",host_arch="arm64"}"#,
    );
    assert!((got - thumb_cost).abs() < 1e-15, "{got} vs {thumb_cost}");
    // The durations are a native histogram: its top bucket holds 0.3 s and is at most
    // 2^(1/16) wide.
    let p = scalar(
        &server,
        r#"histogram_quantile(1, faas_invoke_duration_seconds{faas_name="resize"})"#,
    );
    assert!((0.3..0.3 * 1.0443).contains(&p), "{p}");

    // FaaS metrics pushed over OTLP land under the same names.
    let t = now_ms() * 1_000_000;
    let sum = |name: &str, v: i64| {
        format!(
            r#"{{"name":"{name}","unit":"{{invocation}}","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{t}","asInt":"{v}"}}]}}}}"#
        )
    };
    let hist = |name: &str| {
        format!(
            r#"{{"name":"{name}","unit":"s","histogram":{{"aggregationTemporality":2,"dataPoints":[{{"timeUnixNano":"{t}","count":"2","sum":0.3,"bucketCounts":["1","1"],"explicitBounds":[0.1]}}]}}}}"#
        )
    };
    let metrics = [
        sum("faas.invocations", 7),
        sum("faas.coldstarts", 2),
        sum("faas.errors", 1),
        sum("faas.timeouts", 1),
        hist("faas.invoke_duration"),
        hist("faas.init_duration"),
    ];
    let body = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"pushed"}}}}]}},"scopeMetrics":[{{"metrics":[{}]}}]}}]}}"#,
        metrics.join(",")
    );
    let (status, reply) = post(&server, "/v1/metrics", "application/json", body.into_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    assert_eq!(scalar(&server, r#"faas_invocations_total{job="pushed"}"#), 7.0);
    assert_eq!(scalar(&server, r#"faas_coldstarts_total{job="pushed"}"#), 2.0);
    assert_eq!(scalar(&server, r#"faas_errors_total{job="pushed"}"#), 1.0);
    assert_eq!(scalar(&server, r#"faas_timeouts_total{job="pushed"}"#), 1.0);
    assert_eq!(
        scalar(&server, r#"faas_invoke_duration_seconds_count{job="pushed"}"#),
        2.0
    );
    assert_eq!(
        scalar(
            &server,
            r#"faas_init_duration_seconds_bucket{job="pushed",le="0.1"}"#
        ),
        1.0
    );
}

#[test]
fn bad_spans_and_records_get_clear_errors_and_the_server_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Didban::start(BIN, dir.path(), &[]);
    let now = now_ms() as u64 * 1_000_000;
    let svc = vec![attr("service.name", V::StringValue("bad".into()))];

    // Per-span problems: the valid span is stored, the rest counted and named.
    let mut short = span(9, 1, now, 1000, vec![]);
    short.trace_id = vec![9; 15];
    let zero = span(0, 1, now, 1000, vec![]);
    let no_start = span(7, 1, 0, 1000, vec![]);
    let future = span(6, 1, now + 3 * 86_400 * 1_000_000_000, 1000, vec![]);
    let huge = "x".repeat(2 * 1024 * 1024);
    let good = span(
        8,
        1,
        now,
        1000,
        vec![attr("huge", V::StringValue(huge)), attr("deep", nested(20))],
    );
    let r = request(svc.clone(), vec![short, zero, no_start, future, good]);
    let (status, body) = post(&server, "/v1/traces", "application/x-protobuf", r.encode_to_vec());
    assert_eq!(status, 200);
    let reply =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(body.as_slice())
            .unwrap();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 4);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );
    let trace: Value =
        reqwest::blocking::get(format!("http://{}/api/traces/{}", server.http, "08".repeat(16)))
            .unwrap()
            .json()
            .unwrap();
    let tags = trace["data"][0]["spans"][0]["tags"].to_string();
    assert!(tags.len() < 64 * 1024, "the huge attribute is cut");
    assert!(tags.contains("…"));

    // Nesting past protobuf's recursion limit of 100 messages is refused whole.
    let r = request(
        svc.clone(),
        vec![span(4, 1, now, 1, vec![attr("deep", nested(60))])],
    );
    let (status, body) = post(&server, "/v1/traces", "application/x-protobuf", r.encode_to_vec());
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("recursion limit"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Invalid UTF-8 in a string field: the whole request is refused with 400.
    let mut bytes = request(svc.clone(), vec![span(5, 1, now, 1, vec![])]).encode_to_vec();
    let at = bytes.windows(7).position(|w| w == b"handler").unwrap();
    bytes[at] = 0xff;
    let (status, body) = post(&server, "/v1/traces", "application/x-protobuf", bytes);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("invalid protobuf"));

    // Malformed JSON, unknown content type, bad ids in logs.
    let (status, body) = post(
        &server,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": [".to_vec(),
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("invalid OTLP JSON"));
    let (status, _) = post(&server, "/v1/traces", "text/plain", b"hello".to_vec());
    assert_eq!(status, 415);
    let log = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"body":{"stringValue":"ok"}},
        {"body":{"stringValue":"bad"},"spanId":"0102"}]}]}]}"#;
    let (status, body) = post(&server, "/v1/logs", "application/json", log.as_bytes().to_vec());
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["partialSuccess"]["rejectedLogRecords"], "1", "{reply}");
    assert!(reply["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("span_id"));

    // Bad query parameters are 400s naming the parameter.
    let client = reqwest::blocking::Client::new();
    for (path, needle) in [
        ("/api/traces/not-hex", "invalid trace id"),
        ("/api/traces?minDuration=soon", "minDuration"),
        ("/api/logs/search?query=service:(", "invalid log query"),
        ("/api/logs/search?cursor=x", "invalid cursor"),
        ("/api/logs/values?field=body", "has no values"),
    ] {
        let r = client
            .get(format!("http://{}{path}", server.http))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        assert!(r.text().unwrap().contains(needle), "{path}");
    }
    let r = client
        .get(format!("http://{}/-/healthy", server.http))
        .send()
        .unwrap();
    assert!(r.status().is_success());
}

#[test]
fn live_tail_streams_new_matching_records_and_ends_at_shutdown() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[logs]\ncommit_interval = \"200ms\"\n").unwrap();
    let mut server = Didban::start(
        BIN,
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let tail = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
        .get(format!("http://{}/api/logs/tail", server.http))
        .query(&[("query", "severity_text:ERROR")])
        .send()
        .unwrap();
    assert_eq!(tail.status().as_u16(), 200);
    assert_eq!(tail.headers()["content-type"], "text/event-stream");
    let records = |bodies: &[(&str, u8)]| {
        let mut list = Vec::new();
        for (body, severity) in bodies {
            list.push(format!(
                r#"{{"severityNumber":{severity},"body":{{"stringValue":"{body}"}}}}"#
            ));
        }
        format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
            list.join(",")
        )
    };
    let body = records(&[("all good", 9), ("disk full", 17), ("quota exceeded", 17)]);
    let (status, _) = post(&server, "/v1/logs", "application/json", body.into_bytes());
    assert_eq!(status, 200);
    let mut lines = BufReader::new(tail).lines();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data:") {
            let record: Value = serde_json::from_str(data.trim()).unwrap();
            seen.push(record["body"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, ["disk full", "quota exceeded"]);
    // SIGTERM with the stream open: the server ends it and exits cleanly.
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_trace_and_log_services_answer_like_the_metrics_service() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    let dir = tempfile::tempdir().unwrap();
    let server = tokio::task::spawn_blocking({
        let path = dir.path().to_path_buf();
        move || Didban::start(BIN, &path, &["--max-request-body", "64KiB"])
    })
    .await
    .unwrap();
    let endpoint = format!("http://{}", server.otlp_grpc);
    let now = now_ms() as u64 * 1_000_000;
    let mut traces = TraceServiceClient::connect(endpoint.clone()).await.unwrap();
    let mut bad = span(3, 1, now, 10, vec![]);
    bad.span_id = vec![0; 8];
    let r = request(vec![], vec![span(2, 1, now, 10, vec![]), bad]);
    let reply = traces.export(r).await.unwrap().into_inner();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("span_id is all zeros"));
    let big = request(
        vec![],
        vec![span(
            2,
            2,
            now,
            10,
            vec![attr("x", V::StringValue("y".repeat(100_000)))],
        )],
    );
    let status = traces.export(big).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);

    let mut logs = LogsServiceClient::connect(endpoint).await.unwrap();
    let record = |span_id: Vec<u8>| LogRecord {
        time_unix_nano: now,
        span_id,
        ..LogRecord::default()
    };
    let r = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record(vec![]), record(vec![1, 2, 3])],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let reply = logs.export(r).await.unwrap().into_inner();
    assert_eq!(reply.partial_success.unwrap().rejected_log_records, 1);
    drop(server);
}
