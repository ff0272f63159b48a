//! OTLP receivers for traces and logs: `POST /v1/traces` and `POST /v1/logs` on the
//! OTLP/HTTP port, `TraceService/Export` and `LogsService/Export` on the OTLP/gRPC port.
//! Encodings, limits, status codes and partial success are those of `/v1/metrics`
//! ([`super::http`], [`super::grpc`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;
use tonic::codec::CompressionEncoding;

use super::grpc::{code_name, OversizeIsExhausted};
use super::http::{error_reply, finish, plain_error, read_request, reply, request_format};
use super::pipeline::{OtlpOutcome, Protocol};
use super::signal_pipeline::SignalIngestor;

/// The `/v1/traces` and `/v1/logs` routes.
pub fn router(ingestor: Arc<SignalIngestor>) -> Router {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .route("/v1/logs", post(export_logs))
        .layer(DefaultBodyLimit::disable())
        .with_state(ingestor)
}

async fn export_traces(State(s): State<Arc<SignalIngestor>>, headers: HeaderMap, body: Body) -> Response {
    let format = match request_format(&headers) {
        Ok(f) => f,
        Err(e) => return finish(&s.ingestor, plain_error(&e)),
    };
    let result = async {
        let request = read_request::<ExportTraceServiceRequest>(&s.ingestor, &headers, body, format).await?;
        s.export_traces(request, Protocol::OtlpHttp).await
    }
    .await;
    let response = match result {
        Ok(outcome) => {
            let partial = trace_partial(&outcome);
            let body = match &partial {
                Some(p) => json!({"partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => json!({}),
            };
            reply(
                format,
                &ExportTraceServiceResponse {
                    partial_success: partial,
                },
                body,
            )
        }
        Err(e) => error_reply(&e, format),
    };
    finish(&s.ingestor, response)
}

async fn export_logs(State(s): State<Arc<SignalIngestor>>, headers: HeaderMap, body: Body) -> Response {
    let format = match request_format(&headers) {
        Ok(f) => f,
        Err(e) => return finish(&s.ingestor, plain_error(&e)),
    };
    let result = async {
        let request = read_request::<ExportLogsServiceRequest>(&s.ingestor, &headers, body, format).await?;
        s.export_logs(request, Protocol::OtlpHttp).await
    }
    .await;
    let response = match result {
        Ok(outcome) => {
            let partial = logs_partial(&outcome);
            let body = match &partial {
                Some(p) => json!({"partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => json!({}),
            };
            reply(
                format,
                &ExportLogsServiceResponse {
                    partial_success: partial,
                },
                body,
            )
        }
        Err(e) => error_reply(&e, format),
    };
    finish(&s.ingestor, response)
}

fn trace_partial(o: &OtlpOutcome) -> Option<ExportTracePartialSuccess> {
    if o.rejected_points > 0 || !o.error_message.is_empty() {
        Some(ExportTracePartialSuccess {
            rejected_spans: o.rejected_points,
            error_message: o.error_message.clone(),
        })
    } else {
        None
    }
}

fn logs_partial(o: &OtlpOutcome) -> Option<ExportLogsPartialSuccess> {
    if o.rejected_points > 0 || !o.error_message.is_empty() {
        Some(ExportLogsPartialSuccess {
            rejected_log_records: o.rejected_points,
            error_message: o.error_message.clone(),
        })
    } else {
        None
    }
}

/// The gRPC trace and log services.
pub struct SignalReceiver {
    ingestor: Arc<SignalIngestor>,
}

impl SignalReceiver {
    fn answer<T>(
        &self,
        result: Result<T, super::error::IngestError>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        match result {
            Ok(reply) => {
                self.ingestor.ingestor.count_request(Protocol::OtlpGrpc, "OK");
                Ok(tonic::Response::new(reply))
            }
            Err(e) => {
                let status = e.grpc_status();
                self.ingestor
                    .ingestor
                    .count_request(Protocol::OtlpGrpc, code_name(status.code()));
                Err(status)
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for SignalReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        self.ingestor
            .ingestor
            .count_bytes(Protocol::OtlpGrpc, request.encoded_len());
        let result = self.ingestor.export_traces(request, Protocol::OtlpGrpc).await;
        self.answer(result.map(|o| ExportTraceServiceResponse {
            partial_success: trace_partial(&o),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for SignalReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        self.ingestor
            .ingestor
            .count_bytes(Protocol::OtlpGrpc, request.encoded_len());
        let result = self.ingestor.export_logs(request, Protocol::OtlpGrpc).await;
        self.answer(result.map(|o| ExportLogsServiceResponse {
            partial_success: logs_partial(&o),
        }))
    }
}

/// The trace service, with gzip and the body limit.
pub fn trace_service(
    ingestor: Arc<SignalIngestor>,
) -> OversizeIsExhausted<TraceServiceServer<SignalReceiver>> {
    let limit = ingestor.ingestor.body_limit();
    OversizeIsExhausted::new(
        TraceServiceServer::new(SignalReceiver { ingestor })
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(limit),
    )
}

/// The logs service, with gzip and the body limit.
pub fn logs_service(ingestor: Arc<SignalIngestor>) -> OversizeIsExhausted<LogsServiceServer<SignalReceiver>> {
    let limit = ingestor.ingestor.body_limit();
    OversizeIsExhausted::new(
        LogsServiceServer::new(SignalReceiver { ingestor })
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(limit),
    )
}
