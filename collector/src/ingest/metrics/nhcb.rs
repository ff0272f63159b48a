//! OTLP explicit-bucket histograms → native histograms with custom buckets ("NHCB",
//! schema −53), when `[otlp] convert_histograms_to_nhcb` is on (Prometheus 3's
//! `otlp.convert_histograms_to_nhcb`; off by default, as there, so the `_bucket` series
//! dashboards and rules already query keep coming).
//!
//! - The point's explicit bounds become the custom bounds; bucket `i` is
//!   `(bounds[i-1], bounds[i]]`, the last one reaches +Inf (the store's NHCB layout).
//! - Bounds that are not finite are dropped and their bucket merges into the next one: an
//!   explicit `+Inf` bound (some SDKs send it) is the overflow bucket already, and a `-Inf`
//!   bound's bucket can only hold `-Inf` observations, which `(-Inf, next]` also covers.
//! - Count and sum are the point's (no sum → 0, as for exponential histograms); empty
//!   buckets are left out (a missing bucket counts 0).
//! - Delta points are accumulated by the delta tracker like exponential ones; the series is
//!   the metric name itself, with no `_bucket`, `_sum` or `_count` series, and a point's
//!   exemplars go on it.
//!
//! One series instead of `bounds + 3` is the saving: the bucket counts ride in one sample.
//!
//! A sender can ask for the conversion of one metric whatever the setting, with the metric
//! metadata `didban.convert_to_nhcb = "true"` ([`CONVERT_TO_NHCB_KEY`]): the agent does for
//! scrape jobs with `convert_classic_histograms_to_nhcb`, Prometheus' per-job option.

use std::sync::Arc;

use didban_base::otlp::CONVERT_TO_NHCB_KEY;
use didban_store::model::{FloatHistogram, CUSTOM_BUCKETS_SCHEMA};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{HistogramDataPoint, Metric};

use super::buckets::{Buckets, HistogramError};
use super::map::{PointAttrs, PointContext, PointError};
use super::native::{NativePoint, NativePointInput};

/// Converts the bounds, counts and sum of an explicit-bucket histogram point (not its
/// stale-marker flag, which the caller handles) by the rules of the module documentation.
/// The point is checked as the classic mapping checks it (bounds increasing, one more count
/// than bounds, counts adding up to `count`), so both modes refuse the same points.
pub fn explicit_to_nhcb(p: &HistogramDataPoint) -> Result<FloatHistogram, HistogramError> {
    Buckets::from_explicit(&p.explicit_bounds, &p.bucket_counts, p.count, p.sum)?;
    let mut bounds: Vec<f64> = Vec::with_capacity(p.explicit_bounds.len());
    let mut pairs: Vec<(i32, f64)> = Vec::with_capacity(p.bucket_counts.len());
    // Counts of dropped (non-finite) bounds, carried into the next kept bucket.
    let mut carried: u64 = 0;
    for (i, count) in p.bucket_counts.iter().enumerate() {
        carried = carried.saturating_add(*count);
        let index = match p.explicit_bounds.get(i) {
            Some(bound) if bound.is_finite() => {
                bounds.push(*bound);
                bounds.len() - 1
            }
            Some(_) => continue,  // dropped: its count goes to the next kept bucket
            None => bounds.len(), // the overflow bucket, (last bound, +Inf]
        };
        if carried > 0 {
            // `from_explicit` allows at most MAX_BUCKETS bounds, so the index fits.
            let index =
                i32::try_from(index).map_err(|_| HistogramError::TooManyBuckets(p.explicit_bounds.len()))?;
            pairs.push((index, carried as f64));
        }
        carried = 0;
    }
    let mut h = FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        custom_values: Arc::from(bounds),
        ..FloatHistogram::default()
    };
    h.set_positive(&pairs);
    debug_assert!(
        h.validate().is_ok(),
        "NHCB conversion built an invalid histogram: {h:?}"
    );
    Ok(h)
}

/// True when the sender marked `metric` for conversion to NHCB (module docs).
pub(super) fn requested_by_sender(metric: &Metric) -> bool {
    for kv in &metric.metadata {
        if kv.key != CONVERT_TO_NHCB_KEY {
            continue;
        }
        return match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s == "true",
            Some(any_value::Value::BoolValue(b)) => *b,
            _ => false,
        };
    }
    false
}

