//! Histograms as Prometheus sees them: upper bounds (`le`) with counts, built from OTLP
//! explicit-bucket and exponential histograms.
//!
//! Exponential histograms become classic buckets (documented in `docs/otlp-mapping.md`):
//! every populated positive bucket `(base^k, base^(k+1)]` contributes its count at
//! `le = base^(k+1)`; every populated negative bucket `[-base^(k+1), -base^k)` at
//! `le = -base^k` (all its values are below that); the zero bucket at `le = zero_threshold`;
//! `+Inf` is the total count. Empty buckets add no boundary.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

/// Most `le` boundaries one histogram point may produce; more is refused rather than
/// turned into thousands of series.
pub const MAX_BUCKETS: usize = 1024;

/// An `le` boundary, ordered by value (never NaN).
#[derive(Debug, Clone, Copy)]
pub struct Bound(pub f64);

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Why a histogram point is malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    /// `bucket_counts` must have one more entry than `explicit_bounds`.
    #[error("histogram has {counts} bucket counts for {bounds} explicit bounds (need bounds + 1)")]
    BucketCountMismatch { counts: usize, bounds: usize },
    /// Bounds must be finite... or at least not NaN, and strictly increasing.
    #[error("histogram explicit bounds are not strictly increasing at {0}")]
    BoundsNotIncreasing(String),
    /// The buckets add up to something other than `count`.
    #[error("histogram buckets add up to {buckets} but count is {count}")]
    CountMismatch { buckets: u64, count: u64 },
    /// Too many boundaries.
    #[error("histogram has {0} buckets; at most {MAX_BUCKETS} are accepted")]
    TooManyBuckets(usize),
    /// Exponential scale outside the range the specification allows.
    #[error("exponential histogram scale {0} is outside -10..=20")]
    BadScale(i32),
}

/// A histogram: per-bucket (not cumulative) counts by upper bound, the overall count and
/// the sum when known. Observations above the largest bound count only in `count`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Buckets {
    pub counts: BTreeMap<Bound, u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

impl Buckets {
    /// From an explicit-bucket histogram point's fields.
    pub fn from_explicit(
        bounds: &[f64],
        bucket_counts: &[u64],
        count: u64,
        sum: Option<f64>,
    ) -> Result<Buckets, HistogramError> {
        let mut out = Buckets {
            counts: BTreeMap::new(),
            count,
            sum,
        };
        if bucket_counts.is_empty() {
            return Ok(out);
        }
        if bucket_counts.len() != bounds.len() + 1 {
            return Err(HistogramError::BucketCountMismatch {
                counts: bucket_counts.len(),
                bounds: bounds.len(),
            });
        }
        if bounds.len() > MAX_BUCKETS {
            return Err(HistogramError::TooManyBuckets(bounds.len()));
        }
        let mut previous: Option<f64> = None;
        let mut total: u64 = 0;
        for (i, count_here) in bucket_counts.iter().enumerate() {
            total = total.saturating_add(*count_here);
            let Some(bound) = bounds.get(i) else {
                continue; // the overflow bucket: only in `count`
            };
            let increasing = previous.is_none_or(|p| *bound > p);
            if bound.is_nan() || !increasing {
                return Err(HistogramError::BoundsNotIncreasing(bound.to_string()));
            }
            previous = Some(*bound);
            if *bound != f64::INFINITY {
                *out.counts.entry(Bound(*bound)).or_insert(0) += count_here;
            }
        }
        if total != count {
            return Err(HistogramError::CountMismatch {
                buckets: total,
                count,
            });
        }
        Ok(out)
    }

