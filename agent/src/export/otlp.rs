//! The network side of the exporter: sends one buffered OTLP request (metrics, traces or
//! logs) over OTLP/gRPC (tonic) or OTLP/HTTP (protobuf body) and classifies failures for the
//! retry loop.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::config::{ExportConfig, Protocol};
use crate::error::ExportError;
use crate::export::raw_grpc::RawCodec;
use crate::export::reason::Reason;
use crate::export::retry::{grpc_retry_after, parse_retry_after, SendFailure};

/// Which OTLP signal a buffered record carries (its first byte in the buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `ExportMetricsServiceRequest`.
    Metrics = 1,
    /// `ExportTraceServiceRequest`.
    Traces = 2,
    /// `ExportLogsServiceRequest`.
    Logs = 3,
}

impl Signal {
    /// The signal of a record tag byte.
    pub fn from_tag(tag: u8) -> Option<Signal> {
        match tag {
            1 => Some(Signal::Metrics),
            2 => Some(Signal::Traces),
            3 => Some(Signal::Logs),
            _ => None,
        }
    }

    /// The OTLP/HTTP path of the signal.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Metrics => "/v1/metrics",
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// What the collector answered to an accepted request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    /// Items (points, spans, log records) rejected in a partial success; not retried.
    pub rejected: i64,
    /// The collector's explanation of a partial success.
    pub message: String,
}

/// A connection to the collector.
#[derive(Debug, Clone)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc {
        /// The lazily connected channel shared by the three service clients.
        channel: Channel,
        /// gzip request bodies.
        gzip: bool,
        /// `Bearer <token>` header value, if any.
        auth: Option<MetadataValue<Ascii>>,
    },
    /// OTLP/HTTP protobuf.
    Http {
        /// Shared HTTP client with the request timeout set.
        client: reqwest::Client,
        /// Endpoint without the `/v1/<signal>` path.
        base: String,
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
        let identity =
            crate::tls::client_identity(&config.tls_cert_file, &config.tls_key_file).map_err(bad)?;
        match config.protocol {
            Protocol::Grpc => {
                let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
                    .map_err(|e| bad(e.to_string()))?
                    .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                    .timeout(config.timeout);
                if config.endpoint.starts_with("https://") {
                    let mut tls = ClientTlsConfig::new().with_native_roots();
                    if !config.tls_ca_file.is_empty() {
                        let pem = crate::tls::read_ca(&config.tls_ca_file).map_err(bad)?;
                        tls = tls.ca_certificate(Certificate::from_pem(pem));
                    }
                    if let Some(id) = &identity {
                        tls = tls.identity(tonic::transport::Identity::from_pem(&id.cert, &id.key));
                    }
                    endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
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
                Ok(Transport::Grpc {
                    channel: endpoint.connect_lazy(),
                    gzip: config.gzip,
                    auth,
                })
            }
            Protocol::Http => {
                let client = crate::tls::client_with_identity(
                    config.timeout,
                    &config.tls_ca_file,
                    false,
                    identity.as_ref(),
                )
                .map_err(bad)?;
                let mut base = config.endpoint.trim_end_matches('/');
                for signal in [Signal::Metrics, Signal::Traces, Signal::Logs] {
                    base = base.strip_suffix(signal.http_path()).unwrap_or(base);
                }
                let auth = if token.is_empty() {
                    None
                } else {
                    Some(format!("Bearer {token}"))
                };
                Ok(Transport::Http {
                    client,
                    base: base.to_string(),
                    auth,
                    gzip: config.gzip,
                })
            }
        }
    }

    /// Sends one encoded request of `signal` (copied once; [`Transport::send_bytes`] does not
    /// copy).
    pub async fn send(&mut self, signal: Signal, payload: &[u8]) -> Result<Accepted, SendFailure> {
        self.send_bytes(signal, &bytes::Bytes::copy_from_slice(payload))
            .await
    }

    /// Sends one encoded request of `signal`; the bytes are shared with the request, not
    /// copied (the exporter's sender hands over what it read from the disk buffer).
    pub async fn send_bytes(
        &mut self,
        signal: Signal,
        payload: &bytes::Bytes,
    ) -> Result<Accepted, SendFailure> {
        match self {
            Transport::Grpc { channel, gzip, auth } => {
                send_grpc(channel.clone(), *gzip, auth.as_ref(), signal, payload).await
            }
            Transport::Http {
                client,
                base,
                auth,
                gzip,
            } => {
                let url = format!("{base}{}", signal.http_path());
                send_http(client, &url, auth.as_deref(), *gzip, signal, payload).await
            }
        }
    }
}

