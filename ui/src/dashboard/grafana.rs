//! Converts a Grafana dashboard (JSON model, `schemaVersion` ≥ 16) into a Didban dashboard:
//! panels (rows flattened), Prometheus targets, field config (unit, decimals, min, max,
//! threshold steps), grid positions, template variables, time, refresh and tags; a time
//! series target's `"exemplar": true` turns on the panel's exemplar dots. What cannot
//! be converted becomes a text panel saying what was skipped, so nothing disappears silently.

use serde_json::Value;

use crate::chart::{LegendSort, SortBy, SortOrder};

use super::{
    is_identifier, is_safe_color, slugify, Dashboard, Panel, PanelKind, PanelQuery, ThresholdStep,
    TimeDefault, Variable, VariableKind, GRID_COLUMNS,
};

/// Why a Grafana dashboard could not be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("grafana import: {0}")]
pub struct ImportError(pub String);

/// Converts Grafana dashboard JSON text. Accepts the dashboard object itself or the API's
/// `{"dashboard": {...}}` wrapper.
pub fn import(json: &str) -> Result<Dashboard, ImportError> {
    let root: Value = serde_json::from_str(json).map_err(|e| ImportError(format!("not JSON: {e}")))?;
    let g = match root.get("dashboard") {
        Some(d) if d.is_object() => d,
        _ => &root,
    };
    if !g.is_object() {
        return Err(ImportError("expected a JSON object".into()));
    }
    let schema = g.get("schemaVersion").and_then(Value::as_u64).unwrap_or(0);
    if schema < 16 {
        return Err(ImportError(format!(
            "schemaVersion {schema} is older than 16 (panels in rows[]); open and save it in a recent Grafana first"
        )));
    }
    let title = text(g, "title").unwrap_or_else(|| "Imported dashboard".to_string());
    let id = slugify(&title);
    let mut dash = Dashboard {
        id,
        title,
        tags: g
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        description: text(g, "description").unwrap_or_default(),
        refresh: g
            .get("refresh")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && super::vars::duration_ms(r).is_some())
            .map(str::to_string),
        time: TimeDefault::default(),
        variables: Vec::new(),
        panels: Vec::new(),
    };
    if let Some(t) = g.get("time") {
        for (key, slot) in [("from", &mut dash.time.from), ("to", &mut dash.time.to)] {
            if let Some(v) = t.get(key).and_then(Value::as_str) {
                if crate::timerange::resolve(v, 0).is_ok() {
                    *slot = v.to_string();
                }
            }
        }
    }
    let mut notes = Vec::new();
    if let Some(list) = g.pointer("/templating/list").and_then(Value::as_array) {
        for v in list {
            match variable(v) {
                Ok(Some(var)) => dash.variables.push(var),
                Ok(None) => {}
                Err(note) => notes.push(note),
            }
        }
    }
    let mut flat = Vec::new();
    if let Some(panels) = g.get("panels").and_then(Value::as_array) {
        for p in panels {
            if p.get("type").and_then(Value::as_str) == Some("row") {
                if let Some(inner) = p.get("panels").and_then(Value::as_array) {
                    flat.extend(inner.iter());
                }
            } else {
                flat.push(p);
            }
        }
    }
    for p in flat {
        dash.panels.push(panel(p));
    }
    if !notes.is_empty() {
        let mut p = Panel::new("Skipped during import", PanelKind::Text);
        p.text = notes.join("\n");
        p.w = GRID_COLUMNS;
        p.h = 3;
        p.y = dash.panels.iter().map(|p| p.y + p.h).max().unwrap_or(0);
        dash.panels.push(p);
    }
    dash.validate()
        .map_err(|e| ImportError(format!("the converted dashboard is invalid: {e}")))?;
    Ok(dash)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A template variable; `Ok(None)` for kinds without meaning here (datasource).
