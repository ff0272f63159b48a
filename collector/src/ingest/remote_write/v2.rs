//! Remote write 2.0: the `io.prometheus.write.v2.Request` message and its conversion.
//!
//! Every string of the request is in its `symbols` table and referenced by index. A
//! reference out of the table, an odd-length `labels_refs`, or a table not starting with
//! the empty string make the request malformed: it is refused whole with a 400 naming the
//! time series and the reference, before anything is stored.
//!
//! Native histogram samples are converted and checked by [`super::histogram`] and stored
//! beside the float samples; an invalid one is refused (400 naming the series and the field,
//! the valid rest of the request stored, as for refused float samples). Created timestamps (`created_timestamp` of
//! 2.0-rc.3, `start_timestamp` of rc.4) are accepted and not used: Prometheus too only
//! uses them behind its `created-timestamp-zero-ingestion` feature flag.

use didban_store::model::METRIC_NAME_LABEL;
use didban_store::{Exemplar, Labels, Sample, SeriesExemplar};
use prost::Message;

use super::convert::{exemplar_labels, record_metadata, refuse_series, series_labels, Converted};
use super::histogram::{series_histograms, Histogram2};
use crate::ingest::error::IngestError;
use crate::ingest::metrics::validate::shorten;
use crate::ingest::pipeline::{Ingestor, Protocol};

/// `io.prometheus.write.v2.Request`.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// Every string of the request, once; the first is the empty string.
    #[prost(string, repeated, tag = "1")]
    pub symbols: Vec<String>,
    /// The series.
    #[prost(message, repeated, tag = "2")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Label name and value pairs as indexes into `symbols`.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Float samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample2>,
    /// Native histogram samples, oldest first.
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram2>,
    /// Exemplars of the series' samples.
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar2>,
    /// Type, help and unit of the series' metric.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata2>,
    /// When the counter started (2.0-rc.3); accepted, not used.
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// `io.prometheus.write.v2.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample2 {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    /// When the counter started (2.0-rc.4); accepted, not used.
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// `io.prometheus.write.v2.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct Exemplar2 {
    /// Label name and value pairs as indexes into `symbols`.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch; 0 means unset (the series' newest sample's time is
    /// used).
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `io.prometheus.write.v2.Metadata`.
#[derive(Clone, PartialEq, Message)]
pub struct Metadata2 {
    /// `MetricType`, numbered as in remote write 1.0.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// HELP text as an index into `symbols`.
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Unit as an index into `symbols`.
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// Decodes (on the blocking pool), resolves and converts a plain 2.0 request.
pub(super) async fn decode(ingestor: &Ingestor, plain: Vec<u8>) -> Result<Converted, IngestError> {
    let resolved = tokio::task::spawn_blocking(move || -> Result<Vec<Resolved>, IngestError> {
        let request = Request::decode(plain.as_slice())
            .map_err(|e| IngestError::BadRequest(format!("invalid protobuf: {e}")))?;
        resolve(request).map_err(IngestError::BadRequest)
    })
    .await
    .map_err(|e| IngestError::Unavailable(format!("decoding task failed: {e}")))??;
    Ok(convert(resolved, ingestor))
}

/// A time series with its strings looked up.
#[derive(Debug)]
pub struct Resolved {
    labels: Vec<(String, String)>,
    samples: Vec<Sample2>,
    histograms: Vec<Histogram2>,
    exemplars: Vec<ResolvedExemplar>,
    metadata: Option<(i32, String, String)>,
}

/// An exemplar with its label strings looked up (not yet validated as labels).
#[derive(Debug)]
pub struct ResolvedExemplar {
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: i64,
}

/// Looks every reference up in the symbols table; the first bad one is the error, naming
/// the time series and the field (`timeseries[3].labels_refs[5] = 99 is out of range: …`).
pub fn resolve(request: Request) -> Result<Vec<Resolved>, String> {
    let symbols = &request.symbols;
    if let Some(first) = symbols.first() {
        if !first.is_empty() {
            return Err(format!(
                "symbols[0] must be the empty string, is {:?}",
                shorten(first)
            ));
        }
    }
    let mut out = Vec::with_capacity(request.timeseries.len());
    for (i, ts) in request.timeseries.into_iter().enumerate() {
        let labels = pairs(symbols, &ts.labels_refs, &format!("timeseries[{i}].labels_refs"))?;
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for (j, e) in ts.exemplars.iter().enumerate() {
            let what = format!("timeseries[{i}].exemplars[{j}].labels_refs");
            exemplars.push(ResolvedExemplar {
                labels: pairs(symbols, &e.labels_refs, &what)?,
                value: e.value,
                timestamp_ms: e.timestamp,
            });
        }
        let metadata = match &ts.metadata {
            Some(m) => {
                let help = symbol(symbols, m.help_ref, &format!("timeseries[{i}].metadata.help_ref"))?;
                let unit = symbol(symbols, m.unit_ref, &format!("timeseries[{i}].metadata.unit_ref"))?;
                Some((m.r#type, help.to_string(), unit.to_string()))
            }
            None => None,
        };
        out.push(Resolved {
            labels,
            samples: ts.samples,
            histograms: ts.histograms,
            exemplars,
            metadata,
        });
    }
    Ok(out)
}

fn symbol<'a>(symbols: &'a [String], r: u32, what: &str) -> Result<&'a str, String> {
    symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
        format!(
            "{what} = {r} is out of range: the request has {} symbols",
            symbols.len()
        )
    })
}

