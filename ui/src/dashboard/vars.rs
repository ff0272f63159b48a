//! Template variables: their options (label values, lists, intervals), the values selected in
//! the URL (`var-<name>=…`, repeated for several values, `$__all` for All), and interpolation
//! into queries as Grafana does it for Prometheus: `$var`, `${var}`, `${var:format}`,
//! `[[var]]`; multi-value and All selections become a regex alternation `(a|b)` with each
//! value regex-escaped, ready for an `=~` matcher. Built-ins: `$__interval`,
//! `$__interval_ms`, `$__rate_interval`, `$__range`, `$__range_s`, `$__range_ms`.

use std::collections::BTreeMap;

use didban_base::parse_duration;

use super::variable::{is_identifier, Variable, VariableKind};
use crate::UiContext;

/// The scrape interval assumed by `$__rate_interval` (Prometheus' default is 1m, Didban's
/// agent and self-scrape use 15 s).
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;

/// The URL value that selects "All".
pub const ALL: &str = "$__all";

/// A parsed `label_values(...)` variable query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelValuesQuery {
    /// The series selector (metric name and/or `{…}`); empty for every series.
    pub selector: String,
    /// The label whose values are listed.
    pub label: String,
}

impl LabelValuesQuery {
    /// Parses `label_values(label)` or `label_values(selector, label)`.
    pub fn parse(text: &str) -> Result<LabelValuesQuery, String> {
        let t = text.trim();
        let inner = t
            .strip_prefix("label_values")
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.trim_end().strip_suffix(')'))
            .ok_or_else(|| {
                format!("{text:?}: expected label_values(label) or label_values(metric, label)")
            })?;
        let (selector, label) = match inner.rfind(',') {
            Some(i) => (inner[..i].trim(), inner[i + 1..].trim()),
            None => ("", inner.trim()),
        };
        if !is_identifier(label) {
            return Err(format!("{text:?}: {label:?} is not a label name"));
        }
        Ok(LabelValuesQuery {
            selector: selector.to_string(),
            label: label.to_string(),
        })
    }
}

/// Splits a comma list, trimming blanks and dropping empty items.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The value(s) a variable stands for during one render.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarValue {
    /// Selected values (for All: every option).
    pub values: Vec<String>,
    /// "All" is selected.
    pub all: bool,
    /// The custom value of All, used as is.
    pub all_value: Option<String>,
    /// Multi-value or include-all variable: values are regex-escaped by default.
    pub regex_by_default: bool,
}

/// A resolved variable for the page: its options and selection, and any error getting them.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedVar {
    /// The definition.
    pub def: Variable,
    /// Options offered.
    pub options: Vec<String>,
    /// Selected values as they go back into the URL (`$__all` for All).
    pub selected: Vec<String>,
    /// The value used in queries.
    pub value: VarValue,
    /// Why the options could not be read.
    pub error: Option<String>,
}

/// Names → values for interpolation, including the built-ins.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    vars: BTreeMap<String, VarValue>,
}

impl Scope {
    /// A scope with the built-ins for a range of `range_ms` and a query step (`$__interval`)
    /// of `interval_ms`.
    pub fn with_builtins(range_ms: i64, interval_ms: i64) -> Scope {
        let mut scope = Scope::default();
        scope.set_builtins(range_ms, interval_ms);
        scope
    }

    /// Sets (or replaces) the built-ins.
    pub fn set_builtins(&mut self, range_ms: i64, interval_ms: i64) {
        let interval_ms = interval_ms.max(1);
        let rate = (4 * SCRAPE_INTERVAL_MS).max(interval_ms + SCRAPE_INTERVAL_MS);
        let range_s = range_ms / 1000;
        self.set_plain("__interval", &format_duration(interval_ms));
        self.set_plain("__interval_ms", &interval_ms.to_string());
        self.set_plain("__rate_interval", &format_duration(rate));
        self.set_plain("__range", &format!("{range_s}s"));
        self.set_plain("__range_s", &range_s.to_string());
        self.set_plain("__range_ms", &range_ms.to_string());
    }

