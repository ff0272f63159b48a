//! Prometheus remote_write: `POST /api/v1/write` with a snappy-compressed (block format)
//! protobuf body, in either message of the remote write 2.0 specification:
//!
//! - `prometheus.WriteRequest` (remote write 1.0, [`v1`]): the default, for
//!   `Content-Type: application/x-protobuf` and `…;proto=prometheus.WriteRequest`;
//! - `io.prometheus.write.v2.Request` ([`v2`]), for
//!   `Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request`.
//!
//! Replies as Prometheus does: 204 when everything was stored; 400 with a text message when
//! the payload is malformed or some samples were refused (invalid labels, out of order,
//! invalid native histograms; the valid rest is stored); 413 over the size limit;
//! 415 for another encoding, another `proto=` or a missing or other `Content-Type`; 429/503
//! with `Retry-After` when the server is over capacity or the WAL is failing. A 2.0 request
//! that was decoded gets the `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`
//! headers on its answer, 204 or 400 alike, so the sender knows what was kept.
//!
//! Exemplars of both messages go to the exemplar store after their series' samples;
//! exemplars it refuses (duplicates, out of order, labels too long) do not fail the request,
//! as in Prometheus.

mod convert;
pub mod histogram;
pub mod labels;
mod messages_v1;
pub mod v1;
pub mod v2;
mod walk;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::body::{decompress_snappy, read_limited};
use super::error::IngestError;
use super::http::{content_length, plain_error};
use super::pipeline::{refused_samples, Ingestor, Protocol};
use convert::{CacheHint, Converted, Refusals};
use didban_store::{AppendReport, SeriesHint, SeriesSamples};

pub use messages_v1::{MetricMetadata, TimeSeries, WireExemplar, WireLabel, WireSample, WriteRequest};

/// The `proto=` of remote write 1.0.
pub const PROTO_V1: &str = "prometheus.WriteRequest";
/// The `proto=` of remote write 2.0.
pub const PROTO_V2: &str = "io.prometheus.write.v2.Request";

/// Response header: float samples stored from a 2.0 request.
pub const SAMPLES_WRITTEN: &str = "X-Prometheus-Remote-Write-Samples-Written";
/// Response header: native histogram samples stored from a 2.0 request.
pub const HISTOGRAMS_WRITTEN: &str = "X-Prometheus-Remote-Write-Histograms-Written";
/// Response header: exemplars stored from a 2.0 request.
pub const EXEMPLARS_WRITTEN: &str = "X-Prometheus-Remote-Write-Exemplars-Written";

/// The message a request carries, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// The `/api/v1/write` route.
pub fn router(ingestor: Arc<Ingestor>) -> Router {
    Router::new()
        .route("/api/v1/write", post(write))
        .layer(DefaultBodyLimit::disable())
        .with_state(ingestor)
}

async fn write(State(ingestor): State<Arc<Ingestor>>, headers: HeaderMap, body: Body) -> Response {
    let response = match handle(&ingestor, &headers, body).await {
        Ok(outcome) => outcome.into_response(),
        Err(e) => plain_error(&e),
    };
    ingestor.count_request(Protocol::RemoteWrite, response.status().as_str());
    response
}

/// What a decoded request achieved.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    proto: Option<Proto>,
    pub refusals: Refusals,
    pub samples_written: u64,
    pub histograms_written: u64,
    pub exemplars_written: u64,
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let mut response = if self.refusals.samples > 0 {
            (StatusCode::BAD_REQUEST, format!("{}\n", self.refusals)).into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        };
        if self.proto == Some(Proto::V2) {
            let h = response.headers_mut();
            h.insert(SAMPLES_WRITTEN, HeaderValue::from(self.samples_written));
            h.insert(HISTOGRAMS_WRITTEN, HeaderValue::from(self.histograms_written));
            h.insert(EXEMPLARS_WRITTEN, HeaderValue::from(self.exemplars_written));
        }
        response
    }
}

