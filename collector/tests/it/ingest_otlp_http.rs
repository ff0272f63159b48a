//! OTLP/HTTP `/v1/metrics` over a real socket: protobuf, JSON, compression, partial
//! success, and every kind of bad input.

use std::io::Write;

use crate::ingest_support::{gauge_request, kv, now_ns, series, start, values};
use didban_collector::ingest::http::RpcStatus;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use reqwest::StatusCode;

const PROTOBUF: &str = "application/x-protobuf";

async fn post(
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/metrics"))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn status_message(body: &[u8]) -> String {
    RpcStatus::decode(body).unwrap().message
}

#[tokio::test]
async fn protobuf_json_gzip_and_deflate_land_in_the_store() {
    let server = start(|_| {}).await;
    let t = now_ns();

    let body = gauge_request("proto.gauge", &[1.5], t).encode_to_vec();
    let (status, headers, reply) = post(&server.otlp_http, PROTOBUF, None, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], PROTOBUF);
    let reply = ExportMetricsServiceResponse::decode(reply.as_slice()).unwrap();
    assert_eq!(reply.partial_success, None);
    assert_eq!(
        values(&server.state, "proto_gauge", &[("job", "test")]),
        vec![1.5]
    );

    let body = gauge_request("gzip.gauge", &[2.5], t).encode_to_vec();
    let (status, _, _) = post(&server.otlp_http, PROTOBUF, Some("gzip"), gzip(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values(&server.state, "gzip_gauge", &[]), vec![2.5]);

    // OTLP/JSON as the specification writes it: camelCase, 64-bit integers as strings,
    // hex trace and span ids, enums as numbers.
    let ts = t.to_string();
    let json = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[
            {{"key":"service.name","value":{{"stringValue":"json-svc"}}}},
            {{"key":"service.instance.id","value":{{"stringValue":"i-1"}}}}]}},
          "scopeMetrics":[{{"scope":{{"name":"lib","version":"2"}},"metrics":[
            {{"name":"json.counter","unit":"{{item}}","sum":{{"aggregationTemporality":2,"isMonotonic":true,
              "dataPoints":[{{"asInt":"42","startTimeUnixNano":"{start}","timeUnixNano":"{ts}",
                "attributes":[{{"key":"n","value":{{"intValue":"3"}}}}],
                "exemplars":[{{"asDouble":1.5,"timeUnixNano":"{ts}",
                  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}}]}}]}}}},
            {{"name":"json.hist","unit":"ms","histogram":{{"aggregationTemporality":2,
              "dataPoints":[{{"timeUnixNano":{ts},"count":"3","sum":6.0,
                "bucketCounts":["1",2],"explicitBounds":[5.0]}}]}}}}
          ]}}]}}]}}"#,
        start = t - 1_000_000_000,
    );
    let (status, headers, reply) = post(
        &server.otlp_http,
        "application/json",
        None,
        json.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply));
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(reply, b"{}");
    let labels = [
        ("job", "json-svc"),
        ("instance", "i-1"),
        ("n", "3"),
        ("otel_scope_version", "2"),
    ];
    assert_eq!(values(&server.state, "json_counter_total", &labels), vec![42.0]);
    let bucket = "json_hist_milliseconds_bucket";
    assert_eq!(values(&server.state, bucket, &[("le", "5")]), vec![1.0]);
    assert_eq!(values(&server.state, bucket, &[("le", "+Inf")]), vec![3.0]);

    // deflate (zlib) JSON, with a charset parameter on the media type.
    let json = json.replace("json.counter", "deflated.counter");
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(json.as_bytes()).unwrap();
    let (status, _, _) = post(
        &server.otlp_http,
        "application/json; charset=utf-8",
        Some("deflate"),
        enc.finish().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values(&server.state, "deflated_counter_total", &[]), vec![42.0]);

    let m = &server.state.metrics;
    let ok = [("protocol", "otlp_http"), ("code", "200")];
    assert_eq!(m.get("didban_ingest_requests_total", &ok), Some(4.0));
    let ingested = m.get("didban_samples_ingested_total", &[("protocol", "otlp_http")]);
    assert!(ingested.unwrap() >= 8.0, "{ingested:?}");
    let bytes = m.get("didban_ingest_request_bytes_total", &[("protocol", "otlp_http")]);
    assert!(bytes.unwrap() > 100.0);
}

#[tokio::test]
async fn refused_points_are_reported_as_partial_success() {
    let server = start(|_| {}).await;
    let mut req = gauge_request("partial", &[1.0, 2.0], now_ns());
    let points = match &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(g)) => &mut g.data_points,
        _ => unreachable!(),
    };
    points[1].attributes.push(kv("huge", &"v".repeat(100_000)));
    let (status, _, reply) = post(&server.otlp_http, PROTOBUF, None, req.encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let partial = ExportMetricsServiceResponse::decode(reply.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial
            .error_message
            .starts_with("value of label \"huge\" is 100000 bytes; the limit is 4096"),
        "{}",
        partial.error_message
    );
    assert_eq!(values(&server.state, "partial", &[("i", "0")]), vec![1.0]);
    let rejected = server.state.metrics.get(
        "didban_samples_rejected_total",
        &[("protocol", "otlp_http"), ("reason", "label_value_too_long")],
    );
    assert_eq!(rejected, Some(1.0));

    // The same in JSON (a millisecond later): rejectedDataPoints as a string.
    if let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(g)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        for p in g.data_points.iter_mut() {
            p.time_unix_nano += 1_000_000;
        }
    }
    let json = serde_json::to_vec(&req).unwrap();
    let (status, _, reply) = post(&server.otlp_http, "application/json", None, json).await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["partialSuccess"]["rejectedDataPoints"], "1");
    assert!(reply["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("\"huge\""));
}

