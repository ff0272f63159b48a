//! The table "chart": one row per series, a column per label name and the last value.

use super::options::ChartOptions;
use super::series::Series;
use super::svg::escape;
use didban_store::model::METRIC_NAME_LABEL;

/// `v` for the table: in the unit when one is set, else with full precision.
fn value_text(v: f64, opts: &ChartOptions) -> String {
    let plain = opts.unit.is_empty() || opts.unit == "none";
    if plain && opts.decimals.is_none() {
        if v.is_nan() {
            "NaN".into()
        } else if v.is_infinite() {
            if v > 0.0 {
                "+Inf".into()
            } else {
                "-Inf".into()
            }
        } else {
            format!("{v}")
        }
    } else {
        opts.format(v)
    }
}

/// An HTML `<table>` with one row per series: its labels (the metric name first) and its
/// last value in the unit (a native histogram: its count and sum). All text is escaped.
/// Series without points show an empty value.
pub fn table(series: &[Series], opts: &ChartOptions) -> String {
    if series.is_empty() {
        return r#"<p class="no-data">No data</p>"#.to_string();
    }
    let mut names: Vec<String> = Vec::new();
    for s in series {
        for l in s.labels.iter() {
            if !names.iter().any(|n| n == l.name) {
                names.push(l.name.to_string());
            }
        }
    }
    names.sort_by(|a, b| (a != METRIC_NAME_LABEL, a).cmp(&(b != METRIC_NAME_LABEL, b)));
    let mut html = String::from(r#"<table class="series-table"><thead><tr>"#);
    for n in &names {
        html.push_str(&format!(r#"<th scope="col">{}</th>"#, escape(n)));
    }
    html.push_str(r#"<th scope="col" class="num">Value</th></tr></thead><tbody>"#);
    for s in series {
        html.push_str("<tr>");
        for n in &names {
            html.push_str(&format!("<td>{}</td>", escape(s.labels.get(n).unwrap_or(""))));
        }
        let value = match s.last_histogram() {
            Some(h) => super::options::histogram_text(h, &|v| value_text(v, opts)),
            None => s.last_value().map(|v| value_text(v, opts)).unwrap_or_default(),
        };
        html.push_str(&format!(r#"<td class="num">{}</td></tr>"#, escape(&value)));
    }
    html.push_str("</tbody></table>");
    html
}
