//! The native histogram types and their invariants (see the parent module).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::super::stale::STALE_NAN_BITS;

/// Schema of histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// Coarsest standard exponential schema (bucket growth factor 2^16).
pub const MIN_EXPONENTIAL_SCHEMA: i32 = -4;
/// Finest standard exponential schema (growth factor 2^(1/256)).
pub const MAX_EXPONENTIAL_SCHEMA: i32 = 8;

/// What the producer said about counter resets, so that queries need not guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterResetHint {
    /// Nothing known: compare with the previous sample to find out.
    #[default]
    Unknown,
    /// This sample follows a counter reset.
    CounterReset,
    /// This sample is known not to follow a counter reset.
    NotCounterReset,
    /// The histogram is a gauge histogram: counts may go up and down.
    Gauge,
}

/// A run of consecutive buckets: `offset` buckets after the previous span's end (for the
/// first span: the index of its first bucket) and `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Gap to the previous span, or the first bucket index for the first span.
    pub offset: i32,
    /// Number of buckets in the span.
    pub length: u32,
}

/// A native histogram with float counts: what PromQL computes with (`rate` of a histogram
/// has fractional counts). Invariants checked by [`FloatHistogram::validate`]: bucket vectors
/// as long as their spans say, custom bounds strictly increasing and only with the custom
/// schema, schema in range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatHistogram {
    /// Counter reset hint of this sample.
    pub counter_reset_hint: CounterResetHint,
    /// −4…8 for exponential buckets, [`CUSTOM_BUCKETS_SCHEMA`] for custom bounds.
    pub schema: i32,
    /// Observations with |v| ≤ this go to the zero bucket (unused with custom bounds).
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Number of observations (NaN observations included, so it may exceed the buckets).
    pub count: f64,
    /// Sum of observations.
    pub sum: f64,
    /// Spans of the positive buckets (all buckets, with custom bounds).
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets (empty with custom bounds).
    pub negative_spans: Vec<Span>,
    /// Absolute count of each positive bucket, in span order.
    pub positive_buckets: Vec<f64>,
    /// Absolute count of each negative bucket, in span order.
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (the last bucket reaches +Inf); shared because
    /// every sample of a series repeats them.
    pub custom_values: Arc<[f64]>,
}

impl Default for FloatHistogram {
    /// An empty exponential histogram of schema 0.
    fn default() -> Self {
        FloatHistogram {
            counter_reset_hint: CounterResetHint::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            positive_spans: Vec::new(),
            negative_spans: Vec::new(),
            positive_buckets: Vec::new(),
            negative_buckets: Vec::new(),
            custom_values: Arc::from(Vec::new()),
        }
    }
}

/// Why a histogram is malformed; the message names the bad part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    /// Schema outside −4…8 and not −53.
    #[error("histogram schema {0} is invalid: must be -53 or between -4 and 8")]
    BadSchema(i32),
    /// Spans describe a different number of buckets than given.
    #[error("{side} spans describe {spans} buckets but {buckets} bucket counts were given")]
    SpanMismatch {
        /// `positive` or `negative`.
        side: &'static str,
        /// Buckets the spans describe.
        spans: usize,
        /// Counts given.
        buckets: usize,
    },
    /// A span after the first has a negative offset (bucket indexes must increase).
    #[error("{side} span {index} has negative offset {offset}")]
    NegativeOffset {
        /// `positive` or `negative`.
        side: &'static str,
        /// Position of the span.
        index: usize,
        /// The offset.
        offset: i32,
    },
    /// Custom bounds that are not strictly increasing finite numbers.
    #[error("custom bucket bounds must be strictly increasing finite numbers, got {0:?}")]
    BadCustomBounds(Vec<f64>),
    /// Custom bounds given with an exponential schema.
    #[error("custom bucket bounds given with exponential schema {0}")]
    CustomBoundsWithExponentialSchema(i32),
    /// A custom-bucket histogram with negative buckets or a bucket index past the bounds.
    #[error("custom-bucket histogram has bucket index {0} outside 0..={1}")]
    CustomIndexOutOfRange(i64, usize),
    /// The zero threshold is negative or not a number.
    #[error("zero threshold {0} must be a non-negative number")]
    BadZeroThreshold(f64),
}

impl FloatHistogram {
    /// True for a histogram with custom bucket bounds (schema −53).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// True when this is the stale marker form of a histogram (sum is the stale NaN), as
    /// Prometheus marks a histogram series that ended.
    pub fn is_stale(&self) -> bool {
        self.sum.to_bits() == STALE_NAN_BITS
    }

    /// A stale marker histogram.
    pub fn stale_marker() -> FloatHistogram {
        FloatHistogram {
            sum: f64::from_bits(STALE_NAN_BITS),
            ..FloatHistogram::default()
        }
    }

