//! Bucket bounds and iteration: the exponential bound formula (bucket `i` of schema `s` is
//! `(2^((i-1)·2^-s), 2^(i·2^-s)]`, mirrored for negative buckets), the zero bucket
//! `[-threshold, threshold]`, and custom bounds (bucket `i` is `(bounds[i-1], bounds[i]]`, the
//! first reaching down to −Inf and the last up to +Inf).

use super::types::FloatHistogram;

/// Which side of zero a bucket lies on, which decides its open and closed ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSide {
    /// Negative observations: `[lower, upper)`.
    Negative,
    /// The zero bucket: `[lower, upper]`.
    Zero,
    /// Positive observations (and all custom buckets): `(lower, upper]`.
    Positive,
}

/// One bucket with its bounds, as iteration yields it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Observations in the bucket.
    pub count: f64,
    /// Which side of zero, deciding which ends are inclusive.
    pub side: BucketSide,
}

impl Bucket {
    /// The boundary rule code of Prometheus' JSON API: 0 = (lower, upper], 1 = [lower,
    /// upper), 3 = [lower, upper].
    pub fn boundary_rule(&self) -> u8 {
        match self.side {
            BucketSide::Positive => 0,
            BucketSide::Negative => 1,
            BucketSide::Zero => 3,
        }
    }
}

/// Index of the bucket of schema `schema - delta` that bucket `idx` of `schema` falls into
/// (`delta` ≥ 0): every 2^delta neighbouring buckets merge into one. The one rule every
/// downscaling uses (histogram arithmetic, span-metric histograms).
pub fn coarser_index(idx: i32, delta: u32) -> i32 {
    (idx.saturating_sub(1) >> delta.min(31)).saturating_add(1)
}

/// Upper bound of bucket `index` in exponential `schema` (for negative buckets, the bound
/// of the mirrored positive bucket). Exact powers of two are exact; the bucket holding
/// `f64::MAX` has `f64::MAX` as its bound rather than +Inf, as in Prometheus.
pub fn bucket_bound(index: i32, schema: i32) -> f64 {
    let idx = f64::from(index);
    let exp = if schema <= 0 {
        idx * f64::from(1u32 << (-schema).clamp(0, 16))
    } else {
        idx / f64::from(1u32 << schema.clamp(0, 8))
    };
    let v = exp.exp2();
    if v.is_infinite() && exp <= 1024.0 {
        f64::MAX
    } else {
        v
    }
}

/// Bounds of custom bucket `index`: `(bounds[index-1], bounds[index]]`.
fn custom_bounds(bounds: &[f64], index: i32) -> (f64, f64) {
    let i = usize::try_from(index).unwrap_or(0);
    let lower = match i.checked_sub(1) {
        Some(j) if index > 0 => bounds.get(j).copied().unwrap_or(f64::INFINITY),
        _ => f64::NEG_INFINITY,
    };
    let upper = bounds.get(i).copied().unwrap_or(f64::INFINITY);
    (lower, upper)
}

impl FloatHistogram {
    /// Every bucket in ascending order of value: negative buckets from the most negative,
    /// then the zero bucket (when it has a width or a count), then positive buckets. Empty
    /// buckets are included as stored.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        if self.uses_custom_buckets() {
            for (idx, count) in self.positive_pairs() {
                let (lower, upper) = custom_bounds(&self.custom_values, idx);
                out.push(Bucket {
                    lower,
                    upper,
                    count,
                    side: BucketSide::Positive,
                });
            }
            return out;
        }
        for (idx, count) in self.negative_pairs().into_iter().rev() {
            out.push(Bucket {
                lower: -bucket_bound(idx, self.schema),
                upper: -bucket_bound(idx.saturating_sub(1), self.schema),
                count,
                side: BucketSide::Negative,
            });
        }
        if self.zero_threshold != 0.0 || self.zero_count != 0.0 {
            out.push(Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: self.zero_count,
                side: BucketSide::Zero,
            });
        }
        for (idx, count) in self.positive_pairs() {
            out.push(Bucket {
                lower: bucket_bound(idx.saturating_sub(1), self.schema),
                upper: bucket_bound(idx, self.schema),
                count,
                side: BucketSide::Positive,
            });
        }
        out
    }
}
