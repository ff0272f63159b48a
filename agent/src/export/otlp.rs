//! The network side of the exporter: sends one encoded `ExportMetricsServiceRequest` over
//! OTLP/gRPC (tonic) or OTLP/HTTP (protobuf body) and classifies failures for the retry loop.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tonic::transport::{Channel, Endpoint};

use crate::config::{ExportConfig, Protocol};
use crate::error::ExportError;
use crate::export::retry::{
    grpc_code_retryable, grpc_retry_after, http_status_retryable, parse_retry_after, SendFailure,
};

/// What the collector answered to an accepted request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    /// Data points the collector rejected in a partial success (they are not retried).
    pub rejected_points: i64,
    /// The collector's explanation of a partial success.
    pub message: String,
}

/// A connection to the collector.
#[derive(Debug, Clone)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc {
        /// The lazily connected client.
        client: MetricsServiceClient<Channel>,
        /// `Bearer <token>` header value, if any.
        auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    },
    /// OTLP/HTTP protobuf.
    Http {
        /// Shared HTTP client with the request timeout set.
        client: reqwest::Client,
        /// Full URL ending in `/v1/metrics`.
        url: String,
        /// `Bearer <token>` header value, if any.
        auth: Option<String>,
        /// Compress bodies with gzip.
        gzip: bool,
    },
}

impl Transport {
    /// Builds the transport; connecting happens on first use, so a collector that is down at
    /// start is not an error.
    pub fn new(config: &ExportConfig) -> Result<Transport, ExportError> {
        let bad = |why: String| ExportError::Endpoint {
            endpoint: config.endpoint.clone(),
            why,
        };
        let token = config.bearer_token.trim();
        match config.protocol {
            Protocol::Grpc => {
                let endpoint = Endpoint::from_shared(config.endpoint.clone())
                    .map_err(|e| bad(e.to_string()))?
                    .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                    .timeout(config.timeout);
                let channel = endpoint.connect_lazy();
                let mut client =
                    MetricsServiceClient::new(channel).max_decoding_message_size(16 * 1024 * 1024);
                if config.gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                let auth = if token.is_empty() {
                    None
                } else {
                    Some(
                        format!("Bearer {token}")
                            .parse()
                            .map_err(|_| bad("bearer_token is not valid ASCII".into()))?,
                    )
                };
                Ok(Transport::Grpc { client, auth })
            }
            Protocol::Http => {
                let client = reqwest::Client::builder()
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                let base = config.endpoint.trim_end_matches('/');
                let url = if base.ends_with("/v1/metrics") {
                    base.to_string()
                } else {
                    format!("{base}/v1/metrics")
                };
                let auth = if token.is_empty() {
                    None
                } else {
                    Some(format!("Bearer {token}"))
                };
                Ok(Transport::Http {
                    client,
                    url,
                    auth,
                    gzip: config.gzip,
                })
            }
        }
    }

    /// Sends one encoded request.
    pub async fn send(&mut self, payload: &[u8]) -> Result<Accepted, SendFailure> {
        match self {
            Transport::Grpc { client, auth } => send_grpc(client, auth.as_ref(), payload).await,
            Transport::Http {
                client,
                url,
                auth,
                gzip,
            } => send_http(client, url, auth.as_deref(), *gzip, payload).await,
        }
    }
}

fn undecodable(e: prost::DecodeError) -> SendFailure {
    SendFailure {
        retryable: false,
        retry_after: None,
        message: format!("buffered record does not decode: {e}"),
    }
}

fn accepted(response: ExportMetricsServiceResponse) -> Accepted {
    match response.partial_success {
        Some(p) => Accepted {
            rejected_points: p.rejected_data_points,
            message: p.error_message,
        },
        None => Accepted::default(),
    }
}

async fn send_grpc(
    client: &mut MetricsServiceClient<Channel>,
    auth: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    payload: &[u8],
) -> Result<Accepted, SendFailure> {
    let message = ExportMetricsServiceRequest::decode(payload).map_err(undecodable)?;
    let mut request = tonic::Request::new(message);
    if let Some(a) = auth {
        request.metadata_mut().insert("authorization", a.clone());
    }
    match client.export(request).await {
        Ok(response) => Ok(accepted(response.into_inner())),
        Err(status) => Err(SendFailure {
            retryable: grpc_code_retryable(status.code()),
            retry_after: grpc_retry_after(&status),
            message: format!("gRPC {:?}: {}", status.code(), status.message()),
        }),
    }
}

async fn send_http(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    gzip: bool,
    payload: &[u8],
) -> Result<Accepted, SendFailure> {
    let mut request = client.post(url).header("content-type", "application/x-protobuf");
    if let Some(a) = auth {
        request = request.header("authorization", a);
    }
    if gzip {
        request = request
            .header("content-encoding", "gzip")
            .body(gzip_bytes(payload));
    } else {
        request = request.body(payload.to_vec());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Err(SendFailure {
                retryable: true,
                retry_after: None,
                message: format!("HTTP request: {e}"),
            })
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await.unwrap_or_default();
    if (200..300).contains(&status) {
        let decoded = ExportMetricsServiceResponse::decode(body.as_ref()).unwrap_or_default();
        return Ok(accepted(decoded));
    }
    let text = String::from_utf8_lossy(&body);
    let mut snippet: String = text.chars().take(200).collect();
    if snippet.chars().any(|c| c.is_control() && c != '\n') {
        snippet = format!("{} bytes", body.len());
    }
    Err(SendFailure {
        retryable: http_status_retryable(status),
        retry_after,
        message: format!("HTTP {status}: {snippet}"),
    })
}

fn gzip_bytes(payload: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if encoder.write_all(payload).is_err() {
        return payload.to_vec();
    }
    encoder.finish().unwrap_or_else(|_| payload.to_vec())
}
