//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `limitk`, …) with `by` / `without`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMITK, T_LIMIT_RATIO, T_MAX, T_MIN, T_QUANTILE,
    T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::AggregateExpr;

use crate::model::{is_valid_label_name, FloatHistogram, Labels};

mod acc;
mod by_series;

use acc::{add, finish, first_acc, Acc, Grouping};
use by_series::BySeries;

use super::engine::Evaluator;
use super::error::PromqlError;
use super::functions::quantile;
use super::limit::{capped_ratio, limit_k, limit_ratio};
use super::parse::format_float;
use super::value::{Elem, Grid, StepVec, Val};

/// Evaluates an aggregation over every step.
pub(crate) fn eval(ev: &mut Evaluator<'_>, agg: &AggregateExpr, grid: &Grid) -> Result<Val, PromqlError> {
    let op = agg.op.id();
    let mut scalar_param: Option<Vec<f64>> = None;
    let mut label_param: Option<String> = None;
    match op {
        T_TOPK | T_BOTTOMK | T_QUANTILE | T_LIMITK | T_LIMIT_RATIO => {
            let Some(p) = &agg.param else {
                return Err(PromqlError::exec(format!("{} needs a parameter", agg.op)));
            };
            scalar_param = Some(
                ev.eval(p, grid)?
                    .into_scalar(&format!("parameter of {}", agg.op))?,
            );
        }
        T_COUNT_VALUES => {
            let Some(p) = &agg.param else {
                return Err(PromqlError::exec("count_values needs a label name parameter"));
            };
            match ev.eval(p, grid)? {
                Val::String(s) => {
                    if !is_valid_label_name(&s) {
                        return Err(PromqlError::exec(format!(
                            "invalid label name {s:?} in count_values"
                        )));
                    }
                    label_param = Some(s);
                }
                other => {
                    return Err(PromqlError::exec(format!(
                        "count_values expects a string parameter, got {}",
                        other.type_name()
                    )))
                }
            }
        }
        T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR => {}
        _ => {
            return Err(PromqlError::exec(format!(
                "aggregation {} is not supported",
                agg.op
            )))
        }
    }
    let input = ev.eval(&agg.expr, grid)?;
    reduce(ev, agg, scalar_param, label_param, input)
}

