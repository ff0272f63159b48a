//! Label manipulation and vector/scalar plumbing: `label_replace`, `label_join`, `absent`,
//! `vector`, `scalar`, `time`, `timestamp`, `pi`, `sort`, `sort_desc`, `sort_by_label(_desc)`,
//! and the query's own times `start()`, `end()`, `range()`, `step()` with `min_of`/`max_of`.

use std::cmp::Ordering;
use std::sync::Arc;

use promql_parser::parser::Expr;

use crate::model::{is_valid_label_name, Labels, MatchOp, METRIC_NAME_LABEL};

use super::super::compat::PromqlCompat;
use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::parse::{anchored_regex, selector_matchers, unparen};
use super::super::selector::{eval_vector_selector, Pick};
use super::super::value::{check_steps, Elem, Grid, LabelMemo, StepVec, Val};
use super::apply::map_values;
use super::args::{arg, scalar_arg, vector_arg};
use super::numeric::{go_max, go_min};

/// Evaluates one of this module's functions.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    grid: &Grid,
) -> Result<Val, PromqlError> {
    let n = grid.len();
    match name {
        "time" => Ok(Val::Scalar((0..n).map(|i| grid.t(i) as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "start" => Ok(Val::Scalar(vec![ev.query_start as f64 / 1000.0; n])),
        "end" => Ok(Val::Scalar(vec![ev.query_end as f64 / 1000.0; n])),
        "range" => Ok(Val::Scalar(vec![
            ev.query_end.saturating_sub(ev.query_start)
                as f64
                / 1000.0;
            n
        ])),
        "step" => Ok(Val::Scalar(vec![ev.query_step as f64 / 1000.0; n])),
        "min_of" | "max_of" => {
            let a = scalar_arg(ev, args, 0, name, grid)?;
            let b = scalar_arg(ev, args, 1, name, grid)?;
            let pick = if name == "min_of" { go_min } else { go_max };
            Ok(Val::Scalar(a.iter().zip(&b).map(|(x, y)| pick(*x, *y)).collect()))
        }
        "vector" => {
            let s = scalar_arg(ev, args, 0, name, grid)?;
            let labels = Arc::new(Labels::default());
            Ok(Val::Vector(
                s.into_iter()
                    .map(|v| vec![Elem::float(labels.clone(), v)])
                    .collect(),
            ))
        }
        "scalar" => {
            let v = vector_arg(ev, args, 0, name, grid)?;
            let mut out = Vec::with_capacity(v.len());
            for step in &v {
                // A lone histogram has no scalar value.
                out.push(match step.as_slice() {
                    [only] if only.h.is_none() => only.v,
                    _ => f64::NAN,
                });
            }
            Ok(Val::Scalar(out))
        }
        "timestamp" => {
            let a = unparen(arg(args, 0, name)?);
            if let Expr::VectorSelector(vs) = a {
                return Ok(Val::Vector(eval_vector_selector(ev, vs, grid, Pick::Timestamp)?));
            }
            let v = vector_arg(ev, args, 0, name, grid)?;
            Ok(Val::Vector(map_values(v, |_, i| {
                Some(grid.t(i) as f64 / 1000.0)
            })?))
        }
        "sort" | "sort_desc" => {
            let mut v = vector_arg(ev, args, 0, name, grid)?;
            let desc = name == "sort_desc";
            for step in v.iter_mut() {
                step.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if desc => b.v.partial_cmp(&a.v).unwrap_or(Ordering::Equal),
                    _ => a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal),
                });
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = vector_arg(ev, args, 0, name, grid)?;
            let mut names = Vec::new();
            for i in 1..args.len() {
                names.push(string_arg(ev, args, i, name, grid)?);
            }
            let desc = name == "sort_by_label_desc";
            for step in v.iter_mut() {
                step.sort_by(|a, b| {
                    let mut ord = Ordering::Equal;
                    for n in &names {
                        ord = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                        if ord != Ordering::Equal {
                            break;
                        }
                    }
                    if desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "absent" => {
            let labels = Arc::new(absent_labels(arg(args, 0, name)?));
            let v = vector_arg(ev, args, 0, name, grid)?;
            let mut out = Vec::with_capacity(v.len());
            for step in &v {
                out.push(if step.is_empty() {
                    vec![Elem::float(labels.clone(), 1.0)]
                } else {
                    Vec::new()
                });
            }
            Ok(Val::Vector(out))
        }
        "label_replace" => label_replace(ev, args, grid),
        _ => label_join(ev, args, grid),
    }
}

/// Natural order: runs of digits compare as numbers, so `a2` sorts before `a10`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = x.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    x.next();
                }
                let mut nb = String::new();
                while let Some(d) = y.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(d);
                    y.next();
                }
                let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(&d);
                }
                x.next();
                y.next();
            }
        }
    }
}

