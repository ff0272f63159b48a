//! OTLP exponential histograms → Prometheus native histograms, as Prometheus 3's OTLP
//! receiver converts them (`otlptranslator`, documented in `docs/otlp-mapping.md`):
//!
//! - the scale becomes the schema; a scale above 8 is brought down to 8 by merging every
//!   2^(scale−8) neighbouring buckets (counts preserved), a scale below −4 is refused;
//! - OTLP bucket `i` is `(base^i, base^(i+1)]`, Prometheus bucket `k` is
//!   `(base^(k−1), base^k]`: after downscaling, index `k = ((offset + i) >> down) + 1`;
//! - the zero bucket keeps its count; its threshold is the point's `zero_threshold` when
//!   set (Prometheus always writes 1e-128, which is the OTLP default's meaning too);
//! - count and sum are the point's (a point without sum has sum 0, as in Prometheus);
//! - the series is the metric name itself (no `_bucket`, `_sum`, `_count` series);
//! - delta points are accumulated to cumulative histograms by the collector's delta tracker
//!   (Prometheus 3 stores them as gauge histograms only behind a feature flag), so the
//!   counter reset hint is always "unknown": queries detect resets from the counts;
//! - a point with no recorded value becomes the stale marker histogram.

use std::collections::BTreeMap;

use didban_store::model::FloatHistogram;
use didban_store::HistogramSample;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets as ExpBuckets;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar as OtlpExemplar, ExponentialHistogramDataPoint, Metric,
};

use super::buckets::HistogramError;
use super::exemplars::{self, Target};
use super::map::{Mapped, PointContext, PointError, FLAG_NO_RECORDED_VALUE, TEMPORALITY_DELTA};

/// Finest schema a native histogram may have; finer OTLP scales are downscaled to it.
const MAX_SCHEMA: i32 = 8;
/// Coarsest schema; coarser OTLP scales are refused.
const MIN_SCHEMA: i32 = -4;
/// Finest scale the OTLP specification allows.
const MAX_OTLP_SCALE: i32 = 20;
/// The zero threshold Prometheus writes for every converted point; used here when the point
/// does not set one.
pub const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

/// One native histogram point: the slot of its series in the request and the histogram.
pub(super) type NativePoint = (usize, FloatHistogram);

/// Converts the buckets, counts and sum of an exponential histogram point (not its
/// stale-marker flag, which the caller handles) by the rules of the module documentation.
pub fn exponential_to_native(p: &ExponentialHistogramDataPoint) -> Result<FloatHistogram, HistogramError> {
    if p.scale < MIN_SCHEMA {
        return Err(HistogramError::ScaleTooSmall(p.scale));
    }
    if p.scale > MAX_OTLP_SCALE {
        return Err(HistogramError::BadScale(p.scale));
    }
    let (schema, down) = if p.scale > MAX_SCHEMA {
        (MAX_SCHEMA, p.scale - MAX_SCHEMA)
    } else {
        (p.scale, 0)
    };
    let positive = convert_buckets(p.positive.as_ref(), down)?;
    let negative = convert_buckets(p.negative.as_ref(), down)?;
    let mut total = p.zero_count;
    for (_, c) in positive.iter().chain(negative.iter()) {
        total = total.saturating_add(*c);
    }
    if total > p.count {
        return Err(HistogramError::CountTooSmall {
            buckets: total,
            count: p.count,
        });
    }
    let zero_threshold = if p.zero_threshold.is_finite() && p.zero_threshold > 0.0 {
        p.zero_threshold
    } else {
        DEFAULT_ZERO_THRESHOLD
    };
    let mut h = FloatHistogram {
        schema,
        zero_threshold,
        zero_count: p.zero_count as f64,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        ..FloatHistogram::default()
    };
    h.set_positive(&to_float(&positive));
    h.set_negative(&to_float(&negative));
    Ok(h)
}

fn to_float(pairs: &[(i32, u64)]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, c) in pairs {
        out.push((*k, *c as f64));
    }
    out
}

/// OTLP dense buckets (`offset`, counts) → Prometheus `(index, count)` pairs in index order,
/// `down` schema steps coarser. Empty buckets are left out (a missing bucket counts 0).
pub fn convert_buckets(buckets: Option<&ExpBuckets>, down: i32) -> Result<Vec<(i32, u64)>, HistogramError> {
    let Some(b) = buckets else {
        return Ok(Vec::new());
    };
    let mut merged: BTreeMap<i32, u64> = BTreeMap::new();
    for (i, count) in b.bucket_counts.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        let otlp_index = i64::from(b.offset) + i as i64;
        let k = (otlp_index >> down) + 1;
        let k = i32::try_from(k).map_err(|_| HistogramError::IndexOutOfRange(otlp_index))?;
        let entry = merged.entry(k).or_insert(0);
        *entry = entry.saturating_add(*count);
    }
    Ok(merged.into_iter().collect())
}

/// What a native histogram point of either OTLP kind is mapped from, besides its buckets.
pub(super) struct NativePointInput<'a> {
    /// The OTLP metric name, for errors.
    pub metric: &'a str,
    /// The series' metric name.
    pub name: &'a str,
    pub attributes: &'a [KeyValue],
    pub start_ns: u64,
    pub time_ns: u64,
    pub flags: u32,
    pub temporality: i32,
}