/// Checks the headers and says which message the body holds.
fn negotiate(headers: &HeaderMap) -> Result<Proto, IngestError> {
    if let Some(v) = headers.get(header::CONTENT_ENCODING) {
        let v = String::from_utf8_lossy(v.as_bytes()).trim().to_ascii_lowercase();
        if v != "snappy" {
            return Err(IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Encoding {v:?}: remote_write bodies must be snappy"
            )));
        }
    }
    // Required, as remote write 1.0 says: a browser can send a body without a Content-Type
    // (or with a form's) from any page, but not `application/x-protobuf` without asking.
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return Err(IngestError::UnsupportedMediaType(format!(
            "missing Content-Type: remote_write bodies must be sent as application/x-protobuf \
             (proto={PROTO_V1} or proto={PROTO_V2})"
        )));
    };
    let raw = String::from_utf8_lossy(v.as_bytes()).into_owned();
    let mut parts = raw.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut proto = Some(Proto::V1);
    for param in parts {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("proto") {
                proto = match v.trim().trim_matches('"') {
                    PROTO_V1 => Some(Proto::V1),
                    PROTO_V2 => Some(Proto::V2),
                    _ => None,
                };
            }
        }
    }
    match proto {
        Some(p) if media == "application/x-protobuf" => Ok(p),
        _ => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Type {raw:?}: use application/x-protobuf with \
             proto={PROTO_V1} (remote write 1.0, the default) or proto={PROTO_V2} (2.0)"
        ))),
    }
}

async fn handle(ingestor: &Ingestor, headers: &HeaderMap, body: Body) -> Result<Outcome, IngestError> {
    let proto = negotiate(headers)?;
    let limit = ingestor.body_limit();
    let raw = read_limited(body, content_length(headers), limit).await?;
    ingestor.count_bytes(Protocol::RemoteWrite, raw.len());
    let plain = tokio::task::spawn_blocking(move || decompress_snappy(&raw, limit))
        .await
        .map_err(|e| IngestError::Unavailable(format!("decoding task failed: {e}")))??;
    let converted = match proto {
        Proto::V1 => v1::decode(ingestor, plain).await?,
        Proto::V2 => v2::decode(ingestor, plain).await?,
    };
    let Converted {
        series,
        hints,
        exemplars,
        mut refusals,
    } = converted;
    // The store reports refusals of both kinds together: floats and histograms go in two
    // appends (floats first) so that each written-count header is exact.
    // Only float series carry hints (the label cache holds series of floats alone).
    let (floats, float_hints, histograms) = split_kinds(series, hints);
    let mut written = [0u64; 2];
    for (k, (batch, hints)) in [(floats, float_hints), (histograms, Vec::new())]
        .into_iter()
        .enumerate()
    {
        let submitted: u64 = batch
            .iter()
            .map(|s| (s.samples.len() + s.histograms.len()) as u64)
            .sum();
        let report = append_hinted(ingestor, batch, &hints).await?;
        let store_refused = refused_samples(&report);
        if store_refused > 0 {
            let message = report.first_error.unwrap_or_else(|| "refused by storage".into());
            refusals.add(store_refused, message);
        }
        // Duplicates of stored samples count as written: the data is there.
        written[k] = submitted.saturating_sub(store_refused);
    }
    let exemplars_written = ingestor.append_exemplars(exemplars, Protocol::RemoteWrite).await;
    Ok(Outcome {
        proto: Some(proto),
        refusals,
        samples_written: written[0],
        histograms_written: written[1],
        exemplars_written,
    })
}

/// Appends `batch` with its series' hints (one per series, or none), and stores in the
/// label cache the hints that changed (a series new to the head, or moved by a cut).
async fn append_hinted(
    ingestor: &Ingestor,
    batch: Vec<SeriesSamples>,
    given: &[CacheHint],
) -> Result<AppendReport, IngestError> {
    let mut hints: Vec<SeriesHint> = given.iter().map(|h| h.hint).collect();
    let report = ingestor
        .append_hinted(batch, &mut hints, Protocol::RemoteWrite)
        .await?;
    for (was, now) in given.iter().zip(&hints) {
        if let Some(key) = was.key {
            if was.hint != *now {
                ingestor.remote_write_labels.set_hint(key, was.hint, *now);
            }
        }
    }
    Ok(report)
}

/// The float samples and the native histogram samples of `series`, as two batches (a series
/// with both kinds is in both), with the hints of the floats' series.
fn split_kinds(
    series: Vec<SeriesSamples>,
    hints: Vec<CacheHint>,
) -> (Vec<SeriesSamples>, Vec<CacheHint>, Vec<SeriesSamples>) {
    debug_assert_eq!(series.len(), hints.len());
    let mut floats = Vec::with_capacity(series.len());
    let mut float_hints = Vec::with_capacity(series.len());
    let mut histograms = Vec::new();
    let mut hints = hints.into_iter();
    for mut s in series {
        let hint = hints.next().unwrap_or_default();
        if !s.histograms.is_empty() {
            histograms.push(SeriesSamples {
                labels: s.labels.clone(),
                samples: Vec::new(),
                histograms: std::mem::take(&mut s.histograms),
            });
        }
        if !s.samples.is_empty() {
            floats.push(s);
            float_hints.push(hint);
        }
    }
    (floats, float_hints, histograms)
}
