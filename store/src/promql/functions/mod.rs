//! PromQL functions, dispatched by name. Range-vector functions share one driver that walks
//! each series' samples with forward-only window cursors.

mod histogram;
mod label;
mod math;
mod over_time;
mod rate;

use std::cmp::Ordering;

use promql_parser::parser::{Call, Expr};

use crate::model::Sample;

use super::engine::Evaluator;
use super::error::PromqlError;
use super::selector::advance_window;
use super::value::{check_steps, Elem, Grid, LabelMemo, RangeData, StepVec, Val};

/// Evaluates a function call over every step.
pub(crate) fn eval(ev: &mut Evaluator<'_>, call: &Call, grid: &Grid) -> Result<Val, PromqlError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|b| &**b).collect();
    match name {
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "predict_linear"
        | "resets"
        | "changes"
        | "holt_winters"
        | "double_exponential_smoothing" => rate::eval(ev, name, &args, grid),
        "avg_over_time" | "min_over_time" | "max_over_time" | "sum_over_time" | "count_over_time"
        | "quantile_over_time" | "stddev_over_time" | "stdvar_over_time" | "last_over_time"
        | "first_over_time" | "present_over_time" | "absent_over_time" | "mad_over_time" => {
            over_time::eval(ev, name, &args, grid)
        }
        "histogram_quantile" => histogram::eval(ev, &args, grid),
        "label_replace" | "label_join" | "absent" | "vector" | "scalar" | "time" | "timestamp" | "sort"
        | "sort_desc" | "sort_by_label" | "sort_by_label_desc" | "pi" => label::eval(ev, name, &args, grid),
        _ => math::eval(ev, name, &args, grid),
    }
}

/// The `i`-th argument, or an error naming the function.
pub(crate) fn arg<'e>(args: &[&'e Expr], i: usize, func: &str) -> Result<&'e Expr, PromqlError> {
    args.get(i)
        .copied()
        .ok_or_else(|| PromqlError::exec(format!("function {func} expects at least {} argument(s)", i + 1)))
}

/// Evaluates argument `i` as a scalar (one value per step).
pub(crate) fn scalar_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<Vec<f64>, PromqlError> {
    let e = arg(args, i, func)?;
    ev.eval(e, grid)?
        .into_scalar(&format!("argument {} of {func}", i + 1))
}

/// Evaluates argument `i` as an instant vector.
pub(crate) fn vector_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<Vec<StepVec>, PromqlError> {
    let e = arg(args, i, func)?;
    ev.eval(e, grid)?
        .into_vector(&format!("argument {} of {func}", i + 1))
}

/// Evaluates argument `i` as a range vector.
pub(crate) fn matrix_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<RangeData, PromqlError> {
    let e = arg(args, i, func)?;
    ev.eval(e, grid)?
        .into_matrix(&format!("argument {} of {func}", i + 1))
}

/// What a range function sees at one step.
pub(crate) struct Window<'a> {
    /// The samples inside the window, in time order.
    pub samples: &'a [Sample],
    /// Inclusive window bounds, ms.
    pub start: i64,
    pub end: i64,
    /// The evaluation time of the step, ms (`predict_linear` predicts from it).
    pub t: i64,
    /// Step index, to look up per-step scalar arguments.
    pub step: usize,
}

/// Applies `f` to every series' window at every step; steps where `f` returns `None` (or the
/// window is empty) produce no sample. `drop_name` removes `__name__` from the output.
pub(crate) fn range_apply(
    ev: &mut Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    mut f: impl FnMut(&Window<'_>) -> Result<Option<f64>, PromqlError>,
) -> Result<Vec<StepVec>, PromqlError> {
    let n = grid.len();
    let mut out: Vec<StepVec> = vec![Vec::new(); n];
    let mut memo = LabelMemo::default();
    for s in &rd.series {
        let labels = if drop_name {
            memo.map(&s.labels, |l| l.without_metric_name())
        } else {
            s.labels.clone()
        };
        let (mut lo, mut hi) = (0usize, 0usize);
        for (i, slot) in out.iter_mut().enumerate() {
            let t = grid.t(i);
            let (start, end) = rd.window(t);
            advance_window(&s.samples, start, end, &mut lo, &mut hi);
            let Some(samples) = s.samples.get(lo..hi) else {
                continue;
            };
            if samples.is_empty() {
                continue;
            }
            let w = Window {
                samples,
                start,
                end,
                t,
                step: i,
            };
            if let Some(v) = f(&w)? {
                slot.push(Elem {
                    labels: labels.clone(),
                    v,
                });
            }
        }
        ev.check_deadline()?;
    }
    check_steps(&memo, &out)?;
    Ok(out)
}

/// Applies `f` to every sample of an instant vector, dropping `__name__`; `None` drops the
/// sample.
pub(crate) fn map_values(
    steps: Vec<StepVec>,
    mut f: impl FnMut(f64, usize) -> Option<f64>,
) -> Result<Vec<StepVec>, PromqlError> {
    let mut memo = LabelMemo::default();
    let mut out: Vec<StepVec> = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        let mut res = Vec::with_capacity(step.len());
        for mut e in step {
            let Some(v) = f(e.v, i) else { continue };
            e.v = v;
            e.labels = memo.map(&e.labels, |l| l.without_metric_name());
            res.push(e);
        }
        out.push(res);
    }
    check_steps(&memo, &out)?;
    Ok(out)
}

/// The φ-quantile of `values` with Prometheus' linear interpolation between closest ranks;
/// φ < 0 gives -Inf, φ > 1 gives +Inf, NaN or no values give NaN.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lv = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let uv = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lv * (1.0 - weight) + uv * weight
}

/// Go's `math.Max`: NaN wins.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
