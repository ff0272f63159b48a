//! OTLP/gRPC `MetricsService/Export` over a real socket with the generated tonic client.

use crate::ingest_support::{gauge_request, kv, now_ns, start, values};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric, NumberDataPoint, Sum};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

async fn client(addr: std::net::SocketAddr) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX)
}

fn delta_sum(name: &str, start_ns: u64, time_ns: u64, value: i64) -> ExportMetricsServiceRequest {
    let mut req = gauge_request(name, &[], time_ns);
    req.resource_metrics[0].scope_metrics[0].metrics = vec![Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                start_time_unix_nano: start_ns,
                time_unix_nano: time_ns,
                value: Some(number_data_point::Value::AsInt(value)),
                ..Default::default()
            }],
            aggregation_temporality: 1,
            is_monotonic: true,
        })),
        ..Default::default()
    }];
    req
}

#[tokio::test]
async fn export_plain_and_gzip_with_delta_accumulation() {
    let server = start(|_| {}).await;
    let mut c = client(server.grpc).await;
    let t = now_ns();
    let reply = c.export(gauge_request("grpc.gauge", &[3.0], t)).await.unwrap();
    assert_eq!(reply.into_inner().partial_success, None);
    assert_eq!(values(&server.state, "grpc_gauge", &[("job", "test")]), vec![3.0]);

    let mut gz = client(server.grpc)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    gz.export(delta_sum("grpc.delta", t - 2_000_000_000, t - 1_000_000_000, 4))
        .await
        .unwrap();
    gz.export(delta_sum("grpc.delta", t - 1_000_000_000, t, 6))
        .await
        .unwrap();
    assert_eq!(values(&server.state, "grpc_delta_total", &[]), vec![4.0, 10.0]);

    let m = &server.state.metrics;
    let ok = [("protocol", "otlp_grpc"), ("code", "OK")];
    assert_eq!(m.get("didban_ingest_requests_total", &ok), Some(3.0));
    assert_eq!(
        m.get("didban_samples_ingested_total", &[("protocol", "otlp_grpc")]),
        Some(3.0)
    );
}

#[tokio::test]
async fn refused_points_are_reported_as_partial_success() {
    let server = start(|_| {}).await;
    let mut c = client(server.grpc).await;
    let t = now_ns();
    let mut req = gauge_request("grpc.partial", &[1.0, 2.0], t);
    if let Some(metric::Data::Gauge(g)) = &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        g.data_points[1].attributes.push(kv("huge", &"v".repeat(50_000)));
    }
    // A sum without temporality is invalid.
    let mut bad = delta_sum("grpc.unspecified", 0, t, 1);
    if let Some(metric::Data::Sum(s)) = &mut bad.resource_metrics[0].scope_metrics[0].metrics[0].data {
        s.aggregation_temporality = 0;
    }
    req.resource_metrics.extend(bad.resource_metrics);
    let partial = c.export(req).await.unwrap().into_inner().partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 2);
    assert!(
        partial.error_message.contains("\"huge\""),
        "{}",
        partial.error_message
    );
    assert_eq!(values(&server.state, "grpc_partial", &[("i", "0")]), vec![1.0]);

    // A delta point resent (a retry) is refused rather than counted twice.
    c.export(delta_sum("grpc.retry", t - 1_000_000_000, t, 5))
        .await
        .unwrap();
    let partial = c
        .export(delta_sum("grpc.retry", t - 1_000_000_000, t, 5))
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(partial.error_message.contains("not after the last point"));
    assert_eq!(values(&server.state, "grpc_retry_total", &[]), vec![5.0]);
}

#[tokio::test]
async fn oversized_messages_and_gzip_bombs_are_refused() {
    let server = start(|c| c.limits.max_body_bytes = 1 << 20).await;
    let t = now_ns();

    // Over the limit as sent.
    let mut req = gauge_request("grpc.big", &[1.0], t);
    if let Some(metric::Data::Gauge(g)) = &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        g.data_points[0].attributes.push(kv("pad", &"x".repeat(2 << 20)));
    }
    let err = client(server.grpc).await.export(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("the limit is: 1048576 bytes"), "{err}");

    // Small when compressed, 64 MiB when not.
    if let Some(metric::Data::Gauge(g)) = &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        g.data_points[0].attributes[1] = kv("pad", &"x".repeat(64 << 20));
    }
    let mut gz = client(server.grpc)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let err = gz.export(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("size limit"), "{err}");

    // Still serving.
    let mut c = client(server.grpc).await;
    c.export(gauge_request("grpc.after", &[1.0], t)).await.unwrap();
    assert_eq!(values(&server.state, "grpc_after", &[]), vec![1.0]);
}

/// Sends raw bytes as the request message of `MetricsService/Export`.
#[derive(Clone, Copy)]
struct RawRequestCodec;

impl tonic::codec::Codec for RawRequestCodec {
    type Encode = bytes::Bytes;
    type Decode = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
    type Encoder = RawRequestCodec;
    type Decoder = RawRequestCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl tonic::codec::Encoder for RawRequestCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawRequestCodec {
    type Item = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        prost::Message::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

async fn export_raw(addr: std::net::SocketAddr, body: &[u8]) -> Result<(), tonic::Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    );
    grpc.unary(
        tonic::Request::new(bytes::Bytes::copy_from_slice(body)),
        path,
        RawRequestCodec,
    )
    .await
    .map(|_| ())
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_and_unknown_fields_are_skipped() {
    use prost::Message;
    let server = start(|_| {}).await;
    let t = now_ns();

    // Truncated in the middle of a data point.
    let good = gauge_request("grpc.raw", &[2.0], t).encode_to_vec();
    let err = export_raw(server.grpc, &good[..good.len() - 3])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("invalid protobuf"), "{err}");
    // A length past the end, a wrong wire type.
    for body in [&[0x0a, 0x05, 0x01][..], &[0x08, 0x01][..]] {
        let err = export_raw(server.grpc, body).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    }

    // The same request with an unknown field appended is stored.
    let mut body = good.clone();
    body.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint 1
    export_raw(server.grpc, &body).await.unwrap();
    assert_eq!(values(&server.state, "grpc_raw", &[]), vec![2.0]);
}