impl NativePointInput<'_> {
    /// The point as a native histogram sample of series `name`: `convert` gives its
    /// histogram (not called for a point without recorded value, which becomes the stale
    /// marker); delta points are accumulated first.
    pub(super) fn map(
        &self,
        ctx: &PointContext<'_>,
        convert: impl FnOnce() -> Result<FloatHistogram, HistogramError>,
    ) -> Result<NativePoint, PointError> {
        if self.time_ns == 0 {
            return Err(PointError::NoTimestamp(self.metric.to_string()));
        }
        let point = ctx.point_labels(self.attributes);
        let labels = ctx.series_labels(&point, self.name, None)?;
        if self.flags & FLAG_NO_RECORDED_VALUE != 0 {
            return Ok((ctx.slot(labels), FloatHistogram::stale_marker()));
        }
        let h = convert().map_err(|source| PointError::Histogram {
            metric: self.metric.to_string(),
            source,
        })?;
        let h = if self.temporality == TEMPORALITY_DELTA {
            ctx.delta.add_native(&labels, self.start_ns, self.time_ns, &h)?
        } else {
            h
        };
        Ok((ctx.slot(labels), h))
    }
}

/// An exponential histogram point of `metric` as a native histogram sample of series
/// `name` ([`NativePointInput::map`]).
pub(super) fn exponential_point(
    metric: &Metric,
    name: &str,
    p: &ExponentialHistogramDataPoint,
    temporality: i32,
    ctx: &PointContext<'_>,
) -> Result<NativePoint, PointError> {
    let input = NativePointInput {
        metric: &metric.name,
        name,
        attributes: &p.attributes,
        start_ns: p.start_time_unix_nano,
        time_ns: p.time_unix_nano,
        flags: p.flags,
        temporality,
    };
    input.map(ctx, || exponential_to_native(p))
}

/// Counts one native histogram point's outcome (exponential or NHCB) and adds its sample
/// and its exemplars: the histogram is one series, so they all go on it (the stale marker's
/// sum makes `attach` drop them for a point without value; a refused point has none).
pub(super) fn record_native_point(
    mapped: &mut Mapped,
    ctx: &PointContext<'_>,
    timestamp_ms: i64,
    result: Result<NativePoint, PointError>,
    exemplars: &[OtlpExemplar],
    newest_ms: &mut Option<i64>,
) {
    mapped.points += 1;
    match result {
        Ok((slot, h)) => {
            let series = vec![(slot, h.sum)];
            exemplars::attach(
                ctx,
                &series,
                exemplars,
                timestamp_ms,
                Target::Number,
                &mut mapped.exemplars,
            );
            ctx.set
                .borrow_mut()
                .push_histogram(slot, HistogramSample::new(timestamp_ms, h));
            *newest_ms = Some(newest_ms.map_or(timestamp_ms, |n| n.max(timestamp_ms)));
        }
        Err(e) => mapped.reject(&e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn point(scale: i32, offset: i32, counts: Vec<u64>) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            scale,
            count: counts.iter().sum(),
            sum: Some(1.5),
            positive: Some(ExpBuckets {
                offset,
                bucket_counts: counts,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn indexes_shift_by_one_and_counts_are_absolute() {
        // OTLP bucket 0 of scale 0 is (1, 2]; in Prometheus that is bucket 1.
        let mut p = point(0, 0, vec![3, 0, 4]);
        p.negative = Some(ExpBuckets {
            offset: -2,
            bucket_counts: vec![2],
        });
        p.zero_count = 1;
        p.count = 10;
        let h = exponential_to_native(&p).unwrap();
        assert_eq!(h.schema, 0);
        assert_eq!(h.positive_pairs(), vec![(1, 3.0), (3, 4.0)]);
        assert_eq!(h.negative_pairs(), vec![(-1, 2.0)]);
        assert_eq!(h.zero_count, 1.0);
        assert_eq!(h.zero_threshold, DEFAULT_ZERO_THRESHOLD);
        assert_eq!((h.count, h.sum), (10.0, 1.5));
        h.validate().unwrap();
        // Bounds: bucket 1 of schema 0 is (1, 2], as OTLP bucket 0 was.
        let b = h.buckets();
        assert_eq!((b[2].lower, b[2].upper), (1.0, 2.0));
    }

    #[test]
    fn fine_scales_are_downscaled_to_eight_preserving_counts() {
        // Scale 10 → 8: four OTLP buckets merge into one. OTLP indexes 4..=11 → 1..=2 (+1).
        let p = point(10, 4, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let h = exponential_to_native(&p).unwrap();
        assert_eq!(h.schema, 8);
        assert_eq!(h.positive_pairs(), vec![(2, 10.0), (3, 26.0)]);
        // Negative indexes floor: OTLP -5 → -2, -4..=-1 → -1, 0 → 0 at scale 8, then +1.
        let p = point(10, -5, vec![1, 1, 1, 1, 1, 1]);
        let h = exponential_to_native(&p).unwrap();
        assert_eq!(h.positive_pairs(), vec![(-1, 1.0), (0, 4.0), (1, 1.0)]);
        let total: f64 = h.positive_buckets.iter().sum();
        assert_eq!(total, h.count);
    }

    #[test]
    fn bad_points_are_refused_naming_the_problem() {
        let e = exponential_to_native(&point(-5, 0, vec![1])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exponential histogram scale -5 is below -4, the coarsest native histogram schema"
        );
        let mut p = point(0, 0, vec![1, 2]);
        p.count = 2;
        let e = exponential_to_native(&p).unwrap_err();
        assert!(
            matches!(e, HistogramError::CountTooSmall { buckets: 3, count: 2 }),
            "{e}"
        );
        // More observations than buckets (NaN observations) is allowed.
        p.count = 5;
        assert_eq!(exponential_to_native(&p).unwrap().count, 5.0);
        // A zero threshold given by the point is kept.
        p.zero_threshold = 0.001;
        assert_eq!(exponential_to_native(&p).unwrap().zero_threshold, 0.001);
    }
}
