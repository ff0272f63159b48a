//! PromQL functions, dispatched by name. Range-vector functions share one driver that walks
//! each series' samples with forward-only window cursors.

mod apply;
mod args;
mod compensated;
mod histogram;
mod histogram_rate;
mod info;
mod label;
mod math;
mod native;
mod numeric;
mod over_time;
mod rate;

use promql_parser::parser::{Call, Expr};

use super::downsampled;
use super::engine::Evaluator;
use super::error::PromqlError;
use super::parse::unparen;
use super::value::{Grid, Val};

pub(crate) use info::info_selector;
pub(crate) use numeric::quantile;

/// Evaluates a function call over every step.
pub(crate) fn eval(ev: &mut Evaluator<'_>, call: &Call, grid: &Grid) -> Result<Val, PromqlError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|b| &**b).collect();
    // A range selector given straight to a function that has a downsampled aggregate may
    // read windows (`promql::downsampled`); the selector takes the hint.
    ev.read_hint = None;
    if let (Some(hint), Some(Expr::MatrixSelector(_))) =
        (downsampled::for_function(name), args.first().map(|a| unparen(a)))
    {
        ev.read_hint = Some(hint);
    }
    match name {
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "predict_linear"
        | "resets"
        | "changes"
        | "holt_winters"
        | "double_exponential_smoothing" => rate::eval(ev, name, &args, grid),
        "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "quantile_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "last_over_time"
        | "first_over_time"
        | "present_over_time"
        | "absent_over_time"
        | "mad_over_time"
        | "ts_of_first_over_time"
        | "ts_of_last_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time" => over_time::eval(ev, name, &args, grid),
        "histogram_quantile" => histogram::eval(ev, &args, grid),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar"
        | "histogram_fraction" => native::eval(ev, name, &args, grid),
        "info" => info::eval(ev, &args, grid),
        "label_replace" | "label_join" | "absent" | "vector" | "scalar" | "time" | "timestamp" | "sort"
        | "sort_desc" | "sort_by_label" | "sort_by_label_desc" | "pi" | "start" | "end" | "range"
        | "step" | "min_of" | "max_of" => label::eval(ev, name, &args, grid),
        _ => math::eval(ev, name, &args, grid),
    }
}
