//! Arithmetic on native histograms as Prometheus defines it: adding and subtracting (at the
//! coarser of the two schemas, with the wider zero bucket), scaling by a number, compaction,
//! and detecting a counter reset between two consecutive samples.

use super::buckets::{bucket_bound, coarser_index};
use super::types::{dense, sparse, CounterResetHint, FloatHistogram, Span};

/// Why two histograms cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HistogramOpError {
    /// One has exponential buckets, the other custom bounds.
    #[error("histograms with exponential and custom buckets cannot be combined")]
    MixedExponentialCustom,
    /// Both have custom bounds, but different ones.
    #[error("histograms with different custom bucket bounds cannot be combined")]
    IncompatibleCustomBuckets,
}

/// Merges `pairs` into a coarser schema, `delta` steps down.
fn reduce_pairs(pairs: &[(i32, f64)], delta: u32) -> Vec<(i32, f64)> {
    if delta == 0 {
        return pairs.to_vec();
    }
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(pairs.len());
    for &(idx, c) in pairs {
        let t = coarser_index(idx, delta);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

impl FloatHistogram {
    /// This histogram at the coarser exponential `schema` (no-op for custom buckets or when
    /// `schema` is not coarser).
    pub fn reduce_resolution(&mut self, schema: i32) {
        if self.uses_custom_buckets() || schema >= self.schema {
            return;
        }
        let delta = u32::try_from(self.schema - schema).unwrap_or(0);
        let pos = reduce_pairs(&self.positive_pairs(), delta);
        let neg = reduce_pairs(&self.negative_pairs(), delta);
        self.set_positive(&pos);
        self.set_negative(&neg);
        self.schema = schema;
    }

    /// The zero count this histogram would have with a zero threshold of at least `larger`,
    /// and the threshold it would really need: when `larger` falls inside a populated bucket
    /// the threshold grows to that bucket's upper bound, as the bucket cannot be split.
    pub(crate) fn zero_count_for_threshold(&self, mut larger: f64) -> (f64, f64) {
        if larger == self.zero_threshold {
            // Its own threshold is valid as it is (Prometheus' early return too).
            return (self.zero_count, larger);
        }
        let pos = self.positive_pairs();
        let neg = self.negative_pairs();
        loop {
            let mut count = self.zero_count;
            let mut grown = larger;
            for pairs in [&pos, &neg] {
                for &(idx, c) in pairs.iter() {
                    let lower = bucket_bound(idx.saturating_sub(1), self.schema);
                    if lower >= grown {
                        break;
                    }
                    count += c;
                    let upper = bucket_bound(idx, self.schema);
                    if upper > grown {
                        if c != 0.0 {
                            grown = upper;
                        }
                        break;
                    }
                }
            }
            if grown == larger {
                return (count, larger);
            }
            larger = grown;
        }
    }

    /// Widens the zero bucket to `threshold` (already a valid one, see
    /// [`Self::zero_count_for_threshold`]), moving the buckets it covers into it.
    pub(crate) fn widen_zero_bucket(&mut self, threshold: f64) {
        if threshold <= self.zero_threshold {
            return;
        }
        let (count, t) = self.zero_count_for_threshold(threshold);
        let schema = self.schema;
        let keep = |pairs: Vec<(i32, f64)>| -> Vec<(i32, f64)> {
            pairs
                .into_iter()
                .filter(|&(idx, _)| bucket_bound(idx.saturating_sub(1), schema) >= t)
                .collect()
        };
        let pos = keep(self.positive_pairs());
        let neg = keep(self.negative_pairs());
        self.set_positive(&pos);
        self.set_negative(&neg);
        self.zero_count = count;
        self.zero_threshold = t;
    }

    /// Adds `other` into `self`: counts, sum and buckets add up at the coarser schema and the
    /// wider zero bucket. Returns true when the counter reset hints collided (one said
    /// "reset", the other "no reset"), which Prometheus reports as a warning.
    pub fn add(&mut self, other: &FloatHistogram) -> Result<bool, HistogramOpError> {
        self.combine(other, 1.0)
    }

    /// Subtracts `other` from `self`, as [`Self::add`] with `other`'s counts negated.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<bool, HistogramOpError> {
        self.combine(other, -1.0)
    }

    fn combine(&mut self, other: &FloatHistogram, sign: f64) -> Result<bool, HistogramOpError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramOpError::MixedExponentialCustom);
        }
        if self.uses_custom_buckets() && self.custom_values != other.custom_values {
            return Err(HistogramOpError::IncompatibleCustomBuckets);
        }
        let collision = self.adjust_hint(other);
        let same_layout = self.uses_custom_buckets()
            || (self.schema == other.schema && self.zero_threshold == other.zero_threshold);
        if same_layout {
            // The common case (samples of one series, or series of one instrument): both
            // zero thresholds are valid for both, so only the buckets are added.
            self.count += sign * other.count;
            self.sum += sign * other.sum;
            self.zero_count += sign * other.zero_count;
            add_buckets(
                &mut self.positive_spans,
                &mut self.positive_buckets,
                &other.positive_spans,
                &other.positive_buckets,
                sign,
            );
            add_buckets(
                &mut self.negative_spans,
                &mut self.negative_buckets,
                &other.negative_spans,
                &other.negative_buckets,
                sign,
            );
            return Ok(collision);
        }
        let mut other = other.clone();
        {
            // First the common (coarser) schema, then one zero threshold valid for it: the
            // wider, grown until no populated bucket of either histogram straddles it.
            let schema = self.schema.min(other.schema);
            self.reduce_resolution(schema);
            other.reduce_resolution(schema);
            let mut t = self.zero_threshold.max(other.zero_threshold);
            loop {
                let (_, a) = self.zero_count_for_threshold(t);
                let (_, b) = other.zero_count_for_threshold(a);
                if b == t {
                    break;
                }
                t = b;
            }
            self.widen_zero_bucket(t);
            other.widen_zero_bucket(t);
        }
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        self.zero_count += sign * other.zero_count;
        let pos = merge(&self.positive_pairs(), &other.positive_pairs(), sign);
        let neg = merge(&self.negative_pairs(), &other.negative_pairs(), sign);
        self.set_positive(&pos);
        self.set_negative(&neg);
        Ok(collision)
    }

    /// The hint of a sum: equal hints stay, a gauge makes a gauge, otherwise unknown; true
    /// when a "reset" met a "no reset".
    fn adjust_hint(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::*;
        let (a, b) = (self.counter_reset_hint, other.counter_reset_hint);
        let (hint, collision) = match (a, b) {
            _ if a == b => (a, false),
            (Gauge, _) | (_, Gauge) => (Gauge, false),
            (CounterReset, NotCounterReset) | (NotCounterReset, CounterReset) => (Unknown, true),
            _ => (Unknown, false),
        };
        self.counter_reset_hint = hint;
        collision
    }

    /// Multiplies every count and the sum by `factor` (a negative factor gives negative
    /// counts, as in Prometheus 3.0).
    pub fn mul(&mut self, factor: f64) {
        self.scale(|v| v * factor);
    }

    /// Divides every count and the sum by `divisor` (by zero: ±Inf, or NaN for zero counts).
    pub fn div(&mut self, divisor: f64) {
        self.scale(|v| v / divisor);
    }

    fn scale(&mut self, f: impl Fn(f64) -> f64) {
        self.count = f(self.count);
        self.sum = f(self.sum);
        self.zero_count = f(self.zero_count);
        for c in self
            .positive_buckets
            .iter_mut()
            .chain(self.negative_buckets.iter_mut())
        {
            *c = f(*c);
        }
    }

    /// Drops empty buckets, keeping runs of at most `max_empty` empty buckets inside a span
    /// (bridging two spans costs less than a new span), and merges adjacent spans.
    pub fn compact(&mut self, max_empty: u32) {
        let pos = compact_pairs(&self.positive_pairs(), max_empty);
        let neg = compact_pairs(&self.negative_pairs(), max_empty);
        self.set_positive(&pos);
        self.set_negative(&neg);
    }

    /// True when `self` cannot be the continuation of counter `previous` without a reset:
    /// a "reset" hint; a smaller count or zero count; a change between custom and exponential
    /// buckets or of custom bounds; a finer schema or a narrower zero bucket; or any bucket
    /// (compared at `self`'s schema and zero bucket) that went down. A "not reset" hint is
    /// taken at its word; a gauge is judged like a counter (as Prometheus does, so that
    /// `rate` of a gauge, which is warned about, still treats decreases as resets).
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            CounterResetHint::Unknown | CounterResetHint::Gauge => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() != previous.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() {
            if self.custom_values != previous.custom_values {
                return true;
            }
        } else if self.schema == previous.schema && self.zero_threshold == previous.zero_threshold {
            // Same layout (the usual case): no conversion of the previous sample needed.
            if self.zero_count < previous.zero_count {
                return true;
            }
        } else {
            if self.schema > previous.schema || self.zero_threshold < previous.zero_threshold {
                return true;
            }
            let mut coarse = previous.clone();
            coarse.reduce_resolution(self.schema);
            let (prev_zero, t) = coarse.zero_count_for_threshold(self.zero_threshold);
            if t != self.zero_threshold {
                // The new zero bucket would cut a populated bucket of the previous sample.
                return true;
            }
            if self.zero_count < prev_zero {
                return true;
            }
        }
        let same_layout = self.uses_custom_buckets()
            || (self.schema == previous.schema && self.zero_threshold == previous.zero_threshold);
        if same_layout {
            return went_down_dense(
                &previous.positive_spans,
                &previous.positive_buckets,
                &self.positive_spans,
                &self.positive_buckets,
            ) || went_down_dense(
                &previous.negative_spans,
                &previous.negative_buckets,
                &self.negative_spans,
                &self.negative_buckets,
            );
        }
        let mut prev = previous.clone();
        prev.reduce_resolution(self.schema);
        prev.widen_zero_bucket(self.zero_threshold);
        went_down(&prev.positive_pairs(), &self.positive_pairs())
            || went_down(&prev.negative_pairs(), &self.negative_pairs())
    }

    /// Equality up to bucket layout: same schema, zero bucket, count, sum, bounds and the
    /// same non-empty buckets (spans may differ by empty buckets). Counter reset hints are
    /// not compared.
    pub fn same_distribution(&self, other: &FloatHistogram) -> bool {
        let nonempty = |p: Vec<(i32, f64)>| -> Vec<(i32, u64)> {
            p.into_iter()
                .filter(|x| x.1 != 0.0)
                .map(|(i, c)| (i, c.to_bits()))
                .collect()
        };
        self.schema == other.schema
            && self.zero_threshold == other.zero_threshold
            && self.zero_count == other.zero_count
            && self.count == other.count
            && (self.sum == other.sum || (self.sum.is_nan() && other.sum.is_nan()))
            && self.custom_values == other.custom_values
            && nonempty(self.positive_pairs()) == nonempty(other.positive_pairs())
            && nonempty(self.negative_pairs()) == nonempty(other.negative_pairs())
    }
}

