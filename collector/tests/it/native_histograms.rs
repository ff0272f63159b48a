//! Native histograms in over real sockets: OTLP exponential histograms (protobuf over
//! OTLP/HTTP) and remote write 2.0 histograms stored as native histograms and answered by
//! PromQL over `/api/v1/query`; malformed ones refused naming the field.

use crate::ingest_support::{kv, now_ns, series, start};
use didban_collector::ingest::remote_write::histogram::{BucketSpan2, Histogram2};
use didban_collector::ingest::remote_write::v2::{Request, TimeSeries};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;

/// One cumulative exponential histogram metric `name` with point `p`, from service `shop`.
fn exp_request(name: &str, p: ExponentialHistogramDataPoint) -> ExportMetricsServiceRequest {
    exp_request_with(name, p, 2)
}

/// As [`exp_request`] with the given aggregation temporality (1 delta, 2 cumulative).
fn exp_request_with(
    name: &str,
    p: ExponentialHistogramDataPoint,
    temporality: i32,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: vec![p],
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One explicit-bucket histogram metric `name` with points `points`, from service `shop`.
fn explicit_request(
    name: &str,
    points: Vec<HistogramDataPoint>,
    temporality: i32,
) -> ExportMetricsServiceRequest {
    let mut r = exp_request_with(name, ExponentialHistogramDataPoint::default(), temporality);
    r.resource_metrics[0].scope_metrics[0].metrics[0].data = Some(metric::Data::Histogram(Histogram {
        data_points: points,
        aggregation_temporality: temporality,
    }));
    r
}

async fn post_otlp(base: &str, request: &ExportMetricsServiceRequest) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    (
        resp.status(),
        String::from_utf8_lossy(&resp.bytes().await.unwrap()).into_owned(),
    )
}

/// The single float answer of instant query `q` at `t_s` seconds.
pub(crate) async fn instant(base: &str, q: &str, t_s: u64) -> f64 {
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q.to_string()), ("time", t_s.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{q}: {body}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn otlp_exponential_histogram_is_queried_as_a_native_histogram() {
    let server = start(|_| {}).await;
    let t_s = now_ns() / 1_000_000_000;
    // Scale 0: OTLP buckets 0, 1, 2 are (1,2], (2,4], (4,8] with 2, 2 and 4 observations.
    let p = ExponentialHistogramDataPoint {
        time_unix_nano: t_s * 1_000_000_000,
        count: 8,
        sum: Some(30.5),
        scale: 0,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2, 2, 4],
        }),
        ..Default::default()
    };
    let (status, body) = post_otlp(&server.otlp_http, &exp_request("rpc.latency", p)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // One series, no classic `_bucket` series.
    assert_eq!(series(&server.state, "rpc_latency").len(), 1);
    assert!(series(&server.state, "rpc_latency_bucket").is_empty());
    let h = &series(&server.state, "rpc_latency")[0].histograms[0].h;
    assert_eq!(h.positive_pairs(), vec![(1, 2.0), (2, 2.0), (3, 4.0)]);

    let q = |expr: &'static str| instant(&server.http, expr, t_s);
    assert_eq!(q("histogram_count(rpc_latency)").await, 8.0);
    assert_eq!(q("histogram_sum(rpc_latency)").await, 30.5);
    // Ranks 2 and 4 end exactly at the buckets' upper bounds 2 and 4.
    assert_eq!(q("histogram_quantile(0.25, rpc_latency)").await, 2.0);
    assert_eq!(q("histogram_quantile(0.5, rpc_latency)").await, 4.0);
    assert_eq!(q("histogram_quantile(1, rpc_latency)").await, 8.0);
}

