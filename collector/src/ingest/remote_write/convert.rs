//! What the 1.0 and 2.0 conversions share: the converted request, its refusals, checked
//! series and exemplar labels, metadata, and series descriptions for messages.

use didban_store::{HistogramSample, Label, Labels, Sample, SeriesExemplar, SeriesHint, SeriesSamples};

use crate::ingest::metrics::validate::{check_series, shorten};
use crate::ingest::pipeline::{Ingestor, Protocol};

/// Samples (and histogram samples) refused from an otherwise processed request.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    pub samples: u64,
    first: Option<String>,
}

impl Refusals {
    /// Counts `samples` refusals, remembering the first message.
    pub fn add(&mut self, samples: u64, message: String) {
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

/// What a request decoded into: series with samples, exemplars, and what was refused
/// before storage (invalid series, invalid native histograms).
#[derive(Default)]
pub(crate) struct Converted {
    pub series: Vec<SeriesSamples>,
    /// For each of `series`, its hint and label-cache key (see [`CacheHint`]).
    pub hints: Vec<CacheHint>,
    pub exemplars: Vec<SeriesExemplar>,
    pub refusals: Refusals,
}

/// Where the head held a series at its last append, and the label-cache entry that keeps
/// it (`key`: none for a series not in the cache), to hand to the head and store back.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CacheHint {
    pub hint: SeriesHint,
    pub key: Option<u64>,
}

impl Converted {
    /// Adds a series with its float samples sorted by time (a stable sort, so samples of
    /// one timestamp keep the order sent) and its native histogram samples.
    pub fn push_series(&mut self, labels: Labels, samples: Vec<Sample>, histograms: Vec<HistogramSample>) {
        self.push_hinted(labels, samples, histograms, CacheHint::default());
    }

    /// [`Converted::push_series`] of a series the label cache keeps, with its hint.
    pub fn push_hinted(
        &mut self,
        labels: Labels,
        mut samples: Vec<Sample>,
        histograms: Vec<HistogramSample>,
        hint: CacheHint,
    ) {
        if !samples.is_sorted_by_key(|s| s.timestamp_ms) {
            samples.sort_by_key(|s| s.timestamp_ms);
        }
        self.series.push(SeriesSamples {
            labels,
            samples,
            histograms,
        });
        self.hints.push(hint);
        debug_assert_eq!(self.series.len(), self.hints.len());
    }
}

/// Counts a series refused for its labels (`refused`: the counter reason and the message
/// naming it): its `samples` under that reason, its `exemplars` as `invalid_series`, the
/// message among the request's refusals.
pub(crate) fn refuse_series(
    ingestor: &Ingestor,
    refusals: &mut Refusals,
    refused: (&'static str, String),
    samples: u64,
    exemplars: u64,
) {
    let (reason, message) = refused;
    ingestor.count_rejected(Protocol::RemoteWrite, reason, samples);
    ingestor.count_exemplars_rejected(Protocol::RemoteWrite, "invalid_series", exemplars);
    if samples > 0 {
        refusals.add(samples, message);
    }
}

/// Remembers the type, help and unit a sender reports for `family`.
pub(crate) fn record_metadata(ingestor: &Ingestor, family: &str, metric_type: i32, help: &str, unit: &str) {
    if family.is_empty() {
        return;
    }
    // prometheus.MetricMetadata.MetricType and io.prometheus.write.v2.Metadata.MetricType
    // number the types alike.
    let kind = match metric_type {
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
        family,
        crate::metadata::MetricMetadata {
            kind: kind.to_string(),
            help: help.to_string(),
            unit: unit.to_string(),
        },
    );
}

/// Checked series labels from wire pairs: sorted, unique, valid names, within the limits.
/// `Err` carries the counter reason and the message naming the series.
pub(crate) fn series_labels(
    ingestor: &Ingestor,
    pairs: Vec<(String, String)>,
) -> Result<Labels, (&'static str, String)> {
    let limits = &ingestor.state.config.limits.series;
    // Senders send labels sorted: then they are moved as they are (no string copies);
    // otherwise the wire pairs are kept to describe the series if it is refused.
    let sorted_unique = pairs.windows(2).all(|w| w[0].0 < w[1].0);
    let result = if sorted_unique {
        let mut list = Vec::with_capacity(pairs.len());
        for (n, v) in pairs {
            list.push(Label::new(n, v));
        }
        Labels::new(list).map_err(|e| e.to_string())
    } else {
        let mut list = Vec::with_capacity(pairs.len());
        for (n, v) in &pairs {
            list.push(Label::new(n.clone(), v.clone()));
        }
        Labels::new(list).map_err(|e| format!("{e} in series {}", wire_description(&pairs)))
    };
    let labels = result.map_err(|m| ("invalid_labels", m))?;
    check_series(&labels, limits).map_err(|e| (e.reason.as_str(), e.message))?;
    Ok(labels)
}

/// Exemplar labels from wire pairs; `None` when they repeat a name (the store checks the
/// rest).
pub(crate) fn exemplar_labels(pairs: Vec<(String, String)>) -> Option<Labels> {
    let mut list = Vec::with_capacity(pairs.len());
    for (n, v) in pairs {
        list.push(Label::new(n, v));
    }
    Labels::new(list).ok()
}

/// Wire labels in Prometheus notation, long parts cut short (they may be invalid, so they
/// cannot go through [`Labels`]).
pub(crate) fn wire_description(labels: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&shorten(name));
        out.push('=');
        out.push_str(&format!("{:?}", shorten(value)));
    }
    out.push('}');
    out
}