    /// Checks the invariants listed on the type; ingest and test loaders call this so that
    /// every later operation may rely on them.
    pub fn validate(&self) -> Result<(), HistogramError> {
        if self.uses_custom_buckets() {
            let ok = self.custom_values.iter().all(|v| v.is_finite())
                && self.custom_values.windows(2).all(|w| w[0] < w[1]);
            if !ok {
                return Err(HistogramError::BadCustomBounds(self.custom_values.to_vec()));
            }
            if !self.negative_spans.is_empty() || !self.negative_buckets.is_empty() {
                return Err(HistogramError::CustomIndexOutOfRange(
                    -1,
                    self.custom_values.len(),
                ));
            }
        } else {
            if !(MIN_EXPONENTIAL_SCHEMA..=MAX_EXPONENTIAL_SCHEMA).contains(&self.schema) {
                return Err(HistogramError::BadSchema(self.schema));
            }
            if !self.custom_values.is_empty() {
                return Err(HistogramError::CustomBoundsWithExponentialSchema(self.schema));
            }
            if self.zero_threshold.is_nan() || self.zero_threshold < 0.0 {
                return Err(HistogramError::BadZeroThreshold(self.zero_threshold));
            }
        }
        check_spans("positive", &self.positive_spans, self.positive_buckets.len())?;
        check_spans("negative", &self.negative_spans, self.negative_buckets.len())?;
        if self.uses_custom_buckets() {
            let max = self.custom_values.len();
            for (idx, _) in sparse(&self.positive_spans, &self.positive_buckets) {
                if idx < 0 || usize::try_from(idx).is_ok_and(|i| i > max) {
                    return Err(HistogramError::CustomIndexOutOfRange(i64::from(idx), max));
                }
            }
        }
        Ok(())
    }

    /// Positive buckets as `(index, count)` pairs in index order.
    pub fn positive_pairs(&self) -> Vec<(i32, f64)> {
        sparse(&self.positive_spans, &self.positive_buckets)
    }

    /// Negative buckets as `(index, count)` pairs in index order.
    pub fn negative_pairs(&self) -> Vec<(i32, f64)> {
        sparse(&self.negative_spans, &self.negative_buckets)
    }

    /// Replaces the positive buckets with `pairs` (index order, no repeats).
    pub fn set_positive(&mut self, pairs: &[(i32, f64)]) {
        (self.positive_spans, self.positive_buckets) = dense(pairs);
    }

    /// Replaces the negative buckets with `pairs` (index order, no repeats).
    pub fn set_negative(&mut self, pairs: &[(i32, f64)]) {
        (self.negative_spans, self.negative_buckets) = dense(pairs);
    }
}

fn check_spans(side: &'static str, spans: &[Span], buckets: usize) -> Result<(), HistogramError> {
    let mut total = 0usize;
    for (index, s) in spans.iter().enumerate() {
        if index > 0 && s.offset < 0 {
            return Err(HistogramError::NegativeOffset {
                side,
                index,
                offset: s.offset,
            });
        }
        total = total.saturating_add(s.length as usize);
    }
    if total != buckets {
        return Err(HistogramError::SpanMismatch {
            side,
            spans: total,
            buckets,
        });
    }
    Ok(())
}

/// Spans + counts → `(index, count)` pairs. Extra counts without a span are ignored, so a
/// histogram that failed validation cannot make this panic.
pub(crate) fn sparse(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i32 = 0;
    let mut k = 0usize;
    for (n, s) in spans.iter().enumerate() {
        idx = if n == 0 {
            s.offset
        } else {
            idx.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            let Some(&c) = counts.get(k) else {
                return out;
            };
            out.push((idx, c));
            k += 1;
            idx = idx.saturating_add(1);
        }
    }
    out
}

/// `(index, count)` pairs in index order → spans + counts, one span per run of consecutive
/// indexes.
pub(crate) fn dense(pairs: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::with_capacity(pairs.len());
    let mut next: Option<i32> = None;
    for &(idx, c) in pairs {
        match (next, spans.last_mut()) {
            (Some(n), Some(last)) if n == idx => last.length += 1,
            (Some(n), _) => spans.push(Span {
                offset: idx.saturating_sub(n),
                length: 1,
            }),
            (None, _) => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        counts.push(c);
        next = Some(idx.saturating_add(1));
    }
    (spans, counts)
}

/// A native histogram with integer counts, buckets delta-encoded as in the exposition and
/// remote-write formats (each count is the difference to the previous bucket's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Counter reset hint.
    pub counter_reset_hint: CounterResetHint,
    /// Schema, as in [`FloatHistogram::schema`].
    pub schema: i32,
    /// Zero threshold, as bits of an `f64` so the type stays `Eq`.
    pub zero_threshold_bits: u64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Observations.
    pub count: u64,
    /// Sum of observations, as bits of an `f64`.
    pub sum_bits: u64,
    /// Positive spans.
    pub positive_spans: Vec<Span>,
    /// Negative spans.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts, delta-encoded.
    pub positive_deltas: Vec<i64>,
    /// Negative bucket counts, delta-encoded.
    pub negative_deltas: Vec<i64>,
    /// Custom upper bounds, as bits of `f64`s.
    pub custom_values_bits: Vec<u64>,
}

impl Histogram {
    /// The float form PromQL computes with: deltas summed to absolute counts.
    pub fn to_float(&self) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: f64::from_bits(self.zero_threshold_bits),
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: f64::from_bits(self.sum_bits),
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: undelta(&self.positive_deltas),
            negative_buckets: undelta(&self.negative_deltas),
            custom_values: self
                .custom_values_bits
                .iter()
                .map(|b| f64::from_bits(*b))
                .collect(),
        }
    }
}

fn undelta(deltas: &[i64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(deltas.len());
    let mut cur: i64 = 0;
    for d in deltas {
        cur = cur.saturating_add(*d);
        out.push(cur as f64);
    }
    out
}