fn variable(v: &Value) -> Result<Option<Variable>, String> {
    let name = text(v, "name").unwrap_or_default();
    let kind = text(v, "type").unwrap_or_default();
    if kind == "datasource" {
        return Ok(None);
    }
    if !is_identifier(&name) || name.starts_with("__") {
        return Err(format!("variable {name:?}: the name is not usable"));
    }
    let query = match v.get("query") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let kind = match kind.as_str() {
        "query" => {
            if super::vars::LabelValuesQuery::parse(&query).is_err() {
                return Err(format!(
                    "variable {name:?}: query {query:?} is not label_values(...); skipped"
                ));
            }
            VariableKind::Query
        }
        "custom" => VariableKind::Custom,
        "interval" => VariableKind::Interval,
        "constant" | "textbox" => VariableKind::Constant,
        other => {
            return Err(format!(
                "variable {name:?}: type {other:?} is not supported; skipped"
            ))
        }
    };
    let query = if kind == VariableKind::Interval {
        let items: Vec<String> = super::vars::split_list(&query)
            .into_iter()
            .filter(|i| super::vars::duration_ms(i).is_some())
            .collect();
        items.join(",")
    } else {
        query
    };
    let default = match v.pointer("/current/value") {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let default = default
        .into_iter()
        .filter(|d| kind != VariableKind::Query || !d.contains('$') || d == super::vars::ALL)
        .collect();
    Ok(Some(Variable {
        name,
        kind,
        label: text(v, "label").filter(|l| !l.is_empty()),
        query,
        multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
        include_all: v.get("includeAll").and_then(Value::as_bool).unwrap_or(false),
        all_value: text(v, "allValue").filter(|a| !a.is_empty()),
        auto: v.get("auto").and_then(Value::as_bool).unwrap_or(false),
        default,
    }))
}

fn panel(p: &Value) -> Panel {
    let title = text(p, "title").unwrap_or_default();
    let gtype = text(p, "type").unwrap_or_default();
    let kind = match gtype.as_str() {
        "timeseries" | "graph" => {
            let stacked = p.get("stack").and_then(Value::as_bool).unwrap_or(false)
                || matches!(
                    p.pointer("/fieldConfig/defaults/custom/stacking/mode")
                        .and_then(Value::as_str),
                    Some("normal") | Some("percent")
                );
            Some(if stacked {
                PanelKind::Stacked
            } else {
                PanelKind::Timeseries
            })
        }
        "stat" | "singlestat" => Some(PanelKind::Stat),
        "gauge" => Some(PanelKind::Gauge),
        "bargauge" => Some(PanelKind::Bargauge),
        "table" | "table-old" => Some(PanelKind::Table),
        "heatmap" => Some(PanelKind::Heatmap),
        "text" => Some(PanelKind::Text),
        _ => None,
    };
    let mut out = Panel::new(title.clone(), kind.unwrap_or(PanelKind::Text));
    out.description = text(p, "description").unwrap_or_default();
    if let Some(g) = p.get("gridPos") {
        let num = |k: &str, d: u32| {
            g.get(k)
                .and_then(Value::as_u64)
                .map(|v| u32::try_from(v).unwrap_or(d))
                .unwrap_or(d)
        };
        out.w = num("w", 12).clamp(1, GRID_COLUMNS);
        out.x = num("x", 0).min(GRID_COLUMNS - out.w);
        out.y = num("y", 0).min(1000);
        out.h = num("h", 8).clamp(1, 100);
    }
    let Some(kind) = kind else {
        out.text = format!("Panel {title:?} of type {gtype:?} was skipped: Didban has no such panel.");
        return out;
    };
    if kind == PanelKind::Text {
        out.text = p
            .pointer("/options/content")
            .or_else(|| p.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return out;
    }
    let mut skipped = 0;
    if let Some(targets) = p.get("targets").and_then(Value::as_array) {
        for t in targets {
            if t.get("hide").and_then(Value::as_bool).unwrap_or(false) {
                continue;
            }
            let exemplar = t.get("exemplar").and_then(Value::as_bool).unwrap_or(false);
            match t
                .get("expr")
                .and_then(Value::as_str)
                .filter(|e| !e.trim().is_empty())
            {
                Some(expr) => {
                    out.queries.push(PanelQuery {
                        expr: expr.to_string(),
                        legend: text(t, "legendFormat")
                            .filter(|l| l != "__auto")
                            .unwrap_or_default(),
                    });
                    out.exemplars |= exemplar && matches!(kind, PanelKind::Timeseries | PanelKind::Stacked);
                }
                None => skipped += 1,
            }
        }
    }
    if let Some(d) = p.pointer("/fieldConfig/defaults") {
        out.unit = text(d, "unit").filter(|u| u != "none").unwrap_or_default();
        out.decimals = d
            .get("decimals")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v <= 10);
        out.min = d.get("min").and_then(Value::as_f64);
        out.max = d.get("max").and_then(Value::as_f64);
        if let (Some(lo), Some(hi)) = (out.min, out.max) {
            if lo >= hi {
                out.min = None;
                out.max = None;
            }
        }
        if let Some(steps) = d.pointer("/thresholds/steps").and_then(Value::as_array) {
            for s in steps {
                let color = text(s, "color").map(|c| grafana_color(&c));
                if let Some(color) = color.filter(|c| is_safe_color(c)) {
                    out.thresholds.push(ThresholdStep {
                        value: s.get("value").and_then(Value::as_f64),
                        color,
                    });
                }
            }
        }
    }
    if matches!(kind, PanelKind::Timeseries | PanelKind::Stacked) {
        out.legend = legend_sort(p);
    }
    if skipped > 0 && out.queries.is_empty() {
        let mut t = Panel::new(out.title.clone(), PanelKind::Text);
        (t.x, t.y, t.w, t.h) = (out.x, out.y, out.w, out.h);
        t.text = format!(
            "Panel {title:?} was skipped: its {skipped} target(s) have no PromQL expr (another data source)."
        );
        return t;
    }
    out
}

/// The legend order of a Grafana panel: `options.legend.sortBy`/`sortDesc` (timeseries) or
/// `legend.sort`/`sortDesc` (the old graph panel); `None` when it has none we can follow.
fn legend_sort(p: &Value) -> Option<LegendSort> {
    let (by, desc) = match p.pointer("/options/legend") {
        Some(l) if l.get("sortBy").is_some() => (text(l, "sortBy")?, l.get("sortDesc")),
        _ => {
            let l = p.get("legend")?;
            (text(l, "sort")?, l.get("sortDesc"))
        }
    };
    let by = match by.to_ascii_lowercase().as_str() {
        "mean" | "avg" => SortBy::Mean,
        "last" | "last *" | "current" => SortBy::Last,
        "max" => SortBy::Max,
        "min" => SortBy::Min,
        "name" => SortBy::Name,
        _ => return None,
    };
    let sort = if desc.and_then(Value::as_bool).unwrap_or(false) {
        SortOrder::Desc
    } else {
        SortOrder::Asc
    };
    Some(LegendSort { sort, by })
}

/// Grafana's palette names (`semi-dark-red`, `dark-green`) as plain CSS colours.
fn grafana_color(c: &str) -> String {
    let base = c
        .strip_prefix("semi-dark-")
        .or_else(|| c.strip_prefix("dark-"))
        .or_else(|| c.strip_prefix("light-"))
        .or_else(|| c.strip_prefix("super-light-"))
        .unwrap_or(c);
    base.to_string()
}