    /// From an exponential histogram point, by the mapping in the module documentation.
    pub fn from_exponential(p: &ExponentialHistogramDataPoint) -> Result<Buckets, HistogramError> {
        if !(-10..=20).contains(&p.scale) {
            return Err(HistogramError::BadScale(p.scale));
        }
        // base^k = 2^(k * 2^-scale)
        let step = (-f64::from(p.scale)).exp2();
        let mut out = Buckets {
            counts: BTreeMap::new(),
            count: p.count,
            sum: p.sum,
        };
        let mut total = p.zero_count;
        if p.zero_count > 0 {
            let threshold = if p.zero_threshold.is_finite() && p.zero_threshold > 0.0 {
                p.zero_threshold
            } else {
                0.0
            };
            out.counts.insert(Bound(threshold), p.zero_count);
        }
        if let Some(positive) = &p.positive {
            for (i, n) in positive.bucket_counts.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                total = total.saturating_add(*n);
                let k = i64::from(positive.offset) + i as i64;
                let mut upper = ((k + 1) as f64 * step).exp2();
                if upper == 0.0 {
                    upper = f64::MIN_POSITIVE;
                }
                if upper.is_finite() {
                    *out.counts.entry(Bound(upper)).or_insert(0) += n;
                }
                if out.counts.len() > MAX_BUCKETS {
                    return Err(HistogramError::TooManyBuckets(out.counts.len()));
                }
            }
        }
        if let Some(negative) = &p.negative {
            for (i, n) in negative.bucket_counts.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                total = total.saturating_add(*n);
                let k = i64::from(negative.offset) + i as i64;
                let upper = -(k as f64 * step).exp2();
                let upper = if upper == f64::NEG_INFINITY {
                    f64::MIN
                } else {
                    upper
                };
                *out.counts.entry(Bound(upper)).or_insert(0) += n;
                if out.counts.len() > MAX_BUCKETS {
                    return Err(HistogramError::TooManyBuckets(out.counts.len()));
                }
            }
        }
        if total != p.count {
            return Err(HistogramError::CountMismatch {
                buckets: total,
                count: p.count,
            });
        }
        Ok(out)
    }

    /// Adds another histogram's counts (for delta accumulation).
    pub fn add(&mut self, other: &Buckets) {
        for (bound, n) in &other.counts {
            let entry = self.counts.entry(*bound).or_insert(0);
            *entry = entry.saturating_add(*n);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = match (self.sum, other.sum) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    /// `(le, cumulative count)` for every bound in increasing order, without `+Inf`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::with_capacity(self.counts.len());
        let mut running: u64 = 0;
        for (bound, n) in &self.counts {
            running = running.saturating_add(*n);
            out.push((bound.0, running));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets as ExpBuckets;

    #[test]
    fn explicit_buckets_are_validated_and_cumulated() {
        let h = Buckets::from_explicit(&[1.0, 5.0], &[2, 3, 4], 9, Some(20.0)).unwrap();
        assert_eq!(h.cumulative(), vec![(1.0, 2), (5.0, 5)]);
        assert_eq!(h.count, 9);
        let err = Buckets::from_explicit(&[1.0], &[1, 2, 3], 6, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "histogram has 3 bucket counts for 1 explicit bounds (need bounds + 1)"
        );
        let err = Buckets::from_explicit(&[5.0, 1.0], &[1, 1, 1], 3, None).unwrap_err();
        assert!(matches!(err, HistogramError::BoundsNotIncreasing(_)));
        let err = Buckets::from_explicit(&[1.0], &[1, 1], 3, None).unwrap_err();
        assert!(matches!(
            err,
            HistogramError::CountMismatch { buckets: 2, count: 3 }
        ));
        // No buckets at all: count and sum only.
        let h = Buckets::from_explicit(&[], &[], 4, Some(1.0)).unwrap();
        assert!(h.cumulative().is_empty());
    }

    #[test]
    fn exponential_buckets_map_to_upper_bounds() {
        // scale 0: base 2; positive offset 1 → buckets (2,4], (4,8]; negative offset 0 →
        // [-2,-1) at le=-1; zero bucket at le=0.
        let p = ExponentialHistogramDataPoint {
            scale: 0,
            count: 1 + 2 + 3 + 5,
            sum: Some(10.0),
            zero_count: 1,
            positive: Some(ExpBuckets {
                offset: 1,
                bucket_counts: vec![2, 0, 3],
            }),
            negative: Some(ExpBuckets {
                offset: 0,
                bucket_counts: vec![5],
            }),
            ..Default::default()
        };
        let h = Buckets::from_exponential(&p).unwrap();
        assert_eq!(h.cumulative(), vec![(-1.0, 5), (0.0, 6), (4.0, 8), (16.0, 11)]);
        // scale 1: base sqrt(2); bucket k=1 → (sqrt2, 2].
        let p = ExponentialHistogramDataPoint {
            scale: 1,
            count: 1,
            positive: Some(ExpBuckets {
                offset: 1,
                bucket_counts: vec![1],
            }),
            ..Default::default()
        };
        assert_eq!(
            Buckets::from_exponential(&p).unwrap().cumulative(),
            vec![(2.0, 1)]
        );
        let bad = ExponentialHistogramDataPoint {
            scale: 30,
            ..Default::default()
        };
        assert!(matches!(
            Buckets::from_exponential(&bad),
            Err(HistogramError::BadScale(30))
        ));
    }

    #[test]
    fn adding_merges_bounds() {
        let mut a = Buckets::from_explicit(&[1.0], &[1, 1], 2, Some(3.0)).unwrap();
        let b = Buckets::from_explicit(&[1.0, 2.0], &[1, 1, 0], 2, Some(2.0)).unwrap();
        a.add(&b);
        assert_eq!(a.cumulative(), vec![(1.0, 2), (2.0, 3)]);
        assert_eq!(a.count, 4);
        assert_eq!(a.sum, Some(5.0));
    }
}
