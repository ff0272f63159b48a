//! Dashboards: the model and its YAML format, template variables and their interpolation,
//! storage (shipped, provisioned and user dashboards) and the Grafana JSON importer. The
//! pages that show and edit dashboards live in `pages::dashboards`.
//!
//! The format is documented in `docs/ui.md` ("Dashboards") and `dashboards/README.md`.

pub mod grafana;
pub mod store;
mod variable;
pub mod vars;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chart::{LegendSort, SERIES_COLORS};

pub use variable::{is_identifier, Variable, VariableKind};

/// Columns of the layout grid (as Grafana's `gridPos`).
pub const GRID_COLUMNS: u32 = 24;

/// Ids that name pages rather than dashboards.
const RESERVED_IDS: [&str; 2] = ["new", "import"];

/// A dashboard: metadata, default time range, template variables and panels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// URL slug: lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// Title shown in the list and the page heading.
    pub title: String,
    /// Tags for the list's filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A sentence shown under the title.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Default auto-refresh period (`30s`, `1m`); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    /// Default time range.
    #[serde(default)]
    pub time: TimeDefault,
    /// Template variables, resolved in order (later ones may use earlier ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// Panels.
    #[serde(default)]
    pub panels: Vec<Panel>,
}

/// The time range a dashboard opens with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeDefault {
    /// Start, e.g. `now-1h`.
    #[serde(default = "default_from")]
    pub from: String,
    /// End, e.g. `now`.
    #[serde(default = "default_to")]
    pub to: String,
}

fn default_from() -> String {
    "now-1h".to_string()
}

fn default_to() -> String {
    "now".to_string()
}

impl Default for TimeDefault {
    fn default() -> Self {
        TimeDefault {
            from: default_from(),
            to: default_to(),
        }
    }
}

/// What a panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    /// Lines over time.
    Timeseries,
    /// Stacked areas over time.
    Stacked,
    /// One big number with a sparkline.
    Stat,
    /// A dial.
    Gauge,
    /// One bar per series.
    Bargauge,
    /// Instant-query rows.
    Table,
    /// Histogram buckets over time.
    Heatmap,
    /// Log records matching `query`.
    Logs,
    /// Static text.
    Text,
}

impl PanelKind {
    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            PanelKind::Timeseries => "timeseries",
            PanelKind::Stacked => "stacked",
            PanelKind::Stat => "stat",
            PanelKind::Gauge => "gauge",
            PanelKind::Bargauge => "bargauge",
            PanelKind::Table => "table",
            PanelKind::Heatmap => "heatmap",
            PanelKind::Logs => "logs",
            PanelKind::Text => "text",
        }
    }

    /// Every kind, in the order editors list them.
    pub const ALL: [PanelKind; 9] = [
        PanelKind::Timeseries,
        PanelKind::Stacked,
        PanelKind::Stat,
        PanelKind::Gauge,
        PanelKind::Bargauge,
        PanelKind::Table,
        PanelKind::Heatmap,
        PanelKind::Logs,
        PanelKind::Text,
    ];

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<PanelKind> {
        PanelKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the panel runs PromQL queries.
    pub fn uses_promql(self) -> bool {
        !matches!(self, PanelKind::Logs | PanelKind::Text)
    }
}

/// One PromQL query of a panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelQuery {
    /// The PromQL expression (variables interpolated before it runs).
    pub expr: String,
    /// Series name template, `{{label}}` replaced by the label's value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub legend: String,
}

/// A colour step: values at or above `value` (from minus infinity when absent) take `color`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdStep {
    /// Lower bound; `None` is the base step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// A CSS colour: a name (`green`) or `#rrggbb`.
    pub color: String,
}

