//! `info(v, [data-label-selector])` (Prometheus 3, experimental): adds the data labels of
//! info series (`target_info` by default) to the series of `v` they identify by `job` and
//! `instance`.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::label::{MatchOp as PMatchOp, Matcher, Matchers};
use promql_parser::parser::token::T_EQL_REGEX;
use promql_parser::parser::{Expr, VectorSelector};

use crate::model::{LabelMatcher, Labels, METRIC_NAME_LABEL};

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::parse::{convert_matcher, selector_matchers, unparen};
use super::super::selector::{eval_vector_selector, Pick};
use super::super::value::{check_steps, Elem, Grid, LabelMemo, StepVec, Val};
use super::args::vector_arg;

/// Labels that identify an info series; every other label but the name is data.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// Evaluates `info`.
pub(super) fn eval(ev: &mut Evaluator<'_>, args: &[&Expr], grid: &Grid) -> Result<Val, PromqlError> {
    let input = vector_arg(ev, args, 0, "info", grid)?;
    let vs = info_selector(args.get(1).copied())?;
    let mut data_matchers: Vec<LabelMatcher> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name != METRIC_NAME_LABEL {
            data_matchers.push(convert_matcher(m, ev.compat)?);
        }
    }
    let info_matchers = selector_matchers(&vs, ev.compat)?;
    let infos = eval_vector_selector(ev, &vs, grid, Pick::Value)?;
    let required = data_matchers.iter().any(|m| !m.matches(""));
    let mut memo = LabelMemo::default();
    let mut out: Vec<StepVec> = Vec::with_capacity(input.len());
    for (step, info_step) in input.into_iter().zip(infos) {
        let by_identity = index_by_identity(&info_step);
        let mut res = Vec::with_capacity(step.len());
        for e in step {
            if info_matchers
                .iter()
                .any(|g| g.iter().all(|m| m.matches_labels(&e.labels)))
            {
                // An info series itself passes unchanged.
                res.push(e);
                continue;
            }
            let found = by_identity.get(&identity(&e.labels));
            let Some(found) = found else {
                if !required {
                    res.push(e);
                }
                continue;
            };
            let enriched = enrich(&e.labels, found, &data_matchers);
            res.push(Elem {
                labels: memo.intern(enriched),
                v: e.v,
                h: e.h.clone(),
            });
        }
        out.push(res);
    }
    check_steps(&memo, &out)?;
    Ok(Val::Vector(out))
}

/// The selector of the info series: the second argument's matchers, restricted to
/// `target_info` unless it names metrics itself (only negated names: any `…_info`).
pub(crate) fn info_selector(arg: Option<&Expr>) -> Result<VectorSelector, PromqlError> {
    let mut vs = match arg.map(unparen) {
        None => VectorSelector::new(None, Matchers::empty()),
        Some(Expr::VectorSelector(vs)) => vs.clone(),
        Some(other) => {
            return Err(PromqlError::exec(format!(
                "the second argument of info must be a label selector like {{k=\"v\"}}, got {other}"
            )))
        }
    };
    let mut positive = vs.name.is_some();
    let mut negative = false;
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME_LABEL {
            match m.op {
                PMatchOp::Equal | PMatchOp::Re(_) => positive = true,
                PMatchOp::NotEqual | PMatchOp::NotRe(_) => negative = true,
            }
        }
    }
    if !positive {
        let name_matcher = if negative {
            Matcher::new_matcher(T_EQL_REGEX, METRIC_NAME_LABEL.to_string(), ".+_info".to_string())
                .map_err(PromqlError::exec)?
        } else {
            Matcher::new(PMatchOp::Equal, METRIC_NAME_LABEL, "target_info")
        };
        vs.matchers.matchers.push(name_matcher);
    }
    Ok(vs)
}

/// The `(instance, job)` values of a series, a missing label counting as empty.
fn identity(l: &Labels) -> (String, String) {
    (
        l.get(IDENTIFYING[0]).unwrap_or("").to_string(),
        l.get(IDENTIFYING[1]).unwrap_or("").to_string(),
    )
}

fn index_by_identity(step: &StepVec) -> HashMap<(String, String), Vec<Arc<Labels>>> {
    let mut map: HashMap<(String, String), Vec<Arc<Labels>>> = HashMap::new();
    for e in step {
        map.entry(identity(&e.labels)).or_default().push(e.labels.clone());
    }
    map
}

/// `series` plus the data labels of `infos` it does not have yet; with data matchers only
/// the labels they name.
fn enrich(series: &Labels, infos: &[Arc<Labels>], data_matchers: &[LabelMatcher]) -> Labels {
    let mut out = series.clone();
    for info in infos {
        for l in info.iter() {
            let is_data = l.name != METRIC_NAME_LABEL && !IDENTIFYING.contains(&l.name);
            let wanted = data_matchers.is_empty() || data_matchers.iter().any(|m| m.name == l.name);
            if is_data && wanted && out.get(l.name).is_none() {
                out = out.with(l.name, l.value);
            }
        }
    }
    out
}
