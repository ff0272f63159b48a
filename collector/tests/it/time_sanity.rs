//! Time sanity through the whole server: the cases (a sample a year ahead, a client
//! clock 7 h ahead, `time_unix_nano = u64::MAX`) are refused item by item with a reason,
//! the rest of each request is stored, and normal writes keep working, also after a restart.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::StatusCode;

use crate::ingest_support::{gauge_request, now_ns};
use crate::origin::remote_write_body;
use crate::real_server::RealServer;

const HOUR_MS: i64 = 3_600_000;

/// Posts a remote_write body; the status and the reply text.
async fn remote_write(server: &RealServer, body: Vec<u8>) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/write", server.http()))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Two series in one body: `sanity_future` at `bad_ms`, `sanity_good` at `good_ms`.
fn mixed_body(bad_ms: i64, good_ms: i64) -> Vec<u8> {
    use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample, WriteRequest};
    let series = |name: &str, t: i64| TimeSeries {
        labels: vec![WireLabel {
            name: "__name__".into(),
            value: name.into(),
        }],
        samples: vec![WireSample {
            value: 1.0,
            timestamp: t,
        }],
        ..Default::default()
    };
    let write = WriteRequest {
        timeseries: vec![series("sanity_future", bad_ms), series("sanity_good", good_ms)],
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&write.encode_to_vec())
        .unwrap()
}

/// Series named `name` over all time, by the series API.
async fn stored(server: &RealServer, name: &str) -> usize {
    // Up to the year 2286: a sample stored a year ahead would be found.
    let url = format!(
        "{}/api/v1/series?match[]={name}&start=0&end=9999999999",
        server.http()
    );
    let body: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    body["data"].as_array().map_or(0, Vec::len)
}

fn now_ms() -> i64 {
    didban_testkit::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_items_are_refused_one_by_one_and_writes_go_on_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = RealServer::start(dir.path(), |_| {}).await;

    // remote_write: the far-future sample is named in a 400, the other one is stored.
    for (i, ahead) in [365 * 24 * HOUR_MS, 7 * HOUR_MS].into_iter().enumerate() {
        let now = now_ms() + i as i64;
        let (status, text) = remote_write(&server, mixed_body(now + ahead, now)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains("sanity_future"), "{text}");
        assert!(
            text.contains(&(now + ahead).to_string()),
            "names the timestamp: {text}"
        );
        assert!(text.contains("too far in the future"), "{text}");
        // Every normal write from every client still succeeds.
        let (status, text) =
            remote_write(&server, remote_write_body("sanity_after", now_ms() + i as i64)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    }
    assert_eq!(stored(&server, "sanity_future").await, 0);
    assert_eq!(stored(&server, "sanity_good").await, 1);

    // OTLP metrics: u64::MAX nanoseconds is one refused point in the partial success.
    let mut metrics = MetricsServiceClient::connect(server.grpc()).await.unwrap();
    let mut request = gauge_request("sanity_otlp", &[1.0, 2.0], now_ns());
    let data = request.resource_metrics[0].scope_metrics[0].metrics[0]
        .data
        .as_mut();
    if let Some(Data::Gauge(gauge)) = data {
        gauge.data_points[0].time_unix_nano = u64::MAX;
    }
    let reply = metrics.export(request).await.unwrap().into_inner();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("too far in the future"),
        "{partial:?}"
    );
    let reply = metrics
        .export(gauge_request("sanity_otlp_after", &[1.0], now_ns()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.partial_success, None);

    // Spans and log records: refused one by one, the reason in the partial success.
    let t = now_ns();
    let span = |id: u8, start: u64| Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        name: "op".into(),
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(1_000),
        ..Default::default()
    };
    let seven_hours = 7 * 3_600 * 1_000_000_000;
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(1, u64::MAX), span(2, t + seven_hours), span(3, t)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = TraceServiceClient::connect(server.grpc()).await.unwrap();
    let partial = client
        .export(traces)
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("ahead of the server clock"),
        "{partial:?}"
    );
    let record = |time: u64| LogRecord {
        time_unix_nano: time,
        ..Default::default()
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record(u64::MAX), record(t + seven_hours), record(t)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = LogsServiceClient::connect(server.grpc()).await.unwrap();
    let partial = client
        .export(logs)
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial.error_message.contains("ahead of the server clock"),
        "{partial:?}"
    );
    server.stop().await;

    // After a restart on the same data, normal writes still succeed.
    let server = RealServer::start(dir.path(), |_| {}).await;
    let (status, text) = remote_write(&server, remote_write_body("sanity_after", now_ms() + 10)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (status, text) = remote_write(&server, remote_write_body("sanity_restarted", now_ms())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(stored(&server, "sanity_good").await, 1);
    assert_eq!(stored(&server, "sanity_future").await, 0);
    server.stop().await;
}
