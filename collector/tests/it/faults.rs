//! A failing metric WAL as the receivers see it: every protocol answers "retry later"
//! (HTTP 503 with `Retry-After`, gRPC `UNAVAILABLE` with `RetryInfo`), the refused
//! requests leave no series behind, the self-metrics and the readiness report name the
//! fault, and ingest works again as soon as the WAL does, without a restart.

use didban_collector::ingest::error::{RetryInfo, RpcStatus, RETRY_INFO_TYPE};
use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample, WriteRequest};
use didban_collector::selfmon::gauges::refresh_store_gauges;
use didban_store::WalFaultOp;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use reqwest::StatusCode;

use crate::ingest_support::{gauge_request, now_ns, series, start};

fn remote_write_body(job: &str, t_ms: i64) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                WireLabel {
                    name: "__name__".into(),
                    value: "rw_fault".into(),
                },
                WireLabel {
                    name: "job".into(),
                    value: job.into(),
                },
            ],
            samples: vec![WireSample {
                timestamp: t_ms,
                value: 1.0,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

async fn otlp_http(base: &str, name: &str, values: &[f64]) -> (StatusCode, Option<String>) {
    let body = gauge_request(name, values, now_ns()).encode_to_vec();
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), retry)
}

async fn remote_write(base: &str, job: &str) -> (StatusCode, Option<String>) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(remote_write_body(job, didban_testkit::now_ms()))
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), retry)
}

#[tokio::test]
async fn a_wal_fault_is_a_retryable_503_everywhere_and_leaves_no_series() {
    let server = start(|_| {}).await;
    let state = &server.state;
    let db = &state.stores.metrics;
    let (status, _) = otlp_http(&server.otlp_http, "before.fault", &[1.0]).await;
    assert_eq!(status, StatusCode::OK);
    let series_before = db.stats().head_series;

    // The disk is full until further notice.
    db.inject_wal_fault(WalFaultOp::Write, u32::MAX);
    for round in 0..20 {
        let values: Vec<f64> = (0..10).map(f64::from).collect();
        let (status, retry) = otlp_http(&server.otlp_http, &format!("fault.http.{round}"), &values).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "round {round}");
        assert_eq!(retry.as_deref(), Some("5"));
        let (status, retry) = remote_write(&server.http, &format!("job-{round}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "round {round}");
        assert_eq!(retry.as_deref(), Some("5"));
    }
    let mut grpc = MetricsServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .unwrap();
    let status = grpc
        .export(gauge_request("fault.grpc", &[1.0, 2.0], now_ns()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().contains("No space left on device"),
        "{}",
        status.message()
    );
    let details = RpcStatus::decode(status.details()).unwrap();
    assert_eq!(details.details[0].type_url, RETRY_INFO_TYPE);
    let retry = RetryInfo::decode(details.details[0].value.as_slice()).unwrap();
    assert_eq!(retry.retry_delay.unwrap().seconds, 5);

    assert_eq!(
        db.stats().head_series,
        series_before,
        "refused requests left series"
    );
    assert!(series(state, "rw_fault").is_empty());
    let faults = state.stores.faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(faults[0].starts_with("metrics WAL: "), "{faults:?}");
    refresh_store_gauges(state);
    assert_eq!(
        state.metrics.get("didban_storage_fault", &[("store", "metrics")]),
        Some(1.0)
    );
    assert_eq!(
        state.metrics.get("didban_storage_fault", &[("store", "logs")]),
        Some(0.0)
    );
    assert!(
        state
            .metrics
            .get("didban_wal_errors_total", &[("store", "metrics")])
            .unwrap()
            >= 41.0
    );
    assert!(state.metrics.get("didban_storage_total_bytes", &[]).unwrap() > 0.0);
    assert!(state.metrics.get("didban_storage_free_bytes", &[]).is_some());

    // Space is back: the next request is stored, with no restart.
    db.inject_wal_fault(WalFaultOp::Write, 0);
    let (status, retry) = remote_write(&server.http, "after").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(retry, None);
    let (status, _) = otlp_http(&server.otlp_http, "after.fault", &[1.0]).await;
    assert_eq!(status, StatusCode::OK);
    grpc.export(gauge_request("after.grpc", &[1.0], now_ns()))
        .await
        .unwrap();
    assert_eq!(series(state, "rw_fault").len(), 1);
    assert!(state.stores.faults().is_empty());
    refresh_store_gauges(state);
    assert_eq!(
        state.metrics.get("didban_storage_fault", &[("store", "metrics")]),
        Some(0.0)
    );
}
