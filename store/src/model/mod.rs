//! The Prometheus data model shared by every part of Didban: labels, samples and series.
//!
//! A series is identified by its [`Labels`] (the metric name is the `__name__` label); its
//! data is a list of [`Sample`]s ordered by timestamp, and for native histogram series a list
//! of [`HistogramSample`]s (see [`histogram`]). Values are `f64`; a stale marker is a
//! special NaN bit pattern, exactly as in Prometheus, so "this series ended" survives the WAL,
//! the head and the Parquet blocks without a separate flag.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod histogram;
mod stale;

pub use stale::{is_stale_nan, stale_nan, STALE_NAN_BITS};

pub use histogram::{
    Bucket, BucketSide, CounterResetHint, FloatHistogram, Histogram, HistogramError, HistogramOpError, Span,
    CUSTOM_BUCKETS_SCHEMA,
};

/// The label that holds a series' metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// One label: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Why a set of labels was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidName(String),
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName(String),
    #[error("series has no metric name (__name__ label)")]
    MissingMetricName,
}

/// A series identity: labels sorted by name, names unique, no empty values.
///
/// The invariant is established once, on creation, so equality, hashing and ordering of two
/// `Labels` are the equality, hashing and ordering of the series they name. The labels are
/// immutable and shared: a clone is a reference-count increment, so ingest, the head and
/// query results can pass one series' labels around without copying strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// Builds labels from any order; empty values are dropped (Prometheus treats an empty
    /// value as an absent label) and a repeated name is an error.
    pub fn new(mut labels: Vec<Label>) -> Result<Labels, LabelsError> {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in labels.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(LabelsError::Duplicate(pair[0].name.clone()));
            }
        }
        Ok(Labels(labels.into()))
    }

    /// Builds labels from a list that is known to be valid (sorted, unique); when two
    /// entries share a name the later one wins. Used for labels computed by queries.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Labels {
        let mut all: Vec<Label> = Vec::new();
        for (n, v) in pairs {
            let label = Label::new(n, v);
            if !label.value.is_empty() {
                all.push(label);
            }
        }
        // A stable sort keeps equal names in input order, so the last of a run is the
        // latest.
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(all.len());
        for label in all {
            match out.last_mut() {
                Some(prev) if prev.name == label.name => *prev = label,
                _ => out.push(label),
            }
        }
        Labels(out.into())
    }

    /// Checks that every name is a valid Prometheus label name and that the metric name,
    /// when present, is valid too. Ingest calls this; query results need not.
    pub fn validate(&self) -> Result<(), LabelsError> {
        for l in self.0.iter() {
            if l.name == METRIC_NAME_LABEL {
                if !is_valid_metric_name(&l.value) {
                    return Err(LabelsError::InvalidMetricName(l.value.clone()));
                }
            } else if !is_valid_label_name(&l.name) {
                return Err(LabelsError::InvalidName(l.name.clone()));
            }
        }
        if self.metric_name().is_none() {
            return Err(LabelsError::MissingMetricName);
        }
        Ok(())
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME_LABEL)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// These labels with `name` removed.
    pub fn without(&self, name: &str) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| l.name != name)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        )
    }

    /// These labels with `name` removed (for dropping `__name__` after a function).
    pub fn without_metric_name(&self) -> Labels {
        self.without(METRIC_NAME_LABEL)
    }

    /// These labels with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut out: Vec<Label> = Vec::with_capacity(self.0.len() + 1);
        let at = self.0.partition_point(|l| l.name.as_str() < name);
        out.extend_from_slice(&self.0[..at]);
        if !value.is_empty() {
            out.push(Label::new(name, value));
        }
        let rest = &self.0[at..];
        let skip = usize::from(rest.first().is_some_and(|l| l.name == name));
        out.extend_from_slice(&rest[skip..]);
        Labels(out.into())
    }

    /// Only the labels whose names are in `names`.
    pub fn keep_only(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.contains(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// All labels except those whose names are in `names`.
    pub fn drop_names(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !names.contains(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// A stable 64-bit fingerprint (FNV-1a over names and values), the same across
    /// processes and versions, used for alert fingerprints and series ids in files.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for l in self.0.iter() {
            for b in l.name.bytes().chain([0xff]).chain(l.value.bytes()).chain([0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// Approximate heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|l| l.name.len() + l.value.len() + 48)
            .sum::<usize>()
            + 24
    }
}

impl fmt::Display for Labels {
    /// Prometheus' notation: `name{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME_LABEL) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// True for a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True for a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// One data point: milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

impl Sample {
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Sample { timestamp_ms, value }
    }
}

/// One native histogram data point: milliseconds since the Unix epoch and the histogram,
/// shared so that query steps and results can hold it without copying its buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSample {
    pub timestamp_ms: i64,
    pub h: Arc<FloatHistogram>,
}

impl HistogramSample {
    pub fn new(timestamp_ms: i64, h: FloatHistogram) -> Self {
        HistogramSample {
            timestamp_ms,
            h: Arc::new(h),
        }
    }
}

/// A series and some of its samples, in timestamp order: the unit of both append batches
/// and query results. Float samples and native histogram samples are kept apart (a series
/// normally has only one kind; one that changed type has both, each list in time order).
/// Storages without native histograms leave `histograms` empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histograms: Vec<HistogramSample>,
}

impl SeriesSamples {
    /// A series with float samples only.
    pub fn floats(labels: Labels, samples: Vec<Sample>) -> Self {
        SeriesSamples {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }

    /// This series with only its samples in `[start_ms, end_ms]` (both inclusive): what a
    /// read of that range would have answered, cut from a read of a wider one.
    pub fn within(&self, start_ms: i64, end_ms: i64) -> SeriesSamples {
        SeriesSamples {
            labels: self.labels.clone(),
            samples: in_range(&self.samples, start_ms, end_ms, |s| s.timestamp_ms),
            histograms: in_range(&self.histograms, start_ms, end_ms, |s| s.timestamp_ms),
        }
    }
}

/// The items of the time-ordered `list` whose time (`ts`) is in `[start_ms, end_ms]`.
pub(crate) fn in_range<T: Clone>(list: &[T], start_ms: i64, end_ms: i64, ts: impl Fn(&T) -> i64) -> Vec<T> {
    let lo = list.partition_point(|s| ts(s) < start_ms);
    let hi = list.partition_point(|s| ts(s) <= end_ms);
    list.get(lo..hi).map(|w| w.to_vec()).unwrap_or_default()
}

/// How a [`LabelMatcher`] compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// Error building a matcher.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {source}")]
pub struct MatcherError {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// A label matcher as in PromQL selectors (`name="v"`, `!=`, `=~`, `!~`); regexes are fully
/// anchored. A missing label matches as the empty string, as in Prometheus.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl LabelMatcher {
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let anchored = format!("^(?s:{value})$");
                Some(regex::Regex::new(&anchored).map_err(|source| MatcherError {
                    pattern: value.clone(),
                    source,
                })?)
            }
            _ => None,
        };
        Ok(LabelMatcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// True when `value` (the empty string for a missing label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// True when the series named by `labels` satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// True when the matcher also matches series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

/// Two matchers are the same when they compare the same label the same way with the same
/// value (the regex is made from them).
impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn labels_are_sorted_deduplicated_and_drop_empty_values() {
        let l = Labels::new(vec![
            Label::new("b", "2"),
            Label::new("__name__", "up"),
            Label::new("a", "1"),
            Label::new("empty", ""),
        ])
        .unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "a", "b"]);
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("empty"), None);
        assert_eq!(l.to_string(), r#"up{a="1", b="2"}"#);
    }

    #[test]
    fn from_pairs_keeps_the_last_of_repeated_names_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "1"), ("a", "x"), ("b", "2"), ("c", ""), ("a", "")]);
        assert_eq!(l.to_string(), r#"{a="x", b="2"}"#);
    }

    #[test]
    fn with_sets_replaces_and_removes_in_order() {
        let l = Labels::from_pairs([("__name__", "m"), ("b", "1"), ("d", "2")]);
        assert_eq!(l.with("c", "x").to_string(), r#"m{b="1", c="x", d="2"}"#);
        assert_eq!(l.with("b", "9").to_string(), r#"m{b="9", d="2"}"#);
        assert_eq!(l.with("d", "").to_string(), r#"m{b="1"}"#);
        assert_eq!(l.with("a", "0").to_string(), r#"m{a="0", b="1", d="2"}"#);
        assert_eq!(l.with("z", "0").to_string(), r#"m{b="1", d="2", z="0"}"#);
    }

    #[test]
    fn duplicate_label_names_are_refused() {
        let err = Labels::new(vec![Label::new("a", "1"), Label::new("a", "2")]).unwrap_err();
        assert_eq!(err, LabelsError::Duplicate("a".into()));
    }

    #[test]
    fn validation_names_the_bad_label() {
        let l = Labels::from_pairs([("__name__", "up"), ("bad-name", "x")]);
        assert_eq!(l.validate(), Err(LabelsError::InvalidName("bad-name".into())));
        let l = Labels::from_pairs([("__name__", "1up")]);
        assert_eq!(l.validate(), Err(LabelsError::InvalidMetricName("1up".into())));
        let l = Labels::from_pairs([("job", "x")]);
        assert_eq!(l.validate(), Err(LabelsError::MissingMetricName));
    }

    #[test]
    fn regex_matchers_are_anchored_and_missing_labels_match_empty() {
        let m = LabelMatcher::new(MatchOp::RegexMatch, "job", "api|web").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("api2"));
        let m = LabelMatcher::new(MatchOp::NotEqual, "job", "x").unwrap();
        assert!(m.matches_labels(&Labels::from_pairs([("a", "b")])));
        assert!(LabelMatcher::new(MatchOp::RegexMatch, "x", "(").is_err());
    }

    #[test]
    fn stale_marker_is_a_specific_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }
}
