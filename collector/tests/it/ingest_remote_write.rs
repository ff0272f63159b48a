//! Prometheus remote_write 1.0 over a real socket with hand-built snappy+protobuf bodies.

use crate::ingest_support::{series, start, values};
use didban_collector::ingest::remote_write::histogram::{BucketSpan2, Histogram2};
use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample, WriteRequest};
use prost::Message;
use reqwest::StatusCode;

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| WireLabel {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|(t, v)| WireSample {
                timestamp: *t,
                value: *v,
            })
            .collect(),
        ..Default::default()
    }
}

fn encode(series: Vec<TimeSeries>) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series,
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

async fn write(base: &str, body: Vec<u8>) -> (StatusCode, reqwest::header::HeaderMap, String) {
    write_with(base, body, "application/x-protobuf", "snappy").await
}

async fn write_with(
    base: &str,
    body: Vec<u8>,
    content_type: &str,
    encoding: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("content-type", content_type)
        .header("content-encoding", encoding)
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

use didban_testkit::now_ms;

#[tokio::test]
async fn samples_are_stored_and_refusals_reported_like_prometheus() {
    let server = start(|_| {}).await;
    let t = now_ms();
    let body = encode(vec![
        ts(
            &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
            &[(t - 1000, 1.0), (t, 1.0)],
        ),
        ts(&[("__name__", "odd"), ("v", "nan")], &[(t, f64::NAN)]),
        ts(&[("__name__", "odd"), ("v", "inf")], &[(t, f64::INFINITY)]),
        ts(&[("__name__", "odd"), ("v", "-inf")], &[(t, f64::NEG_INFINITY)]),
    ]);
    let (status, _, text) = write(&server.http, body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(values(&server.state, "up", &[("job", "node")]), vec![1.0, 1.0]);
    assert!(values(&server.state, "odd", &[("v", "nan")])[0].is_nan());
    assert_eq!(
        values(&server.state, "odd", &[("v", "-inf")]),
        vec![f64::NEG_INFINITY]
    );

    // Out of order: the rest is stored, the reply is 400 naming the problem.
    let body = encode(vec![
        ts(
            &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
            &[(t - 20 * 60 * 1000, 0.0)],
        ),
        ts(&[("__name__", "fresh")], &[(t, 2.0)]),
    ]);
    let (status, _, text) = write(&server.http, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.starts_with("1 samples refused; first: up{") && text.contains("out of order sample"),
        "{text}"
    );
    assert_eq!(values(&server.state, "fresh", &[]), vec![2.0]);

    let m = &server.state.metrics;
    let code = |c: &str| {
        m.get(
            "didban_ingest_requests_total",
            &[("protocol", "remote_write"), ("code", c)],
        )
    };
    assert_eq!(code("204"), Some(1.0));
    assert_eq!(code("400"), Some(1.0));
    assert_eq!(
        m.get("didban_samples_ingested_total", &[("protocol", "remote_write")]),
        Some(6.0)
    );
    assert_eq!(
        m.get(
            "didban_samples_rejected_total",
            &[("protocol", "remote_write"), ("reason", "out_of_order")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn invalid_series_are_refused_by_name_and_the_rest_stored() {
    let server = start(|_| {}).await;
    let t = now_ms();
    let cases: Vec<(TimeSeries, &str)> = vec![
        (
            ts(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(t, 1.0)]),
            "duplicate label name \"a\" in series {__name__=\"dup\", a=\"1\", a=\"2\"}",
        ),
        (
            ts(&[("__name__", "x"), ("bad-name", "1")], &[(t, 1.0)]),
            "invalid label name \"bad-name\"",
        ),
        (
            ts(&[("__name__", "1bad")], &[(t, 1.0)]),
            "invalid metric name \"1bad\"",
        ),
        (
            ts(&[("job", "nameless")], &[(t, 1.0)]),
            "series has no metric name",
        ),
        (
            ts(&[("__name__", "big"), ("v", &"x".repeat(10_000))], &[(t, 1.0)]),
            "value of label \"v\" is 10000 bytes; the limit is 4096",
        ),
    ];
    for (series_in, expected) in cases {
        let body = encode(vec![series_in, ts(&[("__name__", "ok_series")], &[(t, 1.0)])]);
        let (status, _, text) = write(&server.http, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}");
        assert!(text.contains(expected), "expected {expected:?} in {text:?}");
        assert!(text.len() < 1000, "message too long: {} bytes", text.len());
    }
    // The valid series of the first request was stored (later ones were duplicates).
    assert_eq!(values(&server.state, "ok_series", &[]), vec![1.0]);
    assert!(series(&server.state, "dup").is_empty());

    // Native histograms are stored (the same message as in 2.0); an invalid one is refused
    // naming the place and the field.
    let mut h = ts(&[("__name__", "hist")], &[]);
    let good = Histogram2 {
        count_int: Some(3),
        sum: 2.5,
        positive_spans: vec![BucketSpan2 { offset: 0, length: 1 }],
        positive_deltas: vec![3],
        timestamp: t,
        ..Histogram2::default()
    };
    h.histograms.push(good.clone());
    h.histograms.push(Histogram2 {
        positive_deltas: vec![3, 1],
        timestamp: t + 1,
        ..good
    });
    let (status, _, text) = write(&server.http, encode(vec![h])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("timeseries[0].histograms[1].positive_spans: positive spans describe 1 buckets"),
        "{text}"
    );
    let stored = series(&server.state, "hist");
    assert_eq!(stored[0].histograms.len(), 1);
    assert_eq!(stored[0].histograms[0].h.count, 3.0);
    assert_eq!(stored[0].histograms[0].h.positive_pairs(), vec![(0, 3.0)]);
}

/// Series labels are built once per series and kept by the receiver (keyed by the bytes of
/// the label fields): every later request must land in the same series, the same label set
/// sent in another order or with an empty label must too, and a refused series must be
/// refused on every request.
#[tokio::test]
async fn repeated_series_land_in_one_series_however_their_labels_are_sent() {
    let server = start(|_| {}).await;
    let t = now_ms() - 60_000;
    let sorted = [("__name__", "rep"), ("instance", "a"), ("job", "node")];
    let unsorted = [("job", "node"), ("__name__", "rep"), ("instance", "a")];
    let with_empty = [
        ("__name__", "rep"),
        ("empty", ""),
        ("instance", "a"),
        ("job", "node"),
    ];
    let other = [("__name__", "rep"), ("instance", "b"), ("job", "node")];
    let refused = [("__name__", "rep"), ("bad-name", "1")];
    for k in 0..6i64 {
        let labels = match k % 3 {
            0 => &sorted[..],
            1 => &unsorted[..],
            _ => &with_empty[..],
        };
        let body = encode(vec![
            ts(labels, &[(t + k * 1000, k as f64)]),
            ts(&other, &[(t + k * 1000, 10.0 + k as f64)]),
            ts(&refused, &[(t + k * 1000, 1.0)]),
        ]);
        let (status, _, text) = write(&server.http, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "request {k}: {text}");
        assert!(
            text.starts_with("1 samples refused; first: invalid label name"),
            "request {k}: {text}"
        );
    }
    assert_eq!(series(&server.state, "rep").len(), 2);
    assert_eq!(
        values(&server.state, "rep", &[("instance", "a")]),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    assert_eq!(
        values(&server.state, "rep", &[("instance", "b")]),
        vec![10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    );
}

#[tokio::test]
async fn bad_bodies_get_the_exact_status_and_the_server_keeps_serving() {
    let server = start(|c| c.limits.max_body_bytes = 1 << 20).await;
    let url = &server.http;
    let t = now_ms();
    let good = encode(vec![ts(&[("__name__", "good")], &[(t, 1.0)])]);

    // Not snappy at all.
    let (status, _, text) = write(url, b"\xff\xff\xff\xff\xff\xff\xffgarbage".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("invalid snappy data"), "{text}");

    // Snappy around garbage, and around a truncated message.
    let garbage = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff\x0fnope")
        .unwrap();
    let (status, _, text) = write(url, garbage).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("invalid protobuf:"), "{text}");
    let whole = WriteRequest {
        timeseries: vec![ts(&[("__name__", "cut")], &[(t, 1.0)])],
        metadata: vec![],
    }
    .encode_to_vec();
    let cut = snap::raw::Encoder::new()
        .compress_vec(&whole[..whole.len() - 4])
        .unwrap();
    let (status, _, text) = write(url, cut).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.starts_with("invalid protobuf:"), "{text}");

    // Invalid UTF-8 in a label value: the whole request is refused, its valid series too.
    let mut raw = WriteRequest {
        timeseries: vec![
            ts(&[("__name__", "utf_ok")], &[(t, 1.0)]),
            ts(&[("__name__", "utf"), ("v", "ZZZZ")], &[(t, 1.0)]),
        ],
        metadata: vec![],
    }
    .encode_to_vec();
    let at = raw.windows(4).position(|w| w == b"ZZZZ").unwrap();
    raw[at..at + 4].copy_from_slice(b"\xc3\x28\xff\xfe");
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let (status, _, text) = write(url, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("UTF-8"), "{text}");
    assert!(series(&server.state, "utf_ok").is_empty());

    // Wrong content type or encoding.
    let (status, _, text) = write_with(url, good.clone(), "application/json", "snappy").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        text.contains("unsupported Content-Type \"application/json\""),
        "{text}"
    );
    let other = "application/x-protobuf;proto=io.prometheus.write.v3.Request";
    let (status, _, text) = write_with(url, good.clone(), other, "snappy").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        text.contains("proto=io.prometheus.write.v2.Request (2.0)"),
        "{text}"
    );
    let v1 = "application/x-protobuf;proto=prometheus.WriteRequest";
    let (status, _, _) = write_with(url, good.clone(), v1, "snappy").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, text) = write_with(url, good.clone(), "application/x-protobuf", "gzip").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text.contains("unsupported Content-Encoding \"gzip\""), "{text}");

    // Over the limit as sent; and a snappy header announcing 1 GiB, refused before
    // decompressing.
    let (status, _, text) = write(url, vec![0u8; 2 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text.contains("larger than the limit of 1048576 bytes"), "{text}");
    let mut bomb = Vec::new();
    let mut n: u64 = 1 << 30;
    while n >= 0x80 {
        bomb.push((n as u8) | 0x80);
        n >>= 7;
    }
    bomb.push(n as u8);
    bomb.extend_from_slice(&[0u8; 64]);
    let (status, _, text) = write(url, bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        text.contains("decompresses to more than the limit of 1048576 bytes (snappy)"),
        "{text}"
    );

    let after = encode(vec![ts(&[("__name__", "good")], &[(t + 1, 2.0)])]);
    let (status, _, _) = write(url, after).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(values(&server.state, "good", &[]), vec![1.0, 2.0]);
}