/// A panel on the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Heading.
    pub title: String,
    /// Visualisation.
    #[serde(rename = "type")]
    pub kind: PanelKind,
    /// Help text shown as the heading's tooltip.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// PromQL queries (not for `text` and `logs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<PanelQuery>,
    /// Unit id (`bytes`, `seconds`, `percent`, `percentunit`, `reqps`, `currencyUSD`…).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Decimals shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
    /// Fixed minimum of the axis / gauge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Fixed maximum of the axis / gauge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Colour steps in ascending order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdStep>,
    /// Grid column, 0–23.
    #[serde(default)]
    pub x: u32,
    /// Grid row (rows are about 30 px).
    #[serde(default)]
    pub y: u32,
    /// Width in columns, 1–24.
    #[serde(default = "default_w")]
    pub w: u32,
    /// Height in rows.
    #[serde(default = "default_h")]
    pub h: u32,
    /// Text panels: the text (escaped; blank lines separate paragraphs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Logs panels: a Tantivy query over the log store.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Time series and stacked panels: the order of the legend and of the drawing
    /// (`{sort: desc|asc|none, by: mean|last|max|min|name}`); absent is largest mean first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legend: Option<LegendSort>,
    /// Table panels: the columns shown, in this order — `Value`, `Query` (which query, when
    /// there are several), `Series` (the legend text) or a label name. Empty shows the value
    /// first, then the labels whose values differ between rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Series colours by name (the legend text): `{"5xx": purple, user: blue}`, one of
    /// `green blue orange yellow red purple`; overrides the palette and status colours.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub colors: BTreeMap<String, String>,
    /// Time series and stacked panels: draw the exemplars of the queries' series as dots
    /// that open their trace (Grafana's per-target `exemplar` toggle); ignored elsewhere.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exemplars: bool,
}

fn default_w() -> u32 {
    12
}

fn default_h() -> u32 {
    8
}

impl Panel {
    /// An empty panel of `kind` titled `title` at the given place.
    pub fn new(title: impl Into<String>, kind: PanelKind) -> Panel {
        Panel {
            title: title.into(),
            kind,
            description: String::new(),
            queries: Vec::new(),
            unit: String::new(),
            decimals: None,
            min: None,
            max: None,
            thresholds: Vec::new(),
            x: 0,
            y: 0,
            w: default_w(),
            h: default_h(),
            text: String::new(),
            query: String::new(),
            legend: None,
            columns: Vec::new(),
            colors: BTreeMap::new(),
            exemplars: false,
        }
    }
}

/// Why a dashboard was refused: where (file, panel, field) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct DashboardError {
    /// File name or other origin (`<editor>`, `grafana import`).
    pub source_name: String,
    /// What is wrong, naming the panel and field.
    pub message: String,
}

impl Dashboard {
    /// Parses and validates YAML; `source_name` (a file name) prefixes every error.
    pub fn from_yaml(source_name: &str, text: &str) -> Result<Dashboard, DashboardError> {
        let err = |message: String| DashboardError {
            source_name: source_name.to_string(),
            message,
        };
        let dash: Dashboard = serde_yaml::from_str(text).map_err(|e| err(e.to_string()))?;
        dash.validate().map_err(err)?;
        Ok(dash)
    }

    /// The YAML text of the dashboard.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }

    /// Checks what serde cannot: id syntax, layout bounds, names, colours, durations.
    /// The message names the panel (number and title) and the field.
    pub fn validate(&self) -> Result<(), String> {
        validate_id(&self.id)?;
        if self.title.trim().is_empty() {
            return Err("title: must not be empty".into());
        }
        if let Some(r) = &self.refresh {
            if !r.is_empty() && r != "off" {
                didban_base::parse_duration(r)
                    .map_err(|e| format!("refresh: {r:?} is not a duration ({e})"))?;
            }
        }
        for (field, value) in [("time.from", &self.time.from), ("time.to", &self.time.to)] {
            crate::timerange::resolve(value, 0).map_err(|e| format!("{field}: {e}"))?;
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, v) in self.variables.iter().enumerate() {
            let at = format!("variables[{i}] ({:?})", v.name);
            if !is_identifier(&v.name) || v.name.starts_with("__") {
                return Err(format!(
                    "{at}: name: must be letters, digits and _ (not starting with a digit or __)"
                ));
            }
            if names.contains(&v.name.as_str()) {
                return Err(format!("{at}: name: defined twice"));
            }
            names.push(&v.name);
            if v.kind == VariableKind::Query {
                vars::LabelValuesQuery::parse(&v.query).map_err(|e| format!("{at}: query: {e}"))?;
            }
            if v.kind == VariableKind::Interval {
                for item in vars::split_list(&v.query) {
                    didban_base::parse_duration(&item)
                        .map_err(|e| format!("{at}: query: {item:?} is not a duration ({e})"))?;
                }
            }
        }
        for (i, p) in self.panels.iter().enumerate() {
            let at = format!("panels[{i}] ({:?})", p.title);
            if p.w == 0 || p.w > GRID_COLUMNS {
                return Err(format!("{at}: w: {} is not between 1 and {GRID_COLUMNS}", p.w));
            }
            if p.x + p.w > GRID_COLUMNS {
                return Err(format!(
                    "{at}: x: x + w = {} is past the {GRID_COLUMNS}-column grid",
                    p.x + p.w
                ));
            }
            if p.h == 0 || p.h > 100 {
                return Err(format!("{at}: h: {} is not between 1 and 100", p.h));
            }
            if p.y > 1000 {
                return Err(format!("{at}: y: {} is too far down (at most 1000)", p.y));
            }
            if p.decimals.is_some_and(|d| d > 10) {
                return Err(format!("{at}: decimals: at most 10"));
            }
            if let (Some(lo), Some(hi)) = (p.min, p.max) {
                if lo >= hi {
                    return Err(format!("{at}: min: {lo} is not below max {hi}"));
                }
            }
            for (j, t) in p.thresholds.iter().enumerate() {
                if !is_safe_color(&t.color) {
                    return Err(format!(
                        "{at}: thresholds[{j}].color: {:?} is not a colour name or #rgb value",
                        t.color
                    ));
                }
            }
            for (j, q) in p.queries.iter().enumerate() {
                if q.expr.trim().is_empty() {
                    return Err(format!("{at}: queries[{j}].expr: must not be empty"));
                }
            }
            for (j, c) in p.columns.iter().enumerate() {
                if c.trim().is_empty() {
                    return Err(format!("{at}: columns[{j}]: must not be empty"));
                }
                if p.columns[..j].contains(c) {
                    return Err(format!("{at}: columns[{j}]: {c:?} is listed twice"));
                }
            }
            for (name, color) in &p.colors {
                if !SERIES_COLORS.contains(&color.as_str()) {
                    return Err(format!(
                        "{at}: colors.{name}: {color:?} is not one of {}",
                        SERIES_COLORS.join(", ")
                    ));
                }
            }
            if !p.columns.is_empty() && p.kind != PanelKind::Table {
                return Err(format!(
                    "{at}: columns: only table panels have columns (this is a {} panel)",
                    p.kind.as_str()
                ));
            }
            if !p.kind.uses_promql() && !p.queries.is_empty() {
                return Err(format!(
                    "{at}: queries: a {} panel has no PromQL queries",
                    p.kind.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// Checks a dashboard id: 1–64 of `a-z`, `0-9`, `-`, `_`, not `new` or `import`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(format!("id: {id:?} must be 1–64 characters of a-z, 0-9, - and _"));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(format!("id: {id:?} is reserved"));
    }
    Ok(())
}

/// A colour that is safe to put in an attribute: a name of letters and `-`, or `#` hex.
pub fn is_safe_color(color: &str) -> bool {
    if let Some(hex) = color.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !color.is_empty() && color.len() <= 32 && color.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
}

/// Turns a title into an id: lower case, runs of other characters become `-`.
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out = out.trim_end_matches('-').to_string();
    out.truncate(64);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() || RESERVED_IDS.contains(&out.as_str()) {
        format!("dashboard-{out}").trim_end_matches('-').to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests;
