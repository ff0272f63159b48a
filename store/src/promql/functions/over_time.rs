//! Aggregations over time of each series' window: `*_over_time`, `present_over_time`,
//! `absent_over_time` and the timestamps `ts_of_{first,last,min,max}_over_time`.

use std::sync::Arc;

use promql_parser::parser::Expr;

use crate::model::{FloatHistogram, Sample};

use super::super::annotations::Annotations;
use super::super::downsampled::Aggr;
use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::parse::unparen;
use super::super::selector::advance_window;
use super::super::selector::eval_matrix_windows;
use super::super::value::{kahan_inc, Elem, Grid, RangeData, RunningSum, StepVec, Val};
use super::apply::{advance_hist_window, metric_name, range_apply, range_apply_any, Out, Window};
use super::args::{arg, matrix_arg, scalar_arg};
use super::compensated::{compensated_over_time, Compensated};
use super::label::absent_labels;
use super::numeric::quantile;

/// Evaluates one of this module's functions.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    grid: &Grid,
) -> Result<Val, PromqlError> {
    if name == "quantile_over_time" {
        let q = scalar_arg(ev, args, 0, name, grid)?;
        let rd = matrix_arg(ev, args, 1, name, grid)?;
        let out = range_apply(ev, &rd, grid, true, |w, notes| {
            let mut values: Vec<f64> = Vec::with_capacity(w.samples.len());
            for p in w.samples {
                values.push(p.value);
            }
            let phi = q.get(w.step).copied().unwrap_or(f64::NAN);
            if !(0.0..=1.0).contains(&phi) {
                notes.invalid_quantile(phi);
            }
            Ok(Some(quantile(phi, &mut values)))
        })?;
        return Ok(Val::Series(out));
    }
    let read = if name == "avg_over_time" {
        avg_downsampled(ev, args, grid)?
    } else {
        AvgRead::NotDownsampled
    };
    let rd = match read {
        AvgRead::Done(out) => return Ok(Val::Vector(out)),
        AvgRead::Raw(rd) => rd,
        AvgRead::NotDownsampled => matrix_arg(ev, args, 0, name, grid)?,
    };
    if name == "count_over_time" && rd.aggregate == Some(Aggr::Count) {
        // Downsampled: each float sample is a window's count.
        let mut notes = Annotations::default();
        let out = range_apply_any(
            ev,
            &rd,
            grid,
            true,
            |w, _| {
                let n: f64 = w.samples.iter().map(|p| p.value).sum();
                Ok(Some(Out::Float(n + w.histograms.len() as f64)))
            },
            &mut notes,
        )?;
        ev.annotations.merge(notes);
        return Ok(Val::Series(out));
    }
    if name == "absent_over_time" {
        let labels = Arc::new(absent_labels(arg(args, 0, name)?));
        let mut out: Vec<StepVec> = Vec::with_capacity(grid.len());
        let mut cursors: Vec<(usize, usize)> = vec![(0, 0); rd.series.len()];
        let mut hcursors: Vec<(usize, usize)> = vec![(0, 0); rd.series.len()];
        for i in 0..grid.len() {
            if i % 64 == 0 {
                ev.check_deadline()?;
            }
            let (start, end) = rd.window(grid.t(i));
            let mut any = false;
            for ((s, (lo, hi)), (hlo, hhi)) in
                rd.series.iter().zip(cursors.iter_mut()).zip(hcursors.iter_mut())
            {
                advance_window(&s.samples, start, end, lo, hi);
                advance_hist_window(&s.histograms, start, end, hlo, hhi);
                if hi > lo || hhi > hlo {
                    any = true;
                }
            }
            out.push(if any {
                Vec::new()
            } else {
                vec![Elem::float(labels.clone(), 1.0)]
            });
        }
        return Ok(Val::Vector(out));
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    if matches!(
        name,
        "sum_over_time"
            | "avg_over_time"
            | "count_over_time"
            | "present_over_time"
            | "last_over_time"
            | "first_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
    ) {
        let compensated = match name {
            "sum_over_time" => Some(Compensated::Sum),
            "avg_over_time" => Some(Compensated::Avg),
            _ => None,
        };
        if let Some(kind) = compensated {
            if rd.series.iter().all(|s| s.histograms.is_empty()) {
                return Ok(Val::Series(compensated_over_time(ev, &rd, grid, kind)?));
            }
        }
        let mut notes = Annotations::default();
        let out = range_apply_any(
            ev,
            &rd,
            grid,
            !keep_name,
            |w, notes| Ok(any_kind(name, w, notes)),
            &mut notes,
        )?;
        ev.annotations.merge(notes);
        return Ok(Val::Series(out));
    }
    let f: fn(&[Sample]) -> f64 = match name {
        "avg_over_time" => avg,
        "min_over_time" => min,
        "max_over_time" => max,
        "sum_over_time" => sum,
        "count_over_time" => |s| s.len() as f64,
        "stddev_over_time" => |s| variance(s).sqrt(),
        "stdvar_over_time" => variance,
        "last_over_time" => |s| s.last().map(|p| p.value).unwrap_or(f64::NAN),
        "first_over_time" => |s| s.first().map(|p| p.value).unwrap_or(f64::NAN),
        "present_over_time" => |_| 1.0,
        "ts_of_first_over_time" => |s| s.first().map(|p| seconds(p.timestamp_ms)).unwrap_or(f64::NAN),
        "ts_of_last_over_time" => |s| s.last().map(|p| seconds(p.timestamp_ms)).unwrap_or(f64::NAN),
        "ts_of_min_over_time" => |s| ts_of_extreme(s, |cur, best| cur <= best),
        "ts_of_max_over_time" => |s| ts_of_extreme(s, |cur, best| cur >= best),
        _ => mad,
    };
    let out = range_apply(ev, &rd, grid, !keep_name, |w, _| Ok(Some(f(w.samples))))?;
    Ok(Val::Series(out))
}

/// What [`avg_downsampled`] did.
enum AvgRead {
    /// Averaged from downsampled windows.
    Done(Vec<StepVec>),
    /// Read, but no window was found: the raw samples, to average as usual.
    Raw(RangeData),
    /// Not read: the selector reads raw data (step or range too small, raw data forced,
    /// not a plain range selector, or native histograms in the windows' series).
    NotDownsampled,
}

/// `avg_over_time` of a range selector read from downsampled windows: Σ sum ÷ Σ count over
/// the windows in each step's range, exact however many samples each window holds.
fn avg_downsampled(ev: &mut Evaluator<'_>, args: &[&Expr], grid: &Grid) -> Result<AvgRead, PromqlError> {
    let Some(Expr::MatrixSelector(ms)) = args.first().map(|a| unparen(a)) else {
        return Ok(AvgRead::NotDownsampled);
    };
    let Some(mut both) = eval_matrix_windows(ev, ms, grid, &[Aggr::Sum, Aggr::Count], 1)? else {
        return Ok(AvgRead::NotDownsampled);
    };
    if both.len() == 1 {
        return Ok(match both.pop() {
            Some(rd) => AvgRead::Raw(rd),
            None => AvgRead::NotDownsampled,
        });
    }
    let (Some(counts), Some(sums)) = (both.pop(), both.pop()) else {
        return Ok(AvgRead::NotDownsampled);
    };
    if sums.series.iter().any(|s| !s.histograms.is_empty()) {
        return Ok(AvgRead::NotDownsampled);
    }
    let total =
        |w: &Window<'_>, _: &mut Annotations| Ok(Some(w.samples.iter().map(|p| p.value).sum::<f64>()));
    let sum_steps = range_apply(ev, &sums, grid, true, total)?.into_steps()?;
    let count_steps = range_apply(ev, &counts, grid, true, total)?.into_steps()?;
    let mut out: Vec<StepVec> = Vec::with_capacity(sum_steps.len());
    for (s, c) in sum_steps.into_iter().zip(count_steps) {
        let mut step: StepVec = Vec::with_capacity(s.len());
        for (a, b) in s.into_iter().zip(c) {
            step.push(Elem::float(a.labels, a.v / b.v));
        }
        out.push(step);
    }
    Ok(AvgRead::Done(out))
}

/// The functions defined on windows of floats, of histograms, or of both.
fn any_kind(name: &str, w: &Window<'_>, notes: &mut Annotations) -> Option<Out> {
    let (fs, hs) = (w.samples, w.histograms);
    // The first and last sample of either kind: (timestamp, float or histogram).
    let first = match (fs.first(), hs.first()) {
        (Some(f), Some(h)) if h.timestamp_ms < f.timestamp_ms => Err(h),
        (Some(f), _) => Ok(f),
        (None, Some(h)) => Err(h),
        (None, None) => return None,
    };
    let last = match (fs.last(), hs.last()) {
        (Some(f), Some(h)) if h.timestamp_ms > f.timestamp_ms => Err(h),
        (Some(f), _) => Ok(f),
        (None, Some(h)) => Err(h),
        (None, None) => return None,
    };
    let pick = |p: Result<&Sample, &crate::model::HistogramSample>| match p {
        Ok(f) => Out::Float(f.value),
        Err(h) => Out::Histogram((*h.h).clone()),
    };
    let ts = |p: Result<&Sample, &crate::model::HistogramSample>| match p {
        Ok(f) => seconds(f.timestamp_ms),
        Err(h) => seconds(h.timestamp_ms),
    };
    match name {
        "count_over_time" => Some(Out::Float((fs.len() + hs.len()) as f64)),
        "present_over_time" => Some(Out::Float(1.0)),
        "last_over_time" => Some(pick(last)),
        "first_over_time" => Some(pick(first)),
        "ts_of_first_over_time" => Some(Out::Float(ts(first))),
        "ts_of_last_over_time" => Some(Out::Float(ts(last))),
        _ if hs.is_empty() => Some(Out::Float(if name == "sum_over_time" {
            sum(fs)
        } else {
            avg(fs)
        })),
        _ if !fs.is_empty() => {
            notes.mixed_floats_histograms(metric_name(w.labels));
            None
        }
        _ => {
            let mut total: Option<FloatHistogram> = None;
            for p in hs {
                match total.as_mut() {
                    None => total = Some((*p.h).clone()),
                    Some(t) => match t.add(&p.h) {
                        Ok(collided) => {
                            if collided {
                                notes.counter_reset_collision();
                            }
                        }
                        Err(e) => {
                            notes.histogram_op_error(e, metric_name(w.labels));
                            return None;
                        }
                    },
                }
            }
            let mut t = total?;
            if name == "avg_over_time" {
                t.div(hs.len() as f64);
            }
            t.compact(0);
            Some(Out::Histogram(t))
        }
    }
}

/// Mean as Prometheus 3 computes it ([`RunningSum`]): the compensated sum's one addition
/// per sample replaced an incremental mean's two chained divisions, which were half the time
/// of `topk(5, avg_over_time(x[10m]))` over 6 h (docs/benchmarks.md).
pub(super) fn avg(s: &[Sample]) -> f64 {
    let Some((first, rest)) = s.split_first() else {
        return f64::NAN;
    };
    let mut acc = RunningSum::new(first.value);
    let mut count = 1.0f64;
    for p in rest {
        count += 1.0;
        acc.add_for_mean(p.value, count);
    }
    acc.mean(count)
}

/// Compensated sum, as Prometheus 3's `sum_over_time`.
pub(super) fn sum(s: &[Sample]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in s {
        (sum, c) = kahan_inc(p.value, sum, c);
    }
    compensated_total(sum, c)
}

/// A compensated sum's value: the sum with its compensation added, unless it overflowed.
pub(super) fn compensated_total(sum: f64, comp: f64) -> f64 {
    if sum.is_infinite() {
        sum
    } else {
        sum + comp
    }
}

/// Minimum; a NaN is replaced by any later number.
fn min(s: &[Sample]) -> f64 {
    let mut m = s.first().map(|p| p.value).unwrap_or(f64::NAN);
    for p in s {
        if p.value < m || m.is_nan() {
            m = p.value;
        }
    }
    m
}

/// Maximum; a NaN is replaced by any later number.
fn max(s: &[Sample]) -> f64 {
    let mut m = s.first().map(|p| p.value).unwrap_or(f64::NAN);
    for p in s {
        if p.value > m || m.is_nan() {
            m = p.value;
        }
    }
    m
}

/// Population variance (Welford, compensated).
fn variance(s: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for p in s {
        count += 1.0;
        let delta = p.value - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.value - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// Milliseconds as the seconds PromQL reports timestamps in.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Timestamp of the last sample that `better(value, best so far)` accepts — the last
/// occurrence of the minimum or maximum, as Prometheus reports it; a NaN is replaced by
/// any later value.
fn ts_of_extreme(s: &[Sample], better: fn(f64, f64) -> bool) -> f64 {
    let Some(first) = s.first() else {
        return f64::NAN;
    };
    let (mut best, mut ts) = (first.value, first.timestamp_ms);
    for p in s {
        if better(p.value, best) || best.is_nan() {
            best = p.value;
            ts = p.timestamp_ms;
        }
    }
    seconds(ts)
}

/// Median absolute deviation from the median.
fn mad(s: &[Sample]) -> f64 {
    let mut values: Vec<f64> = s.iter().map(|p| p.value).collect();
    let median = quantile(0.5, &mut values);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    quantile(0.5, &mut dev)
}
