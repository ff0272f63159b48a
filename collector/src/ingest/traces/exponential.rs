//! One native (exponential) histogram of span durations, accumulated in the collector the way
//! an instrumentation library accumulates one: integer counts in sparse buckets of a
//! Prometheus schema, written to the store as a [`FloatHistogram`].
//!
//! - Observations start at schema [`START_SCHEMA`] (4: each bucket is 2^(1/16) ≈ 1.044
//!   times wider than the one below, so a quantile read from it is within 4.4 % of the
//!   observed value, and log-interpolation inside the bucket usually does much better);
//! - only populated buckets exist (a bucket index without observations costs nothing);
//! - past [`MAX_BUCKETS`] populated buckets the histogram is downscaled one schema at a time
//!   (every two neighbouring buckets merge, counts preserved), as OpenTelemetry's
//!   exponential aggregation does, so a series whose durations span more than 2^20 (six
//!   decimal orders of magnitude, e.g. 30 µs to 30 s) trades resolution for a bounded size;
//! - a zero duration goes to the zero bucket (threshold
//!   [`DEFAULT_ZERO_THRESHOLD`], the one OTLP-converted histograms have), a negative one
//!   (a clock step between a span's start and end) to the negative buckets.

use std::collections::BTreeMap;

use didban_store::model::histogram::{bucket_bound, coarser_index, MIN_EXPONENTIAL_SCHEMA};
use didban_store::model::{CounterResetHint, FloatHistogram};

use crate::ingest::metrics::native::DEFAULT_ZERO_THRESHOLD;

/// The schema a histogram starts at: bucket factor 2^(1/16), a relative error of at most
/// 4.4 % (see the module documentation).
pub const START_SCHEMA: i32 = 4;

/// Most populated buckets (positive and negative together) before the histogram is
/// downscaled; 320 buckets of schema 4 cover 20 octaves.
pub const MAX_BUCKETS: usize = 320;

/// An exponential histogram with integer counts; cumulative when it is a series' total, the
/// observations of one batch when it is a tally.
#[derive(Debug, Clone, PartialEq)]
pub struct Exponential {
    schema: i32,
    zero_count: u64,
    count: u64,
    sum: f64,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
}

impl Default for Exponential {
    fn default() -> Self {
        Exponential {
            schema: START_SCHEMA,
            zero_count: 0,
            count: 0,
            sum: 0.0,
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
        }
    }
}

/// Index of the Prometheus bucket `(2^((k−1)/2^s), 2^(k/2^s)]` of schema `s` holding the
/// positive, finite `v`: the logarithm gives it to within one, the exact bounds settle it.
fn bucket_index(v: f64, schema: i32) -> i32 {
    let scale = if schema >= 0 {
        f64::from(1u32 << schema.clamp(0, 8))
    } else {
        1.0 / f64::from(1u32 << (-schema).clamp(0, 4))
    };
    let guess = (v.log2() * scale).ceil();
    // |log2 v| ≤ 1075 for finite non-zero v: the guess fits an i32 at any schema.
    let mut k = guess.clamp(f64::from(i32::MIN / 2), f64::from(i32::MAX / 2)) as i32;
    for _ in 0..4 {
        if bucket_bound(k - 1, schema) >= v {
            k -= 1;
        } else if bucket_bound(k, schema) < v {
            k += 1;
        } else {
            break;
        }
    }
    k
}

/// `buckets` with every index `down` schema steps coarser, counts of merged buckets added.
fn reduce(buckets: &BTreeMap<i32, u64>, down: i32) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    add_into(&mut out, buckets, down);
    out
}

/// Adds `from`'s counts into `into`, each index `down` schema steps coarser.
fn add_into(into: &mut BTreeMap<i32, u64>, from: &BTreeMap<i32, u64>, down: i32) {
    let down = u32::try_from(down).unwrap_or(0);
    for (k, c) in from {
        let entry = into.entry(coarser_index(*k, down)).or_insert(0);
        *entry = entry.saturating_add(*c);
    }
}

fn to_pairs(buckets: &BTreeMap<i32, u64>) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(buckets.len());
    for (k, c) in buckets {
        out.push((*k, *c as f64));
    }
    out
}

