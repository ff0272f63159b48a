//! Prometheus remote_write 1.0: `POST /api/v1/write` with a snappy-compressed (block
//! format) protobuf `prometheus.WriteRequest`.
//!
//! Replies as Prometheus does: 204 when everything was stored; 400 with a text message when
//! the payload is malformed or some samples were refused (invalid labels, out of order...;
//! the valid rest is stored); 413 over the size limit; 415 for another encoding or a missing
//! or other `Content-Type` (it must be `application/x-protobuf`); 429/503 with
//! `Retry-After` when the server is over capacity or the WAL is failing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use didban_store::{Label, Labels, Sample, SeriesSamples};
use prost::Message;

use super::body::{decompress_snappy, read_limited};
use super::error::IngestError;
use super::http::{content_length, plain_error};
use super::metrics::validate::{check_series, shorten};
use super::pipeline::{refused_samples, Ingestor, Protocol};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help, unit), served by `/api/v1/metadata`.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, including `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<WireLabel>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<WireSample>,
    /// Exemplars, kept as raw messages: accepted and not stored.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub exemplars: Vec<Vec<u8>>,
    /// Native histograms, kept as raw messages: refused (not supported yet).
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct WireLabel {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct WireSample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// The metric type enum.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The metric family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// UNIT.
    #[prost(string, tag = "5")]
    pub unit: String,
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
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(refusal)) => (StatusCode::BAD_REQUEST, format!("{refusal}\n")).into_response(),
        Err(e) => plain_error(&e),
    };
    ingestor.count_request(Protocol::RemoteWrite, response.status().as_str());
    response
}

/// Samples refused from an otherwise processed request.
#[derive(Debug, Default)]
struct Refusals {
    samples: u64,
    first: Option<String>,
}

impl Refusals {
    fn add(&mut self, samples: u64, message: String) {
        self.samples += samples;
        if self.first.is_none() {
            self.first = Some(message);
        }
    }
}

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} samples refused; first: {}",
            self.samples,
            self.first.as_deref().unwrap_or("")
        )
    }
}

fn check_headers(headers: &HeaderMap) -> Result<(), IngestError> {
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
        return Err(IngestError::UnsupportedMediaType(
            "missing Content-Type: remote_write bodies must be sent as application/x-protobuf \
             (remote write 1.0, proto=prometheus.WriteRequest)"
                .to_string(),
        ));
    };
    let raw = String::from_utf8_lossy(v.as_bytes()).into_owned();
    let mut parts = raw.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    // Remote write 2.0 senders name their message in `proto=`; only 1.0 is spoken here.
    let mut proto_ok = true;
    for param in parts {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("proto") && v.trim() != "prometheus.WriteRequest" {
                proto_ok = false;
            }
        }
    }
    if media != "application/x-protobuf" || !proto_ok {
        return Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Type {raw:?}: use application/x-protobuf \
             (remote write 1.0, proto=prometheus.WriteRequest)"
        )));
    }
    Ok(())
}

/// Remembers the type, help and unit that remote_write senders report.
fn record_metadata(metadata: &[MetricMetadata], ingestor: &Ingestor) {
    for m in metadata {
        if m.metric_family_name.is_empty() {
            continue;
        }
        // prometheus.MetricMetadata.MetricType
        let kind = match m.r#type {
            1 => "counter",
            2 => "gauge",
            3 => "histogram",
            4 => "gaugehistogram",
            5 => "summary",
            6 => "info",
            7 => "stateset",
            _ => "unknown",
        };
        ingestor.state.metadata.record(
            &m.metric_family_name,
            crate::metadata::MetricMetadata {
                kind: kind.to_string(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            },
        );
    }
}

async fn handle(
    ingestor: &Ingestor,
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<Refusals>, IngestError> {
    check_headers(headers)?;
    let limit = ingestor.body_limit();
    let raw = read_limited(body, content_length(headers), limit).await?;
    ingestor.count_bytes(Protocol::RemoteWrite, raw.len());
    // Decompressing and decoding are CPU work: keep them off the async workers.
    let request = tokio::task::spawn_blocking(move || {
        let plain = decompress_snappy(&raw, limit)?;
        WriteRequest::decode(plain.as_slice())
            .map_err(|e| IngestError::BadRequest(format!("invalid protobuf: {e}")))
    })
    .await
    .map_err(|e| IngestError::Unavailable(format!("decoding task failed: {e}")))??;
    record_metadata(&request.metadata, ingestor);
    let (series, mut refusals) = convert(request, ingestor);
    let report = ingestor.append(series, Protocol::RemoteWrite).await?;
    let store_refused = refused_samples(&report);
    if store_refused > 0 {
        let message = report.first_error.unwrap_or_else(|| "refused by storage".into());
        refusals.add(store_refused, message);
    }
    Ok(if refusals.samples > 0 {
        Some(refusals)
    } else {
        None
    })
}

/// Checks and converts the wire series; invalid ones are counted and left out.
fn convert(request: WriteRequest, ingestor: &Ingestor) -> (Vec<SeriesSamples>, Refusals) {
    let limits = &ingestor.state.config.limits.series;
    let mut refusals = Refusals::default();
    let mut out = Vec::with_capacity(request.timeseries.len());
    for mut ts in request.timeseries {
        if !ts.histograms.is_empty() {
            let n = ts.histograms.len() as u64;
            ingestor.count_rejected(Protocol::RemoteWrite, "native_histogram", n);
            refusals.add(
                n,
                format!(
                    "native histograms are not supported (series {})",
                    wire_description(&ts.labels)
                ),
            );
        }
        if ts.samples.is_empty() {
            continue;
        }
        let n = ts.samples.len() as u64;
        // Prometheus sends every series' labels sorted by name: then they are moved into the
        // series as they are (no string copies); anything else takes the checked path, which
        // keeps the wire labels to describe the series if they are refused.
        let sorted_unique = ts.labels.windows(2).all(|w| w[0].name < w[1].name);
        let mut list = Vec::with_capacity(ts.labels.len());
        let labels_result = if sorted_unique {
            for l in ts.labels.drain(..) {
                list.push(Label::new(l.name, l.value));
            }
            Labels::new(list)
        } else {
            for l in &ts.labels {
                list.push(Label::new(l.name.clone(), l.value.clone()));
            }
            Labels::new(list)
        };
        let labels = match labels_result {
            Ok(l) => l,
            Err(e) => {
                ingestor.count_rejected(Protocol::RemoteWrite, "invalid_labels", n);
                refusals.add(n, format!("{e} in series {}", wire_description(&ts.labels)));
                continue;
            }
        };
        if let Err(e) = check_series(&labels, limits) {
            ingestor.count_rejected(Protocol::RemoteWrite, e.reason.as_str(), n);
            refusals.add(n, e.message);
            continue;
        }
        let mut samples = Vec::with_capacity(ts.samples.len());
        for s in &ts.samples {
            samples.push(Sample::new(s.timestamp, s.value));
        }
        samples.sort_by_key(|s| s.timestamp_ms);
        out.push(SeriesSamples::floats(labels, samples));
    }
    (out, refusals)
}

/// Wire labels in Prometheus notation, long parts cut short (they may be invalid, so they
/// cannot go through [`Labels`]).
fn wire_description(labels: &[WireLabel]) -> String {
    let mut out = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&shorten(&l.name));
        out.push('=');
        out.push_str(&format!("{:?}", shorten(&l.value)));
    }
    out.push('}');
    out
}
