//! Span-derived latency percentiles against the exact ones, over real sockets: a few thousand
//! spans with log-normal durations (5 ms – 3 s, seeded) sent over OTLP/HTTP, the p50/p95/p99
//! of `histogram_quantile` over `/api/v1/query` compared with the percentiles of the sent
//! durations. Native duration histograms (the default) must be within 5 %; the classic
//! buckets of `duration_histogram = "classic"` are measured on the same spans and printed
//! (the figures in docs/otlp-mapping.md). The slowest span of each batch is the duration
//! series' exemplar, answered by `/api/v1/query_exemplars`.

use std::collections::BTreeMap;

use crate::ingest_support::{kv, now_ns, start, Server};
use didban_collector::config::traces_logs::DurationHistogram;
use didban_testkit::rng::SeededRng;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;

/// Spans per OTLP request: each request is one batch, one sample and one exemplar per series.
const BATCH: usize = 500;

/// One sent span: its group (endpoint or function), trace id and duration in seconds.
#[derive(Clone)]
struct Sent {
    group: String,
    trace_id: [u8; 16],
    seconds: f64,
}

/// A log-normal duration with `median` seconds and shape `sigma`, kept within 5 ms – 3 s.
fn lognormal(rng: &mut SeededRng, median: f64, sigma: f64) -> f64 {
    let unit = |rng: &mut SeededRng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u1, u2) = (unit(rng), unit(rng));
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (median * (sigma * normal).exp()).clamp(0.005, 3.0)
}

