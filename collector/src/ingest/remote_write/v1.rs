//! Remote write 1.0: decoding a `prometheus.WriteRequest` (its messages are in
//! `messages_v1`) and converting it.

use didban_store::{Exemplar, Sample, SeriesExemplar, SeriesHint};
use prost::Message;

use super::convert::{exemplar_labels, record_metadata, refuse_series, series_labels, CacheHint, Converted};
use super::histogram::series_histograms;
use super::labels::{label_pairs, CachedSeries, WireLabelCache};
use super::messages_v1::{TimeSeries, WireLabel, WriteRequest};
use super::walk::{walk_request, WalkedRequest, WalkedSeries};
use crate::ingest::error::IngestError;
use crate::ingest::pipeline::{Ingestor, Protocol};
use crate::ingest::protowire::Malformed;

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
    let (plain, mut request) = decoded?;
    if look_up_labels(&mut request, &plain, &ingestor.remote_write_labels).is_err() {
        // A label the walk did not check is not UTF-8: prost refuses the body and says why.
        let e = WriteRequest::decode(plain.as_slice())
            .err()
            .map_or_else(|| "invalid UTF-8 in a label".to_string(), |e| e.to_string());
        return Err(IngestError::BadRequest(format!("invalid protobuf: {e}")));
    }
    for m in &request.metadata {
        record_metadata(ingestor, &m.metric_family_name, m.r#type, &m.help, &m.unit);
    }
    Ok(convert(request, &plain, ingestor))
}

/// Gives each walked series of `body` the labels `cache` holds for its label fields, and
/// checks that the labels of every series not found are UTF-8 — before anything of the
/// request is converted, so a body prost would refuse is refused whole.
fn look_up_labels(request: &mut WalkedRequest, body: &[u8], cache: &WireLabelCache) -> Result<(), Malformed> {
    let cache = cache.reader();
    for walked in &mut request.series {
        let WalkedSeries::Plain { labels, cached, .. } = walked else {
            continue;
        };
        let raw = body.get(labels.clone()).unwrap_or_default();
        *cached = cache.get_series(raw);
        if cached.is_none() {
            label_pairs(raw)?;
        }
    }
    Ok(())
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

/// Checks and converts the walked series of `body`; invalid ones are counted and left out.
fn convert(request: WalkedRequest, body: &[u8], ingestor: &Ingestor) -> Converted {
    let mut out = Converted::default();
    out.series.reserve(request.series.len());
    for (i, walked) in request.series.into_iter().enumerate() {
        match walked {
            WalkedSeries::Plain {
                labels,
                samples,
                cached,
            } => {
                let raw = body.get(labels).unwrap_or_default();
                convert_plain(&mut out, ingestor, raw, cached, samples);
            }
            WalkedSeries::Decoded(ts) => convert_decoded(&mut out, ingestor, i, *ts),
        }
    }
    out
}

/// Converts a series of labels and float samples whose label fields are `raw`, with its
/// labels (and hint) as `cached` when the receiver's cache had them (otherwise built, and
/// cached).
fn convert_plain(
    out: &mut Converted,
    ingestor: &Ingestor,
    raw: &[u8],
    cached: Option<CachedSeries>,
    samples: Vec<Sample>,
) {
    if samples.is_empty() {
        return;
    }
    let (labels, hint) = match cached {
        Some(c) => (
            c.labels,
            CacheHint {
                hint: c.hint,
                key: Some(c.key),
            },
        ),
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
                    let key = ingestor.remote_write_labels.insert(raw, &labels);
                    let hint = CacheHint {
                        hint: SeriesHint::NONE,
                        key,
                    };
                    (labels, hint)
                }
                Err(refused) => {
                    refuse_series(ingestor, &mut out.refusals, refused, samples.len() as u64, 0);
                    return;
                }
            }
        }
    };
    out.push_hinted(labels, samples, Vec::new(), hint);
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
