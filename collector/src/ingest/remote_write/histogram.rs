//! Remote write 2.0 native histograms: the `io.prometheus.write.v2.Histogram` message and its
//! conversion to the store's [`FloatHistogram`], checked the way Prometheus' appender checks
//! a histogram before storing it.
//!
//! An integer histogram (`count_int`) carries `zero_count_int` and delta-encoded buckets
//! (`*_deltas`, each count the difference to the previous bucket's); a float histogram
//! (`count_float`) carries `zero_count_float` and absolute counts (`*_counts`). A histogram
//! mixing the two encodings, with spans that do not describe its buckets, a negative bucket
//! count, fewer observations in `count` than in its buckets, or a schema, zero threshold or
//! custom bounds [`FloatHistogram::validate`] refuses is refused with an error naming the
//! field. A histogram whose sum is the stale NaN is the stale marker.

use std::sync::Arc;

use didban_store::model::{is_stale_nan, CounterResetHint, FloatHistogram, HistogramError, Span};
use didban_store::{HistogramSample, Labels};
use prost::Message;

use super::convert::Refusals;
use crate::ingest::pipeline::{Ingestor, Protocol};

/// `io.prometheus.write.v2.Histogram`.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram2 {
    /// Observations, integer histograms.
    #[prost(uint64, optional, tag = "1")]
    pub count_int: Option<u64>,
    /// Observations, float histograms.
    #[prost(double, optional, tag = "2")]
    pub count_float: Option<f64>,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// −4…8 exponential, −53 custom bounds.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Zero bucket count, integer histograms.
    #[prost(uint64, optional, tag = "6")]
    pub zero_count_int: Option<u64>,
    /// Zero bucket count, float histograms.
    #[prost(double, optional, tag = "7")]
    pub zero_count_float: Option<f64>,
    /// Spans of the negative buckets.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan2>,
    /// Delta-encoded negative counts (integer histograms).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Absolute negative counts (float histograms).
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Spans of the positive buckets.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan2>,
    /// Delta-encoded positive counts (integer histograms).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Absolute positive counts (float histograms).
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// `ResetHint`: 0 unspecified, 1 yes, 2 no, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Upper bounds of custom buckets (schema −53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// `io.prometheus.write.v2.BucketSpan`.
#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan2 {
    /// Gap to the previous span, or the first bucket index for the first span.
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Consecutive buckets in the span.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Why a histogram was refused: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct HistogramFieldError {
    /// The `Histogram` field at fault, e.g. `positive_spans`.
    pub field: &'static str,
    /// What is wrong, naming the bad value.
    pub message: String,
}

fn field_error(field: &'static str, message: impl Into<String>) -> HistogramFieldError {
    HistogramFieldError {
        field,
        message: message.into(),
    }
}

/// The histograms of request series number `index` (whose checked labels are `labels`) as
/// samples in time order; the invalid ones are counted (`reason="invalid_histogram"`) and
/// refused with a message naming the place, the field and the series.
pub(crate) fn series_histograms(
    ingestor: &Ingestor,
    index: usize,
    labels: &Labels,
    wire: &[Histogram2],
    refusals: &mut Refusals,
) -> Vec<HistogramSample> {
    let mut out = Vec::with_capacity(wire.len());
    for (j, h) in wire.iter().enumerate() {
        match to_float(h) {
            Ok(f) => out.push(HistogramSample::new(h.timestamp, f)),
            Err(e) => {
                ingestor.count_rejected(Protocol::RemoteWrite, "invalid_histogram", 1);
                refusals.add(
                    1,
                    format!(
                        "invalid native histogram timeseries[{index}].histograms[{j}].{e} (series {labels})"
                    ),
                );
            }
        }
    }
    out.sort_by_key(|h| h.timestamp_ms);
    out
}

