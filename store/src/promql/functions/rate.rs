//! Counter and gauge rate functions: `rate`, `increase`, `delta` (with Prometheus'
//! extrapolation), `irate`, `idelta`, `deriv`, `predict_linear`, `resets`, `changes` and
//! `double_exponential_smoothing` (Prometheus 2.x `holt_winters`).

use std::cell::Cell;

use promql_parser::parser::Expr;

use crate::model::{HistogramSample, Sample, METRIC_NAME_LABEL};

use super::super::annotations::Annotations;
use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::parse::unparen;
use super::super::value::{kahan_inc, Grid, RangeData, Val};
use super::apply::{metric_name, range_apply, range_apply_any, range_apply_series, Out, Window};
use super::args::{matrix_arg, scalar_arg};
use super::histogram_rate::{histogram_increase, histogram_instant_delta};

/// Evaluates one of this module's functions.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    grid: &Grid,
) -> Result<Val, PromqlError> {
    let rd = matrix_arg(ev, args, 0, name, grid)?;
    let range_secs = rd.range_ms as f64 / 1000.0;
    let out = match name {
        "rate" | "increase" | "delta" => {
            if name != "delta" {
                note_non_counters(ev, args, &rd);
            }
            let is_counter = name != "delta";
            let is_rate = name == "rate";
            let mut notes = Annotations::default();
            // Each series' resets and factor memo are made on the thread that walks it.
            let out = range_apply_series(ev, &rd, grid, true, &mut notes, |run, one, notes| {
                let resets = is_counter.then(CounterResets::default);
                let extrapolation = Extrapolation::new(range_secs, is_rate);
                let rate = |w: &Window<'_>, notes: &mut Annotations| {
                    Ok(rate_of_window(w, resets.as_ref(), &extrapolation, notes))
                };
                run.walk_windows(one, &rate, notes)
            })?;
            ev.annotations.merge(notes);
            out
        }
        "irate" | "idelta" => {
            let is_rate = name == "irate";
            let mut notes = Annotations::default();
            let out = range_apply_any(
                ev,
                &rd,
                grid,
                true,
                |w, notes| Ok(instant_delta_of_window(w, is_rate, notes)),
                &mut notes,
            )?;
            ev.annotations.merge(notes);
            out
        }
        "deriv" => range_apply(ev, &rd, grid, true, |w, _| {
            if w.samples.len() < 2 {
                return Ok(None);
            }
            let first_t = w.samples.first().map(|s| s.timestamp_ms).unwrap_or(0);
            Ok(Some(linear_regression(w.samples, first_t).0))
        })?,
        "predict_linear" => {
            let secs = scalar_arg(ev, args, 1, name, grid)?;
            range_apply(ev, &rd, grid, true, |w, _| {
                if w.samples.len() < 2 {
                    return Ok(None);
                }
                let (slope, intercept) = linear_regression(w.samples, w.t);
                let d = secs.get(w.step).copied().unwrap_or(f64::NAN);
                Ok(Some(slope * d + intercept))
            })?
        }
        "resets" => range_apply(ev, &rd, grid, true, |w, _| {
            let mut n = 0.0;
            for pair in w.samples.windows(2) {
                if pair[1].value < pair[0].value {
                    n += 1.0;
                }
            }
            Ok(Some(n))
        })?,
        "changes" => range_apply(ev, &rd, grid, true, |w, _| {
            let mut n = 0.0;
            for pair in w.samples.windows(2) {
                let (a, b) = (pair[0].value, pair[1].value);
                if a != b && !(a.is_nan() && b.is_nan()) {
                    n += 1.0;
                }
            }
            Ok(Some(n))
        })?,
        _ => {
            let sf = scalar_arg(ev, args, 1, name, grid)?;
            let tf = scalar_arg(ev, args, 2, name, grid)?;
            range_apply(ev, &rd, grid, true, |w, _| {
                let s = sf.get(w.step).copied().unwrap_or(f64::NAN);
                let t = tf.get(w.step).copied().unwrap_or(f64::NAN);
                smoothing(w.samples, s, t)
            })?
        }
    };
    Ok(Val::Series(out))
}

