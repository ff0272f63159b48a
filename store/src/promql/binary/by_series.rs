//! Vector matching once per series: when both operands are held series by series
//! ([`SeriesVec`]: range functions and the aggregations of them), a series' matching
//! signature and its partner are found once, and their values are combined at the steps
//! both have — where the per-step walk looks up a signature per element and step (ten
//! aggregated rates added together over a 6 h range: ~1.3 M lookups).
//!
//! The answer is the per-step walk's: the same `apply` per pair of values, the result
//! series in the many side's series order (the per-step order of its elements), and the
//! same result labels. Whatever could make a step an error there — two series of one side
//! with one signature, two pairs with one result label set — or a histogram is left to
//! the per-step walk, which decides step by step.

use std::sync::Arc;

use promql_parser::parser::{BinaryExpr, VectorMatchCardinality};

use super::matching::{result_labels, vector_matching, ResultLabels, Signatures};
use super::ops::apply;
use crate::model::Labels;
use crate::promql::engine::Evaluator;
use crate::promql::error::PromqlError;
use crate::promql::value::{IdMap, IdSet, SeriesVec, StepSeries};

/// What [`vector_vector`] did.
pub(super) enum Matched {
    /// The result, series by series.
    Done(SeriesVec),
    /// Not done here (see the module documentation): the operands, unchanged.
    Declined(SeriesVec, SeriesVec),
}

/// `l op r` for an arithmetic or comparison operator (not `and`/`or`/`unless`), series by
/// series, or the operands back when the per-step walk must decide.
pub(super) fn vector_vector(
    ev: &Evaluator<'_>,
    be: &BinaryExpr,
    l: SeriesVec,
    r: SeriesVec,
) -> Result<Matched, PromqlError> {
    if l.collided || r.collided || l.steps != r.steps || l.has_histograms() || r.has_histograms() {
        return Ok(Matched::Declined(l, r));
    }
    let op = be.op.id();
    let return_bool = be.return_bool();
    let (matching, card) = vector_matching(be);
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if one_to_many { (&r, &l) } else { (&l, &r) };

    let mut sigs = Signatures::new(matching);
    let mut one_by_sig: IdMap<usize, usize> = IdMap::default();
    for (j, s) in one.series.iter().enumerate() {
        if one_by_sig.insert(sigs.id(&s.labels), j).is_some() {
            return Ok(Matched::Declined(l, r));
        }
    }
    // Each many-side series with its partner and result labels.
    let mut pairs: Vec<(usize, usize, Arc<Labels>)> = Vec::new();
    let mut seen: IdSet<usize> = IdSet::default();
    let mut results = ResultLabels::default();
    for (i, s) in many.series.iter().enumerate() {
        let sig = sigs.id(&s.labels);
        let Some(&j) = one_by_sig.get(&sig) else {
            continue;
        };
        let Some(o) = one.series.get(j) else {
            continue;
        };
        let labels = result_labels(
            &mut results,
            op,
            return_bool,
            card,
            matching,
            &s.labels,
            &o.labels,
        );
        // The per-step walk's uniqueness rule: one element per signature (one-to-one) or
        // per result label set (group_left/right).
        let key = match card {
            VectorMatchCardinality::OneToOne => sig,
            _ => Arc::as_ptr(&labels) as usize,
        };
        if !seen.insert(key) {
            return Ok(Matched::Declined(l, r));
        }
        pairs.push((i, j, labels));
    }

    let mut out: Vec<StepSeries> = Vec::with_capacity(pairs.len());
    for (n, (i, j, labels)) in pairs.into_iter().enumerate() {
        let (Some(m), Some(o)) = (many.series.get(i), one.series.get(j)) else {
            continue;
        };
        let mut res = StepSeries::new(labels);
        combine(op, return_bool, one_to_many, m, o, &mut res)?;
        if !res.steps.is_empty() {
            out.push(res);
        }
        if n % 256 == 0 {
            ev.check_deadline()?;
        }
    }
    Ok(Matched::Done(SeriesVec {
        series: out,
        steps: l.steps,
        collided: false,
    }))
}

/// Adds to `res` the result at each step where both `many` and `one` have a value, the
/// operands in the query's order.
fn combine(
    op: u16,
    return_bool: bool,
    one_to_many: bool,
    many: &StepSeries,
    one: &StepSeries,
    res: &mut StepSeries,
) -> Result<(), PromqlError> {
    let (mut a, mut b) = (0, 0);
    while let (Some(&sm), Some(&so)) = (many.steps.get(a), one.steps.get(b)) {
        if sm != so {
            if sm < so {
                a += 1;
            } else {
                b += 1;
            }
            continue;
        }
        let (Some(&mv), Some(&ov)) = (many.values.get(a), one.values.get(b)) else {
            break;
        };
        let (lv, rv) = if one_to_many { (ov, mv) } else { (mv, ov) };
        let (mut value, keep) = apply(op, lv, rv)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        }
        if return_bool || keep {
            res.steps.push(sm);
            res.values.push(value);
        }
        a += 1;
        b += 1;
    }
    Ok(())
}
