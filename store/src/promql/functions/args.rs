//! A function call's arguments, checked and evaluated as the type the function expects.

use promql_parser::parser::Expr;

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::value::{Grid, RangeData, StepVec};

/// The `i`-th argument, or an error naming the function.
pub(crate) fn arg<'e>(args: &[&'e Expr], i: usize, func: &str) -> Result<&'e Expr, PromqlError> {
    args.get(i)
        .copied()
        .ok_or_else(|| PromqlError::exec(format!("function {func} expects at least {} argument(s)", i + 1)))
}

/// Evaluates argument `i` as a scalar (one value per step).
pub(crate) fn scalar_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<Vec<f64>, PromqlError> {
    let e = arg(args, i, func)?;
    ev.eval(e, grid)?
        .into_scalar(&format!("argument {} of {func}", i + 1))
}

/// Evaluates argument `i` as an instant vector.
pub(crate) fn vector_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<Vec<StepVec>, PromqlError> {
    let e = arg(args, i, func)?;
    ev.eval(e, grid)?
        .into_vector(&format!("argument {} of {func}", i + 1))
}

/// Evaluates argument `i` as a range vector.
pub(crate) fn matrix_arg(
    ev: &mut Evaluator<'_>,
    args: &[&Expr],
    i: usize,
    func: &str,
    grid: &Grid,
) -> Result<RangeData, PromqlError> {
    let e = arg(args, i, func)?;
    ev.eval(e, grid)?
        .into_matrix(&format!("argument {} of {func}", i + 1))
}