/// An explicit-bucket histogram point of metric `metric` (its OTLP name, for errors) as a
/// native histogram sample of series `name` ([`NativePointInput::map`]).
pub(super) fn explicit_point(
    metric: &str,
    name: &str,
    p: &HistogramDataPoint,
    attrs: PointAttrs<'_>,
    temporality: i32,
    ctx: &PointContext<'_>,
) -> Result<NativePoint, PointError> {
    let input = NativePointInput {
        metric,
        name,
        attributes: attrs.decoded,
        start_ns: p.start_time_unix_nano,
        time_ns: p.time_unix_nano,
        flags: p.flags,
        temporality,
    };
    input.map(ctx, || explicit_to_nhcb(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn point(bounds: Vec<f64>, counts: Vec<u64>) -> HistogramDataPoint {
        HistogramDataPoint {
            count: counts.iter().sum(),
            sum: Some(12.5),
            explicit_bounds: bounds,
            bucket_counts: counts,
            time_unix_nano: 1,
            ..Default::default()
        }
    }

    #[test]
    fn bounds_become_custom_values_and_counts_stay_per_bucket() {
        let h = explicit_to_nhcb(&point(vec![0.1, 0.5, 1.0], vec![3, 0, 4, 2])).unwrap();
        assert_eq!(h.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(&*h.custom_values, &[0.1, 0.5, 1.0]);
        // Bucket 0 is (-Inf, 0.1], 2 is (0.5, 1], 3 is (1, +Inf]; the empty bucket 1 is left out.
        assert_eq!(h.positive_pairs(), vec![(0, 3.0), (2, 4.0), (3, 2.0)]);
        assert_eq!((h.count, h.sum), (9.0, 12.5));
        h.validate().unwrap();
        let b = h.buckets();
        let last = b.last().unwrap();
        assert_eq!((last.lower, last.upper, last.count), (1.0, f64::INFINITY, 2.0));
    }

    #[test]
    fn infinite_bounds_merge_into_the_next_bucket() {
        // An explicit +Inf bound: its bucket and the overflow bucket are both (1, +Inf].
        let h = explicit_to_nhcb(&point(vec![1.0, f64::INFINITY], vec![1, 2, 3])).unwrap();
        assert_eq!(&*h.custom_values, &[1.0]);
        assert_eq!(h.positive_pairs(), vec![(0, 1.0), (1, 5.0)]);
        // A -Inf bound: (-Inf, -Inf] joins (-Inf, 2].
        let h = explicit_to_nhcb(&point(vec![f64::NEG_INFINITY, 2.0], vec![4, 1, 0])).unwrap();
        assert_eq!(&*h.custom_values, &[2.0]);
        assert_eq!(h.positive_pairs(), vec![(0, 5.0)]);
        h.validate().unwrap();
    }

    #[test]
    fn no_buckets_is_one_bucket_holding_the_count() {
        let mut p = point(vec![], vec![]);
        p.count = 7;
        let h = explicit_to_nhcb(&p).unwrap();
        assert!(h.custom_values.is_empty());
        assert!(h.positive_pairs().is_empty());
        assert_eq!(h.count, 7.0);
        h.validate().unwrap();
    }

    #[test]
    fn malformed_points_are_refused_as_in_the_classic_mapping() {
        let e = explicit_to_nhcb(&point(vec![1.0, 0.5], vec![1, 1, 1])).unwrap_err();
        assert_eq!(e, HistogramError::BoundsNotIncreasing("0.5".to_string()));
        let mut p = point(vec![1.0], vec![1, 1]);
        p.count = 5;
        let e = explicit_to_nhcb(&p).unwrap_err();
        assert_eq!(e, HistogramError::CountMismatch { buckets: 2, count: 5 });
        let e = explicit_to_nhcb(&point(vec![1.0], vec![1])).unwrap_err();
        assert_eq!(e, HistogramError::BucketCountMismatch { counts: 1, bounds: 1 });
    }
}