/// Converts and checks one histogram (rules in the module documentation).
pub fn to_float(h: &Histogram2) -> Result<FloatHistogram, HistogramFieldError> {
    if is_stale_nan(h.sum) {
        return Ok(FloatHistogram::stale_marker());
    }
    let float = h.count_float.is_some();
    let (count, zero_count, positive, negative) = if float {
        for (field, given) in [
            ("count_int", h.count_int.is_some()),
            ("zero_count_int", h.zero_count_int.is_some()),
            ("positive_deltas", !h.positive_deltas.is_empty()),
            ("negative_deltas", !h.negative_deltas.is_empty()),
        ] {
            if given {
                return Err(field_error(
                    field,
                    "given in a float histogram (count_float is set)",
                ));
            }
        }
        (
            h.count_float.unwrap_or(0.0),
            h.zero_count_float.unwrap_or(0.0),
            h.positive_counts.clone(),
            h.negative_counts.clone(),
        )
    } else {
        for (field, given) in [
            ("zero_count_float", h.zero_count_float.is_some()),
            ("positive_counts", !h.positive_counts.is_empty()),
            ("negative_counts", !h.negative_counts.is_empty()),
        ] {
            if given {
                return Err(field_error(
                    field,
                    "given in an integer histogram (count_float is not set)",
                ));
            }
        }
        (
            h.count_int.unwrap_or(0) as f64,
            h.zero_count_int.unwrap_or(0) as f64,
            undelta("positive_deltas", &h.positive_deltas)?,
            undelta("negative_deltas", &h.negative_deltas)?,
        )
    };
    let (pos_field, neg_field) = if float {
        ("positive_counts", "negative_counts")
    } else {
        ("positive_deltas", "negative_deltas")
    };
    check_counts(pos_field, &positive)?;
    check_counts(neg_field, &negative)?;
    if zero_count.is_nan() || zero_count < 0.0 {
        let field = if float {
            "zero_count_float"
        } else {
            "zero_count_int"
        };
        return Err(field_error(
            field,
            format!("zero bucket count {zero_count} is negative or NaN"),
        ));
    }
    let out = FloatHistogram {
        counter_reset_hint: reset_hint(h.reset_hint)?,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count,
        count,
        sum: h.sum,
        positive_spans: spans(&h.positive_spans),
        negative_spans: spans(&h.negative_spans),
        positive_buckets: positive,
        negative_buckets: negative,
        custom_values: Arc::from(h.custom_values.clone()),
    };
    out.validate().map_err(|e| {
        let field = match &e {
            HistogramError::BadSchema(_) => "schema",
            HistogramError::SpanMismatch { side: "negative", .. }
            | HistogramError::NegativeOffset { side: "negative", .. } => "negative_spans",
            HistogramError::SpanMismatch { .. }
            | HistogramError::NegativeOffset { .. }
            | HistogramError::CustomIndexOutOfRange(..) => "positive_spans",
            HistogramError::BadCustomBounds(_) | HistogramError::CustomBoundsWithExponentialSchema(_) => {
                "custom_values"
            }
            HistogramError::BadZeroThreshold(_) => "zero_threshold",
        };
        field_error(field, e.to_string())
    })?;
    let mut in_buckets = out.zero_count;
    for c in out.positive_buckets.iter().chain(out.negative_buckets.iter()) {
        in_buckets += c;
    }
    // Prometheus' check: the buckets may hold fewer observations than `count` (NaN ones), not
    // more. A NaN sum means NaN observations, which Prometheus lets pass the same way.
    if !h.sum.is_nan() && in_buckets > out.count {
        let field = if float { "count_float" } else { "count_int" };
        return Err(field_error(
            field,
            format!(
                "count {} is below the {in_buckets} observations in the buckets",
                out.count
            ),
        ));
    }
    Ok(out)
}

/// Delta-encoded counts → absolute counts; a running count below zero is refused.
fn undelta(field: &'static str, deltas: &[i64]) -> Result<Vec<f64>, HistogramFieldError> {
    let mut out = Vec::with_capacity(deltas.len());
    let mut cur: i64 = 0;
    for (i, d) in deltas.iter().enumerate() {
        cur = cur
            .checked_add(*d)
            .ok_or_else(|| field_error(field, format!("bucket {i} count overflows")))?;
        if cur < 0 {
            return Err(field_error(field, format!("bucket {i} has negative count {cur}")));
        }
        out.push(cur as f64);
    }
    Ok(out)
}

fn check_counts(field: &'static str, counts: &[f64]) -> Result<(), HistogramFieldError> {
    for (i, c) in counts.iter().enumerate() {
        if c.is_nan() || *c < 0.0 {
            return Err(field_error(
                field,
                format!("bucket {i} has negative or NaN count {c}"),
            ));
        }
    }
    Ok(())
}

