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
mod labels;
mod stale;

pub use labels::{
    is_valid_label_name, is_valid_metric_name, Label, LabelRef, Labels, LabelsError, LabelsIter,
    METRIC_NAME_LABEL,
};
pub use stale::{is_stale_nan, stale_nan, STALE_NAN_BITS};

pub use histogram::{
    Bucket, BucketSide, CounterResetHint, FloatHistogram, Histogram, HistogramError, HistogramOpError, Span,
    CUSTOM_BUCKETS_SCHEMA,
};

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