/// The aggregation of `input` (the evaluated argument) with the evaluated parameter
/// (`scalar_param`: `topk`, `bottomk`, `quantile`, `limitk`, `limit_ratio`, one value per
/// step; `label_param`: `count_values`' label name). Apart from [`eval`] so that the
/// recursion through nested aggregations (`sum(sum(…))`) holds only `eval`'s few locals
/// per level, not these: the depth limit is measured on a 2 MiB stack in a debug build.
fn reduce(
    ev: &mut Evaluator<'_>,
    agg: &AggregateExpr,
    scalar_param: Option<Vec<f64>>,
    label_param: Option<String>,
    input: Val,
) -> Result<Val, PromqlError> {
    let op = agg.op.id();
    let mut grouping = Grouping::new(agg.modifier.as_ref());
    let input = match input {
        Val::Series(sv) => match by_series::aggregate(ev, op, &mut grouping, sv)? {
            BySeries::Done(out) => return Ok(out),
            BySeries::Declined(sv) => sv.into_steps()?,
        },
        other => other.into_vector(&format!("argument of {}", agg.op))?,
    };
    let mut out: Vec<StepVec> = Vec::with_capacity(input.len());
    let mut cv_labels: HashMap<(usize, String), Arc<Labels>> = HashMap::new();
    let keep_members = matches!(
        op,
        T_TOPK | T_BOTTOMK | T_QUANTILE | T_COUNT_VALUES | T_LIMITK | T_LIMIT_RATIO
    );
    let mut ignored_histograms = false;
    for (i, step) in input.iter().enumerate() {
        let mut accs: Vec<Option<Acc>> = Vec::new();
        let mut order: Vec<usize> = Vec::new();
        // Histogram sums of `sum`/`avg`, per group.
        let mut haccs: Vec<Option<HistAcc>> = Vec::new();
        for (j, e) in step.iter().enumerate() {
            if let Some(h) = &e.h {
                match op {
                    T_SUM | T_AVG => {
                        let gid = grouping.id(&e.labels);
                        if haccs.len() <= gid {
                            haccs.resize(gid + 1, None);
                        }
                        let Some(slot) = haccs.get_mut(gid) else {
                            continue;
                        };
                        match slot {
                            None => {
                                if !accs.get(gid).is_some_and(|a| a.is_some()) {
                                    order.push(gid);
                                }
                                *slot = Some(HistAcc::new(h));
                            }
                            Some(acc) => acc.add(h),
                        }
                        continue;
                    }
                    // These count, group and pass on histograms like floats.
                    T_COUNT | T_GROUP | T_LIMITK | T_LIMIT_RATIO => {}
                    _ => {
                        ignored_histograms = true;
                        continue;
                    }
                }
            }
            let gid = grouping.id(&e.labels);
            if accs.len() <= gid {
                accs.resize(gid + 1, None);
            }
            let Some(slot) = accs.get_mut(gid) else {
                continue;
            };
            match slot {
                None => {
                    if !haccs.get(gid).is_some_and(|a| a.is_some()) {
                        order.push(gid);
                    }
                    *slot = Some(first_acc(e.v, j, keep_members));
                }
                Some(acc) => add(op, acc, e.v, j, keep_members),
            }
        }
        let mut res: StepVec = Vec::new();
        for gid in order {
            let Some(glabels) = grouping.groups.get(gid) else {
                continue;
            };
            if let Some(Some(hacc)) = haccs.get_mut(gid) {
                if accs.get(gid).is_some_and(|a| a.is_some()) {
                    ev.annotations.mixed_floats_histograms("");
                    continue;
                }
                if hacc.collided {
                    ev.annotations.counter_reset_collision();
                }
                if let Some(e) = hacc.error {
                    ev.annotations.histogram_op_error(e, "");
                    continue;
                }
                let mut h = std::mem::take(&mut hacc.sum);
                if op == T_AVG {
                    h.div(hacc.count);
                }
                h.compact(0);
                res.push(Elem::histogram(glabels.clone(), Arc::new(h)));
                continue;
            }
            let Some(Some(acc)) = accs.get(gid) else {
                continue;
            };
            match op {
                T_TOPK | T_BOTTOMK => {
                    let k = scalar_param
                        .as_ref()
                        .and_then(|p| p.get(i).copied())
                        .unwrap_or(f64::NAN);
                    select_k(op == T_TOPK, k, &acc.members, step, &mut res)?;
                }
                T_LIMITK => {
                    let k = scalar_param
                        .as_ref()
                        .and_then(|p| p.get(i).copied())
                        .unwrap_or(f64::NAN);
                    limit_k(int_param(k)?, &acc.members, step, &mut res);
                }
                T_LIMIT_RATIO => {
                    let mut r = scalar_param
                        .as_ref()
                        .and_then(|p| p.get(i).copied())
                        .unwrap_or(f64::NAN);
                    if let Some(capped) = capped_ratio(r) {
                        ev.annotations.invalid_ratio(r, capped);
                        r = capped;
                    }
                    limit_ratio(r, &acc.members, step, &mut res);
                }
                T_COUNT_VALUES => {
                    let name = label_param.as_deref().unwrap_or_default();
                    let mut counts: Vec<(String, f64)> = Vec::new();
                    let mut index: HashMap<String, usize> = HashMap::new();
                    for &m in &acc.members {
                        let Some(e) = step.get(m) else { continue };
                        let s = format_float(e.v);
                        match index.get(&s).and_then(|&k| counts.get_mut(k)) {
                            Some((_, c)) => *c += 1.0,
                            None => {
                                index.insert(s.clone(), counts.len());
                                counts.push((s, 1.0));
                            }
                        }
                    }
                    for (s, c) in counts {
                        let labels = cv_labels
                            .entry((gid, s.clone()))
                            .or_insert_with(|| Arc::new(glabels.with(name, &s)))
                            .clone();
                        res.push(Elem::float(labels, c));
                    }
                }
                T_QUANTILE => {
                    let q = scalar_param
                        .as_ref()
                        .and_then(|p| p.get(i).copied())
                        .unwrap_or(f64::NAN);
                    if !(0.0..=1.0).contains(&q) {
                        ev.annotations.invalid_quantile(q);
                    }
                    let mut values: Vec<f64> = Vec::with_capacity(acc.members.len());
                    for &m in &acc.members {
                        if let Some(e) = step.get(m) {
                            values.push(e.v);
                        }
                    }
                    res.push(Elem::float(glabels.clone(), quantile(q, &mut values)));
                }
                _ => res.push(Elem::float(glabels.clone(), finish(op, acc))),
            }
        }
        out.push(res);
        if i % 64 == 0 {
            ev.check_deadline()?;
        }
    }
    if ignored_histograms {
        ev.annotations
            .histogram_ignored_in_aggregation(&agg.op.to_string());
    }
    if op == T_COUNT_VALUES {
        // count_values may produce a label set equal to another group's.
        for step in &out {
            let mut seen: Vec<&Labels> = step.iter().map(|e| &*e.labels).collect();
            seen.sort();
            for pair in seen.windows(2) {
                if pair[0] == pair[1] {
                    return Err(PromqlError::exec(format!(
                        "vector cannot contain metrics with the same labelset: {}",
                        pair[0]
                    )));
                }
            }
        }
    }
    Ok(Val::Vector(out))
}

