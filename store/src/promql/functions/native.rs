//! Functions of native histograms: `histogram_count`, `histogram_sum`, `histogram_avg`,
//! `histogram_stddev`, `histogram_stdvar`, `histogram_fraction`, and the native branch of
//! `histogram_quantile`. Float samples are ignored silently, as in Prometheus; the results
//! are floats without the metric name.

use promql_parser::parser::Expr;

use crate::model::{BucketSide, FloatHistogram};

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::value::{check_steps, kahan_inc, Elem, Grid, LabelMemo, StepVec, Val};
use super::args::{scalar_arg, vector_arg};

/// Evaluates one of this module's functions.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    grid: &Grid,
) -> Result<Val, PromqlError> {
    let (bounds, vec_arg) = if name == "histogram_fraction" {
        let lo = scalar_arg(ev, args, 0, name, grid)?;
        let hi = scalar_arg(ev, args, 1, name, grid)?;
        (Some((lo, hi)), 2)
    } else {
        (None, 0)
    };
    let v = vector_arg(ev, args, vec_arg, name, grid)?;
    let mut memo = LabelMemo::default();
    let mut out: Vec<StepVec> = Vec::with_capacity(v.len());
    for (i, step) in v.into_iter().enumerate() {
        let mut res = Vec::new();
        for e in step {
            let Some(h) = &e.h else { continue };
            let value = match (name, &bounds) {
                ("histogram_count", _) => h.count,
                ("histogram_sum", _) => h.sum,
                ("histogram_avg", _) => h.sum / h.count,
                ("histogram_stdvar", _) => variance(h),
                ("histogram_stddev", _) => variance(h).sqrt(),
                (_, Some((lo, hi))) => fraction(
                    lo.get(i).copied().unwrap_or(f64::NAN),
                    hi.get(i).copied().unwrap_or(f64::NAN),
                    h,
                ),
                _ => return Err(PromqlError::exec(format!("unknown function {name}"))),
            };
            res.push(Elem::float(
                memo.map(&e.labels, |l| l.without_metric_name()),
                value,
            ));
        }
        out.push(res);
    }
    check_steps(&memo, &out)?;
    Ok(Val::Vector(out))
}

/// Bounds of a bucket made finite for interpolation: the zero bucket is taken to hold no
/// observations of the sign the histogram has no buckets for, and a custom bucket reaching
/// to −Inf starts at 0 when its upper bound is positive. `None` for a bucket reaching to
/// ±Inf that cannot be interpolated (the caller uses its finite bound).
fn usable_bounds(h: &FloatHistogram, lower: f64, upper: f64, side: BucketSide) -> (f64, f64) {
    let (mut lower, mut upper) = (lower, upper);
    if side == BucketSide::Zero {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            upper = 0.0;
        }
    }
    if h.uses_custom_buckets() && lower == f64::NEG_INFINITY && upper > 0.0 {
        lower = 0.0;
    }
    (lower, upper)
}

/// The φ-quantile of a native histogram: the bucket holding the rank is found from the low
/// end (φ < 0.5, or when NaN observations make the buckets short of the count) or from the
/// high end, and the value is interpolated inside it — exponentially in exponential buckets
/// (uniform in a hypothetical finer schema), linearly in the zero bucket and custom buckets.
pub(crate) fn native_quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 {
        return f64::NAN;
    }
    let all = h.buckets();
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward { q * h.count } else { (1.0 - q) * h.count };
    let mut count = 0.0;
    let mut found = None;
    let ordered: Box<dyn Iterator<Item = &crate::model::Bucket>> = if forward {
        Box::new(all.iter())
    } else {
        Box::new(all.iter().rev())
    };
    for b in ordered {
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        found = Some(*b);
        if count >= rank {
            break;
        }
    }
    let Some(b) = found else {
        return f64::NAN;
    };
    let (lower, upper) = usable_bounds(h, b.lower, b.upper, b.side);
    if h.uses_custom_buckets() {
        if lower == f64::NEG_INFINITY {
            return upper;
        }
        if upper == f64::INFINITY {
            return lower;
        }
    }
    count = count.min(h.count);
    if count < rank {
        return upper;
    }
    if forward {
        rank -= count - b.count;
    } else {
        rank = count - rank;
    }
    let fraction = rank / b.count;
    if h.uses_custom_buckets() || (lower <= 0.0 && upper >= 0.0) {
        return lower + (upper - lower) * fraction;
    }
    let (log_lower, log_upper) = (lower.abs().log2(), upper.abs().log2());
    if lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

/// Estimated share of observations between `lower` and `upper`, interpolating inside the
/// buckets holding the two values as [`native_quantile`] does.
pub(crate) fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None::<f64>, None::<f64>);
    for b in h.buckets() {
        let (lo, hi) = usable_bounds(h, b.lower, b.upper, b.side);
        let linear = h.uses_custom_buckets() || b.side == BucketSide::Zero;
        let at = |v: f64| -> f64 {
            if !lo.is_finite() || !hi.is_finite() {
                // A custom bucket reaching to ±Inf: nothing is known inside it.
                return rank;
            }
            let frac = if linear {
                (v - lo) / (hi - lo)
            } else if v > 0.0 {
                (v.log2() - lo.log2()) / (hi.log2() - lo.log2())
            } else {
                1.0 - (v.abs().log2() - hi.abs().log2()) / (lo.abs().log2() - hi.abs().log2())
            };
            rank + b.count * frac
        };
        for (target, slot) in [(lower, &mut lower_rank), (upper, &mut upper_rank)] {
            if slot.is_some() {
                continue;
            }
            if lo >= target {
                *slot = Some(rank);
            } else if lo < target && hi > target {
                *slot = Some(at(target));
            }
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank += b.count;
    }
    let lr = lower_rank.unwrap_or(h.count).min(h.count);
    let ur = upper_rank.unwrap_or(h.count).min(h.count);
    (ur - lr) / h.count
}

/// Estimated variance of the observations, each bucket's observations taken to sit at its
/// mean point: geometric for exponential buckets, arithmetic for the zero bucket (0) and for
/// custom buckets (a bucket reaching to ±Inf sits at its finite bound).
fn variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut c) = (0.0, 0.0);
    for b in h.buckets() {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            match (b.lower.is_finite(), b.upper.is_finite()) {
                (true, true) => (b.lower + b.upper) / 2.0,
                (false, true) => b.upper,
                (true, false) => b.lower,
                (false, false) => 0.0,
            }
        } else if b.side == BucketSide::Zero {
            0.0
        } else {
            let g = (b.lower * b.upper).sqrt();
            if b.upper < 0.0 {
                -g
            } else {
                g
            }
        };
        let delta = val - mean;
        (var, c) = kahan_inc(b.count * delta * delta, var, c);
    }
    (var + c) / h.count
}
