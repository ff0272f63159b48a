//! OTLP/gRPC receiver: the three export services, each forwarding to the disk buffer.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::forward::{enrich, Forward};
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

#[tonic::async_trait]
impl MetricsService for Forward {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut message = request.into_inner();
        for rm in &mut message.resource_metrics {
            enrich(&mut rm.resource, &self.host_name);
        }
        self.forward(Signal::Metrics, message.encode_to_vec()).await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Forward {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut message = request.into_inner();
        for rs in &mut message.resource_spans {
            enrich(&mut rs.resource, &self.host_name);
        }
        self.forward(Signal::Traces, message.encode_to_vec()).await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Forward {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let mut message = request.into_inner();
        for rl in &mut message.resource_logs {
            enrich(&mut rl.resource, &self.host_name);
        }
        self.forward(Signal::Logs, message.encode_to_vec()).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
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
        .add_service(
            MetricsServiceServer::new(forward.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            TraceServiceServer::new(forward.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            LogsServiceServer::new(forward)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "local OTLP/gRPC receiver stopped");
    }
}
