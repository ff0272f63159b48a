//! The UI over native histograms and exemplars, end to end over real sockets and stores:
//! an OTLP exponential histogram with exemplars, and the spans of the exemplars' trace,
//! posted to the OTLP/HTTP receiver; a dashboard fetched as HTML shows the histogram as
//! heatmap cells, its p95 with an exemplar dot linking to `/traces/<id>`, and a table with
//! its count and sum; the linked trace page shows the trace.

use std::time::Duration;

use crate::ingest_support::{kv, now_ns, open_state, serve_router};
use didban_collector::ingest;
use didban_testkit::wait::until_async;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::StatusCode;
use tokio::sync::watch;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const MINUTE_NS: u64 = 60_000_000_000;

const DASHBOARD: &str = r#"
id: native
title: Native histograms
panels:
  - title: Checkout latency
    type: heatmap
    unit: s
    queries:
      - expr: 'sum(rate(checkout_duration_seconds[2m]))'
  - title: Checkout p95
    type: timeseries
    unit: s
    exemplars: true
    x: 12
    queries:
      - expr: 'histogram_quantile(0.95, sum(rate(checkout_duration_seconds[2m])))'
        legend: p95
  - title: Raw histogram
    type: table
    y: 8
    unit: s
    queries:
      - expr: 'checkout_duration_seconds'
"#;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Eleven cumulative points a minute apart ending at `end_ns`, scale 0 with buckets
/// (1/16, 1/8], (1/8, 1/4], (1/4, 1/2]; the last three carry an exemplar of [`TRACE`].
fn histogram_request(end_ns: u64) -> ExportMetricsServiceRequest {
    let mut points = Vec::new();
    for k in 0..=10u64 {
        let t = end_ns - (10 - k) * MINUTE_NS;
        let counts = vec![2 * k, 5 * k, k];
        let exemplars = if k >= 8 {
            vec![Exemplar {
                time_unix_nano: t - 1_000_000,
                trace_id: hex(TRACE),
                span_id: vec![0x42; 8],
                value: Some(exemplar::Value::AsDouble(0.2)),
                ..Default::default()
            }]
        } else {
            Vec::new()
        };
        points.push(ExponentialHistogramDataPoint {
            start_time_unix_nano: end_ns - 11 * MINUTE_NS,
            time_unix_nano: t,
            count: counts.iter().sum(),
            sum: Some(0.2 * (8 * k) as f64),
            scale: 0,
            positive: Some(Buckets {
                offset: -4,
                bucket_counts: counts,
            }),
            exemplars,
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "checkout_duration_seconds".into(),
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: points,
                        aggregation_temporality: 2,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn span_request(start_ns: u64) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: hex(TRACE),
                    span_id: vec![0x42; 8],
                    name: "POST /checkout".into(),
                    kind: 2,
                    start_time_unix_nano: start_ns,
                    end_time_unix_nano: start_ns + 200_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(url: String, body: Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, StatusCode::OK, "{}", resp.text().await.unwrap());
}

async fn get(url: String) -> (StatusCode, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_draws_native_heatmap_exemplar_links_and_histogram_table() {
    let provisioned = tempfile::tempdir().unwrap();
    let dashboards = provisioned.path().to_path_buf();
    let (state, _dir) = open_state(|c| c.ui.dashboards_dir = Some(dashboards)).await;
    std::fs::write(provisioned.path().join("native.yaml"), DASHBOARD).unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let otlp = serve_router(ingest::otlp_http_router(state.clone()), stop_rx.clone()).await;
    let ui = didban_ui::router(state.ui_context(None));
    let base = serve_router(ui, stop_rx).await;

    let end_ns = now_ns() / 1_000_000_000 * 1_000_000_000;
    post(
        format!("{otlp}/v1/metrics"),
        histogram_request(end_ns).encode_to_vec(),
    )
    .await;
    post(
        format!("{otlp}/v1/traces"),
        span_request(end_ns - 2 * MINUTE_NS).encode_to_vec(),
    )
    .await;

    let url = format!("{base}/dashboards/native?from=now-15m&to=now");
    let html = until_async(
        "the dashboard with its exemplar dot",
        Duration::from_secs(20),
        || async {
            let (status, html) = get(url.clone()).await;
            if status == StatusCode::OK && html.contains(&format!(r#"href="/traces/{TRACE}""#)) {
                Ok(html)
            } else {
                Err(format!("{status}: {}", &html[..html.len().min(400)]))
            }
        },
    )
    .await;
    // The heatmap: native rows (three buckets of schema 0), shaded cells.
    let heatmap = &html[html.find("chart-heatmap").expect("a heatmap chart")..];
    let heatmap = &heatmap[..heatmap.find("</svg>").unwrap()];
    assert!(
        heatmap.contains("Heatmap of 3 native histogram rows (schema 0)"),
        "{heatmap}"
    );
    assert!(heatmap.matches(r#"<rect class="hm"#).count() >= 5, "{heatmap}");
    assert!(heatmap.contains(r#"<rect class="hm8""#), "{heatmap}");
    // The p95 chart: a line and one dot per exemplar, each a link to the trace.
    assert_eq!(
        html.matches(&format!(r#"<a class="exemplar" href="/traces/{TRACE}">"#))
            .count(),
        3,
        "{html}"
    );
    assert!(
        html.contains(&format!("<title>Trace {TRACE}: 200ms</title>")),
        "{html}"
    );
    // The table: the raw histogram's count and sum, not nothing.
    assert!(html.contains("count 80, sum 16s"), "{html}");

    // The dot's link opens the trace.
    let (status, page) = get(format!("{base}/traces/{TRACE}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("POST /checkout"), "{page}");
}