/// Adds Prometheus' "metric might not be a counter" info for each series of a range selector
/// (not a subquery) whose name lacks a counter suffix.
fn note_non_counters(ev: &mut Evaluator<'_>, args: &[&Expr], rd: &RangeData) {
    if !matches!(args.first().map(|a| unparen(a)), Some(Expr::MatrixSelector(_))) {
        return;
    }
    for s in &rd.series {
        let Some(name) = s.labels.get(METRIC_NAME_LABEL) else {
            continue;
        };
        let counter_like = ["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if !counter_like && !s.samples.is_empty() {
            ev.annotations.possible_non_counter(name);
        }
    }
}

/// Where a float series' windows hold a counter reset (a sample below the one before
/// it), so a window without one skips Prometheus' summing loop: the loop adds nothing
/// there, so skipping it changes no bit of the answer. A series' windows move forward, so
/// its samples are scanned once, as the windows reach them (while they are in the cache
/// from finding the window), keeping only the newest reset seen.
#[derive(Default)]
struct CounterResets {
    /// Index of the next sample to compare with the one before it.
    scanned: Cell<usize>,
    /// The newest index `j` below `scanned` with `v[j] < v[j - 1]`.
    newest: Cell<Option<usize>>,
}

impl CounterResets {
    /// True when the window's samples (after its first, which Prometheus compares with 0:
    /// a no-op) hold a reset. Windows must be given in the order they move forward in
    /// (neither end moving back), as `walk_windows` gives them.
    fn within(&self, w: &Window<'_>) -> bool {
        let lo = w.first_sample;
        let hi = lo + w.samples.len();
        // Samples at or before `lo` are never inside a later window either.
        let mut j = self.scanned.get().max(lo + 1);
        let mut newest = self.newest.get();
        while j < hi {
            if let (Some(prev), Some(cur)) = (w.samples.get(j - 1 - lo), w.samples.get(j - lo)) {
                if cur.value < prev.value {
                    newest = Some(j);
                }
            }
            j += 1;
        }
        self.scanned.set(j);
        self.newest.set(newest);
        newest.is_some_and(|r| r > lo)
    }
}

/// `rate`/`increase`/`delta` of one window: of the floats, or of the histograms; a window
/// with both kinds has no result and a warning. `counter`: the resets of a counter's
/// series (`None` for `delta`).
fn rate_of_window(
    w: &Window<'_>,
    counter: Option<&CounterResets>,
    extrapolation: &Extrapolation,
    notes: &mut Annotations,
) -> Option<Out> {
    if !w.samples.is_empty() && !w.histograms.is_empty() {
        notes.mixed_floats_histograms(metric_name(w.labels));
        return None;
    }
    let is_counter = counter.is_some();
    if w.histograms.is_empty() {
        let resets = counter.is_some_and(|c| c.within(w));
        return extrapolated_rate(w.samples, (w.start, w.end), (is_counter, resets), extrapolation)
            .map(Out::Float);
    }
    let first = w.histograms.first()?;
    let last = w.histograms.last()?;
    if w.histograms.len() < 2 {
        return None;
    }
    let mut h = histogram_increase(w.histograms, is_counter, metric_name(w.labels), notes)?;
    let geometry = (first.timestamp_ms, last.timestamp_ms, w.histograms.len());
    h.mul(extrapolation.factor(geometry, (w.start, w.end), None));
    Some(Out::Histogram(h))
}

