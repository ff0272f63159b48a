//! Malformed protobuf over OTLP/gRPC is `INVALID_ARGUMENT` for every signal (a client must
//! not retry it), sent through a real tonic client as raw bytes; the server goes on serving.

use bytes::{Buf, BufMut};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};

use crate::ingest_support::{now_ns, start};

/// Sends and receives bytes as they are.
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Calls `path` with `body` as the request message.
async fn call(addr: std::net::SocketAddr, path: &'static str, body: &[u8]) -> Result<Vec<u8>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(body.to_vec());
    grpc.unary(request, PathAndQuery::from_static(path), RawBytes)
        .await
        .map(|r| r.into_inner())
}

const METHODS: [&str; 3] = [
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
];

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_for_every_signal() {
    let server = start(|_| {}).await;
    let garbage: [&[u8]; 3] = [
        b"not protobuf at all",
        // Field 1 claims 5 bytes, 3 follow.
        b"\x0a\x05abc",
        &[0xff; 12],
    ];
    for path in METHODS {
        for body in garbage {
            let status = call(server.grpc, path, body).await.unwrap_err();
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{path} {body:?}: {status:?}"
            );
            assert!(
                status.message().contains("invalid protobuf"),
                "{path}: {status:?}"
            );
        }
        // An empty request is a valid (empty) export.
        call(server.grpc, path, b"").await.unwrap();
    }
    // Counted like any refused request, for every signal.
    let refused = [("protocol", "otlp_grpc"), ("code", "INVALID_ARGUMENT")];
    let counted = server.state.metrics.get("didban_ingest_requests_total", &refused);
    assert_eq!(counted, Some(9.0));

    // Well-formed exports still go through the generated clients.
    let t = now_ns();
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "checkout".into(),
        start_time_unix_nano: t,
        end_time_unix_nano: t + 1_000,
        ..Default::default()
    };
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = TraceServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .unwrap();
    let reply = client.export(traces).await.unwrap().into_inner();
    assert_eq!(reply.partial_success, None);
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: t,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = LogsServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .unwrap();
    let reply = client.export(logs).await.unwrap().into_inner();
    assert_eq!(reply.partial_success, None);

    // An unknown method of a known service is UNIMPLEMENTED, not a decoding error.
    let status = call(
        server.grpc,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Other",
        b"",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}
