//! Applying a binary operator to its evaluated operands: scalars, a vector and a scalar,
//! two vectors matched step by step (or series by series, `by_series`).

use std::sync::Arc;

use promql_parser::parser::token::{T_LAND, T_LOR, T_LUNLESS};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::by_series;
use super::matching::{result_labels, vector_matching, ResultLabels, Signatures};
use super::ops::{apply, apply_hist, is_arithmetic, is_comparison};
use crate::model::METRIC_NAME_LABEL;
use crate::promql::annotations::Annotations;
use crate::promql::engine::Evaluator;
use crate::promql::error::PromqlError;
use crate::promql::value::{check_steps, Elem, IdMap, IdSet, LabelMemo, StepVec, Val};

/// Applies the operator to the evaluated operands. Its own frame, never inlined: `eval` is
/// on the recursive path of nested expressions, whose depth limit is measured on a 2 MiB
/// stack in a debug build (`query_limits` test), so what only runs after the operands are
/// evaluated keeps its locals out of that path.
#[inline(never)]
pub(super) fn operate(
    ev: &mut Evaluator<'_>,
    be: &BinaryExpr,
    lhs: Val,
    rhs: Val,
) -> Result<Val, PromqlError> {
    let op = be.op.id();
    let return_bool = be.return_bool();
    let (lhs, rhs) = match (lhs, rhs) {
        (Val::Series(l), Val::Series(r)) if !matches!(op, T_LAND | T_LOR | T_LUNLESS) => {
            match by_series::vector_vector(ev, be, l, r)? {
                by_series::Matched::Done(out) => return Ok(Val::Series(out)),
                by_series::Matched::Declined(l, r) => (Val::Series(l), Val::Series(r)),
            }
        }
        pair => pair,
    };
    match (lhs.per_step()?, rhs.per_step()?) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let mut out = Vec::with_capacity(l.len());
            for (a, b) in l.iter().zip(r.iter()) {
                let (v, keep) = apply(op, *a, *b)?;
                if is_comparison(op) {
                    out.push(if keep { 1.0 } else { 0.0 });
                } else {
                    out.push(v);
                }
            }
            Ok(Val::Scalar(out))
        }
        (Val::Vector(l), Val::Scalar(r)) => vector_scalar(op, return_bool, l, &r, false, &mut ev.annotations),
        (Val::Scalar(l), Val::Vector(r)) => vector_scalar(op, return_bool, r, &l, true, &mut ev.annotations),
        (Val::Vector(l), Val::Vector(r)) => {
            let (matching, card) = vector_matching(be);
            let mut sigs = Signatures::new(matching);
            let mut out: Vec<StepVec> = Vec::with_capacity(l.len());
            match op {
                T_LAND | T_LUNLESS => {
                    for (ls, rs) in l.into_iter().zip(r.iter()) {
                        let mut present: IdSet<usize> = IdSet::default();
                        for e in rs {
                            present.insert(sigs.id(&e.labels));
                        }
                        let mut res = Vec::new();
                        for e in ls {
                            if present.contains(&sigs.id(&e.labels)) == (op == T_LAND) {
                                res.push(e);
                            }
                        }
                        out.push(res);
                    }
                }
                T_LOR => {
                    for (ls, rs) in l.into_iter().zip(r) {
                        let mut present: IdSet<usize> = IdSet::default();
                        for e in &ls {
                            present.insert(sigs.id(&e.labels));
                        }
                        let mut res = ls;
                        for e in rs {
                            if !present.contains(&sigs.id(&e.labels)) {
                                res.push(e);
                            }
                        }
                        out.push(res);
                    }
                }
                _ => {
                    let mut results = ResultLabels::default();
                    for (i, (ls, rs)) in l.iter().zip(r.iter()).enumerate() {
                        out.push(vector_vector(
                            op,
                            return_bool,
                            card,
                            matching,
                            &mut sigs,
                            &mut results,
                            ls,
                            rs,
                            &mut ev.annotations,
                        )?);
                        if i % 64 == 0 {
                            ev.check_deadline()?;
                        }
                    }
                }
            }
            Ok(Val::Vector(out))
        }
        (l, r) => Err(PromqlError::exec(format!(
            "binary operator {} is not defined between {} and {}",
            be.op,
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// `vector op scalar` (or `scalar op vector` when `swapped`).
fn vector_scalar(
    op: u16,
    return_bool: bool,
    v: Vec<StepVec>,
    s: &[f64],
    swapped: bool,
    notes: &mut Annotations,
) -> Result<Val, PromqlError> {
    if matches!(op, T_LAND | T_LOR | T_LUNLESS) {
        return Err(PromqlError::exec(
            "set operators are only defined between instant vectors",
        ));
    }
    let drop_name = is_arithmetic(op) || return_bool;
    let mut memo = LabelMemo::default();
    let mut out: Vec<StepVec> = Vec::with_capacity(v.len());
    for (step, sv) in v.into_iter().zip(s.iter()) {
        let mut res = Vec::with_capacity(step.len());
        for mut e in step {
            if let Some(h) = e.h.take() {
                let (el, er) = ((e.v, Some(&h)), (*sv, None));
                let (l, r) = if swapped { (er, el) } else { (el, er) };
                let name = e.labels.get(METRIC_NAME_LABEL).unwrap_or("").to_string();
                let Some((_, h, _)) = apply_hist(op, l, r, &name, notes) else {
                    continue;
                };
                e.h = h;
                if drop_name {
                    e.labels = memo.map(&e.labels, |l| l.without_metric_name());
                }
                res.push(e);
                continue;
            }
            let (l, r) = if swapped { (*sv, e.v) } else { (e.v, *sv) };
            let (mut value, mut keep) = apply(op, l, r)?;
            if is_comparison(op) {
                value = e.v;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if !keep {
                continue;
            }
            e.v = value;
            if drop_name {
                e.labels = memo.map(&e.labels, |l| l.without_metric_name());
            }
            res.push(e);
        }
        out.push(res);
    }
    check_steps(&memo, &out)?;
    Ok(Val::Vector(out))
}

#[allow(clippy::too_many_arguments)]
fn vector_vector(
    op: u16,
    return_bool: bool,
    card: &VectorMatchCardinality,
    matching: Option<&LabelModifier>,
    sigs: &mut Signatures<'_>,
    results: &mut ResultLabels,
    lhs: &StepVec,
    rhs: &StepVec,
    notes: &mut Annotations,
) -> Result<StepVec, PromqlError> {
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: IdMap<usize, &Elem> = IdMap::default();
    for e in one {
        let sig = sigs.id(&e.labels);
        if let Some(prev) = one_by_sig.insert(sig, e) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(PromqlError::exec(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                sigs.describe(sig),
                prev.labels,
                e.labels
            )));
        }
    }
    // One-to-one: the signatures already matched; otherwise the result label sets produced
    // (interned, so the pointer identifies the set).
    let mut matched: IdSet<usize> = IdSet::default();
    let mut out = Vec::new();
    for e in many {
        let sig = sigs.id(&e.labels);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        let (l, r) = if one_to_many { (*o, e) } else { (e, *o) };
        let (mut value, keep, mut h) = if l.h.is_some() || r.h.is_some() {
            let name = l.labels.get(METRIC_NAME_LABEL).unwrap_or("");
            match apply_hist(op, (l.v, l.h.as_ref()), (r.v, r.h.as_ref()), name, notes) {
                Some((v, h, keep)) => (v, keep, h),
                None => continue,
            }
        } else {
            let (v, keep) = apply(op, l.v, r.v)?;
            (v, keep, None)
        };
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            h = None;
        } else if !keep {
            continue;
        }
        let labels = result_labels(results, op, return_bool, card, matching, &e.labels, &o.labels);
        if matches!(card, VectorMatchCardinality::OneToOne) {
            if !matched.insert(sig) {
                return Err(PromqlError::exec(format!(
                    "multiple matches for labels {}: many-to-one matching must be explicit (group_left/group_right)",
                    sigs.describe(sig)
                )));
            }
        } else if !matched.insert(Arc::as_ptr(&labels) as usize) {
            return Err(PromqlError::exec(format!(
                "multiple matches for labels {}: grouping labels must ensure unique matches",
                sigs.describe(sig)
            )));
        }
        out.push(Elem { labels, v: value, h });
    }
    Ok(out)
}
