//! OTLP/HTTP: `POST /v1/metrics` with a protobuf or JSON `ExportMetricsServiceRequest`,
//! optionally gzip/deflate compressed. Replies follow the OTLP/HTTP specification: 200 with
//! an `ExportMetricsServiceResponse` (with `partial_success` when points were refused),
//! 400/413/415 with a `google.rpc.Status` body, 429/503 with `Retry-After`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;

use super::body::{decompress, read_limited, Encoding};
pub use super::error::RpcStatus;
use super::error::{IngestError, RETRY_AFTER_SECONDS};
use super::pipeline::{Ingestor, OtlpOutcome, Protocol};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// How the request (and so the reply) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Protobuf,
    Json,
}

/// The `/v1/metrics`, `/v1/traces` and `/v1/logs` routes.
pub fn router(ingestor: Arc<Ingestor>) -> Router {
    Router::new()
        .route("/v1/metrics", post(export))
        .route("/v1/traces", post(export_traces))
        .route("/v1/logs", post(export_logs))
        .layer(DefaultBodyLimit::disable())
        .with_state(ingestor)
}

async fn export(State(ingestor): State<Arc<Ingestor>>, headers: HeaderMap, body: Body) -> Response {
    let format = match request_format(&headers) {
        Ok(f) => f,
        Err(e) => return finish(&ingestor, plain_error(&e)),
    };
    let response = match handle(&ingestor, &headers, body, format).await {
        Ok(outcome) => success(&outcome, format),
        Err(e) => error_reply(&e, format),
    };
    finish(&ingestor, response)
}

async fn export_traces(State(ingestor): State<Arc<Ingestor>>, headers: HeaderMap, body: Body) -> Response {
    let format = match request_format(&headers) {
        Ok(f) => f,
        Err(e) => return finish(&ingestor, plain_error(&e)),
    };
    let result = async {
        let request = read_request::<ExportTraceServiceRequest>(&ingestor, &headers, body, format).await?;
        ingestor.export_traces(request, Protocol::OtlpHttp).await
    }
    .await;
    let response = match result {
        Ok(outcome) => {
            let partial = outcome.traces_partial();
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
    finish(&ingestor, response)
}

async fn export_logs(State(ingestor): State<Arc<Ingestor>>, headers: HeaderMap, body: Body) -> Response {
    let format = match request_format(&headers) {
        Ok(f) => f,
        Err(e) => return finish(&ingestor, plain_error(&e)),
    };
    let result = async {
        let request = read_request::<ExportLogsServiceRequest>(&ingestor, &headers, body, format).await?;
        ingestor.export_logs(request, Protocol::OtlpHttp).await
    }
    .await;
    let response = match result {
        Ok(outcome) => {
            let partial = outcome.logs_partial();
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
    finish(&ingestor, response)
}

pub(crate) fn finish(ingestor: &Ingestor, response: Response) -> Response {
    ingestor.count_request(Protocol::OtlpHttp, response.status().as_str());
    response
}

/// The request's encoding from its `Content-Type`.
pub(crate) fn request_format(headers: &HeaderMap) -> Result<Format, IngestError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        PROTOBUF => Ok(Format::Protobuf),
        JSON => Ok(Format::Json),
        _ => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Type {raw:?}: use {PROTOBUF} or {JSON}"
        ))),
    }
}