/// The labels `absent(sel)` reports: the selector's equality matchers (other than the
/// metric name); a label constrained any other way, or twice, is left out.
pub(super) fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let Ok(groups) = selector_matchers(vs, PromqlCompat::V3) else {
        return Labels::default();
    };
    let Some(matchers) = groups.first() else {
        return Labels::default();
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME_LABEL {
            continue;
        }
        let seen = pairs.iter().any(|(n, _)| *n == m.name) || removed.contains(&m.name);
        if m.op == MatchOp::Equal && !seen {
            pairs.push((m.name.clone(), m.value.clone()));
        } else {
            pairs.retain(|(n, _)| *n != m.name);
            removed.push(m.name.clone());
        }
    }
    Labels::from_pairs(pairs)
}

/// A string literal argument.
fn string_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<String, PromqlError> {
    match ev.eval(arg(args, i, func)?, grid)? {
        Val::String(s) => Ok(s),
        other => Err(PromqlError::exec(format!(
            "argument {} of {func} must be a string, got {}",
            i + 1,
            other.type_name()
        ))),
    }
}

/// Applies a label rewrite to every sample, keeping values; errors on duplicate results.
fn relabel(steps: Vec<StepVec>, mut f: impl FnMut(&Labels) -> Labels) -> Result<Vec<StepVec>, PromqlError> {
    let mut memo = LabelMemo::default();
    let mut out = Vec::with_capacity(steps.len());
    for step in steps {
        let mut res = Vec::with_capacity(step.len());
        for mut e in step {
            e.labels = memo.map(&e.labels, &mut f);
            res.push(e);
        }
        out.push(res);
    }
    check_steps(&memo, &out)?;
    Ok(out)
}

fn label_replace(ev: &mut Evaluator<'_>, args: &[&Expr], grid: &Grid) -> Result<Val, PromqlError> {
    let name = "label_replace";
    let v = vector_arg(ev, args, 0, name, grid)?;
    let dst = string_arg(ev, args, 1, name, grid)?;
    let replacement = string_arg(ev, args, 2, name, grid)?;
    let src = string_arg(ev, args, 3, name, grid)?;
    let pattern = string_arg(ev, args, 4, name, grid)?;
    let re = anchored_regex(&pattern, ev.compat).map_err(|e| {
        PromqlError::exec(format!(
            "invalid regular expression in label_replace(): {pattern:?}: {e}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(PromqlError::exec(format!(
            "invalid destination label name in label_replace(): {dst:?}"
        )));
    }
    let out = relabel(v, |l| {
        let value = l.get(&src).unwrap_or("");
        match re.captures(value) {
            Some(caps) => {
                let mut res = String::new();
                caps.expand(&replacement, &mut res);
                l.with(&dst, &res)
            }
            None => l.clone(),
        }
    })?;
    Ok(Val::Vector(out))
}

fn label_join(ev: &mut Evaluator<'_>, args: &[&Expr], grid: &Grid) -> Result<Val, PromqlError> {
    let name = "label_join";
    let v = vector_arg(ev, args, 0, name, grid)?;
    let dst = string_arg(ev, args, 1, name, grid)?;
    let sep = string_arg(ev, args, 2, name, grid)?;
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        let s = string_arg(ev, args, i, name, grid)?;
        if !is_valid_label_name(&s) {
            return Err(PromqlError::exec(format!(
                "invalid source label name in label_join(): {s:?}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(PromqlError::exec(format!(
            "invalid destination label name in label_join(): {dst:?}"
        )));
    }
    let out = relabel(v, |l| {
        let mut parts: Vec<&str> = Vec::with_capacity(srcs.len());
        for s in &srcs {
            parts.push(l.get(s).unwrap_or(""));
        }
        l.with(&dst, &parts.join(&sep))
    })?;
    Ok(Val::Vector(out))
}