/// Running histogram sum of one group at one step.
#[derive(Clone)]
struct HistAcc {
    sum: FloatHistogram,
    count: f64,
    collided: bool,
    error: Option<crate::model::HistogramOpError>,
}

impl HistAcc {
    fn new(h: &FloatHistogram) -> Self {
        HistAcc {
            sum: h.clone(),
            count: 1.0,
            collided: false,
            error: None,
        }
    }

    fn add(&mut self, h: &FloatHistogram) {
        self.count += 1.0;
        if self.error.is_some() {
            return;
        }
        match self.sum.add(h) {
            Ok(c) => self.collided |= c,
            Err(e) => self.error = Some(e),
        }
    }
}

/// The `k` of `topk`/`bottomk`/`limitk` as an integer (truncated), or Prometheus' error when
/// it does not fit in an int64 (NaN included).
fn int_param(k: f64) -> Result<i64, PromqlError> {
    const INT64_RANGE: std::ops::Range<f64> = -9.223_372_036_854_776e18..9.223_372_036_854_776e18;
    if !INT64_RANGE.contains(&k) {
        return Err(PromqlError::exec(format!(
            "Scalar value {} overflows int64",
            format_float(k)
        )));
    }
    Ok(k as i64)
}

/// Largest `k` of `topk`/`bottomk` kept by insertion into a short sorted list instead of a
/// sort of every member: `topk(5, …)` over 207 series at each of 361 steps spent 16 % of its
/// time sorting (docs/benchmarks.md).
const SMALL_K: usize = 32;

/// The first `k` of `members` in `rank` order, ties in the members' order — what a stable
/// sort truncated to `k` gives — in O(members × k).
fn first_k(members: Vec<&Elem>, k: usize, rank: impl Fn(&Elem, &Elem) -> Ordering) -> Vec<&Elem> {
    let mut best: Vec<&Elem> = Vec::with_capacity(k + 1);
    for e in members {
        if best.len() == k && best.last().is_none_or(|last| rank(e, last) != Ordering::Less) {
            continue;
        }
        // After every member ranked the same or better: ties keep their order.
        let at = best.partition_point(|b| rank(b, e) != Ordering::Greater);
        best.insert(at, e);
        best.truncate(k);
    }
    best
}

/// The order of `topk` (`top`) or `bottomk`: largest or smallest first, NaN last either way.
fn rank_k(top: bool, a: &Elem, b: &Elem) -> Ordering {
    match (a.v.is_nan(), b.v.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if top => b.v.partial_cmp(&a.v).unwrap_or(Ordering::Equal),
        _ => a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal),
    }
}

/// Keeps the `k` largest (topk) or smallest (bottomk) members; NaN ranks last either way.
fn select_k(
    top: bool,
    k: f64,
    members: &[usize],
    step: &StepVec,
    res: &mut StepVec,
) -> Result<(), PromqlError> {
    let k = int_param(k)?;
    if k < 1 {
        return Ok(());
    }
    let mut picked: Vec<&Elem> = Vec::with_capacity(members.len());
    for &m in members {
        if let Some(e) = step.get(m) {
            picked.push(e);
        }
    }
    let rank = |a: &Elem, b: &Elem| rank_k(top, a, b);
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    if k < picked.len() && k <= SMALL_K {
        picked = first_k(picked, k, rank);
    } else {
        picked.sort_by(|a, b| rank(a, b));
        picked.truncate(k);
    }
    for e in picked {
        res.push(e.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use didban_testkit::rng::SeededRng;

    /// `first_k` against the stable sort it stands in for: values with many ties and NaNs,
    /// both directions, every `k` up to past the member count.
    #[test]
    fn first_k_keeps_what_a_stable_sort_keeps() {
        let mut rng = SeededRng::new(0x70b4);
        for round in 0..300 {
            let n = rng.below(60) as usize;
            let members: Vec<Elem> = (0..n)
                .map(|i| {
                    let v = match rng.below(8) {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        _ => rng.below(6) as f64,
                    };
                    Elem::float(Arc::new(Labels::from_pairs([("i", i.to_string().as_str())])), v)
                })
                .collect();
            for top in [true, false] {
                let rank = |a: &Elem, b: &Elem| rank_k(top, a, b);
                let mut sorted: Vec<&Elem> = members.iter().collect();
                sorted.sort_by(|a, b| rank(a, b));
                for k in 1..=n + 1 {
                    let expected: Vec<&Labels> = sorted.iter().take(k).map(|e| &*e.labels).collect();
                    let got = first_k(members.iter().collect(), k, rank);
                    let got: Vec<&Labels> = got.iter().map(|e| &*e.labels).collect();
                    assert_eq!(got, expected, "round {round}, top {top}, k {k}");
                }
            }
        }
    }
}
