//! Which Prometheus release's PromQL the engine answers like, and the checks that depend on
//! it (renamed functions, experimental functions), run on the AST before evaluation.

use std::fmt;
use std::str::FromStr;

use promql_parser::parser::token::{T_LIMITK, T_LIMIT_RATIO};
use promql_parser::parser::Expr;

use super::error::PromqlError;

/// The PromQL semantics an [`Engine`](super::Engine) follows.
///
/// `V3` (the default) is Prometheus 3: range selectors, the lookback window and subquery
/// windows are left-open (a sample exactly at `t - range` or `t - lookback` is not seen),
/// `.` in regular expressions also matches a newline, and `holt_winters` is only known as
/// `double_exponential_smoothing`. `V2` is Prometheus 2.x: windows closed at both ends, `.`
/// does not match a newline, `holt_winters` is a regular function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromqlCompat {
    /// Prometheus 3.x semantics.
    #[default]
    V3,
    /// Prometheus 2.x semantics (for comparing with a 2.x server, or old rule packs).
    V2,
}

impl PromqlCompat {
    /// True when windows exclude their left boundary (Prometheus 3).
    pub fn left_open(self) -> bool {
        self == PromqlCompat::V3
    }

    /// True when `.` in a regular expression matches a newline (Prometheus 3).
    pub fn dot_matches_newline(self) -> bool {
        self == PromqlCompat::V3
    }
}

impl fmt::Display for PromqlCompat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PromqlCompat::V3 => "v3",
            PromqlCompat::V2 => "v2",
        })
    }
}

/// A `promql_compat` value that is neither `v2` nor `v3`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown PromQL compatibility {0:?}: expected \"v3\" or \"v2\"")]
pub struct UnknownCompat(pub String);

impl FromStr for PromqlCompat {
    type Err = UnknownCompat;

    /// Accepts `v3`/`3` and `v2`/`2` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v3" | "3" => Ok(PromqlCompat::V3),
            "v2" | "2" => Ok(PromqlCompat::V2),
            _ => Err(UnknownCompat(s.to_string())),
        }
    }
}

/// Functions Prometheus marks experimental. The parser crate flags most of them; Prometheus
/// also flags `first_over_time`, which the crate does not.
fn is_experimental(name: &str, crate_flag: bool) -> bool {
    crate_flag || name == "first_over_time"
}

/// Refuses what the chosen semantics do not know, with Prometheus' error texts: `holt_winters`
/// under 3.x, experimental functions and `limitk`/`limit_ratio` unless enabled.
pub(crate) fn check_ast(expr: &Expr, compat: PromqlCompat, experimental: bool) -> Result<(), PromqlError> {
    let parse_error = |message: String| PromqlError::Parse {
        message,
        position: None,
    };
    match expr {
        Expr::Call(c) => {
            let name = c.func.name;
            if name == "holt_winters" {
                if compat == PromqlCompat::V3 {
                    return Err(parse_error(format!("unknown function with name {name:?}")));
                }
            } else if !experimental && is_experimental(name, c.func.experimental) {
                return Err(parse_error(format!("function {name:?} is not enabled")));
            }
            for a in &c.args.args {
                check_ast(a, compat, experimental)?;
            }
            Ok(())
        }
        Expr::Aggregate(a) => {
            let op = a.op.id();
            if !experimental && (op == T_LIMITK || op == T_LIMIT_RATIO) {
                return Err(parse_error(format!(
                    "{}() is experimental and must be enabled with --enable-feature=promql-experimental-functions",
                    a.op
                )));
            }
            if let Some(p) = &a.param {
                check_ast(p, compat, experimental)?;
            }
            check_ast(&a.expr, compat, experimental)
        }
        Expr::Unary(u) => check_ast(&u.expr, compat, experimental),
        Expr::Binary(b) => {
            check_ast(&b.lhs, compat, experimental)?;
            check_ast(&b.rhs, compat, experimental)
        }
        Expr::Paren(p) => check_ast(&p.expr, compat, experimental),
        Expr::Subquery(s) => check_ast(&s.expr, compat, experimental),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => Ok(()),
    }
}
