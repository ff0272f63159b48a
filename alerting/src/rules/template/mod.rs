//! Alert label and annotation templates: the subset of Go's text/template that Prometheus
//! rule packs use, implemented here so output matches Prometheus.
//!
//! Supported: text, `{{ … }}` with `{{-`/`-}}` trimming and `{{/* comments */}}`; pipelines
//! (`{{ $value | humanize }}`), parenthesised sub-pipelines, variables (`$x := …`);
//! `if`/`else if`/`else`/`end`, `range` over maps; the data `.Labels`, `.ExternalLabels`,
//! `.ExternalURL`, `.Value` and the variables `$labels`, `$externalLabels`, `$externalURL`,
//! `$value`; the functions listed in `docs/alerting.md` (`humanize`, `humanize1024`,
//! `humanizeDuration`, `humanizePercentage`, `humanizeTimestamp`, `printf`, `print`,
//! `toUpper`, `toLower`, `title`, `reReplaceAll`, `match`, `stripPort`, `stripDomain`,
//! comparisons, `and`/`or`/`not`, `len`, `index`, `urlquery`, `html`, `js`).
//! Not supported: `query` (templates cannot run PromQL), `with`, `define`/`template`.
//!
//! Why not the `gtmpl` crate: it is unmaintained, has its own value model that would need
//! adapting for every Prometheus function, and reports errors without positions; the
//! subset rule files use is small enough to own.

mod error;
mod exec;
mod funcs;
mod gofmt;
mod parse;
mod value;

use std::collections::BTreeMap;

pub use error::TemplateError;
pub use funcs::{humanize, humanize1024, humanize_duration};
pub use value::TValue;

/// What an alert template can see: the alert's labels and value, the server's external
/// labels and URL.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    /// Labels of the sample that produced the alert.
    pub labels: BTreeMap<String, String>,
    /// The sample's value.
    pub value: f64,
    /// The server's `external_labels`.
    pub external_labels: BTreeMap<String, String>,
    /// The server's external URL.
    pub external_url: String,
}

/// A parsed template; parse once at rule load, expand at every evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    nodes: Vec<parse::Node>,
    /// True when the text has no `{{`, so expanding is a copy.
    plain: bool,
}

impl Template {
    /// Parses `source`, reporting the first syntax error.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let plain = !source.contains("{{");
        let nodes = if plain { Vec::new() } else { parse::parse(source)? };
        Ok(Template {
            source: source.to_string(),
            nodes,
            plain,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Expands the template over `data`.
    pub fn expand(&self, data: &TemplateData) -> Result<String, TemplateError> {
        if self.plain {
            return Ok(self.source.clone());
        }
        let labels = exec::labels_value(&data.labels);
        let external = exec::labels_value(&data.external_labels);
        let mut root = BTreeMap::new();
        root.insert("Labels".to_string(), labels.clone());
        root.insert("ExternalLabels".to_string(), external.clone());
        root.insert("ExternalURL".to_string(), TValue::Str(data.external_url.clone()));
        root.insert("Value".to_string(), TValue::Float(data.value));
        let vars = vec![
            ("$labels".to_string(), labels),
            ("$externalLabels".to_string(), external),
            ("$externalURL".to_string(), TValue::Str(data.external_url.clone())),
            ("$value".to_string(), TValue::Float(data.value)),
        ];
        let mut scope = exec::Scope::new(TValue::Map(root), vars);
        let mut out = String::new();
        exec::run(&self.nodes, &mut scope, &mut out)?;
        Ok(out)
    }
}

/// Go's `%v` of a float: what `{{ $value }}` prints (`1e+06`, `0.5`, `+Inf`).
pub fn go_float(v: f64) -> String {
    gofmt::fmt_g(v, None)
}

#[cfg(test)]
mod tests;
