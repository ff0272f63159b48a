//! The selectors of a query, as matcher sets: what `/api/v1/query_exemplars` looks up
//! (Prometheus' `parser.ExtractSelectors`).

use promql_parser::parser::Expr;

use crate::model::LabelMatcher;

use super::compat::PromqlCompat;
use super::engine::Engine;
use super::error::PromqlError;
use super::parse::selector_matchers;

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
    let mut out = Vec::new();
    collect(expr, compat, &mut out)?;
    Ok(out)
}

fn collect(expr: &Expr, compat: PromqlCompat, out: &mut Vec<Vec<LabelMatcher>>) -> Result<(), PromqlError> {
    match expr {
        Expr::VectorSelector(vs) => out.extend(selector_matchers(vs, compat)?),
        Expr::MatrixSelector(ms) => out.extend(selector_matchers(&ms.vs, compat)?),
        Expr::Call(c) => {
            for a in &c.args.args {
                collect(a, compat, out)?;
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect(p, compat, out)?;
            }
            collect(&a.expr, compat, out)?;
        }
        Expr::Unary(u) => collect(&u.expr, compat, out)?,
        Expr::Binary(b) => {
            collect(&b.lhs, compat, out)?;
            collect(&b.rhs, compat, out)?;
        }
        Expr::Paren(p) => collect(&p.expr, compat, out)?,
        Expr::Subquery(s) => collect(&s.expr, compat, out)?,
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
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
