//! The selectors of a query: one walk over its expression that hands every selector, with
//! the grid it is evaluated over, to a visitor. What `/api/v1/query_exemplars` looks up
//! (Prometheus' `parser.ExtractSelectors`, here) and what a query is going to read
//! (`plan`) are both such walks.

use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};

use crate::model::LabelMatcher;

use super::compat::PromqlCompat;
use super::engine::Engine;
use super::error::PromqlError;
use super::parse::selector_matchers;
use super::value::Grid;

/// What a [`walk`] does at each selector, and how it steps into subqueries.
pub(crate) trait SelectorVisitor {
    /// An instant vector selector evaluated over `grid`.
    fn vector(&mut self, vs: &VectorSelector, grid: &Grid) -> Result<(), PromqlError>;

    /// A range selector evaluated over `grid`.
    fn matrix(&mut self, ms: &MatrixSelector, grid: &Grid) -> Result<(), PromqlError>;

    /// The selector of the info series of `info` evaluated over `grid`: its second
    /// argument `arg`, if given.
    fn info(&mut self, arg: Option<&Expr>, grid: &Grid) -> Result<(), PromqlError>;

    /// The grid the expression of subquery `sq` is evaluated over when the subquery is
    /// evaluated over `grid`; `None` when it is not evaluated.
    fn subquery_grid(&self, sq: &SubqueryExpr, grid: &Grid) -> Result<Option<Grid>, PromqlError>;
}

/// Hands every selector of `expr` (those inside range selectors, function arguments and
/// subqueries too), in query order, to `visitor` with the grid it is evaluated over when
/// `expr` is evaluated over `grid`. The expression comes from
/// [`Engine::parse`](super::Engine::parse), whose nesting limit bounds the recursion.
pub(crate) fn walk(expr: &Expr, grid: &Grid, visitor: &mut impl SelectorVisitor) -> Result<(), PromqlError> {
    match expr {
        Expr::VectorSelector(vs) => visitor.vector(vs, grid)?,
        Expr::MatrixSelector(ms) => visitor.matrix(ms, grid)?,
        Expr::Call(c) if c.func.name == "info" => {
            if let Some(a) = c.args.args.first() {
                walk(a, grid, visitor)?;
            }
            visitor.info(c.args.args.get(1).map(|a| &**a), grid)?;
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, grid, visitor)?;
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, grid, visitor)?;
            }
            walk(&a.expr, grid, visitor)?;
        }
        Expr::Unary(u) => walk(&u.expr, grid, visitor)?,
        Expr::Binary(b) => {
            walk(&b.lhs, grid, visitor)?;
            walk(&b.rhs, grid, visitor)?;
        }
        Expr::Paren(p) => walk(&p.expr, grid, visitor)?,
        Expr::Subquery(s) => {
            if let Some(inner) = visitor.subquery_grid(s, grid)? {
                walk(&s.expr, &inner, visitor)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

impl Engine {
    /// The matcher sets of every vector selector of `expr`, parsed with this engine's limits
    /// and dialect: what exemplar lookups select (`/api/v1/query_exemplars`, the UI's
    /// exemplar dots), so both find the same series for the same query.
    pub fn selectors(&self, expr: &str) -> Result<Vec<Vec<LabelMatcher>>, PromqlError> {
        let ast = self.parse(expr)?;
        extract_selectors(&ast, self.options().compat)
    }
}

/// Every vector selector of `expr` (those inside range selectors and subqueries too) as
/// matcher sets, in query order; a selector with `or` matchers gives one set per group.
/// The expression comes from [`Engine::parse`](super::Engine::parse), whose nesting limit
/// bounds the recursion.
pub fn extract_selectors(expr: &Expr, compat: PromqlCompat) -> Result<Vec<Vec<LabelMatcher>>, PromqlError> {
    let mut sets = MatcherSets {
        compat,
        out: Vec::new(),
    };
    // Times play no part in which series are selected.
    walk(expr, &Grid::instant(0), &mut sets)?;
    Ok(sets.out)
}

/// The visitor of [`extract_selectors`]: each selector's matcher groups, whatever grid.
struct MatcherSets {
    compat: PromqlCompat,
    out: Vec<Vec<LabelMatcher>>,
}

impl SelectorVisitor for MatcherSets {
    fn vector(&mut self, vs: &VectorSelector, _: &Grid) -> Result<(), PromqlError> {
        self.out.extend(selector_matchers(vs, self.compat)?);
        Ok(())
    }

    fn matrix(&mut self, ms: &MatrixSelector, grid: &Grid) -> Result<(), PromqlError> {
        self.vector(&ms.vs, grid)
    }

    /// The argument as written (as Prometheus extracts it), not the info series' selector.
    fn info(&mut self, arg: Option<&Expr>, grid: &Grid) -> Result<(), PromqlError> {
        match arg {
            Some(a) => walk(a, grid, self),
            None => Ok(()),
        }
    }

    fn subquery_grid(&self, _: &SubqueryExpr, grid: &Grid) -> Result<Option<Grid>, PromqlError> {
        Ok(Some(*grid))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::promql::parse::parse_expr;

    fn sets(q: &str) -> Vec<String> {
        let expr = parse_expr(q).unwrap();
        let mut out = Vec::new();
        for set in extract_selectors(&expr, PromqlCompat::V3).unwrap() {
            let parts: Vec<String> = set.iter().map(|m| m.to_string()).collect();
            out.push(parts.join(","));
        }
        out
    }

    #[test]
    fn selectors_come_from_every_part_of_the_query() {
        assert_eq!(
            sets(
                r#"histogram_quantile(0.9, sum by (le) (rate(a_bucket{job="x"}[5m]))) / on() group_left b + 1"#
            ),
            vec![r#"__name__="a_bucket",job="x""#, r#"__name__="b""#]
        );
        assert_eq!(sets("max_over_time(c[5m:1m])"), vec![r#"__name__="c""#]);
        assert_eq!(sets(r#"{job="a" or job="b"}"#), vec![r#"job="a""#, r#"job="b""#]);
        assert!(sets("1 + 2").is_empty());
    }
}