fn reset_hint(hint: i32) -> Result<CounterResetHint, HistogramFieldError> {
    match hint {
        0 => Ok(CounterResetHint::Unknown),
        1 => Ok(CounterResetHint::CounterReset),
        2 => Ok(CounterResetHint::NotCounterReset),
        3 => Ok(CounterResetHint::Gauge),
        other => Err(field_error("reset_hint", format!("unknown reset hint {other}"))),
    }
}

fn spans(wire: &[BucketSpan2]) -> Vec<Span> {
    let mut out = Vec::with_capacity(wire.len());
    for s in wire {
        out.push(Span {
            offset: s.offset,
            length: s.length,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use didban_store::model::stale_nan;

    fn span(offset: i32, length: u32) -> BucketSpan2 {
        BucketSpan2 { offset, length }
    }

    fn int_histogram() -> Histogram2 {
        Histogram2 {
            count_int: Some(9),
            sum: 20.0,
            schema: 1,
            zero_threshold: 0.001,
            zero_count_int: Some(1),
            positive_spans: vec![span(0, 2), span(1, 1)],
            // Absolute counts 2, 3, 1.
            positive_deltas: vec![2, 1, -2],
            negative_spans: vec![span(-1, 1)],
            negative_deltas: vec![2],
            reset_hint: 2,
            timestamp: 1000,
            ..Histogram2::default()
        }
    }

    #[test]
    fn integer_histograms_are_undelta_encoded() {
        let h = to_float(&int_histogram()).unwrap();
        assert_eq!(h.positive_pairs(), vec![(0, 2.0), (1, 3.0), (3, 1.0)]);
        assert_eq!(h.negative_pairs(), vec![(-1, 2.0)]);
        assert_eq!((h.count, h.zero_count, h.sum, h.schema), (9.0, 1.0, 20.0, 1));
        assert_eq!(h.counter_reset_hint, CounterResetHint::NotCounterReset);
        // Through the wire and back.
        let bytes = int_histogram().encode_to_vec();
        assert_eq!(Histogram2::decode(bytes.as_slice()).unwrap(), int_histogram());
    }

    #[test]
    fn float_and_custom_bucket_histograms_convert() {
        let h = Histogram2 {
            count_float: Some(4.5),
            sum: 3.0,
            schema: -53,
            positive_spans: vec![span(0, 3)],
            positive_counts: vec![1.5, 0.0, 3.0],
            custom_values: vec![0.1, 1.0],
            ..Histogram2::default()
        };
        let f = to_float(&h).unwrap();
        assert!(f.uses_custom_buckets());
        assert_eq!(f.custom_values.to_vec(), vec![0.1, 1.0]);
        assert_eq!(f.positive_buckets, vec![1.5, 0.0, 3.0]);
        let stale = Histogram2 {
            sum: stale_nan(),
            count_int: Some(stale_nan().to_bits()),
            ..Histogram2::default()
        };
        assert!(to_float(&stale).unwrap().is_stale());
    }

    /// A change that breaks a valid histogram.
    type Change = fn(&mut Histogram2);

    #[test]
    fn invalid_histograms_name_the_field() {
        let cases: Vec<(Change, &str)> = vec![
            (|h| h.schema = 9, "schema"),
            (|h| h.positive_spans[1].length = 2, "positive_spans"),
            (|h| h.negative_spans.clear(), "negative_spans"),
            (|h| h.positive_deltas[2] = -4, "positive_deltas"),
            (|h| h.count_int = Some(3), "count_int"),
            (|h| h.positive_counts = vec![1.0], "positive_counts"),
            (|h| h.zero_threshold = -1.0, "zero_threshold"),
            (|h| h.custom_values = vec![1.0], "custom_values"),
            (|h| h.reset_hint = 7, "reset_hint"),
        ];
        for (change, field) in cases {
            let mut h = int_histogram();
            change(&mut h);
            let e = to_float(&h).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let mut h = int_histogram();
        h.count_int = Some(3);
        assert_eq!(
            to_float(&h).unwrap_err().to_string(),
            "count_int: count 3 is below the 9 observations in the buckets"
        );
    }
}
