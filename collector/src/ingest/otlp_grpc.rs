//! OTLP/gRPC: the `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` method.
//! gzip requests are accepted; a message over the body limit (raw or decompressed) is
//! refused by tonic before it is decoded, with `RESOURCE_EXHAUSTED` and no `RetryInfo`
//! (as grpc-go servers do), which OTLP clients do not retry.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
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
pub fn service(ingestor: Arc<Ingestor>) -> OversizeIsExhausted<MetricsServiceServer<MetricsReceiver>> {
    let limit = ingestor.body_limit();
    OversizeIsExhausted(
        MetricsServiceServer::new(MetricsReceiver { ingestor })
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(limit),
    )
}

/// Wraps a tonic service so that tonic's `OUT_OF_RANGE` for a message over the size limit
/// becomes `RESOURCE_EXHAUSTED`: OTLP clients retry `OUT_OF_RANGE`, and resending the same
/// oversized batch can never succeed. Nothing else in this service answers `OUT_OF_RANGE`.
#[derive(Clone)]
pub struct OversizeIsExhausted<S>(S);

impl<S> OversizeIsExhausted<S> {
    /// Wraps `service`.
    pub fn new(service: S) -> Self {
        OversizeIsExhausted(service)
    }
}

impl<S: NamedService> NamedService for OversizeIsExhausted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for OversizeIsExhausted<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let future = self.0.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            let headers = response.headers_mut();
            let out_of_range = (tonic::Code::OutOfRange as i32).to_string();
            if headers
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == out_of_range.as_bytes())
            {
                let exhausted = (tonic::Code::ResourceExhausted as i32).to_string();
                if let Ok(v) = http::HeaderValue::from_str(&exhausted) {
                    headers.insert("grpc-status", v);
                }
            }
            Ok(response)
        })
    }
}

/// Decides from a call's `authorization` metadata value whether it may write.
pub type IngestCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Refuses calls whose `authorization` metadata fails the check with `UNAUTHENTICATED`
/// (which OTLP exporters do not retry); lets everything through without a check.
#[derive(Clone)]
pub struct AuthInterceptor(Option<IngestCheck>);

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(check) = &self.0 else {
            return Ok(request);
        };
        let value = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if check(value) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "ingest needs an API token with the ingest scope (authorization: Bearer <token>)",
            ))
        }
    }
}

/// Serves the metrics service (and, with `signals`, the trace and logs services) on
/// `listener` until `shutdown` completes; with `auth`, every call must pass it.
pub async fn serve(
    ingestor: Arc<Ingestor>,
    signals: Option<Arc<super::signal_pipeline::SignalIngestor>>,
    auth: Option<IngestCheck>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use tonic::service::interceptor::InterceptedService;
    let guard = AuthInterceptor(auth);
    let traces = signals
        .clone()
        .map(super::otlp_signals::trace_service)
        .map(|s| InterceptedService::new(s, guard.clone()));
    let logs = signals
        .map(super::otlp_signals::logs_service)
        .map(|s| InterceptedService::new(s, guard.clone()));
    tonic::transport::Server::builder()
        .add_service(InterceptedService::new(service(ingestor), guard))
        .add_optional_service(traces)
        .add_optional_service(logs)
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
