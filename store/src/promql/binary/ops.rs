//! What a binary operator does to one pair of values: floats, or histograms where
//! Prometheus defines it.

use std::sync::Arc;

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LSS, T_LTE, T_MOD, T_MUL, T_NEQ, T_POW, T_SUB,
};

use crate::model::FloatHistogram;
use crate::promql::annotations::Annotations;
use crate::promql::error::PromqlError;

/// Applies `op` to two floats: `(value, keep)`. Comparisons keep the left value when true.
pub(super) fn apply(op: u16, l: f64, r: f64) -> Result<(f64, bool), PromqlError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_MOD => (l % r, true),
        T_POW => (l.powf(r), true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        other => {
            return Err(PromqlError::exec(format!(
                "operator {} is not defined between these operands",
                promql_parser::parser::token::TokenType::new(other)
            )))
        }
    })
}

/// One operand: a float, or a histogram.
type Operand<'a> = (f64, Option<&'a Arc<FloatHistogram>>);

/// What an operator gives when at least one operand is a histogram: `Some((value,
/// histogram, keep))`, or `None` when the operator is not defined for these types (then the
/// pair is dropped with Prometheus' info) or the histograms cannot be combined (a warning).
/// Defined: `h + h`, `h - h`, `h * f`, `f * h`, `h / f`, and `==` / `!=` between histograms.
pub(super) fn apply_hist(
    op: u16,
    (lv, lh): Operand<'_>,
    (rv, rh): Operand<'_>,
    metric_name: &str,
    notes: &mut Annotations,
) -> Option<(f64, Option<Arc<FloatHistogram>>, bool)> {
    let result = match (lh, rh) {
        (Some(a), Some(b)) => match op {
            T_ADD | T_SUB => {
                let mut h = (**a).clone();
                let r = if op == T_ADD { h.add(b) } else { h.sub(b) };
                match r {
                    Ok(collided) => {
                        if collided {
                            notes.counter_reset_collision();
                        }
                        h.compact(0);
                        Some((0.0, Some(Arc::new(h)), true))
                    }
                    Err(e) => {
                        notes.histogram_op_error(e, metric_name);
                        return None;
                    }
                }
            }
            T_EQLC => Some((0.0, Some(a.clone()), a.same_distribution(b))),
            T_NEQ => Some((0.0, Some(a.clone()), !a.same_distribution(b))),
            _ => None,
        },
        (Some(a), None) if matches!(op, T_MUL | T_DIV) => {
            let mut h = (**a).clone();
            if op == T_MUL {
                h.mul(rv);
            } else {
                h.div(rv);
            }
            Some((0.0, Some(Arc::new(h)), true))
        }
        (None, Some(b)) if op == T_MUL => {
            let mut h = (**b).clone();
            h.mul(lv);
            Some((0.0, Some(Arc::new(h)), true))
        }
        _ => None,
    };
    if result.is_none() {
        let kind = |h: Option<&Arc<FloatHistogram>>| if h.is_some() { "histogram" } else { "float" };
        let op_name = promql_parser::parser::token::TokenType::new(op).to_string();
        notes.incompatible_types_in_bin_op(&op_name, kind(lh), kind(rh));
    }
    result
}

pub(super) fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

pub(super) fn is_arithmetic(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW | T_ATAN2)
}
