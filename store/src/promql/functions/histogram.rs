//! `histogram_quantile` over classic (`le`-labelled) bucket series, with Prometheus'
//! bucket coalescing, monotonicity fix, `+Inf` handling and linear interpolation, and over
//! native histograms (see [`super::native`]).

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::Expr;

use crate::model::{Labels, METRIC_NAME_LABEL};

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::value::{check_steps, Elem, Grid, IdMap, LabelMemo, StepVec, Val};
use super::args::{scalar_arg, vector_arg};
use super::native::native_quantile;

/// Relative difference below which adjacent bucket counts are treated as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Evaluates `histogram_quantile(φ, buckets)`.
pub(super) fn eval(ev: &mut Evaluator<'_>, args: &[&Expr], grid: &Grid) -> Result<Val, PromqlError> {
    let name = "histogram_quantile";
    let q = scalar_arg(ev, args, 0, name, grid)?;
    let v = vector_arg(ev, args, 1, name, grid)?;
    // Per distinct input series: its group and upper bound, or None without a valid `le`.
    let mut by_ptr: IdMap<usize, Option<(usize, f64)>> = IdMap::default();
    let mut bad_buckets: Vec<(String, String)> = Vec::new();
    let mut forced = false;
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Arc<Labels>> = Vec::new();
    let mut out: Vec<StepVec> = Vec::with_capacity(v.len());
    let mut native_labels = LabelMemo::default();
    for (i, step) in v.iter().enumerate() {
        if i % 64 == 0 {
            ev.check_deadline()?;
        }
        let mut buckets: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut order: Vec<usize> = Vec::new();
        let mut natives: Vec<&Elem> = Vec::new();
        for e in step {
            if e.h.is_some() {
                natives.push(e);
                continue;
            }
            let key = Arc::as_ptr(&e.labels) as usize;
            let info = *by_ptr.entry(key).or_insert_with(|| {
                let Some(le) = e.labels.get("le").and_then(|v| v.parse::<f64>().ok()) else {
                    bad_buckets.push((
                        e.labels.get(METRIC_NAME_LABEL).unwrap_or("").to_string(),
                        e.labels.get("le").unwrap_or("").to_string(),
                    ));
                    return None;
                };
                let g = e.labels.without("le").without_metric_name();
                let id = match ids.get(&g) {
                    Some(&id) => id,
                    None => {
                        groups.push(Arc::new(g.clone()));
                        ids.insert(g, groups.len() - 1);
                        groups.len() - 1
                    }
                };
                Some((id, le))
            });
            let Some((gid, le)) = info else { continue };
            if buckets.len() <= gid {
                buckets.resize(gid + 1, Vec::new());
            }
            if let Some(b) = buckets.get_mut(gid) {
                if b.is_empty() {
                    order.push(gid);
                }
                b.push((le, e.v));
            }
        }
        let phi = q.get(i).copied().unwrap_or(f64::NAN);
        let any_input = !order.is_empty() || !natives.is_empty();
        if any_input && !(0.0..=1.0).contains(&phi) {
            ev.annotations.invalid_quantile(phi);
        }
        let mut res = Vec::with_capacity(order.len() + natives.len());
        // A native histogram and classic buckets of the same series: neither is used.
        let mut conflicts: Vec<usize> = Vec::new();
        for e in natives {
            let labels = native_labels.map(&e.labels, |l| l.without("le").without_metric_name());
            let classic = ids
                .get(&*labels)
                .copied()
                .filter(|&g| buckets.get(g).is_some_and(|b| !b.is_empty()));
            if let Some(gid) = classic {
                ev.annotations
                    .mixed_classic_native(e.labels.get(METRIC_NAME_LABEL).unwrap_or(""));
                conflicts.push(gid);
                continue;
            }
            if let Some(h) = &e.h {
                res.push(Elem::float(labels, native_quantile(phi, h)));
            }
        }
        for gid in order {
            if conflicts.contains(&gid) {
                continue;
            }
            let (Some(b), Some(labels)) = (buckets.get_mut(gid), groups.get(gid)) else {
                continue;
            };
            let (v, fixed) = bucket_quantile(phi, b);
            forced |= fixed;
            res.push(Elem::float(labels.clone(), v));
        }
        out.push(res);
    }
    for (name, le) in bad_buckets {
        ev.annotations.bad_bucket_label(&name, &le);
    }
    check_steps(&native_labels, &out)?;
    if forced {
        // The group labels have no metric name (it is dropped before grouping).
        ev.annotations.forced_monotonicity("");
    }
    Ok(Val::Vector(out))
}

/// The φ-quantile of a classic histogram given as `(upper bound, cumulative count)` pairs,
/// and whether decreasing counts had to be forced monotonic on the way.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some(&(ub, _)) if ub == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    // Coalesce buckets with the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let forced = ensure_monotonic(&mut merged);
    (interpolate(q, &merged), forced)
}

/// Linear interpolation of the φ-quantile inside the bucket holding its rank.
fn interpolate(q: f64, merged: &[(f64, f64)]) -> f64 {
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged.last().map(|b| b.1).unwrap_or(0.0);
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last_idx = merged.len() - 1;
    let b = merged[..last_idx].partition_point(|x| x.1 < rank);
    if b == last_idx {
        return merged.get(last_idx - 1).map(|x| x.0).unwrap_or(f64::NAN);
    }
    let Some(&(bucket_end, mut count)) = merged.get(b) else {
        return f64::NAN;
    };
    if b == 0 && bucket_end <= 0.0 {
        return bucket_end;
    }
    let mut bucket_start = 0.0;
    if b > 0 {
        if let Some(&(prev_ub, prev_count)) = merged.get(b - 1) {
            bucket_start = prev_ub;
            count -= prev_count;
            rank -= prev_count;
        }
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Makes cumulative counts non-decreasing, and smooths away differences too small to be
/// anything but floating-point noise. True when a real decrease had to be removed (the
/// noise does not count).
fn ensure_monotonic(buckets: &mut [(f64, f64)]) -> bool {
    let Some(first) = buckets.first() else {
        return false;
    };
    let mut prev = first.1;
    let mut forced = false;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}
