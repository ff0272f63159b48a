//! The receivers inside the whole server (`server::run_until`) on free ports: each
//! protocol answers, the self-metrics show it at `/metrics`, and shutdown is clean.

use std::net::SocketAddr;

use crate::ingest_support::{gauge_request, now_ns};
use didban_collector::config::Config;
use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample, WriteRequest};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use tokio::sync::watch;

/// A port from the test kit's range, which nothing but this process hands out; released
/// just before the server binds it.
fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], didban_testkit::free_port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_answers_inside_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        http_addr: free_port(),
        otlp_http_addr: free_port(),
        otlp_grpc_addr: free_port(),
        ..Config::default()
    };
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(didban_collector::server::run_until(config.clone(), stop_rx));
    let http = reqwest::Client::new();
    let base = format!("http://{}", config.http_addr);
    let mut ready = false;
    for _ in 0..600 {
        let answer = http.get(format!("{base}/-/ready")).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        if server.is_finished() {
            panic!("server stopped during start-up: {:?}", server.await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "server not ready after 30 s");

    let resp = http
        .post(format!("http://{}/v1/metrics", config.otlp_http_addr))
        .header("content-type", "application/x-protobuf")
        .body(gauge_request("smoke.http", &[1.0], now_ns()).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let mut grpc = MetricsServiceClient::connect(format!("http://{}", config.otlp_grpc_addr))
        .await
        .unwrap();
    grpc.export(gauge_request("smoke.grpc", &[1.0], now_ns()))
        .await
        .unwrap();

    let write = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![WireLabel {
                name: "__name__".into(),
                value: "smoke_rw".into(),
            }],
            samples: vec![WireSample {
                value: 1.0,
                timestamp: (now_ns() / 1_000_000) as i64,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&write.encode_to_vec())
        .unwrap();
    let resp = http
        .post(format!("{base}/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "didban_ingest_requests_total{code=\"200\",protocol=\"otlp_http\"} 1",
        "didban_ingest_requests_total{code=\"OK\",protocol=\"otlp_grpc\"} 1",
        "didban_ingest_requests_total{code=\"204\",protocol=\"remote_write\"} 1",
        "didban_samples_ingested_total{protocol=\"remote_write\"} 1",
        "# TYPE didban_ingest_request_bytes_total counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
}