#[tokio::test]
async fn bad_input_gets_the_exact_status_and_names_the_problem() {
    let server = start(|c| c.limits.max_body_bytes = 1 << 20).await;
    let url = &server.otlp_http;
    let good = gauge_request("good", &[1.0], now_ns()).encode_to_vec();

    // Garbage bytes.
    let (status, headers, body) = post(url, PROTOBUF, None, b"\xff\xfe\x00garbage".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], PROTOBUF);
    let status_body = RpcStatus::decode(body.as_slice()).unwrap();
    assert_eq!(status_body.code, 3, "INVALID_ARGUMENT");
    assert!(
        status_body.message.starts_with("invalid protobuf:"),
        "{}",
        status_body.message
    );

    // Truncated protobuf.
    let (status, _, body) = post(url, PROTOBUF, None, good[..good.len() - 3].to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(status_message(&body).starts_with("invalid protobuf:"));

    // Invalid UTF-8 in a string field.
    let named = gauge_request("AAAAAAAA", &[1.0], now_ns()).encode_to_vec();
    let at = named.windows(8).position(|w| w == b"AAAAAAAA").unwrap();
    let mut broken = named.clone();
    broken[at..at + 8].copy_from_slice(b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8");
    let (status, _, body) = post(url, PROTOBUF, None, broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = status_message(&body);
    assert!(message.contains("UTF-8"), "{message}");

    // Bad JSON: message in JSON, naming the problem.
    let (status, _, body) = post(
        url,
        "application/json",
        None,
        b"{\"resourceMetrics\": 7}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid OTLP JSON:"),
        "{body}"
    );

    // Wrong content type, unknown encoding.
    let (status, _, body) = post(url, "text/plain", None, good.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(String::from_utf8_lossy(&body).contains("unsupported Content-Type \"text/plain\""));
    let (status, _, body) = post(url, PROTOBUF, Some("br"), good.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(status_message(&body).contains("unsupported Content-Encoding \"br\""));

    // Corrupt gzip.
    let (status, _, body) = post(url, PROTOBUF, Some("gzip"), b"\x1f\x8bnot really".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(status_message(&body).starts_with("invalid gzip data"));

    // Over the limit as sent.
    let (status, _, body) = post(url, PROTOBUF, None, vec![0u8; 2 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(status_message(&body).contains("larger than the limit of 1048576 bytes"));

    // A gzip bomb: 1 GiB of zeros, built by streaming the encoder.
    let bomb = gzip_bomb(1 << 30);
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let (status, _, body) = post(url, PROTOBUF, Some("gzip"), bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(status_message(&body).contains("decompresses to more than the limit of 1048576 bytes"));

    // Wrong method.
    let resp = reqwest::get(format!("{url}/v1/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Still serving.
    let (status, _, _) = post(url, PROTOBUF, None, good).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(series(&server.state, "good").len(), 1);
    let m = &server.state.metrics;
    assert_eq!(
        m.get(
            "didban_ingest_requests_total",
            &[("protocol", "otlp_http"), ("code", "400")]
        ),
        Some(5.0)
    );
    assert_eq!(
        m.get(
            "didban_ingest_requests_total",
            &[("protocol", "otlp_http"), ("code", "413")]
        ),
        Some(2.0)
    );
}

/// `size` zero bytes, gzip-compressed by streaming them through the encoder.
fn gzip_bomb(size: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < size {
        enc.write_all(&chunk).unwrap();
        written += chunk.len();
    }
    enc.finish().unwrap()
}

#[tokio::test]
async fn odd_but_valid_data_is_accepted() {
    let server = start(|_| {}).await;
    let t = now_ns();
    // NaN and infinities are stored as they are.
    let req = gauge_request("odd.values", &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY], t);
    let (status, _, reply) = post(&server.otlp_http, PROTOBUF, None, req.encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ExportMetricsServiceResponse::decode(reply.as_slice())
            .unwrap()
            .partial_success,
        None
    );
    assert!(values(&server.state, "odd_values", &[("i", "0")])[0].is_nan());
    assert_eq!(
        values(&server.state, "odd_values", &[("i", "1")]),
        vec![f64::INFINITY]
    );
    assert_eq!(
        values(&server.state, "odd_values", &[("i", "2")]),
        vec![f64::NEG_INFINITY]
    );

    // Invalid metric and label names are sanitised; duplicate keys are joined with `;`.
    let mut req = gauge_request("9 weird-name.µs", &[1.0], t);
    if let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(g)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        g.data_points[0].attributes = vec![kv("bad key!", "a"), kv("dup", "1"), kv("dup", "2")];
    }
    let (status, _, _) = post(&server.otlp_http, PROTOBUF, None, req.encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let stored = series(&server.state, "_9_weird_name_s");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].labels.get("bad_key_"), Some("a"));
    assert_eq!(stored[0].labels.get("dup"), Some("1;2"));
}