#[tokio::test]
async fn otlp_scale_ten_is_downscaled_to_eight_preserving_counts() {
    let server = start(|_| {}).await;
    let t_s = now_ns() / 1_000_000_000;
    // Scale 10, OTLP buckets 0..=7: four merge into one schema-8 bucket, so buckets 1 and 2
    // of schema 8, (1, 2^(1/256)] and (2^(1/256), 2^(2/256)], with 1+2+3+4 and 5+6+7+8.
    let p = ExponentialHistogramDataPoint {
        time_unix_nano: t_s * 1_000_000_000,
        count: 36,
        sum: Some(36.2),
        scale: 10,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 2, 3, 4, 5, 6, 7, 8],
        }),
        ..Default::default()
    };
    let (status, body) = post_otlp(&server.otlp_http, &exp_request("fine", p)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let h = &series(&server.state, "fine")[0].histograms[0].h;
    assert_eq!(h.schema, 8);
    assert_eq!(h.positive_pairs(), vec![(1, 10.0), (2, 26.0)]);
    let q = |expr: &'static str| instant(&server.http, expr, t_s);
    assert_eq!(q("histogram_count(fine)").await, 36.0);
    // Rank 10 of 36 ends bucket 1: its upper bound 2^(1/256).
    let got = q("histogram_quantile(10/36, fine)").await;
    let want = (1.0f64 / 256.0).exp2();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[tokio::test]
async fn otlp_delta_exponential_histograms_are_accumulated() {
    let server = start(|_| {}).await;
    let t_s = now_ns() / 1_000_000_000;
    let point = |start_s: u64, end_s: u64, counts: Vec<u64>| ExponentialHistogramDataPoint {
        start_time_unix_nano: start_s * 1_000_000_000,
        time_unix_nano: end_s * 1_000_000_000,
        count: counts.iter().sum(),
        sum: Some(1.0),
        scale: 0,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: counts,
        }),
        ..Default::default()
    };
    // Two contiguous deltas: (1,2] gets 3 then 1, (2,4] 0 then 4.
    for p in [
        point(t_s - 20, t_s - 10, vec![3]),
        point(t_s - 10, t_s, vec![1, 4]),
    ] {
        let (status, body) = post_otlp(&server.otlp_http, &exp_request_with("jobs", p, 1)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let q = |expr: &'static str| instant(&server.http, expr, t_s);
    assert_eq!(q("histogram_count(jobs)").await, 8.0);
    assert_eq!(q("histogram_sum(jobs)").await, 2.0);
    // Rank 4 of 8 ends bucket (1, 2], which holds 3 + 1.
    assert_eq!(q("histogram_quantile(0.5, jobs)").await, 2.0);
}

#[tokio::test]
async fn otlp_scale_below_minus_four_is_refused_naming_the_scale() {
    let server = start(|_| {}).await;
    let p = ExponentialHistogramDataPoint {
        time_unix_nano: now_ns(),
        count: 1,
        scale: -5,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1],
        }),
        ..Default::default()
    };
    let (status, body) = post_otlp(&server.otlp_http, &exp_request("coarse", p)).await;
    // OTLP partial success: 200 with the refused point counted and explained.
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("scale -5 is below -4"), "{body}");
    assert!(series(&server.state, "coarse").is_empty());
}

/// A series of a test request: its labels and histograms.
type Series2<'a> = (&'a [(&'a str, &'a str)], Vec<Histogram2>);

/// A remote write 2.0 request of one series per `(labels, histograms)`.
fn rw2_request(series: Vec<Series2<'_>>) -> Request {
    let mut symbols = vec![String::new()];
    let mut refs_of = |s: &str| -> u32 {
        if let Some(i) = symbols.iter().position(|x| x == s) {
            return i as u32;
        }
        symbols.push(s.to_string());
        (symbols.len() - 1) as u32
    };
    let mut timeseries = Vec::new();
    for (labels, histograms) in series {
        let mut labels_refs = Vec::new();
        for (n, v) in labels {
            labels_refs.push(refs_of(n));
            labels_refs.push(refs_of(v));
        }
        timeseries.push(TimeSeries {
            labels_refs,
            histograms,
            ..TimeSeries::default()
        });
    }
    Request { symbols, timeseries }
}

/// Posts a 2.0 request: status, `Histograms-Written` header, body.
async fn post_rw2(base: &str, request: &Request) -> (StatusCode, Option<String>, String) {
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header(
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    let written = resp
        .headers()
        .get("x-prometheus-remote-write-histograms-written")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), written, resp.text().await.unwrap())
}