/// The nearest-rank `q`-percentile of `values`.
fn exact(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// A trace id unique per seed and span, as lowercase hex in the exemplar labels.
fn trace_id(seed: u64, i: usize) -> [u8; 16] {
    let mut out = [0x5a; 16];
    out[..8].copy_from_slice(&seed.to_be_bytes());
    out[8..].copy_from_slice(&(i as u64).to_be_bytes());
    out
}

fn hex_text(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Spans of `groups` (name, median s, sigma), `per_group` each, interleaved, seeded.
fn durations(seed: u64, groups: &[(&str, f64, f64)], per_group: usize) -> Vec<Sent> {
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::new();
    for i in 0..per_group * groups.len() {
        let (name, median, sigma) = groups[i % groups.len()];
        out.push(Sent {
            group: name.to_string(),
            trace_id: trace_id(seed, i),
            seconds: lognormal(&mut rng, median, sigma),
        });
    }
    out
}

/// The OTLP request of one batch; `resource` gives a span's resource attributes, `name` its
/// span name.
fn request(
    batch: &[Sent],
    resource: impl Fn(&Sent) -> Vec<KeyValue>,
    name: impl Fn(&Sent) -> String,
) -> ExportTraceServiceRequest {
    let end = now_ns();
    let mut resource_spans = Vec::new();
    for s in batch {
        let nanos = (s.seconds * 1e9).round() as u64;
        resource_spans.push(ResourceSpans {
            resource: Some(Resource {
                attributes: resource(s),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: s.trace_id.to_vec(),
                    span_id: vec![0x11; 8],
                    name: name(s),
                    kind: 2,
                    start_time_unix_nano: end - nanos,
                    end_time_unix_nano: end,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

async fn send(server: &Server, r: &ExportTraceServiceRequest) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(r.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// `label → value` of instant query `q` (now).
async fn by_label(server: &Server, q: &str, label: &str) -> BTreeMap<String, f64> {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/query", server.http))
        .query(&[("query", q.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let mut out = BTreeMap::new();
    for r in body["data"]["result"].as_array().unwrap() {
        let key = r["metric"][label].as_str().unwrap_or("").to_string();
        out.insert(key, r["value"][1].as_str().unwrap().parse().unwrap());
    }
    out
}

/// The relative error of each group's p50/p95/p99 read by `query(q)` from `server`:
/// `(group, q, exact, read, error)`.
async fn errors(
    server: &Server,
    sent: &[Sent],
    label: &str,
    query: impl Fn(f64) -> String,
) -> Vec<(String, f64, f64, f64, f64)> {
    let mut out = Vec::new();
    for q in [0.5, 0.95, 0.99] {
        let got = by_label(server, &query(q), label).await;
        let mut groups: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for s in sent {
            groups.entry(s.group.as_str()).or_default().push(s.seconds);
        }
        assert_eq!(got.len(), groups.len(), "{}: {got:?}", query(q));
        for (group, values) in groups {
            let want = exact(&values, q);
            let read = got[group];
            out.push((group.to_string(), q, want, read, (read - want).abs() / want));
        }
    }
    out
}

fn print_table(title: &str, rows: &[(String, f64, f64, f64, f64)]) {
    println!("{title}");
    for (group, q, want, read, err) in rows {
        println!(
            "  {group:<16} p{:<3} exact {:>8.1} ms  read {:>8.1} ms  error {:>5.1} %",
            q * 100.0,
            want * 1e3,
            read * 1e3,
            err * 100.0
        );
    }
}

/// The same spans to a server recording native histograms and one recording classic ones;
/// returns both error tables (native, classic).
async fn both_layouts(
    sent: &[Sent],
    resource: impl Fn(&Sent) -> Vec<KeyValue> + Copy,
    name: impl Fn(&Sent) -> String + Copy,
    label: &str,
    metric: &str,
    filter: &str,
) -> (
    Server,
    Vec<(String, f64, f64, f64, f64)>,
    Vec<(String, f64, f64, f64, f64)>,
) {
    let native = start(|_| {}).await;
    let classic = start(|c| c.traces.duration_histogram = DurationHistogram::Classic).await;
    for batch in sent.chunks(BATCH) {
        let r = request(batch, resource, name);
        send(&native, &r).await;
        send(&classic, &r).await;
    }
    // The queries of the dashboards: native first, classic buckets otherwise.
    let either = |q: f64| {
        format!(
            "histogram_quantile({q}, sum by ({label}) (rate({metric}{{{filter}}}[10m]))) or histogram_quantile({q}, sum by ({label}, le) (rate({metric}_bucket{{{filter}}}[10m])))"
        )
    };
    let native_rows = errors(&native, sent, label, either).await;
    let classic_rows = errors(&classic, sent, label, either).await;
    // Each server has only its own layout.
    let buckets = format!("count({metric}_bucket)");
    assert!(by_label(&native, &buckets, "").await.is_empty());
    assert!(by_label(&classic, &format!("count({metric})"), "")
        .await
        .is_empty());
    (native, native_rows, classic_rows)
}

fn assert_within(rows: &[(String, f64, f64, f64, f64)], bound: f64) {
    for (group, q, want, read, err) in rows {
        assert!(
            *err <= bound,
            "{group} p{}: read {read} s, exact {want} s: error {:.2} % above {:.0} %",
            q * 100.0,
            err * 100.0,
            bound * 100.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_latency_percentiles_are_within_five_percent_of_the_exact_ones() {
    let endpoints = [
        ("GET /", 0.040, 0.7),
        ("GET /search", 0.120, 0.8),
        ("POST /checkout", 0.350, 0.6),
        ("GET /report", 0.900, 0.5),
    ];
    let sent = durations(7, &endpoints, 1500);
    let shop = |_: &Sent| vec![kv("service.name", "shop")];
    let name = |s: &Sent| s.group.clone();
    let (native, native_rows, classic_rows) = both_layouts(
        &sent,
        shop,
        name,
        "span_name",
        "traces_span_metrics_duration_seconds",
        r#"service_name="shop",span_kind="SPAN_KIND_SERVER""#,
    )
    .await;
    print_table("span metrics, native (schema 4):", &native_rows);
    print_table("span metrics, classic (default buckets):", &classic_rows);
    assert_within(&native_rows, 0.05);

    // One exemplar per endpoint series and batch: the batch's slowest span of the endpoint.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/query_exemplars", native.http))
        .query(&[("query", "traces_span_metrics_duration_seconds")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), endpoints.len(), "{body}");
    for series in data {
        let endpoint = series["seriesLabels"]["span_name"].as_str().unwrap();
        assert_eq!(series["seriesLabels"].get("le"), None);
        let exemplars = series["exemplars"].as_array().unwrap();
        let batches: Vec<&[Sent]> = sent.chunks(BATCH).collect();
        assert_eq!(exemplars.len(), batches.len(), "{series}");
        for (e, batch) in exemplars.iter().zip(batches) {
            // Durations clamped at 3 s tie: any of the slowest will do.
            let mut slowest = 0.0f64;
            for s in batch.iter().filter(|s| s.group == endpoint) {
                slowest = slowest.max(s.seconds);
            }
            let trace = e["labels"]["trace_id"].as_str().unwrap();
            let chosen = batch
                .iter()
                .find(|s| hex_text(&s.trace_id) == trace)
                .unwrap_or_else(|| panic!("exemplar of a trace not in the batch: {e}"));
            assert_eq!(chosen.group, endpoint, "{e}");
            assert!(
                (chosen.seconds - slowest).abs() < 1e-9,
                "{e}: slowest is {slowest}"
            );
            assert_eq!(e["labels"]["span_id"], "1111111111111111");
            let value: f64 = e["value"].as_str().unwrap().parse().unwrap();
            assert!((value - slowest).abs() < 1e-9, "{value} vs {slowest}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_duration_percentiles_are_within_five_percent_of_the_exact_ones() {
    let functions = [("resize", 0.200, 0.6), ("thumb", 0.050, 0.9)];
    let sent = durations(11, &functions, 1000);
    let lambda = |s: &Sent| {
        vec![
            kv("service.name", &s.group),
            kv("faas.name", &s.group),
            kv("cloud.provider", "aws"),
            kv("cloud.region", "eu-west-1"),
        ]
    };
    let (_native, native_rows, classic_rows) = both_layouts(
        &sent,
        lambda,
        |s: &Sent| s.group.clone(),
        "faas_name",
        "faas_invoke_duration_seconds",
        r#"cloud_provider="aws""#,
    )
    .await;
    print_table("FaaS durations, native (schema 4):", &native_rows);
    print_table("FaaS durations, classic (default buckets):", &classic_rows);
    assert_within(&native_rows, 0.05);
}