/// Sum of two index-ordered bucket lists, `b` scaled by `sign` (one linear pass).
fn merge(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(ia, ca)), Some(&(ib, cb))) if ia == ib => {
                out.push((ia, ca + sign * cb));
                i += 1;
                j += 1;
            }
            (Some(&(ia, ca)), Some(&(ib, _))) if ia < ib => {
                out.push((ia, ca));
                i += 1;
            }
            (Some(&(ia, ca)), None) => {
                out.push((ia, ca));
                i += 1;
            }
            (_, Some(&(ib, cb))) => {
                out.push((ib, sign * cb));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Adds buckets `b` (spans and counts) scaled by `sign` into `a`: in place when the spans
/// are the same (consecutive samples of one series usually are), else by a linear merge.
fn add_buckets(a_spans: &mut Vec<Span>, a: &mut Vec<f64>, b_spans: &[Span], b: &[f64], sign: f64) {
    if a_spans.as_slice() == b_spans && a.len() == b.len() {
        for (x, y) in a.iter_mut().zip(b) {
            *x += sign * y;
        }
        return;
    }
    let merged = merge(&sparse(a_spans, a), &sparse(b_spans, b), sign);
    (*a_spans, *a) = dense(&merged);
}

/// True when some bucket of `prev` holds more than the same bucket of `cur` (missing = 0);
/// both lists in index order (one linear pass).
fn went_down(prev: &[(i32, f64)], cur: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        while cur.get(j).is_some_and(|&(k, _)| k < i) {
            j += 1;
        }
        let now = match cur.get(j) {
            Some(&(k, v)) if k == i => v,
            _ => 0.0,
        };
        if c > now {
            return true;
        }
    }
    false
}

/// [`went_down`] on spans and counts, without building pairs when the spans are the same.
fn went_down_dense(prev_spans: &[Span], prev: &[f64], cur_spans: &[Span], cur: &[f64]) -> bool {
    if prev_spans == cur_spans && prev.len() == cur.len() {
        return prev.iter().zip(cur).any(|(p, c)| p > c);
    }
    went_down(&sparse(prev_spans, prev), &sparse(cur_spans, cur))
}

fn compact_pairs(pairs: &[(i32, f64)], max_empty: u32) -> Vec<(i32, f64)> {
    let filled: Vec<(i32, f64)> = pairs.iter().copied().filter(|p| p.1 != 0.0).collect();
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(filled.len());
    for (i, c) in filled {
        if let Some(&(last, _)) = out.last() {
            let gap = i64::from(i) - i64::from(last) - 1;
            if gap > 0 && gap <= i64::from(max_empty) {
                for k in 1..=gap {
                    out.push((last.saturating_add(i32::try_from(k).unwrap_or(0)), 0.0));
                }
            }
        }
        out.push((i, c));
    }
    out
}
