//! The local OTLP receiver: spans and logs from a real OpenTelemetry Python SDK app reach the
//! collector through the agent's disk buffer, across a collector outage and an agent restart;
//! OTLP/HTTP with JSON, protobuf and gzip; malformed protobuf over gRPC is INVALID_ARGUMENT;
//! a taken port.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::{free_port, start_grpc, Recorder};
use crate::common::scripts::spawn_python;
use didban_agent::config::Config;
use didban_agent::runner::Agent;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

fn config(data: &std::path::Path, endpoint: &str, grpc: &str, http: &str) -> Config {
    Config::parse(&format!(
        "[agent]\ndata_dir = \"{}\"\nhostname = \"app-host\"\n[host]\nenabled = false\n\
         [export]\nendpoint = \"{endpoint}\"\nretry_initial_backoff = \"50ms\"\nretry_max_backoff = \"200ms\"\n\
         [receiver]\nenabled = true\ngrpc_listen = \"{grpc}\"\nhttp_listen = \"{http}\"\n",
        data.display()
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spans_and_logs_survive_an_outage_and_a_restart() {
    let collector_port = free_port();
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let dir = tempfile::tempdir().unwrap();

    // Collector down; the app sends through the agent, which buffers on disk.
    let agent = Agent::start(&config(dir.path(), &endpoint, "127.0.0.1:0", "")).unwrap();
    let grpc = agent.receiver_addrs().0.unwrap();
    let (_app, done) =
        tokio::task::spawn_blocking(move || spawn_python("otel_app.py", &[&format!("http://{grpc}"), "40"]))
            .await
            .unwrap();
    assert_eq!(done, "DONE");
    assert!(agent.export_snapshot().pending_records > 0);
    agent.shutdown().await;

    // Agent restarted (receiver elsewhere), then the collector comes up: everything arrives.
    let agent = Agent::start(&config(dir.path(), &endpoint, "127.0.0.1:0", "")).unwrap();
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(collector_port, recorder.clone()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while recorder.spans().len() < 40 || recorder.log_records().len() < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "spans {} logs {}",
            recorder.spans().len(),
            recorder.log_records().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = recorder.spans();
    let mut names: Vec<String> = spans.iter().map(|s| s.2.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 40, "each span once");
    assert!(
        spans
            .iter()
            .all(|(service, host, _)| service == "checkout" && host == "app-host"),
        "{spans:?}"
    );
    let logs = recorder.log_records();
    assert!(logs.iter().any(|l| l.2 == "log line 39"), "{logs:?}");
    assert!(logs
        .iter()
        .all(|(service, host, _)| service == "checkout" && host == "app-host"));
    agent.shutdown().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_receiver_takes_json_protobuf_and_gzip() {
    let recorder = Arc::new(Recorder::default());
    let collector = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&config(dir.path(), &collector.endpoint(), "", "127.0.0.1:0")).unwrap();
    let http = agent.receiver_addrs().1.unwrap();
    let client = reqwest::Client::new();

    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
        "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "name":"GET /","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000"}]}]}]}"#;
    let r = client
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("zipped".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&logs.encode_to_vec()).unwrap();
    let r = client
        .post(format!("http://{http}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = client
        .post(format!("http://{http}/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("/v1/metrics body does not decode"));

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while recorder.spans().is_empty() || recorder.log_records().is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        recorder.spans(),
        vec![("web".to_string(), "app-host".to_string(), "GET /".to_string())]
    );
    assert_eq!(
        recorder.log_records(),
        vec![(String::new(), "app-host".to_string(), "zipped".to_string())]
    );
    agent.shutdown().await;
    collector.stop().await;
}

#[tokio::test]
async fn taken_port_is_reported_and_the_agent_runs_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let logs = crate::common::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&config(
        dir.path(),
        &format!("http://127.0.0.1:{}", free_port()),
        &addr,
        "",
    ))
    .unwrap();
    assert_eq!(agent.receiver_addrs(), (None, None));
    let text = logs.text();
    assert!(
        text.contains("local OTLP receiver not started") && text.contains(&addr),
        "{text}"
    );
    agent.shutdown().await;
}

/// A gRPC codec passing the message bytes through unchanged, to send malformed protobuf.
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

#[tokio::test]
async fn grpc_receiver_refuses_malformed_protobuf_as_invalid_argument() {
    let recorder = Arc::new(Recorder::default());
    let collector = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&config(dir.path(), &collector.endpoint(), "127.0.0.1:0", "")).unwrap();
    let grpc = agent.receiver_addrs().0.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let paths = [
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    ];
    for path in paths {
        let mut client = tonic::client::Grpc::new(channel.clone());
        client.ready().await.unwrap();
        // Field 1 announces 9 bytes; 2 follow.
        let bad = tonic::Request::new(b"\x0a\x09ab".to_vec());
        let status = client
            .unary(
                bad,
                tonic::codegen::http::uri::PathAndQuery::from_static(path),
                Raw,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{path}: {status:?}");
        assert!(
            status.message().contains("invalid protobuf"),
            "{path}: {status:?}"
        );
        // An empty export is well-formed and accepted.
        client.ready().await.unwrap();
        let empty = tonic::Request::new(Vec::new());
        client
            .unary(
                empty,
                tonic::codegen::http::uri::PathAndQuery::from_static(path),
                Raw,
            )
            .await
            .unwrap();
    }
    agent.shutdown().await;
}