#[tokio::test]
async fn remote_write_2_histograms_are_stored_and_answered() {
    let server = start(|_| {}).await;
    let t_s = now_ns() / 1_000_000_000;
    let t_ms = i64::try_from(t_s * 1000).unwrap();
    // Integer histogram, schema 0: buckets 1..=3 are (1,2], (2,4], (4,8] with 2, 2, 4.
    let exponential = Histogram2 {
        count_int: Some(8),
        sum: 30.0,
        schema: 0,
        zero_threshold: 1e-128,
        zero_count_int: Some(0),
        positive_spans: vec![BucketSpan2 { offset: 1, length: 3 }],
        positive_deltas: vec![2, 0, 2],
        timestamp: t_ms,
        ..Histogram2::default()
    };
    // Float histogram with custom bounds (NHCB): (-Inf, 0.1] 1, (0.1, 1] 3, (1, +Inf) 0.
    let custom = Histogram2 {
        count_float: Some(4.0),
        sum: 2.0,
        schema: -53,
        positive_spans: vec![BucketSpan2 { offset: 0, length: 3 }],
        positive_counts: vec![1.0, 3.0, 0.0],
        custom_values: vec![0.1, 1.0],
        timestamp: t_ms,
        ..Histogram2::default()
    };
    let request = rw2_request(vec![
        (&[("__name__", "rpc_seconds"), ("job", "api")], vec![exponential]),
        (&[("__name__", "batch_seconds"), ("job", "api")], vec![custom]),
    ]);
    let (status, written, body) = post_rw2(&server.http, &request).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(written.as_deref(), Some("2"));

    let q = |expr: &'static str| instant(&server.http, expr, t_s);
    assert_eq!(q("histogram_count(rpc_seconds)").await, 8.0);
    assert_eq!(q("histogram_sum(rpc_seconds)").await, 30.0);
    assert_eq!(q("histogram_quantile(0.5, rpc_seconds)").await, 4.0);
    assert_eq!(q("histogram_count(batch_seconds)").await, 4.0);
    // Rank 1 ends the first custom bucket; rank 2.5 is half-way through (0.1, 1].
    assert_eq!(q("histogram_quantile(0.25, batch_seconds)").await, 0.1);
    let mid = q("histogram_quantile(0.625, batch_seconds)").await;
    assert!((mid - 0.55).abs() < 1e-12, "{mid}");
}