fn pairs(symbols: &[String], refs: &[u32], what: &str) -> Result<Vec<(String, String)>, String> {
    if !refs.len().is_multiple_of(2) {
        return Err(format!(
            "{what} has {} entries: it must hold name and value pairs",
            refs.len()
        ));
    }
    let mut out = Vec::with_capacity(refs.len() / 2);
    for (k, pair) in refs.chunks_exact(2).enumerate() {
        let name = symbol(symbols, pair[0], &format!("{what}[{}]", 2 * k))?;
        let value = symbol(symbols, pair[1], &format!("{what}[{}]", 2 * k + 1))?;
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// The metric family a series' metadata describes: its name, without the `_bucket`,
/// `_sum`, `_count` suffix of a histogram or summary series.
fn family(labels: &Labels, metric_type: i32) -> Option<String> {
    let name = labels.get(METRIC_NAME_LABEL)?;
    // HISTOGRAM, GAUGEHISTOGRAM, SUMMARY
    if matches!(metric_type, 3..=5) {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                return Some(base.to_string());
            }
        }
    }
    Some(name.to_string())
}

/// Checks and converts the resolved series; invalid ones are counted and left out.
fn convert(resolved: Vec<Resolved>, ingestor: &Ingestor) -> Converted {
    let mut out = Converted::default();
    for (i, ts) in resolved.into_iter().enumerate() {
        if ts.samples.is_empty() && ts.histograms.is_empty() && ts.exemplars.is_empty() {
            continue;
        }
        let n = (ts.samples.len() + ts.histograms.len()) as u64;
        let labels = match series_labels(ingestor, ts.labels) {
            Ok(l) => l,
            Err(refused) => {
                refuse_series(ingestor, &mut out.refusals, refused, n, ts.exemplars.len() as u64);
                continue;
            }
        };
        if let Some((metric_type, help, unit)) = &ts.metadata {
            if *metric_type != 0 || !help.is_empty() || !unit.is_empty() {
                if let Some(name) = family(&labels, *metric_type) {
                    record_metadata(ingestor, &name, *metric_type, help, unit);
                }
            }
        }
        let histograms = series_histograms(ingestor, i, &labels, &ts.histograms, &mut out.refusals);
        let newest_float = ts.samples.iter().map(|s| s.timestamp).max();
        let newest_histogram = histograms.last().map(|h| h.timestamp_ms);
        let newest = newest_float.max(newest_histogram);
        for e in ts.exemplars {
            // An exemplar without a timestamp takes its series' newest sample's.
            let timestamp_ms = match (e.timestamp_ms, newest) {
                (0, Some(t)) => t,
                (t, _) => t,
            };
            let value = e.value;
            match exemplar_labels(e.labels) {
                Some(l) => out.exemplars.push(SeriesExemplar {
                    series: labels.clone(),
                    exemplar: Exemplar {
                        labels: l,
                        value,
                        timestamp_ms,
                    },
                }),
                None => ingestor.count_exemplars_rejected(Protocol::RemoteWrite, "invalid_labels", 1),
            }
        }
        if ts.samples.is_empty() && histograms.is_empty() {
            continue;
        }
        let mut samples = Vec::with_capacity(ts.samples.len());
        for s in &ts.samples {
            samples.push(Sample::new(s.timestamp, s.value));
        }
        out.push_series(labels, samples, histograms);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(symbols: &[&str], refs: Vec<u32>) -> Request {
        Request {
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            timeseries: vec![TimeSeries {
                labels_refs: refs,
                samples: vec![Sample2 {
                    value: 1.0,
                    timestamp: 5,
                    start_timestamp: 0,
                }],
                ..TimeSeries::default()
            }],
        }
    }

    #[test]
    fn references_resolve_through_the_symbols_table() {
        let got = resolve(request(&["", "__name__", "up", "job", "api"], vec![1, 2, 3, 4])).unwrap();
        assert_eq!(
            got[0].labels,
            vec![
                ("__name__".to_string(), "up".to_string()),
                ("job".to_string(), "api".to_string())
            ]
        );
    }

    #[test]
    fn bad_references_name_the_series_and_the_reference() {
        let e = resolve(request(&["", "__name__", "up"], vec![1, 9])).unwrap_err();
        assert_eq!(
            e,
            "timeseries[0].labels_refs[1] = 9 is out of range: the request has 3 symbols"
        );
        let e = resolve(request(&["", "__name__", "up"], vec![1, 2, 1])).unwrap_err();
        assert_eq!(
            e,
            "timeseries[0].labels_refs has 3 entries: it must hold name and value pairs"
        );
        let e = resolve(request(&["x", "__name__", "up"], vec![1, 2])).unwrap_err();
        assert_eq!(e, "symbols[0] must be the empty string, is \"x\"");
        let mut r = request(&["", "__name__", "up"], vec![1, 2]);
        r.timeseries[0].metadata = Some(Metadata2 {
            r#type: 1,
            help_ref: 0,
            unit_ref: 3,
        });
        assert_eq!(
            resolve(r).unwrap_err(),
            "timeseries[0].metadata.unit_ref = 3 is out of range: the request has 3 symbols"
        );
        let mut r = request(&["", "__name__", "up"], vec![1, 2]);
        r.timeseries[0].exemplars.push(Exemplar2 {
            labels_refs: vec![7, 0],
            value: 1.0,
            timestamp: 1,
        });
        assert_eq!(
            resolve(r).unwrap_err(),
            "timeseries[0].exemplars[0].labels_refs[0] = 7 is out of range: the request has 3 symbols"
        );
    }

    #[test]
    fn histogram_families_drop_their_series_suffix() {
        let l = Labels::from_pairs([("__name__", "rpc_seconds_bucket")]);
        assert_eq!(family(&l, 3).as_deref(), Some("rpc_seconds"));
        assert_eq!(family(&l, 1).as_deref(), Some("rpc_seconds_bucket"));
    }
}
