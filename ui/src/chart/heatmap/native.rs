//! The [`Grid`] of native histogram samples. All series of the panel are summed into one
//! grid (a heatmap shows one distribution).
//!
//! Rows: with exponential schemas every bucket is re-indexed to the coarsest schema among
//! the samples (exact: a bucket of schema `s` lies inside one bucket of any schema below
//! `s`), then neighbouring buckets are merged two by two until at most
//! [`MAX_NATIVE_ROWS`] rows span the observed range. Each row is one (merged) bucket, so the
//! rows sit on a log axis. The zero bucket and the negative buckets, when they hold
//! observations, get one row each below the others. With custom bounds (NHCB, schema −53)
//! the rows are the union of the bounds (`+Inf` last), merged evenly down to the bound.
//! When the samples mix both kinds, the exponential ones are drawn.
//!
//! Shading: a sample hinted as a gauge (what `rate`, `increase` and their sums return) is
//! drawn as it is; a counter sample shows its increase over the series' previous sample
//! (its full counts after a counter reset), so the first counter sample in view adds
//! nothing.

use std::collections::BTreeSet;

use didban_store::model::histogram::bucket_bound;
use didban_store::model::{BucketSide, CounterResetHint, FloatHistogram};

use super::super::options::ChartOptions;
use super::super::series::Series;
use super::grid::Grid;

/// Most rows a native histogram heatmap draws.
pub const MAX_NATIVE_ROWS: usize = 40;

/// Largest merge shift tried (buckets merged 2^shift at a time).
const MAX_SHIFT: u32 = 62;

/// Exponential rows: buckets re-indexed to `schema`, then merged `2^shift` at a time; groups
/// `lo..=hi` above the optional negative and zero rows.
struct ExpRows {
    schema: i32,
    shift: u32,
    lo: i64,
    hi: i64,
    negative: bool,
    zero: bool,
    zero_threshold: f64,
}

/// Index `i` of a schema, merged `2^d` at a time (Prometheus' schema reduction).
fn reduce(i: i64, d: u32) -> i64 {
    ((i - 1) >> d.min(MAX_SHIFT)) + 1
}

impl ExpRows {
    /// The layout of every exponential sample; `None` when none has an observation.
    fn of(samples: &[&FloatHistogram]) -> Option<ExpRows> {
        let schema = samples.iter().map(|h| h.schema).min()?;
        let (mut lo0, mut hi0) = (i64::MAX, i64::MIN);
        let (mut negative, mut zero, mut zero_threshold) = (false, false, 0.0f64);
        for h in samples {
            let d = u32::try_from(h.schema - schema).unwrap_or(0);
            for (idx, c) in h.positive_pairs() {
                if c != 0.0 {
                    let g = reduce(i64::from(idx), d);
                    lo0 = lo0.min(g);
                    hi0 = hi0.max(g);
                }
            }
            negative |= h.negative_buckets.iter().any(|c| *c != 0.0);
            if h.zero_count != 0.0 {
                zero = true;
                zero_threshold = zero_threshold.max(h.zero_threshold);
            }
        }
        let positive = lo0 <= hi0;
        if !positive && !negative && !zero {
            return None;
        }
        let special = usize::from(negative) + usize::from(zero);
        let mut shift = 0;
        if positive {
            while shift < MAX_SHIFT {
                let rows = reduce(hi0, shift) - reduce(lo0, shift) + 1;
                if usize::try_from(rows).unwrap_or(usize::MAX) + special <= MAX_NATIVE_ROWS {
                    break;
                }
                shift += 1;
            }
        }
        let (lo, hi) = if positive {
            (reduce(lo0, shift), reduce(hi0, shift))
        } else {
            (1, 0)
        };
        Some(ExpRows {
            schema,
            shift,
            lo,
            hi,
            negative,
            zero,
            zero_threshold,
        })
    }

    fn special(&self) -> usize {
        usize::from(self.negative) + usize::from(self.zero)
    }

    fn len(&self) -> usize {
        self.special() + usize::try_from(self.hi - self.lo + 1).unwrap_or(0)
    }

    /// Row labels bottom to top: `<0`, the zero threshold, each group's upper bound.
    fn labels(&self, opts: &ChartOptions) -> Vec<String> {
        let mut out = Vec::with_capacity(self.len());
        if self.negative {
            out.push("<0".to_string());
        }
        if self.zero {
            out.push(opts.format(self.zero_threshold));
        }
        for g in self.lo..=self.hi {
            // the last bucket of group g is g << shift (saturated to the index range)
            let last = i128::from(g) << self.shift.min(MAX_SHIFT);
            let idx = i32::try_from(last).unwrap_or(if last > 0 { i32::MAX } else { i32::MIN });
            out.push(opts.format(bucket_bound(idx, self.schema)));
        }
        out
    }

    /// Adds `h`'s buckets into `rows` (one slot per row).
    fn fill(&self, h: &FloatHistogram, rows: &mut [f64]) {
        let d = u32::try_from(h.schema - self.schema).unwrap_or(0) + self.shift;
        let base = self.special();
        for (idx, c) in h.positive_pairs() {
            let g = reduce(i64::from(idx), d);
            if let Some(slot) = usize::try_from(g - self.lo)
                .ok()
                .and_then(|r| rows.get_mut(base + r))
            {
                *slot += c;
            }
        }
        if self.zero {
            rows[usize::from(self.negative)] += h.zero_count;
        }
        if self.negative {
            rows[0] += h.negative_buckets.iter().sum::<f64>();
        }
    }
}