async fn handle(
    ingestor: &Ingestor,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<OtlpOutcome, IngestError> {
    if format == Format::Protobuf {
        // Decoded and mapped in one step by the borrowing decoder (no `String` per attribute).
        let (raw, encoding, limit) = read_raw(ingestor, headers, body).await?;
        return ingestor
            .export_otlp_protobuf(
                move || decompress(raw, encoding, limit).map_err(IngestError::from),
                Protocol::OtlpHttp,
            )
            .await;
    }
    let request = read_request::<ExportMetricsServiceRequest>(ingestor, headers, body, format).await?;
    ingestor.export_otlp(request, Protocol::OtlpHttp).await
}

/// Reads a request body under the body limit, counting its bytes; decompression is left
/// to the caller (on the blocking pool).
async fn read_raw(
    ingestor: &Ingestor,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<u8>, Encoding, usize), IngestError> {
    let encoding = Encoding::parse(
        headers
            .get(header::CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .as_deref(),
    )?;
    let limit = ingestor.body_limit();
    let raw = read_limited(body, content_length(headers), limit).await?;
    ingestor.count_bytes(Protocol::OtlpHttp, raw.len());
    Ok((raw, encoding, limit))
}

/// Reads, decompresses and decodes an OTLP/HTTP request body of any signal under the body
/// limit, counting its bytes.
pub(crate) async fn read_request<T>(
    ingestor: &Ingestor,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<T, IngestError>
where
    T: Message + Default + serde::de::DeserializeOwned + Send + 'static,
{
    let (raw, encoding, limit) = read_raw(ingestor, headers, body).await?;
    tokio::task::spawn_blocking(move || decode::<T>(raw, encoding, limit, format))
        .await
        .map_err(|e| IngestError::Unavailable(format!("decoding task failed: {e}")))?
}

/// Decompresses and decodes a body (CPU work, run on the blocking pool).
fn decode<T>(raw: Vec<u8>, encoding: Encoding, limit: usize, format: Format) -> Result<T, IngestError>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    let plain = decompress(raw, encoding, limit)?;
    let request = match format {
        Format::Protobuf => T::decode(plain.as_slice())
            .map_err(|e| IngestError::BadRequest(format!("invalid protobuf: {e}")))?,
        Format::Json => serde_json::from_slice::<T>(&plain)
            .map_err(|e| IngestError::BadRequest(format!("invalid OTLP JSON: {e}")))?,
    };
    Ok(request)
}

/// A successful reply: `message` in protobuf, or `json` for JSON requests.
pub(crate) fn reply(format: Format, message: &impl Message, json: serde_json::Value) -> Response {
    match format {
        Format::Protobuf => ([(header::CONTENT_TYPE, PROTOBUF)], message.encode_to_vec()).into_response(),
        Format::Json => ([(header::CONTENT_TYPE, JSON)], json.to_string()).into_response(),
    }
}

/// The `Content-Length` header, when present and numeric.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn success(outcome: &OtlpOutcome, format: Format) -> Response {
    let partial = if outcome.rejected_points > 0 || !outcome.error_message.is_empty() {
        Some(ExportMetricsPartialSuccess {
            rejected_data_points: outcome.rejected_points,
            error_message: outcome.error_message.clone(),
        })
    } else {
        None
    };
    match format {
        Format::Protobuf => {
            let reply = ExportMetricsServiceResponse {
                partial_success: partial,
            };
            ([(header::CONTENT_TYPE, PROTOBUF)], reply.encode_to_vec()).into_response()
        }
        Format::Json => {
            // int64 as a string, as the protobuf JSON mapping (and so OTLP/JSON) requires.
            let body = match partial {
                Some(p) => serde_json::json!({
                    "partialSuccess": {
                        "rejectedDataPoints": p.rejected_data_points.to_string(),
                        "errorMessage": p.error_message,
                    }
                }),
                None => serde_json::json!({}),
            };
            ([(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
        }
    }
}

/// An error reply: a `google.rpc.Status` in the request's encoding, with `Retry-After`
/// when the client should retry.
pub(crate) fn error_reply(error: &IngestError, format: Format) -> Response {
    let status = RpcStatus {
        code: error.rpc_code(),
        message: error.to_string(),
        details: Vec::new(),
    };
    let mut response = match format {
        Format::Protobuf => (
            error.http_status(),
            [(header::CONTENT_TYPE, PROTOBUF)],
            status.encode_to_vec(),
        )
            .into_response(),
        Format::Json => {
            let body = serde_json::json!({ "code": status.code, "message": status.message });
            (
                error.http_status(),
                [(header::CONTENT_TYPE, JSON)],
                body.to_string(),
            )
                .into_response()
        }
    };
    add_retry_after(error, &mut response);
    response
}

/// A plain-text error, for when the request's encoding is unknown.
pub fn plain_error(error: &IngestError) -> Response {
    let mut response = (error.http_status(), format!("{error}\n")).into_response();
    add_retry_after(error, &mut response);
    response
}

/// Adds `Retry-After` to replies the client should retry.
pub fn add_retry_after(error: &IngestError, response: &mut Response) {
    if error.retryable() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
}