impl Exponential {
    /// Records one observation (seconds). Not-a-number and infinite values cannot come from
    /// a span's integer nanoseconds; they are ignored rather than poisoning the sum.
    pub fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += v;
        if v.abs() <= DEFAULT_ZERO_THRESHOLD {
            self.zero_count += 1;
            return;
        }
        let side = if v > 0.0 {
            &mut self.positive
        } else {
            &mut self.negative
        };
        *side.entry(bucket_index(v.abs(), self.schema)).or_insert(0) += 1;
        self.fit();
    }

    /// Adds `other`'s observations, at the coarser of the two schemas.
    pub fn merge(&mut self, other: &Exponential) {
        let schema = self.schema.min(other.schema);
        self.downscale_to(schema);
        let down = other.schema - schema;
        add_into(&mut self.positive, &other.positive, down);
        add_into(&mut self.negative, &other.negative, down);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.fit();
    }

    /// The current schema (it only ever gets coarser).
    pub fn schema(&self) -> i32 {
        self.schema
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Populated buckets.
    pub fn buckets(&self) -> usize {
        self.positive.len() + self.negative.len()
    }

    /// The histogram as the store keeps it, with the counter reset hint `hint`.
    pub fn to_float(&self, hint: CounterResetHint) -> FloatHistogram {
        let mut h = FloatHistogram {
            counter_reset_hint: hint,
            schema: self.schema,
            zero_threshold: DEFAULT_ZERO_THRESHOLD,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            ..FloatHistogram::default()
        };
        h.set_positive(&to_pairs(&self.positive));
        h.set_negative(&to_pairs(&self.negative));
        h
    }

    /// The empty histogram a new series starts from (written just before its first value,
    /// like the counters' zero): same schema and zero bucket, and the "counter reset" hint,
    /// as Prometheus gives the zero sample it injects at a created timestamp.
    pub fn zero_like(&self) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: CounterResetHint::CounterReset,
            schema: self.schema,
            zero_threshold: DEFAULT_ZERO_THRESHOLD,
            ..FloatHistogram::default()
        }
    }

    fn downscale_to(&mut self, schema: i32) {
        if schema >= self.schema {
            return;
        }
        let down = self.schema - schema;
        self.positive = reduce(&self.positive, down);
        self.negative = reduce(&self.negative, down);
        self.schema = schema;
    }

    /// Downscales while there are more than [`MAX_BUCKETS`] populated buckets.
    fn fit(&mut self) {
        while self.buckets() > MAX_BUCKETS && self.schema > MIN_EXPONENTIAL_SCHEMA {
            self.downscale_to(self.schema - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_land_in_the_bucket_whose_bounds_hold_them() {
        for schema in [-4, -1, 0, 1, 3, 4, 8] {
            for v in [1e-9, 0.001, 0.0049, 0.5, 1.0, 1.5, 2.0, 3.0, 723e-3, 1e6] {
                let k = bucket_index(v, schema);
                assert!(
                    bucket_bound(k - 1, schema) < v && v <= bucket_bound(k, schema),
                    "{v} in bucket {k} of schema {schema}"
                );
            }
        }
        // Exact powers of two are upper bounds: 1 is bucket 0, 2 is bucket 16 at schema 4.
        assert_eq!(bucket_index(1.0, 4), 0);
        assert_eq!(bucket_index(2.0, 4), 16);
        assert_eq!(bucket_index(0.5, 0), -1);
    }

    #[test]
    fn observations_fill_sparse_buckets_and_the_zero_bucket() {
        let mut h = Exponential::default();
        for v in [0.0, 0.1, 0.1, 2.0, -0.5] {
            h.observe(v);
        }
        let f = h.to_float(CounterResetHint::NotCounterReset);
        f.validate().unwrap();
        assert_eq!((f.schema, f.count, f.zero_count), (4, 5.0, 1.0));
        assert!((f.sum - 1.7).abs() < 1e-12);
        assert_eq!(f.positive_pairs(), vec![(bucket_index(0.1, 4), 2.0), (16, 1.0)]);
        assert_eq!(f.negative_pairs(), vec![(-16, 1.0)]);
        assert_eq!(f.counter_reset_hint, CounterResetHint::NotCounterReset);
        let z = h.zero_like();
        assert_eq!((z.schema, z.count), (4, 0.0));
        assert_eq!(z.counter_reset_hint, CounterResetHint::CounterReset);
    }

    #[test]
    fn too_many_buckets_downscale_keeping_every_count() {
        let mut h = Exponential::default();
        // 2^-20 … 2^20 s: 40 octaves, about 640 buckets at schema 4, 321 at schema 3.
        let mut v = 2f64.powi(-20);
        let mut n = 0u64;
        while v < 2f64.powi(20) {
            h.observe(v);
            n += 1;
            v *= 1.02;
        }
        assert!(h.schema() < START_SCHEMA, "{}", h.schema());
        assert!(h.buckets() <= MAX_BUCKETS, "{}", h.buckets());
        let f = h.to_float(CounterResetHint::Unknown);
        let total: f64 = f.positive_buckets.iter().sum();
        assert_eq!((total, f.count), (n as f64, n as f64));
    }

    #[test]
    fn merging_histograms_of_different_schemas_uses_the_coarser() {
        let mut fine = Exponential::default();
        fine.observe(0.3);
        fine.observe(0.31);
        let mut coarse = Exponential::default();
        coarse.downscale_to(2);
        coarse.observe(0.3);
        let mut a = fine.clone();
        a.merge(&coarse);
        let mut b = coarse.clone();
        b.merge(&fine);
        assert_eq!(a, b);
        assert_eq!((a.schema(), a.count()), (2, 3));
        let f = a.to_float(CounterResetHint::Unknown);
        assert_eq!(f.positive_pairs(), vec![(bucket_index(0.3, 2), 3.0)]);
    }
}
