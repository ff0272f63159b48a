//! Classic histograms as Prometheus sees them: upper bounds (`le`) with counts, built from
//! OTLP explicit-bucket histograms; and the errors of malformed histogram points of either
//! kind (exponential histograms become native histograms in the `native` module).

use std::cmp::Ordering;
use std::collections::BTreeMap;

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
    /// Native histograms have no schema below −4 (Prometheus refuses these points too).
    #[error("exponential histogram scale {0} is below -4, the coarsest native histogram schema")]
    ScaleTooSmall(i32),
    /// The buckets hold more observations than `count` says there were.
    #[error(
        "exponential histogram buckets and zero bucket hold {buckets} observations but count is {count}"
    )]
    CountTooSmall { buckets: u64, count: u64 },
    /// A bucket index that does not fit a native histogram's 32-bit index.
    #[error("exponential histogram bucket index {0} is out of range")]
    IndexOutOfRange(i64),
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
    fn adding_merges_bounds() {
        let mut a = Buckets::from_explicit(&[1.0], &[1, 1], 2, Some(3.0)).unwrap();
        let b = Buckets::from_explicit(&[1.0, 2.0], &[1, 1, 0], 2, Some(2.0)).unwrap();
        a.add(&b);
        assert_eq!(a.cumulative(), vec![(1.0, 2), (2.0, 3)]);
        assert_eq!(a.count, 4);
        assert_eq!(a.sum, Some(5.0));
    }
}
