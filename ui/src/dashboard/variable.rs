//! A template variable as a dashboard defines it ([`Variable`], [`VariableKind`]), and the
//! identifier rule its name (and a `label_values` label) follows ([`is_identifier`]).

use serde::{Deserialize, Serialize};

/// How a variable gets its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariableKind {
    /// `label_values(metric, label)` or `label_values(label)` over the range shown.
    Query,
    /// A comma-separated list in `query`.
    Custom,
    /// Durations (`1m,5m,1h`), plus `auto` when `auto: true`.
    Interval,
    /// A fixed hidden value in `query`.
    Constant,
}

/// A template variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Name used as `$name` in queries and `var-name` in the URL.
    pub name: String,
    /// Where options come from.
    #[serde(rename = "type")]
    pub kind: VariableKind,
    /// Label shown next to the selector (defaults to the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `label_values(…)`, the comma list, the intervals or the constant, by `type`.
    #[serde(default)]
    pub query: String,
    /// Several values may be selected.
    #[serde(default, skip_serializing_if = "is_false")]
    pub multi: bool,
    /// Offer "All".
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_all: bool,
    /// What "All" stands for; by default every option as `(a|b|c)`.
    #[serde(default, rename = "all_value", skip_serializing_if = "Option::is_none")]
    pub all_value: Option<String>,
    /// Interval variables: offer `auto` (range / 30, at least 10 s).
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto: bool,
    /// Selected when the URL has no `var-<name>`: one value or a list; `$__all` for All.
    /// Defaults to All when `include_all`, else the first option.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub default: Vec<String>,
}

/// Serde: leave `false` flags out of the YAML.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Serde: a default given as one value or a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