/// `irate`/`idelta` of one window: from its last two samples, which must be of one kind.
fn instant_delta_of_window(w: &Window<'_>, is_rate: bool, notes: &mut Annotations) -> Option<Out> {
    if w.histograms.is_empty() {
        return instant_delta(w.samples, is_rate).map(Out::Float);
    }
    // The last two samples of the merged, time-ordered window, newest first.
    let (mut fi, mut hi) = (w.samples.len(), w.histograms.len());
    let mut picked: Vec<Result<Sample, &HistogramSample>> = Vec::with_capacity(2);
    while picked.len() < 2 {
        let f = fi.checked_sub(1).and_then(|i| w.samples.get(i));
        let h = hi.checked_sub(1).and_then(|i| w.histograms.get(i));
        match (f, h) {
            (Some(f), Some(h)) if f.timestamp_ms > h.timestamp_ms => {
                fi -= 1;
                picked.push(Ok(*f));
            }
            (_, Some(h)) => {
                hi -= 1;
                picked.push(Err(h));
            }
            (Some(f), None) => {
                fi -= 1;
                picked.push(Ok(*f));
            }
            (None, None) => break,
        }
    }
    match picked.as_slice() {
        [Ok(last), Ok(prev)] => instant_delta(&[*prev, *last], is_rate).map(Out::Float),
        [Err(last), Err(prev)] => {
            let mut h = histogram_instant_delta(&prev.h, &last.h, is_rate, metric_name(w.labels), notes)?;
            if is_rate {
                let interval = (last.timestamp_ms - prev.timestamp_ms) as f64 / 1000.0;
                if interval == 0.0 {
                    return None;
                }
                h.div(interval);
            }
            Some(Out::Histogram(h))
        }
        [_, _] => {
            notes.mixed_floats_histograms(metric_name(w.labels));
            None
        }
        _ => None,
    }
}

/// Prometheus' `extrapolatedRate`: the increase (counter-reset aware when `is_counter`)
/// between the first and last sample, extrapolated towards the window boundaries — all the
/// way when a boundary is within 1.1 average sample intervals, else half an interval — and
/// never below a counter's zero point. `resets`: false when the caller knows the samples
/// hold no counter reset (the summing loop is skipped).
fn extrapolated_rate(
    s: &[Sample],
    window: (i64, i64),
    (is_counter, resets): (bool, bool),
    extrapolation: &Extrapolation,
) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let first = s.first()?;
    let last = s.last()?;
    let mut result = last.value - first.value;
    if is_counter && resets {
        let mut prev = 0.0;
        for p in s {
            if p.value < prev {
                result += prev;
            }
            prev = p.value;
        }
    }
    let geometry = (first.timestamp_ms, last.timestamp_ms, s.len());
    // A counter's zero point can only move the start of the extrapolation when it is less
    // than 2 sampled intervals back: the start is never more than 1.1 of them back (an
    // average interval is at most the sampled one). Most counters are far from zero, and
    // their factor is then a function of where the samples sit in the window alone.
    let zero_point_matters = is_counter && result > 0.0 && first.value >= 0.0 && first.value < 2.0 * result;
    // Fraction of the sampled interval before the counter's zero point.
    let zero_point = zero_point_matters.then(|| first.value / result);
    Some(result * extrapolation.factor(geometry, window, zero_point))
}

/// How one call of `rate`/`increase`/`delta` extrapolates a window's increase: its range
/// and whether it is a rate, and the last factor computed without a zero point for one
/// series. Consecutive windows of a series scraped at the query's step (or a multiple of
/// it) hold their samples at the same places relative to the window, so they share the
/// factor: six divisions saved on most windows of a `rate` over many steps.
struct Extrapolation {
    range_secs: f64,
    is_rate: bool,
    last: Cell<Option<(FactorKey, f64)>>,
}

/// What [`extrapolation_factor`] without a zero point depends on besides the range: the
/// first sample's distance from the window's start, the last one's from its end, the
/// sampled interval (all ms) and the sample count.
#[derive(Clone, Copy, PartialEq)]
struct FactorKey {
    to_start_ms: i64,
    to_end_ms: i64,
    sampled_ms: i64,
    samples: usize,
}

impl Extrapolation {
    /// For a range of `range_secs`, a rate when `is_rate`; nothing memoized yet.
    fn new(range_secs: f64, is_rate: bool) -> Extrapolation {
        Extrapolation {
            range_secs,
            is_rate,
            last: Cell::new(None),
        }
    }

