//! `sum_over_time` and `avg_over_time` of float windows, four windows at a time.
//!
//! Their compensated sums ([`kahan_inc`]) are one chain of dependent additions per window:
//! a window costs ~4 cycles per sample (an addition's latency) however much more the core
//! could do, which made `avg_over_time` most of `topk(5, avg_over_time(x[10m]))` over 6 h
//! (docs/benchmarks.md). Windows are independent of each other, so four of a series'
//! windows are summed side by side, their chains interleaved. Each window gets the same
//! additions in the same order as the one-window functions in `over_time`, so the answers
//! are theirs bit for bit; a mean whose sum does not stay finite (an overflow, where
//! Prometheus 3 turns to an incremental mean, or a NaN) is computed again by the
//! one-window function.

use crate::model::Sample;

use super::super::annotations::Annotations;
use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::value::{compensated_mean, kahan_inc, step_index, Grid, RangeData, SeriesVec, StepSeries};
use super::apply::range_apply_series;
use super::over_time::compensated_total;

/// Windows summed side by side.
const LANES: usize = 4;

/// Which compensated aggregation over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Compensated {
    /// `sum_over_time`: the sum of every sample, from zero.
    Sum,
    /// `avg_over_time`: the sum from the first sample on, divided by the count.
    Avg,
}

impl Compensated {
    /// The aggregation of one window, as `over_time` computes it.
    fn one(self, window: &[Sample]) -> f64 {
        match self {
            Compensated::Sum => super::over_time::sum(window),
            Compensated::Avg => super::over_time::avg(window),
        }
    }

    /// The aggregation of four windows, each as [`Compensated::one`] gives it.
    fn four(self, windows: [&[Sample]; LANES]) -> [f64; LANES] {
        let mut sums = [(0.0, 0.0); LANES];
        let mut rest = windows;
        if self == Compensated::Avg {
            for lane in 0..LANES {
                match windows[lane].split_first() {
                    Some((first, tail)) => {
                        sums[lane] = (first.value, 0.0);
                        rest[lane] = tail;
                    }
                    // Unreachable: only windows holding a sample are summed.
                    None => return windows.map(|w| self.one(w)),
                }
            }
        }
        compensated_sums(rest, &mut sums);
        let mut out = [0.0; LANES];
        for lane in 0..LANES {
            let (sum, comp) = sums[lane];
            out[lane] = match self {
                Compensated::Sum => compensated_total(sum, comp),
                Compensated::Avg if !sum.is_finite() => self.one(windows[lane]),
                Compensated::Avg => compensated_mean(sum, comp, windows[lane].len() as f64),
            };
        }
        out
    }
}

/// Adds each lane's samples to its (sum, compensation) with [`kahan_inc`], in order: the
/// lanes' common length side by side, then what is left of each.
fn compensated_sums(windows: [&[Sample]; LANES], sums: &mut [(f64, f64); LANES]) {
    let mut common = usize::MAX;
    for w in &windows {
        common = common.min(w.len());
    }
    let heads = windows.map(|w| w.get(..common).unwrap_or_default());
    for (((a, b), c), d) in heads[0].iter().zip(heads[1]).zip(heads[2]).zip(heads[3]) {
        for (lane, p) in [a, b, c, d].into_iter().enumerate() {
            let (sum, comp) = sums[lane];
            sums[lane] = kahan_inc(p.value, sum, comp);
        }
    }
    for lane in 0..LANES {
        let (mut sum, mut comp) = sums[lane];
        for p in windows[lane].get(common..).unwrap_or_default() {
            (sum, comp) = kahan_inc(p.value, sum, comp);
        }
        sums[lane] = (sum, comp);
    }
}

/// `kind` over every series' windows, which must hold float samples only (the caller
/// checks: windows with histograms take `over_time`'s path).
pub(super) fn compensated_over_time(
    ev: &mut Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    kind: Compensated,
) -> Result<SeriesVec, PromqlError> {
    debug_assert!(rd.series.iter().all(|s| s.histograms.is_empty()));
    let mut notes = Annotations::default();
    let out = range_apply_series(ev, rd, grid, true, &mut notes, |run, one, _| {
        let mut windows = Vec::new();
        run.float_windows(one.series, &mut windows);
        let samples = one.series.samples.as_slice();
        let window = |range: &std::ops::Range<usize>| samples.get(range.clone()).unwrap_or_default();
        let mut values = StepSeries::new(one.labels.clone());
        for group in windows.chunks(LANES) {
            if let [a, b, c, d] = group {
                let got = kind.four([window(&a.1), window(&b.1), window(&c.1), window(&d.1)]);
                for ((step, _), v) in group.iter().zip(got) {
                    values.push_float(step_index(*step)?, v);
                }
            } else {
                for (step, range) in group {
                    values.push_float(step_index(*step)?, kind.one(window(range)));
                }
            }
        }
        Ok(values)
    })?;
    ev.annotations.merge(notes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f64]) -> Vec<Sample> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            out.push(Sample::new(i as i64 * 15_000, *v));
        }
        out
    }

    /// Four windows side by side give each what the one-window function gives, to the
    /// bit: windows of different lengths, cancelling values (where the compensation
    /// matters), an overflowing mean, NaN and infinities, -0.
    #[test]
    fn four_windows_side_by_side_are_each_summed_as_alone() {
        let big = f64::MAX / 2.0;
        let cases: [&[f64]; 12] = [
            &[1.04625, 1.04575, 1.048, 1.05025, 1.0535],
            &[1e16, 1.0, -1e16, 3.0, 0.1, 0.2],
            &[0.1; 41],
            &[big, big, big, -big, 1.0],
            &[f64::NAN, 1.0],
            &[f64::INFINITY, 1.0, f64::NEG_INFINITY],
            &[-0.0],
            &[-0.0, -0.0],
            &[3.0],
            &[1e308, 1e308, -1e308],
            &[2.5, -7.25, 1e-300, 4.0, 1e10, -1e10, 0.3],
            &[f64::MIN_POSITIVE, -f64::MIN_POSITIVE / 2.0],
        ];
        let all: Vec<Vec<Sample>> = cases.iter().map(|c| samples(c)).collect();
        for kind in [Compensated::Sum, Compensated::Avg] {
            for start in 0..all.len() {
                let pick = |k: usize| all[(start + k * 5) % all.len()].as_slice();
                let windows = [pick(0), pick(1), pick(2), pick(3)];
                let got = kind.four(windows);
                for lane in 0..LANES {
                    let want = kind.one(windows[lane]);
                    assert_eq!(
                        got[lane].to_bits(),
                        want.to_bits(),
                        "{kind:?} of {:?}: {} vs {}",
                        windows[lane],
                        got[lane],
                        want
                    );
                }
            }
        }
    }
}
