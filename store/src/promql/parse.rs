//! Glue between the `promql-parser` AST and our model: parsing, matchers, durations,
//! offsets and `@` modifiers.

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp as PMatchOp, Matcher};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, AtModifier, Expr, Function, Offset, VectorSelector};

use crate::model::{LabelMatcher, MatchOp, METRIC_NAME_LABEL};

use super::compat::PromqlCompat;
use super::error::PromqlError;

static EXTRA_FUNCTIONS: Once = Once::new();

/// Teaches the parser Prometheus 2.x names it no longer knows: `holt_winters` (renamed
/// `double_exponential_smoothing` in 3.x), so existing rule packs keep parsing.
fn register_extra_functions() {
    EXTRA_FUNCTIONS.call_once(|| {
        let holt_winters = Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        if let Err(e) = parser::register_extra_functions(vec![holt_winters]) {
            tracing::warn!(error = %e, "could not register holt_winters with the PromQL parser");
        }
    });
}

/// Parses a PromQL expression into the parser's AST. The caller has checked its depth
/// ([`super::depth::check_depth`]): the parser and the AST recurse.
pub(crate) fn parse_expr(expr: &str) -> Result<Expr, PromqlError> {
    register_extra_functions();
    parser::parse(expr).map_err(|message| {
        let mut position = position_of(&message);
        if position.is_none() && (message.contains("end of input") || message.starts_with("unclosed")) {
            position = Some(expr.len());
        }
        PromqlError::Parse { position, message }
    })
}

/// Best effort: the parser sometimes reports `... at position N` / `pos N`.
fn position_of(message: &str) -> Option<usize> {
    for key in ["position ", "pos "] {
        if let Some(i) = message.find(key) {
            let digits: String = message[i + key.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(p) = digits.parse::<usize>() {
                return Some(p);
            }
        }
    }
    None
}

/// Parses a series selector such as `up{job="api"}` (as in `/api/v1/series?match[]=`) into
/// label matchers. Refuses anything that is not a plain vector selector, and selectors with
/// `or` groups, offsets or `@` modifiers.
pub fn parse_matchers(selector: &str) -> Result<Vec<LabelMatcher>, PromqlError> {
    super::depth::check_depth(selector, super::depth::DEFAULT_MAX_DEPTH)?;
    let expr = parse_expr(selector)?;
    match expr {
        Expr::VectorSelector(vs) => {
            if vs.offset.is_some() || vs.at.is_some() {
                return Err(PromqlError::BadData(format!(
                    "selector {selector:?} must not have offset or @"
                )));
            }
            let mut groups = selector_matchers(&vs, PromqlCompat::V3)?;
            if groups.len() != 1 {
                return Err(PromqlError::BadData(format!(
                    "selector {selector:?} must not use `or` matchers"
                )));
            }
            Ok(groups.pop().unwrap_or_default())
        }
        _ => Err(PromqlError::BadData(format!(
            "{selector:?} is not a series selector"
        ))),
    }
}

/// The matcher groups of a selector: one group normally, one per `or` alternative otherwise.
/// The metric name (`foo{...}`) is added to every group as a `__name__` matcher. Under
/// Prometheus 2.x semantics `.` in a regex does not match a newline.
pub(crate) fn selector_matchers(
    vs: &VectorSelector,
    compat: PromqlCompat,
) -> Result<Vec<Vec<LabelMatcher>>, PromqlError> {
    let mut base: Vec<LabelMatcher> = Vec::new();
    if let Some(name) = &vs.name {
        base.push(LabelMatcher::equal(METRIC_NAME_LABEL, name.as_str()));
    }
    for m in &vs.matchers.matchers {
        base.push(convert_matcher(m, compat)?);
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    let mut groups = Vec::new();
    for group in &vs.matchers.or_matchers {
        let mut g = base.clone();
        for m in group {
            g.push(convert_matcher(m, compat)?);
        }
        groups.push(g);
    }
    Ok(groups)
}

pub(crate) fn convert_matcher(m: &Matcher, compat: PromqlCompat) -> Result<LabelMatcher, PromqlError> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::RegexMatch,
        PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    let is_regex = matches!(op, MatchOp::RegexMatch | MatchOp::RegexNoMatch);
    let value = if is_regex && !compat.dot_matches_newline() {
        // The model's matchers compile `(?s:…)`; an inner `(?-s:…)` turns it off again.
        format!("(?-s:{})", m.value)
    } else {
        m.value.clone()
    };
    LabelMatcher::new(op, m.name.as_str(), value).map_err(|e| PromqlError::BadData(e.to_string()))
}

/// Compiles a `label_replace` regex anchored at both ends; `.` matches a newline only under
/// Prometheus 3 semantics.
pub(crate) fn anchored_regex(pattern: &str, compat: PromqlCompat) -> Result<regex::Regex, regex::Error> {
    if compat.dot_matches_newline() {
        regex::Regex::new(&format!("^(?s:{pattern})$"))
    } else {
        regex::Regex::new(&format!("^(?:{pattern})$"))
    }
}

/// A duration in milliseconds (saturating).
pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An offset modifier in milliseconds (negative offsets look into the future).
pub(crate) fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

/// Milliseconds since the epoch of a `SystemTime` (negative before 1970).
pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Resolves an `@` modifier against the top-level query's start and end.
pub(crate) fn at_ms(at: Option<&AtModifier>, query_start: i64, query_end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

/// Removes any number of enclosing parentheses.
pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Formats a float as Prometheus does in label values (`strconv.FormatFloat(f, 'f', -1, 64)`).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}
