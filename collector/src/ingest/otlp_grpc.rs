//! OTLP/gRPC: the `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` method.
//! gzip requests are accepted; a message over the body limit (raw or decompressed) is
//! refused by tonic before it is decoded.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::pipeline::{Ingestor, Protocol};

/// The gRPC service implementation.
pub struct MetricsReceiver {
    ingestor: Arc<Ingestor>,
}

#[tonic::async_trait]
impl MetricsService for MetricsReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let request = request.into_inner();
        self.ingestor
            .count_bytes(Protocol::OtlpGrpc, request.encoded_len());
        let result = self.ingestor.export_otlp(request, Protocol::OtlpGrpc).await;
        match result {
            Ok(outcome) => {
                self.ingestor.count_request(Protocol::OtlpGrpc, "OK");
                let partial_success = if outcome.rejected_points > 0 {
                    Some(ExportMetricsPartialSuccess {
                        rejected_data_points: outcome.rejected_points,
                        error_message: outcome.error_message,
                    })
                } else {
                    None
                };
                Ok(Response::new(ExportMetricsServiceResponse { partial_success }))
            }
            Err(e) => {
                let status = e.grpc_status();
                self.ingestor
                    .count_request(Protocol::OtlpGrpc, code_name(status.code()));
                Err(status)
            }
        }
    }
}

/// The service, configured with gzip and the body limit.
pub fn service(ingestor: Arc<Ingestor>) -> MetricsServiceServer<MetricsReceiver> {
    let limit = ingestor.body_limit();
    MetricsServiceServer::new(MetricsReceiver { ingestor })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
}

/// Serves the service on `listener` until `shutdown` completes.
pub async fn serve(
    ingestor: Arc<Ingestor>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(service(ingestor))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}

/// The gRPC code in the `SCREAMING_SNAKE_CASE` spelling used in metrics.
pub fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
