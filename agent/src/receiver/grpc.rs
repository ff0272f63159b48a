//! OTLP/gRPC receiver: the three export services, each forwarding to the disk buffer.
//! Requests are decoded by [`DecodingService`], so malformed protobuf is answered
//! `INVALID_ARGUMENT` (a sender must not retry it), not tonic's `INTERNAL`.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::sync::watch;
use tonic::codegen::BoxFuture;
use tonic::{Response, Status};

use super::forward::{enrich, Forward};
use super::grpc_decode::{DecodingService, UnaryExport};
use crate::export::Signal;

const MAX_MESSAGE: usize = 16 * 1024 * 1024;

impl Forward {
    /// Buffers one request; UNAVAILABLE (retryable for OTLP senders) if the buffer failed.
    async fn forward(&self, signal: Signal, bytes: Vec<u8>) -> Result<(), Status> {
        self.sink.send(signal, bytes).await.map_err(|e| {
            tracing::error!(error = %e, "local receiver: could not buffer a request");
            Status::unavailable("agent buffer unavailable")
        })
    }
}

/// One signal's export method over [`Forward`].
struct Export<S>(Forward, std::marker::PhantomData<fn() -> S>);

/// The metrics signal.
struct Metrics;
/// The traces signal.
struct Traces;
/// The logs signal.
struct Logs;

impl<S> Export<S> {
    fn service(forward: Forward) -> DecodingService<Self> {
        DecodingService::new(Arc::new(Export(forward, std::marker::PhantomData)), MAX_MESSAGE)
    }
}

/// Counted nowhere else: the sender gets the reason, the agent notes it at debug level.
fn undecodable(signal: &str) {
    tracing::debug!(
        signal,
        "local receiver: malformed protobuf refused (INVALID_ARGUMENT)"
    );
}

impl UnaryExport for Export<Metrics> {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;

    fn export(self: Arc<Self>, mut message: Self::Request) -> BoxFuture<Response<Self::Response>, Status> {
        Box::pin(async move {
            for rm in &mut message.resource_metrics {
                enrich(&mut rm.resource, &self.0.host_name);
            }
            self.0.forward(Signal::Metrics, message.encode_to_vec()).await?;
            Ok(Response::new(ExportMetricsServiceResponse::default()))
        })
    }

    fn undecodable(&self) {
        undecodable("metrics");
    }
}

impl UnaryExport for Export<Traces> {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    fn export(self: Arc<Self>, mut message: Self::Request) -> BoxFuture<Response<Self::Response>, Status> {
        Box::pin(async move {
            for rs in &mut message.resource_spans {
                enrich(&mut rs.resource, &self.0.host_name);
            }
            self.0.forward(Signal::Traces, message.encode_to_vec()).await?;
            Ok(Response::new(ExportTraceServiceResponse::default()))
        })
    }

    fn undecodable(&self) {
        undecodable("traces");
    }
}

impl UnaryExport for Export<Logs> {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    fn export(self: Arc<Self>, mut message: Self::Request) -> BoxFuture<Response<Self::Response>, Status> {
        Box::pin(async move {
            for rl in &mut message.resource_logs {
                enrich(&mut rl.resource, &self.0.host_name);
            }
            self.0.forward(Signal::Logs, message.encode_to_vec()).await?;
            Ok(Response::new(ExportLogsServiceResponse::default()))
        })
    }

    fn undecodable(&self) {
        undecodable("logs");
    }
}

/// Serves until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    forward: Forward,
    mut stop: watch::Receiver<bool>,
) {
    let incoming = futures::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(socket, _)| socket);
        Some((accepted, l))
    });
    let result = tonic::transport::Server::builder()
        .add_service(Export::<Metrics>::service(forward.clone()))
        .add_service(Export::<Traces>::service(forward.clone()))
        .add_service(Export::<Logs>::service(forward))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "local OTLP/gRPC receiver stopped");
    }
}