/// Custom-bound rows: the union of the bounds (`+Inf` last), `per_row` bounds per row.
struct CustomRows {
    bounds: Vec<f64>,
    per_row: usize,
}

impl CustomRows {
    fn of(samples: &[&FloatHistogram]) -> Option<CustomRows> {
        if samples.is_empty() {
            return None;
        }
        let mut bounds: Vec<f64> = Vec::new();
        for h in samples {
            bounds.extend(h.custom_values.iter().copied().filter(|b| b.is_finite()));
        }
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        bounds.push(f64::INFINITY);
        let per_row = bounds.len().div_ceil(MAX_NATIVE_ROWS).max(1);
        Some(CustomRows { bounds, per_row })
    }

    fn len(&self) -> usize {
        self.bounds.len().div_ceil(self.per_row)
    }

    fn labels(&self, opts: &ChartOptions) -> Vec<String> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in self.bounds.chunks(self.per_row) {
            let upper = chunk.last().copied().unwrap_or(f64::INFINITY);
            out.push(if upper.is_infinite() {
                "+Inf".to_string()
            } else {
                opts.format(upper)
            });
        }
        out
    }

    fn fill(&self, h: &FloatHistogram, rows: &mut [f64]) {
        for b in h.buckets() {
            if b.side != BucketSide::Positive {
                continue;
            }
            let at = self.bounds.partition_point(|x| *x < b.upper);
            if let Some(slot) = rows.get_mut(at / self.per_row) {
                *slot += b.count;
            }
        }
    }
}

/// How buckets become rows.
enum Rows {
    Exponential(ExpRows),
    Custom(CustomRows),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Exponential(r) => r.len(),
            Rows::Custom(r) => r.len(),
        }
    }

    fn takes(&self, h: &FloatHistogram) -> bool {
        match self {
            Rows::Exponential(_) => !h.uses_custom_buckets(),
            Rows::Custom(_) => h.uses_custom_buckets(),
        }
    }

    fn fill(&self, h: &FloatHistogram, rows: &mut [f64]) {
        match self {
            Rows::Exponential(r) => r.fill(h, rows),
            Rows::Custom(r) => r.fill(h, rows),
        }
    }
}

/// The grid of every series' histogram samples; `None` when there is nothing to draw.
pub(super) fn grid(series: &[Series], opts: &ChartOptions) -> Option<Grid> {
    let live: Vec<&FloatHistogram> = series
        .iter()
        .flat_map(|s| s.histograms.iter().map(|(_, h)| h.as_ref()))
        .filter(|h| !h.is_stale())
        .collect();
    let exponential: Vec<&FloatHistogram> = live
        .iter()
        .copied()
        .filter(|h| !h.uses_custom_buckets())
        .collect();
    let rows = if exponential.is_empty() {
        Rows::Custom(CustomRows::of(&live)?)
    } else {
        Rows::Exponential(ExpRows::of(&exponential)?)
    };
    let n = rows.len();
    if n == 0 {
        return None;
    }
    let mut times = BTreeSet::new();
    for s in series {
        for (t, h) in &s.histograms {
            if !h.is_stale() && rows.takes(h) {
                times.insert(*t);
            }
        }
    }
    let times: Vec<i64> = times.into_iter().collect();
    let mut counts = vec![vec![0.0; times.len()]; n];
    for s in series {
        // the previous counter sample's total and rows
        let mut prev: Option<(f64, Vec<f64>)> = None;
        for (t, h) in &s.histograms {
            if h.is_stale() || !rows.takes(h) {
                continue;
            }
            let mut now = vec![0.0; n];
            rows.fill(h, &mut now);
            let shown = if h.counter_reset_hint == CounterResetHint::Gauge {
                Some(now.clone())
            } else {
                match &prev {
                    None => None,
                    Some((count, _))
                        if h.count < *count || h.counter_reset_hint == CounterResetHint::CounterReset =>
                    {
                        Some(now.clone())
                    }
                    Some((_, before)) => {
                        Some(now.iter().zip(before).map(|(a, b)| (a - b).max(0.0)).collect())
                    }
                }
            };
            prev = Some((h.count, now));
            let (Some(shown), Ok(ti)) = (shown, times.binary_search(t)) else {
                continue;
            };
            for (row, c) in shown.into_iter().enumerate() {
                if c.is_finite() && c > 0.0 {
                    counts[row][ti] += c;
                }
            }
        }
    }
    let (labels, rows_text) = match &rows {
        Rows::Exponential(r) => {
            let per = 1u64.checked_shl(r.shift).unwrap_or(u64::MAX);
            let merged = if per > 1 {
                format!(", {per} buckets per row")
            } else {
                String::new()
            };
            (
                r.labels(opts),
                format!("{n} native histogram rows (schema {}{merged})", r.schema),
            )
        }
        Rows::Custom(r) => (r.labels(opts), format!("{n} custom buckets")),
    };
    Some(Grid {
        times,
        labels,
        counts,
        rows_text,
    })
}