fn grpc_failure(status: tonic::Status) -> SendFailure {
    let retry_after = grpc_retry_after(&status);
    SendFailure {
        reason: Reason::of_grpc(status.code(), retry_after.is_some(), status.message()),
        retry_after,
        message: format!("gRPC {:?}: {}", status.code(), status.message()),
    }
}

fn request<T>(message: T, auth: Option<&MetadataValue<Ascii>>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(a) = auth {
        request.metadata_mut().insert("authorization", a.clone());
    }
    request
}

async fn send_grpc(
    channel: Channel,
    gzip: bool,
    auth: Option<&MetadataValue<Ascii>>,
    signal: Signal,
    payload: &bytes::Bytes,
) -> Result<Accepted, SendFailure> {
    // The buffered bytes go out as they are (see `raw_grpc`): a record that does not decode
    // is refused by the collector as invalid and dropped, as a local decode failure was.
    let body = payload.clone();
    match signal {
        Signal::Metrics => {
            let path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
            let response: ExportMetricsServiceResponse = unary(channel, gzip, auth, path, body).await?;
            Ok(metrics_accepted(response))
        }
        Signal::Traces => {
            let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
            let response: ExportTraceServiceResponse = unary(channel, gzip, auth, path, body).await?;
            Ok(traces_accepted(response))
        }
        Signal::Logs => {
            let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
            let response: ExportLogsServiceResponse = unary(channel, gzip, auth, path, body).await?;
            Ok(logs_accepted(response))
        }
    }
}

/// One unary OTLP export call with an already-encoded request body.
async fn unary<M: prost::Message + Default + Send + Sync + 'static>(
    channel: Channel,
    gzip: bool,
    auth: Option<&MetadataValue<Ascii>>,
    path: &'static str,
    body: bytes::Bytes,
) -> Result<M, SendFailure> {
    const MAX: usize = 16 * 1024 * 1024;
    let mut client = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX);
    if gzip {
        client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    client.ready().await.map_err(|e| SendFailure {
        reason: Reason::Unavailable,
        retry_after: None,
        message: format!("gRPC channel not ready: {e}"),
    })?;
    let response = client
        .unary(
            request(body, auth),
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            RawCodec::<M>::default(),
        )
        .await
        .map_err(grpc_failure)?;
    Ok(response.into_inner())
}

fn metrics_accepted(r: ExportMetricsServiceResponse) -> Accepted {
    match r.partial_success {
        Some(p) => Accepted {
            rejected: p.rejected_data_points,
            message: p.error_message,
        },
        None => Accepted::default(),
    }
}

fn traces_accepted(r: ExportTraceServiceResponse) -> Accepted {
    match r.partial_success {
        Some(p) => Accepted {
            rejected: p.rejected_spans,
            message: p.error_message,
        },
        None => Accepted::default(),
    }
}

fn logs_accepted(r: ExportLogsServiceResponse) -> Accepted {
    match r.partial_success {
        Some(p) => Accepted {
            rejected: p.rejected_log_records,
            message: p.error_message,
        },
        None => Accepted::default(),
    }
}

async fn send_http(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    gzip: bool,
    signal: Signal,
    payload: &bytes::Bytes,
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
        request = request.body(payload.clone());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Err(SendFailure {
                reason: if e.is_timeout() {
                    Reason::Timeout
                } else {
                    Reason::Unavailable
                },
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
        let accepted = match signal {
            Signal::Metrics => {
                metrics_accepted(ExportMetricsServiceResponse::decode(body.as_ref()).unwrap_or_default())
            }
            Signal::Traces => {
                traces_accepted(ExportTraceServiceResponse::decode(body.as_ref()).unwrap_or_default())
            }
            Signal::Logs => {
                logs_accepted(ExportLogsServiceResponse::decode(body.as_ref()).unwrap_or_default())
            }
        };
        return Ok(accepted);
    }
    let text = String::from_utf8_lossy(&body);
    let mut snippet: String = text.chars().take(200).collect();
    if snippet.chars().any(|c| c.is_control() && c != '\n') {
        snippet = format!("{} bytes", body.len());
    }
    Err(SendFailure {
        reason: Reason::of_http_status(status),
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
