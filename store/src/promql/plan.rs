//! The reads a query is going to make, known before it is evaluated: each selector's
//! matcher groups with the range its evaluation reads (offset, `@`, lookback, range and
//! subquery grids applied by the functions the evaluation itself uses: `vector_reach`,
//! `range_template`, `subquery_grid`, `info_selector`), for the storage to prepare
//! ([`Queryable::prepare`](crate::query::Queryable::prepare)): one whose reads cost a round
//! trip fetches them all at once. The evaluation reads each whole or in slices of its
//! range (`selector::load_with`), so every read it makes lies inside a planned one.

use std::collections::BTreeMap;

use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};

use crate::query::PlannedRead;

use super::engine::Evaluator;
use super::error::PromqlError;
use super::functions::info_selector;
use super::parse::selector_matchers;
use super::selector::{range_template, vector_reach};
use super::selectors::{walk, SelectorVisitor};
use super::value::Grid;

impl Evaluator<'_> {
    /// The reads evaluating `expr` over `grid` makes, those of one matcher group joined
    /// where their ranges overlap or touch. Fails where the evaluation would (a bad
    /// matcher, a zero subquery step).
    pub(crate) fn planned_reads(&self, expr: &Expr, grid: &Grid) -> Result<Vec<PlannedRead>, PromqlError> {
        let mut planner = Planner {
            ev: self,
            reads: Vec::new(),
        };
        walk(expr, grid, &mut planner)?;
        Ok(join_overlapping(planner.reads))
    }
}

/// The visitor collecting the reads.
struct Planner<'e, 'a> {
    ev: &'e Evaluator<'a>,
    reads: Vec<PlannedRead>,
}

impl Planner<'_, '_> {
    /// One read per matcher group of `vs` over `[from, to]`.
    fn add(&mut self, vs: &VectorSelector, from: i64, to: i64) -> Result<(), PromqlError> {
        if from > to {
            return Ok(());
        }
        for matchers in selector_matchers(vs, self.ev.compat)? {
            self.reads.push(PlannedRead {
                matchers,
                start_ms: from,
                end_ms: to,
            });
        }
        Ok(())
    }
}

impl SelectorVisitor for Planner<'_, '_> {
    fn vector(&mut self, vs: &VectorSelector, grid: &Grid) -> Result<(), PromqlError> {
        if grid.len() == 0 {
            return Ok(());
        }
        let reach = vector_reach(self.ev, vs, grid);
        self.add(vs, reach.from, reach.to)
    }

    fn matrix(&mut self, ms: &MatrixSelector, grid: &Grid) -> Result<(), PromqlError> {
        if grid.len() == 0 {
            return Ok(());
        }
        let (from, to) = range_template(self.ev, ms).reach(grid);
        self.add(&ms.vs, from, to)
    }

    fn info(&mut self, arg: Option<&Expr>, grid: &Grid) -> Result<(), PromqlError> {
        let vs = info_selector(arg)?;
        self.vector(&vs, grid)
    }

    fn subquery_grid(&self, sq: &SubqueryExpr, grid: &Grid) -> Result<Option<Grid>, PromqlError> {
        Ok(self.ev.subquery_grid(sq, grid)?.1)
    }
}

/// `reads` with those of the same matchers whose ranges overlap or touch joined into one
/// (`a / a offset 1m` reads one range), in the order each matcher group first appears;
/// ranges of one group that are apart stay apart (`a - a offset 1d` does not read the day
/// between).
fn join_overlapping(reads: Vec<PlannedRead>) -> Vec<PlannedRead> {
    // Matcher groups in order of appearance, each with its ranges.
    let mut groups: Vec<(PlannedRead, Vec<(i64, i64)>)> = Vec::new();
    let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for r in reads {
        let key: Vec<String> = r.matchers.iter().map(|m| m.to_string()).collect();
        let range = (r.start_ms, r.end_ms);
        match index.get(&key) {
            Some(&i) => {
                if let Some(g) = groups.get_mut(i) {
                    g.1.push(range);
                }
            }
            None => {
                index.insert(key, groups.len());
                groups.push((r, vec![range]));
            }
        }
    }
    let mut out = Vec::new();
    for (first, mut ranges) in groups {
        ranges.sort_unstable();
        let mut joined: Vec<(i64, i64)> = Vec::new();
        for (start, end) in ranges {
            match joined.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => joined.push((start, end)),
            }
        }
        for (start_ms, end_ms) in joined {
            out.push(PlannedRead {
                matchers: first.matchers.clone(),
                start_ms,
                end_ms,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
