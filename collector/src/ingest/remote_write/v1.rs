//! Remote write 1.0: the `prometheus.WriteRequest` message and its conversion.

use didban_store::{Exemplar, Labels, Sample, SeriesExemplar};
use prost::Message;

use super::convert::{exemplar_labels, record_metadata, refuse_series, series_labels, Converted};
use super::histogram::{series_histograms, Histogram2};
use super::labels::WireLabelCache;
use super::walk::{label_pairs, walk_request, WalkedRequest, WalkedSeries};
use crate::ingest::error::IngestError;
use crate::ingest::pipeline::{Ingestor, Protocol};
use crate::ingest::protowire::Malformed;

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
    /// Exemplars of the series' samples, stored in the exemplar store.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<WireExemplar>,
    /// Native histograms, oldest first. `prometheus.Histogram` has the fields of
    /// `io.prometheus.write.v2.Histogram` under the same numbers, so one message serves both.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram2>,
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

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct WireExemplar {
    /// The exemplar's labels (`trace_id`, …), not the series'.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<WireLabel>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
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

/// Decodes (on the blocking pool) and converts a plain `prometheus.WriteRequest`: walked
/// by the borrowing decoder ([`super::walk`]), or decoded by prost when the walk does not
/// accept it (prost then names what is malformed).
pub(super) async fn decode(ingestor: &Ingestor, plain: Vec<u8>) -> Result<Converted, IngestError> {
    let decoded = tokio::task::spawn_blocking(move || -> Result<_, IngestError> {
        match walk_request(&plain) {
            Ok(walked) => Ok((plain, walked)),
            Err(Malformed) => {
                let request = WriteRequest::decode(plain.as_slice())
                    .map_err(|e| IngestError::BadRequest(format!("invalid protobuf: {e}")))?;
                Ok((plain, WalkedRequest::from(request)))
            }
        }
    })
    .await
    .map_err(|e| IngestError::Unavailable(format!("decoding task failed: {e}")))?;
    let (plain, request) = decoded?;
    let Ok(cached) = cached_labels(&request, &plain, &ingestor.remote_write_labels) else {
        // A label the walk did not check is not UTF-8: prost refuses the body and says why.
        let e = WriteRequest::decode(plain.as_slice())
            .err()
            .map_or_else(|| "invalid UTF-8 in a label".to_string(), |e| e.to_string());
        return Err(IngestError::BadRequest(format!("invalid protobuf: {e}")));
    };
    for m in &request.metadata {
        record_metadata(ingestor, &m.metric_family_name, m.r#type, &m.help, &m.unit);
    }
    Ok(convert(request, cached, &plain, ingestor))
}

/// The cached labels of each walked series (`None`: not cached, or decoded by prost),
/// after checking that the labels of every series not found are UTF-8 — before anything
/// of the request is converted, so a body prost would refuse is refused whole.
fn cached_labels(
    request: &WalkedRequest,
    body: &[u8],
    cache: &WireLabelCache,
) -> Result<Vec<Option<Labels>>, Malformed> {
    let mut out = Vec::with_capacity(request.series.len());
    for walked in &request.series {
        let WalkedSeries::Plain { labels, .. } = walked else {
            out.push(None);
            continue;
        };
        let raw = body.get(labels.clone()).unwrap_or_default();
        let found = cache.get(raw);
        if found.is_none() {
            label_pairs(raw)?;
        }
        out.push(found);
    }
    Ok(out)
}

impl From<WriteRequest> for WalkedRequest {
    fn from(request: WriteRequest) -> WalkedRequest {
        let mut series = Vec::with_capacity(request.timeseries.len());
        for ts in request.timeseries {
            series.push(WalkedSeries::Decoded(Box::new(ts)));
        }
        WalkedRequest {
            series,
            metadata: request.metadata,
        }
    }
}

fn pairs(labels: Vec<WireLabel>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        out.push((l.name, l.value));
    }
    out
}

/// Checks and converts the walked series of `body` (`cached`: the labels the cache had for
/// each); invalid ones are counted and left out.
fn convert(
    request: WalkedRequest,
    cached: Vec<Option<Labels>>,
    body: &[u8],
    ingestor: &Ingestor,
) -> Converted {
    debug_assert_eq!(cached.len(), request.series.len());
    let mut out = Converted::default();
    out.series.reserve(request.series.len());
    let mut cached = cached.into_iter();
    for (i, walked) in request.series.into_iter().enumerate() {
        let found = cached.next().flatten();
        match walked {
            WalkedSeries::Plain { labels, samples } => {
                let raw = body.get(labels).unwrap_or_default();
                convert_plain(&mut out, ingestor, raw, found, samples);
            }
            WalkedSeries::Decoded(ts) => convert_decoded(&mut out, ingestor, i, *ts),
        }
    }
    out
}

/// Converts a series of labels and float samples whose label fields are `raw`, with its
/// labels as `cached` when the receiver's cache had them (otherwise built, and cached).
fn convert_plain(
    out: &mut Converted,
    ingestor: &Ingestor,
    raw: &[u8],
    cached: Option<Labels>,
    samples: Vec<Sample>,
) {
    if samples.is_empty() {
        return;
    }
    let labels = match cached {
        Some(labels) => labels,
        None => {
            // `cached_labels` checked these fields: a failure here is a bug, refused as
            // an invalid series.
            let mut wire = Vec::new();
            if let Ok(pairs) = label_pairs(raw) {
                for (name, value) in pairs {
                    wire.push((name.to_string(), value.to_string()));
                }
            }
            match series_labels(ingestor, wire) {
                Ok(labels) => {
                    ingestor.remote_write_labels.insert(raw, &labels);
                    labels
                }
                Err(refused) => {
                    refuse_series(ingestor, &mut out.refusals, refused, samples.len() as u64, 0);
                    return;
                }
            }
        }
    };
    out.push_series(labels, samples, Vec::new());
}

/// Converts a series prost decoded (any shape: exemplars, native histograms).
fn convert_decoded(out: &mut Converted, ingestor: &Ingestor, i: usize, ts: TimeSeries) {
    let wire = pairs(ts.labels);
    if ts.samples.is_empty() && ts.histograms.is_empty() && ts.exemplars.is_empty() {
        return;
    }
    let n = (ts.samples.len() + ts.histograms.len()) as u64;
    let labels = match series_labels(ingestor, wire) {
        Ok(l) => l,
        Err(refused) => {
            refuse_series(ingestor, &mut out.refusals, refused, n, ts.exemplars.len() as u64);
            return;
        }
    };
    for e in ts.exemplars {
        match exemplar_labels(pairs(e.labels)) {
            Some(l) => out.exemplars.push(SeriesExemplar {
                series: labels.clone(),
                exemplar: Exemplar {
                    labels: l,
                    value: e.value,
                    timestamp_ms: e.timestamp,
                },
            }),
            None => ingestor.count_exemplars_rejected(Protocol::RemoteWrite, "invalid_labels", 1),
        }
    }
    let histograms = series_histograms(ingestor, i, &labels, &ts.histograms, &mut out.refusals);
    if ts.samples.is_empty() && histograms.is_empty() {
        return;
    }
    let mut samples = Vec::with_capacity(ts.samples.len());
    for s in &ts.samples {
        samples.push(Sample::new(s.timestamp, s.value));
    }
    out.push_series(labels, samples, histograms);
}