    /// Binds `name` to one plain value.
    pub fn set_plain(&mut self, name: &str, value: &str) {
        self.vars.insert(
            name.to_string(),
            VarValue {
                values: vec![value.to_string()],
                ..VarValue::default()
            },
        );
    }

    /// Binds `name` to `value`.
    pub fn set(&mut self, name: &str, value: VarValue) {
        self.vars.insert(name.to_string(), value);
    }

    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&VarValue> {
        self.vars.get(name)
    }

    /// Replaces every variable reference in `text`; unknown names stay as written.
    pub fn interpolate(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(['$', '[']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            match self.reference_at(tail) {
                Some((consumed, replacement)) => {
                    out.push_str(&replacement);
                    rest = &tail[consumed..];
                }
                None => {
                    let c = tail.chars().next().map_or(1, char::len_utf8);
                    out.push_str(&tail[..c]);
                    rest = &tail[c..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A reference at the start of `text`: bytes consumed and its replacement.
    fn reference_at(&self, text: &str) -> Option<(usize, String)> {
        let (consumed, name, format) = if let Some(r) = text.strip_prefix("${") {
            let end = r.find('}')?;
            let inner = &r[..end];
            let (name, format) = match inner.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            (end + 3, name, format)
        } else if let Some(r) = text.strip_prefix("[[") {
            let end = r.find("]]")?;
            let inner = &r[..end];
            let (name, format) = match inner.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            (end + 4, name, format)
        } else if let Some(r) = text.strip_prefix('$') {
            let len = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            (len + 1, &r[..len], None)
        } else {
            return None;
        };
        let value = self.vars.get(name)?;
        Some((consumed, format_value(value, format)))
    }
}

/// Formats a variable's value for a query (`format` from `${var:format}`).
fn format_value(v: &VarValue, format: Option<&str>) -> String {
    if v.all {
        if let Some(custom) = &v.all_value {
            return custom.clone();
        }
    }
    let values: &[String] = &v.values;
    match format {
        Some("regex") => regex_alternation(values),
        Some("pipe") => values.join("|"),
        Some("csv") | Some("raw") => values.join(","),
        Some("glob") => {
            if values.len() == 1 {
                values[0].clone()
            } else {
                format!("{{{}}}", values.join(","))
            }
        }
        _ => {
            if v.all && values.is_empty() {
                ".*".to_string()
            } else if v.regex_by_default {
                regex_alternation(values)
            } else {
                values.first().map(|s| prometheus_escape(s)).unwrap_or_default()
            }
        }
    }
}

/// One value as is, several as `(a|b)`, each regex-escaped for a PromQL string literal.
fn regex_alternation(values: &[String]) -> String {
    match values {
        [] => ".*".to_string(),
        [one] => regex_escape(one),
        many => {
            let escaped: Vec<String> = many.iter().map(|s| regex_escape(s)).collect();
            format!("({})", escaped.join("|"))
        }
    }
}

/// Escapes regex metacharacters with a backslash that is itself escaped for a double-quoted
/// PromQL string (`a.b` → `a\\.b`), as Grafana's Prometheus data source does.
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '+' | '?' | '.' | '(' | ')' | '|' | '[' | ']' | '{' | '}' => {
                out.push_str("\\\\");
                out.push(c);
            }
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out
}

/// A single value inside a PromQL string literal: backslashes and double quotes escaped.
fn prometheus_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Milliseconds as a PromQL duration (`1h`, `90s`, `1500ms`).
pub fn format_duration(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    if ms <= 0 {
        return "0s".to_string();
    }
    for (size, name) in UNITS {
        if ms % size == 0 {
            return format!("{}{name}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The `auto` interval: the range / 30, at least 10 s, rounded to a whole second.
pub fn auto_interval_ms(range_ms: i64) -> i64 {
    ((range_ms / 30).max(10_000) / 1000) * 1000
}

/// Replaces `{{label}}` (spaces allowed inside) with the label's value; unknown labels
/// become empty.
pub fn legend(format: &str, labels: &didban_store::model::Labels) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        match tail.find("}}") {
            Some(end) => {
                let name = tail[..end].trim();
                out.push_str(labels.get(name).unwrap_or(""));
                rest = &tail[end + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Resolves every variable of a dashboard in order: reads options (label values over the
/// range), applies the URL selection `selected` (`name` → values) and binds the values into a
/// scope that already holds the built-ins. Errors stay with their variable.
pub async fn resolve(
    ctx: &UiContext,
    defs: &[Variable],
    selected: &BTreeMap<String, Vec<String>>,
    range: (i64, i64),
    scope: &mut Scope,
) -> Vec<ResolvedVar> {
    let mut out = Vec::new();
    for def in defs {
        let mut error = None;
        let options = match def.kind {
            VariableKind::Query => match label_values(ctx, def, scope, range).await {
                Ok(v) => v,
                Err(e) => {
                    error = Some(e);
                    Vec::new()
                }
            },
            VariableKind::Custom => split_list(&scope.interpolate(&def.query)),
            VariableKind::Interval => {
                let mut v = split_list(&def.query);
                if def.auto {
                    v.insert(0, "auto".to_string());
                }
                v
            }
            VariableKind::Constant => vec![def.query.clone()],
        };
        let r = select(def, options, selected.get(&def.name), range.1 - range.0);
        scope.set(&def.name, r.value.clone());
        out.push(ResolvedVar { error, ..r });
    }
    out
}

/// Applies the URL selection (or the default) to a variable with `options`.
pub fn select(
    def: &Variable,
    options: Vec<String>,
    from_url: Option<&Vec<String>>,
    range_ms: i64,
) -> ResolvedVar {
    let mut chosen: Vec<String> = match from_url {
        Some(v) if !v.is_empty() => v.clone(),
        _ if def.kind == VariableKind::Constant => options.clone(),
        _ if !def.default.is_empty() => def.default.clone(),
        _ if def.include_all => vec![ALL.to_string()],
        _ => options.first().cloned().into_iter().collect(),
    };
    if !def.multi && chosen.len() > 1 {
        chosen.truncate(1);
    }
    let all = def.include_all && chosen.iter().any(|v| v == ALL || v == "All");
    let selected = if all { vec![ALL.to_string()] } else { chosen };
    let mut values = if all { options.clone() } else { selected.clone() };
    if def.kind == VariableKind::Interval {
        for v in &mut values {
            if v == "auto" {
                *v = format_duration(auto_interval_ms(range_ms));
            }
        }
    }
    let value = VarValue {
        values,
        all,
        all_value: def.all_value.clone(),
        regex_by_default: def.multi || def.include_all,
    };
    ResolvedVar {
        def: def.clone(),
        options,
        selected,
        value,
        error: None,
    }
}

/// The values of the label named in a `label_values(...)` query, over the range.
async fn label_values(
    ctx: &UiContext,
    def: &Variable,
    scope: &Scope,
    range: (i64, i64),
) -> Result<Vec<String>, String> {
    let q = LabelValuesQuery::parse(&def.query)?;
    let selector = scope.interpolate(&q.selector);
    let matchers = if selector.trim().is_empty() {
        Vec::new()
    } else {
        didban_store::promql::parse_matchers(&selector).map_err(|e| format!("{selector}: {e}"))?
    };
    let db = ctx.reader.clone();
    let label = q.label.clone();
    let values = tokio::task::spawn_blocking(move || db.label_values(&label, &matchers, range.0, range.1))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(values)
}

/// Parses a duration like `30s` into milliseconds.
pub fn duration_ms(text: &str) -> Option<i64> {
    parse_duration(text)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}