#[tokio::test]
async fn remote_write_2_invalid_histograms_are_refused_naming_the_field() {
    let server = start(|_| {}).await;
    let t_ms = i64::try_from(now_ns() / 1_000_000).unwrap();
    let good = Histogram2 {
        count_int: Some(1),
        zero_count_int: Some(1),
        timestamp: t_ms,
        ..Histogram2::default()
    };
    let bad_schema = Histogram2 {
        schema: 12,
        timestamp: t_ms + 1,
        ..good.clone()
    };
    let request = rw2_request(vec![(&[("__name__", "h"), ("job", "a")], vec![good, bad_schema])]);
    let (status, written, body) = post_rw2(&server.http, &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(written.as_deref(), Some("1"));
    assert_eq!(
        body.trim(),
        "1 samples refused; first: invalid native histogram timeseries[0].histograms[1].schema: \
         histogram schema 12 is invalid: must be -53 or between -4 and 8 (series h{job=\"a\"})"
    );
    assert_eq!(series(&server.state, "h")[0].histograms.len(), 1);
}

#[tokio::test]
async fn otlp_explicit_histograms_become_nhcb_when_configured() {
    let server = start(|c| c.otlp.convert_histograms_to_nhcb = true).await;
    let t_s = now_ns() / 1_000_000_000;
    let trace_id: Vec<u8> = (1..=16).collect();
    // Buckets (-Inf, 0.1], (0.1, 0.5], (0.5, 1], (1, +Inf] with 3, 0, 4 and 2 observations.
    let p = HistogramDataPoint {
        time_unix_nano: t_s * 1_000_000_000,
        count: 9,
        sum: Some(12.5),
        explicit_bounds: vec![0.1, 0.5, 1.0],
        bucket_counts: vec![3, 0, 4, 2],
        exemplars: vec![Exemplar {
            time_unix_nano: t_s * 1_000_000_000,
            value: Some(exemplar::Value::AsDouble(0.7)),
            trace_id: trace_id.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let (status, body) = post_otlp(&server.otlp_http, &explicit_request("http.latency", vec![p], 2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // One series carrying the buckets, none of the classic ones.
    let stored = series(&server.state, "http_latency");
    assert_eq!(stored.len(), 1);
    for classic in ["http_latency_bucket", "http_latency_sum", "http_latency_count"] {
        assert!(series(&server.state, classic).is_empty(), "{classic}");
    }
    let h = &stored[0].histograms[0].h;
    assert_eq!(&*h.custom_values, &[0.1, 0.5, 1.0]);

    let q = |expr: &'static str| instant(&server.http, expr, t_s);
    assert_eq!(q("histogram_count(http_latency)").await, 9.0);
    assert_eq!(q("histogram_sum(http_latency)").await, 12.5);
    // Rank 4.5 falls 1.5 of 4 into (0.5, 1]: custom buckets interpolate linearly.
    let median = q("histogram_quantile(0.5, http_latency)").await;
    assert!((median - 0.6875).abs() < 1e-12, "{median}");
    let fraction = q("histogram_fraction(0, 0.1, http_latency)").await;
    assert!((fraction - 3.0 / 9.0).abs() < 1e-12, "{fraction}");

    // The exemplar is on the histogram series.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/query_exemplars", server.http))
        .query(&[("query", "http_latency")])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let found = &body["data"][0];
    assert_eq!(found["seriesLabels"]["__name__"], "http_latency", "{body}");
    let hex: String = trace_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        found["exemplars"][0]["labels"]["trace_id"],
        hex.as_str(),
        "{body}"
    );
}

#[tokio::test]
async fn delta_explicit_histograms_accumulate_into_one_nhcb_series() {
    let server = start(|c| c.otlp.convert_histograms_to_nhcb = true).await;
    let t_s = now_ns() / 1_000_000_000;
    let point = |start_s: u64, end_s: u64, counts: Vec<u64>| HistogramDataPoint {
        start_time_unix_nano: start_s * 1_000_000_000,
        time_unix_nano: end_s * 1_000_000_000,
        count: counts.iter().sum(),
        sum: Some(1.0),
        explicit_bounds: vec![1.0, 2.0],
        bucket_counts: counts,
        ..Default::default()
    };
    for (start_s, end_s, counts) in [
        (t_s - 20, t_s - 10, vec![1, 2, 3]),
        (t_s - 10, t_s, vec![4, 0, 1]),
    ] {
        let req = explicit_request("jobs.runtime", vec![point(start_s, end_s, counts)], 1);
        let (status, body) = post_otlp(&server.otlp_http, &req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let q = |expr: &'static str| instant(&server.http, expr, t_s);
    assert_eq!(q("histogram_count(jobs_runtime)").await, 11.0);
    assert_eq!(q("histogram_sum(jobs_runtime)").await, 2.0);
    // 5 of 11 at or below 1: the first bucket of both points.
    let fraction = q("histogram_fraction(0, 1, jobs_runtime)").await;
    assert!((fraction - 5.0 / 11.0).abs() < 1e-12, "{fraction}");
}

#[tokio::test]
async fn a_sender_marks_the_histograms_it_wants_as_nhcb() {
    // The server keeps classic histograms by default; the agent's marker converts one metric.
    let server = start(|_| {}).await;
    let t_s = now_ns() / 1_000_000_000;
    let point = HistogramDataPoint {
        time_unix_nano: t_s * 1_000_000_000,
        count: 4,
        sum: Some(3.95),
        explicit_bounds: vec![0.1, 0.5, 1.0],
        bucket_counts: vec![1, 1, 1, 1],
        ..Default::default()
    };
    let mut marked = explicit_request("scraped.latency", vec![point.clone()], 2);
    marked.resource_metrics[0].scope_metrics[0].metrics[0].metadata =
        vec![kv(didban_base::otlp::CONVERT_TO_NHCB_KEY, "true")];
    let unmarked = explicit_request("plain.latency", vec![point], 2);
    for request in [&marked, &unmarked] {
        let (status, body) = post_otlp(&server.otlp_http, request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(series(&server.state, "scraped_latency").len(), 1);
    assert!(series(&server.state, "scraped_latency_bucket").is_empty());
    assert_eq!(series(&server.state, "plain_latency_bucket").len(), 4);
    assert!(series(&server.state, "plain_latency").is_empty());
    let median = instant(&server.http, "histogram_quantile(0.5, scraped_latency)", t_s).await;
    assert!((median - 0.5).abs() < 1e-12, "{median}");
}
