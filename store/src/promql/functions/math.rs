//! Per-sample math and date functions: `abs`, `ceil`, …, trigonometry, `round`, `clamp*`,
//! and `minute`, `hour`, `day_of_week`, ….

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use promql_parser::parser::Expr;

use crate::model::Labels;

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::value::{Elem, Grid, StepVec, Val};
use super::apply::map_values;
use super::args::{scalar_arg, vector_arg};
use super::numeric::{go_max, go_min};

/// Evaluates one of this module's functions; unknown names are an error.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    grid: &Grid,
) -> Result<Val, PromqlError> {
    if let Some(f) = simple(name) {
        let v = vector_arg(ev, args, 0, name, grid)?;
        return Ok(Val::Vector(map_values(v, |x, _| Some(f(x)))?));
    }
    if let Some(f) = date_part(name) {
        let v = if args.is_empty() {
            let labels = Arc::new(Labels::default());
            let mut steps: Vec<StepVec> = Vec::with_capacity(grid.len());
            for i in 0..grid.len() {
                steps.push(vec![Elem::float(labels.clone(), grid.t(i) as f64 / 1000.0)]);
            }
            steps
        } else {
            vector_arg(ev, args, 0, name, grid)?
        };
        return Ok(Val::Vector(map_values(v, |x, _| Some(date_value(x, f)))?));
    }
    let out = match name {
        "round" => {
            let v = vector_arg(ev, args, 0, name, grid)?;
            let to = if args.len() > 1 {
                scalar_arg(ev, args, 1, name, grid)?
            } else {
                vec![1.0; grid.len()]
            };
            map_values(v, |x, i| {
                let inv = 1.0 / to.get(i).copied().unwrap_or(1.0);
                Some((x * inv + 0.5).floor() / inv)
            })?
        }
        "clamp" => {
            let v = vector_arg(ev, args, 0, name, grid)?;
            let lo = scalar_arg(ev, args, 1, name, grid)?;
            let hi = scalar_arg(ev, args, 2, name, grid)?;
            map_values(v, |x, i| {
                let (min, max) = (
                    lo.get(i).copied().unwrap_or(f64::NAN),
                    hi.get(i).copied().unwrap_or(f64::NAN),
                );
                if max < min {
                    return None;
                }
                Some(go_max(min, go_min(max, x)))
            })?
        }
        "clamp_min" => {
            let v = vector_arg(ev, args, 0, name, grid)?;
            let lo = scalar_arg(ev, args, 1, name, grid)?;
            map_values(v, |x, i| Some(go_max(lo.get(i).copied().unwrap_or(f64::NAN), x)))?
        }
        "clamp_max" => {
            let v = vector_arg(ev, args, 0, name, grid)?;
            let hi = scalar_arg(ev, args, 1, name, grid)?;
            map_values(v, |x, i| Some(go_min(hi.get(i).copied().unwrap_or(f64::NAN), x)))?
        }
        _ => return Err(PromqlError::exec(format!("function {name}() is not supported"))),
    };
    Ok(Val::Vector(out))
}

/// The one-argument math functions.
fn simple(name: &str) -> Option<fn(f64) -> f64> {
    let f: fn(f64) -> f64 = match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |x| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x| x * 180.0 / std::f64::consts::PI,
        "rad" => |x| x * std::f64::consts::PI / 180.0,
        _ => return None,
    };
    Some(f)
}

/// Which calendar field a date function reports.
#[derive(Clone, Copy)]
enum DatePart {
    Minute,
    Hour,
    DayOfWeek,
    DayOfMonth,
    DayOfYear,
    DaysInMonth,
    Month,
    Year,
}

fn date_part(name: &str) -> Option<DatePart> {
    Some(match name {
        "minute" => DatePart::Minute,
        "hour" => DatePart::Hour,
        "day_of_week" => DatePart::DayOfWeek,
        "day_of_month" => DatePart::DayOfMonth,
        "day_of_year" => DatePart::DayOfYear,
        "days_in_month" => DatePart::DaysInMonth,
        "month" => DatePart::Month,
        "year" => DatePart::Year,
        _ => return None,
    })
}

/// The calendar field of a Unix time in seconds (UTC); NaN for times that are not finite or
/// out of range.
fn date_value(secs: f64, part: DatePart) -> f64 {
    if !secs.is_finite() {
        return f64::NAN;
    }
    let Some(t) = DateTime::<Utc>::from_timestamp(secs.trunc() as i64, 0) else {
        return f64::NAN;
    };
    let v = match part {
        DatePart::Minute => t.minute(),
        DatePart::Hour => t.hour(),
        DatePart::DayOfWeek => t.weekday().num_days_from_sunday(),
        DatePart::DayOfMonth => t.day(),
        DatePart::DayOfYear => t.ordinal(),
        DatePart::Month => t.month(),
        DatePart::Year => return f64::from(t.year()),
        DatePart::DaysInMonth => {
            let (y, m) = if t.month() == 12 {
                (t.year() + 1, 1)
            } else {
                (t.year(), t.month() + 1)
            };
            let next = NaiveDate::from_ymd_opt(y, m, 1);
            let this = NaiveDate::from_ymd_opt(t.year(), t.month(), 1);
            match (next, this) {
                (Some(n), Some(c)) => return (n - c).num_days() as f64,
                _ => return f64::NAN,
            }
        }
    };
    f64::from(v)
}
