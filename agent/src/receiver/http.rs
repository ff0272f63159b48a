//! OTLP/HTTP receiver: `POST /v1/metrics`, `/v1/traces`, `/v1/logs` with protobuf or JSON
//! bodies, gzip allowed; 413 past the size limit, 400 naming what did not decode.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::watch;

use super::forward::{enrich, Forward};
use crate::export::Signal;

#[derive(Clone)]
struct AppState {
    forward: Forward,
    max_bytes: usize,
}

fn bad_request(why: String) -> Response {
    (StatusCode::BAD_REQUEST, why).into_response()
}

/// The body, gunzipped if `content-encoding: gzip`, bounded by `max_bytes`.
fn body_bytes(headers: &HeaderMap, body: Bytes, max_bytes: usize) -> Result<Vec<u8>, (StatusCode, String)> {
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut decoder = flate2::read::GzDecoder::new(body.as_ref()).take(limit);
    if let Err(e) = decoder.read_to_end(&mut out) {
        return Err((StatusCode::BAD_REQUEST, format!("gzip body: {e}")));
    }
    if out.len() > max_bytes {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed body over the size limit".to_string(),
        ));
    }
    Ok(out)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Decodes, enriches, re-encodes as protobuf and buffers one request.
async fn handle(state: &AppState, signal: Signal, headers: &HeaderMap, body: Bytes) -> Response {
    let raw = match body_bytes(headers, body, state.max_bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let json = is_json(headers);
    let host = &state.forward.host_name;
    let encoded = match signal {
        Signal::Metrics => {
            let decoded: Result<ExportMetricsServiceRequest, String> = if json {
                serde_json::from_slice(&raw).map_err(|e| e.to_string())
            } else {
                ExportMetricsServiceRequest::decode(raw.as_slice()).map_err(|e| e.to_string())
            };
            decoded.map(|mut m| {
                for rm in &mut m.resource_metrics {
                    enrich(&mut rm.resource, host);
                }
                m.encode_to_vec()
            })
        }
        Signal::Traces => {
            let decoded: Result<ExportTraceServiceRequest, String> = if json {
                serde_json::from_slice(&raw).map_err(|e| e.to_string())
            } else {
                ExportTraceServiceRequest::decode(raw.as_slice()).map_err(|e| e.to_string())
            };
            decoded.map(|mut m| {
                for rs in &mut m.resource_spans {
                    enrich(&mut rs.resource, host);
                }
                m.encode_to_vec()
            })
        }
        Signal::Logs => {
            let decoded: Result<ExportLogsServiceRequest, String> = if json {
                serde_json::from_slice(&raw).map_err(|e| e.to_string())
            } else {
                ExportLogsServiceRequest::decode(raw.as_slice()).map_err(|e| e.to_string())
            };
            decoded.map(|mut m| {
                for rl in &mut m.resource_logs {
                    enrich(&mut rl.resource, host);
                }
                m.encode_to_vec()
            })
        }
    };
    let encoded = match encoded {
        Ok(e) => e,
        Err(why) => return bad_request(format!("{} body does not decode: {why}", signal.http_path())),
    };
    if let Err(e) = state.forward.sink.send(signal, encoded).await {
        tracing::error!(error = %e, "local receiver: could not buffer a request");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            "agent buffer unavailable",
        )
            .into_response();
    }
    // An empty Export*ServiceResponse is zero bytes in protobuf and `{}` in JSON.
    if json {
        ([("content-type", "application/json")], "{}").into_response()
    } else {
        ([("content-type", "application/x-protobuf")], Vec::<u8>::new()).into_response()
    }
}

/// Serves until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    forward: Forward,
    max_bytes: usize,
    mut stop: watch::Receiver<bool>,
) {
    let state = AppState { forward, max_bytes };
    let app = axum::Router::new()
        .route(
            "/v1/metrics",
            post(|State(s): State<AppState>, h: HeaderMap, b: Bytes| async move {
                handle(&s, Signal::Metrics, &h, b).await
            }),
        )
        .route(
            "/v1/traces",
            post(|State(s): State<AppState>, h: HeaderMap, b: Bytes| async move {
                handle(&s, Signal::Traces, &h, b).await
            }),
        )
        .route(
            "/v1/logs",
            post(|State(s): State<AppState>, h: HeaderMap, b: Bytes| async move {
                handle(&s, Signal::Logs, &h, b).await
            }),
        )
        .layer(DefaultBodyLimit::max(max_bytes))
        .with_state(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "local OTLP/HTTP receiver stopped");
    }
}