    /// [`extrapolation_factor`] of `(first ms, last ms, n)` samples in the window `(start,
    /// end)`; without a zero point, from the memo when it is for the same key. Every input
    /// enters that function as a difference of two of these timestamps, so equal keys give
    /// equal bits.
    fn factor(
        &self,
        (first, last, n): (i64, i64, usize),
        (start, end): (i64, i64),
        zero_point: Option<f64>,
    ) -> f64 {
        let compute = |zero_point| {
            extrapolation_factor(
                (first, last, n),
                (start, end),
                self.range_secs,
                zero_point,
                self.is_rate,
            )
        };
        if zero_point.is_some() {
            return compute(zero_point);
        }
        let key = FactorKey {
            to_start_ms: first.wrapping_sub(start),
            to_end_ms: end.wrapping_sub(last),
            sampled_ms: last.wrapping_sub(first),
            samples: n,
        };
        if let Some((k, factor)) = self.last.get() {
            if k == key {
                return factor;
            }
        }
        let factor = compute(None);
        self.last.set(Some((key, factor)));
        factor
    }
}

/// The factor that extrapolates an increase seen between the first and last of `n` samples
/// (`(first ms, last ms, n)`) to the window `(start, end)`: all the way to a boundary within
/// 1.1 average sample intervals, else half an interval, and for a counter never before its
/// zero point (`zero_point`: fraction of the sampled interval). Divided by the range for a
/// rate.
fn extrapolation_factor(
    (first, last, n): (i64, i64, usize),
    (range_start, range_end): (i64, i64),
    range_secs: f64,
    zero_point: Option<f64>,
    is_rate: bool,
) -> f64 {
    let mut to_start = (first - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last) as f64 / 1000.0;
    let sampled = (last - first) as f64 / 1000.0;
    let avg = sampled / n.saturating_sub(1).max(1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if let Some(frac) = zero_point {
        let to_zero = sampled * frac;
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range_secs;
    }
    factor
}

/// `irate` / `idelta`: from the last two samples.
fn instant_delta(s: &[Sample], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let last = s.last()?;
    let prev = s.get(s.len() - 2)?;
    let mut result = last.value - prev.value;
    if is_rate && last.value < prev.value {
        // Counter reset: the counter restarted from zero.
        result = last.value;
    }
    if !is_rate {
        return Some(result);
    }
    let interval = (last.timestamp_ms - prev.timestamp_ms) as f64 / 1000.0;
    if interval == 0.0 {
        return None;
    }
    Some(result / interval)
}

/// Least-squares fit of value over time (seconds relative to `intercept_ms`): `(slope,
/// intercept)`. A constant series has slope 0 (NaN for an infinite constant).
pub(super) fn linear_regression(s: &[Sample], intercept_ms: i64) -> (f64, f64) {
    let init = s.first().map(|p| p.value).unwrap_or(f64::NAN);
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for p in s {
        if const_y && p.value != init {
            const_y = false;
        }
        n += 1.0;
        let x = (p.timestamp_ms - intercept_ms) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.value, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.value, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Double exponential smoothing (Holt's linear method) with smoothing factor `sf` and trend
/// factor `tf`, both strictly between 0 and 1.
fn smoothing(s: &[Sample], sf: f64, tf: f64) -> Result<Option<f64>, PromqlError> {
    if !(sf > 0.0 && sf < 1.0) {
        return Err(PromqlError::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
        )));
    }
    if !(tf > 0.0 && tf < 1.0) {
        return Err(PromqlError::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
        )));
    }
    if s.len() < 2 {
        return Ok(None);
    }
    let mut s0 = 0.0;
    let mut s1 = s[0].value;
    let mut b = s[1].value - s[0].value;
    for (i, p) in s.iter().enumerate().skip(1) {
        let x = sf * p.value;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    /// Prometheus' extrapolation as written, every division made: what the memo and the
    /// zero-point shortcut of [`extrapolated_rate`] must give bit for bit.
    fn rate_as_written(s: &[Sample], window: (i64, i64), range_secs: f64, is_rate: bool) -> Option<f64> {
        let (first, last) = (s.first()?, s.last()?);
        if s.len() < 2 {
            return None;
        }
        let mut result = last.value - first.value;
        let mut prev = 0.0;
        for p in s {
            if p.value < prev {
                result += prev;
            }
            prev = p.value;
        }
        let zero_point = (result > 0.0 && first.value >= 0.0).then(|| first.value / result);
        let geometry = (first.timestamp_ms, last.timestamp_ms, s.len());
        Some(result * extrapolation_factor(geometry, window, range_secs, zero_point, is_rate))
    }

    #[test]
    fn memoized_factors_and_the_zero_point_shortcut_change_no_bit() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |below: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % below
        };
        let mut zero_point_used = 0;
        let ranges = [300.0, 60.0, 3_600.0];
        // One memo per range and kind, shared by every case of them: a factor is reused
        // only when every input of the key matches (window edges 0–14 s from the samples in
        // steps of 2 s, so keys recur and often differ in one field from the one before).
        let memos = ranges.map(|r| [false, true].map(|is_rate| Extrapolation::new(r, is_rate)));
        for case in 0..20_000 {
            // Counters starting near zero (where the zero point moves the start) or far
            // from it, scraped regularly or with jitter and gaps.
            let n = 2 + next(30) as usize;
            let mut t = 1_000_000 + next(20_000) as i64;
            let mut v = if case % 2 == 0 {
                next(50) as f64 * 0.5
            } else {
                1e6 + next(1_000) as f64
            };
            let regular = case % 3 != 0;
            // Regular intervals that give equal spans with different counts.
            let interval = [15_000, 5_000, 45_000][(case / 3) % 3];
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                samples.push(Sample::new(t, v));
                t += if regular {
                    interval
                } else {
                    1 + next(40_000) as i64
                };
                v += next(100) as f64 * 0.25;
            }
            let (first, last) = (samples[0].timestamp_ms, samples[n - 1].timestamp_ms);
            let jitter = if case % 7 == 0 { next(1_000) as i64 } else { 0 };
            let start = first - next(8) as i64 * 2_000 - jitter;
            let end = last + next(8) as i64 * 2_000;
            let range_secs = ranges[case % 3];
            let is_rate = case % 5 != 0;
            let extrapolation = &memos[case % 3][usize::from(is_rate)];
            // The window, then neighbours differing in one edge right after it (a memo
            // keyed on too little would give them its factor), then the window again.
            for (start, end) in [
                (start, end),
                (start - 2_000, end),
                (start, end + 2_000),
                (start, end),
            ] {
                let got = extrapolated_rate(&samples, (start, end), (true, false), extrapolation);
                let want = rate_as_written(&samples, (start, end), range_secs, is_rate);
                assert_eq!(
                    got.map(f64::to_bits),
                    want.map(f64::to_bits),
                    "case {case} [{start}, {end}]: {samples:?}"
                );
            }
            let result = samples[n - 1].value - samples[0].value;
            if result > 0.0 && samples[0].value < 2.0 * result {
                zero_point_used += 1;
            }
        }
        // Both paths were taken many times.
        assert!(
            zero_point_used > 1_000 && zero_point_used < 19_000,
            "{zero_point_used}"
        );
    }

    #[test]
    fn a_reset_counts_inside_a_window_but_not_on_its_first_sample() {
        let labels = Labels::default();
        let values = [0.0, 10.0, 5.0, 15.0, 3.0, 4.0, 5.0, 6.0];
        let samples: Vec<Sample> = (0..)
            .zip(values)
            .map(|(t, v)| Sample::new(t * 1_000, v))
            .collect();
        let window = |first: usize, len: usize| Window {
            samples: &samples[first..first + len],
            histograms: &[],
            labels: &labels,
            start: 0,
            end: 0,
            t: 0,
            step: 0,
            first_sample: first,
        };
        // Windows moving forward over one series, the resets at 2 (10 → 5) and 4 (15 → 3).
        let resets = CounterResets::default();
        assert!(!resets.within(&window(0, 2)));
        assert!(resets.within(&window(1, 2)));
        // 5 is the window's first sample: Prometheus compares it with 0, not with 10.
        assert!(!resets.within(&window(2, 2)));
        // 15 → 3 is the last pair.
        assert!(resets.within(&window(2, 3)));
        assert!(resets.within(&window(3, 2)));
        // Past both; an empty window; a window that jumps ahead.
        assert!(!resets.within(&window(4, 3)));
        assert!(!resets.within(&window(5, 0)));
        assert!(!resets.within(&window(6, 2)));
        // A series whose first window starts past a reset it never saw.
        let resets = CounterResets::default();
        assert!(resets.within(&window(3, 2)));
        assert!(!resets.within(&window(4, 4)));
    }
}
