//! Binary operators: arithmetic, comparison (with `bool`) and set operators between scalars
//! and vectors, with `on` / `ignoring` / `group_left` / `group_right` vector matching.
//!
//! Vectors are matched step by step (`vector_vector`), or once per series when both
//! operands are held series by series and each series matches at most one (`by_series`):
//! the same answer without a signature lookup per element and step. A chain of operators
//! whose operands read storage evaluates them on several threads (`chain`).

mod by_series;
mod chain;
mod matching;
mod operate;
mod ops;

use promql_parser::parser::BinaryExpr;

use operate::operate;

use super::engine::Evaluator;
use super::error::PromqlError;
use super::value::{Grid, Val};

/// Evaluates a binary expression over every step.
pub(crate) fn eval(ev: &mut Evaluator<'_>, be: &BinaryExpr, grid: &Grid) -> Result<Val, PromqlError> {
    if let Some(chain) = chain::Chain::worth_splitting(ev, be) {
        return chain.eval(ev, grid);
    }
    let lhs = ev.eval(&be.lhs, grid)?;
    let rhs = ev.eval(&be.rhs, grid)?;
    operate(ev, be, lhs, rhs)
}
