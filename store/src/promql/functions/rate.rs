//! Counter and gauge rate functions: `rate`, `increase`, `delta` (with Prometheus'
//! extrapolation), `irate`, `idelta`, `deriv`, `predict_linear`, `resets`, `changes` and
//! `double_exponential_smoothing` (Prometheus 2.x `holt_winters`).

use promql_parser::parser::Expr;

use crate::model::{Sample, METRIC_NAME_LABEL};

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::parse::unparen;
use super::super::value::{kahan_inc, Grid, RangeData, Val};
use super::apply::range_apply;
use super::args::{matrix_arg, scalar_arg};

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
            range_apply(ev, &rd, grid, true, |w| {
                Ok(extrapolated_rate(
                    w.samples, w.start, w.end, range_secs, is_counter, is_rate,
                ))
            })?
        }
        "irate" | "idelta" => {
            let is_rate = name == "irate";
            range_apply(ev, &rd, grid, true, |w| Ok(instant_delta(w.samples, is_rate)))?
        }
        "deriv" => range_apply(ev, &rd, grid, true, |w| {
            if w.samples.len() < 2 {
                return Ok(None);
            }
            let first_t = w.samples.first().map(|s| s.timestamp_ms).unwrap_or(0);
            Ok(Some(linear_regression(w.samples, first_t).0))
        })?,
        "predict_linear" => {
            let secs = scalar_arg(ev, args, 1, name, grid)?;
            range_apply(ev, &rd, grid, true, |w| {
                if w.samples.len() < 2 {
                    return Ok(None);
                }
                let (slope, intercept) = linear_regression(w.samples, w.t);
                let d = secs.get(w.step).copied().unwrap_or(f64::NAN);
                Ok(Some(slope * d + intercept))
            })?
        }
        "resets" => range_apply(ev, &rd, grid, true, |w| {
            let mut n = 0.0;
            for pair in w.samples.windows(2) {
                if pair[1].value < pair[0].value {
                    n += 1.0;
                }
            }
            Ok(Some(n))
        })?,
        "changes" => range_apply(ev, &rd, grid, true, |w| {
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
            range_apply(ev, &rd, grid, true, |w| {
                let s = sf.get(w.step).copied().unwrap_or(f64::NAN);
                let t = tf.get(w.step).copied().unwrap_or(f64::NAN);
                smoothing(w.samples, s, t)
            })?
        }
    };
    Ok(Val::Vector(out))
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

/// Prometheus' `extrapolatedRate`: the increase (counter-reset aware when `is_counter`)
/// between the first and last sample, extrapolated towards the window boundaries — all the
/// way when a boundary is within 1.1 average sample intervals, else half an interval — and
/// never below a counter's zero point.
fn extrapolated_rate(
    s: &[Sample],
    range_start: i64,
    range_end: i64,
    range_secs: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let first = s.first()?;
    let last = s.last()?;
    let mut result = last.value - first.value;
    if is_counter {
        let mut prev = 0.0;
        for p in s {
            if p.value < prev {
                result += prev;
            }
            prev = p.value;
        }
    }
    let mut to_start = (first.timestamp_ms - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.timestamp_ms) as f64 / 1000.0;
    let sampled = (last.timestamp_ms - first.timestamp_ms) as f64 / 1000.0;
    let avg = sampled / (s.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first.value >= 0.0 {
        let to_zero = sampled * (first.value / result);
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
    Some(result * factor)
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
