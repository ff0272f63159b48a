//! The building blocks every chart shares: text escaping, compact
//! numbers for data attributes, the opening `<svg>` tag and the "No data" picture.

use super::options::{ChartFrame, ChartOptions};

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A number for data attributes: short, round-trippable enough for a tooltip.
pub(crate) fn compact(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:.5e}");
    // parse back and print the shortest form of the 6-significant-digit value
    let r: f64 = s.parse().unwrap_or(v);
    format!("{r}")
}

/// The opening `<svg>` tag shared by every picture chart.
pub(crate) fn svg_open(kind: &str, frame: ChartFrame, opts: &ChartOptions, extra_attrs: &str) -> String {
    let label = if opts.label.is_empty() {
        format!("{kind} chart")
    } else {
        opts.label.clone()
    };
    let id = opts
        .chart_id
        .as_ref()
        .map(|id| format!(r#" id="{}""#, escape(id)))
        .unwrap_or_default();
    format!(
        r#"<svg class="chart chart-{kind}"{id} xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}" data-unit="{unit}"{extra_attrs}>"#,
        w = frame.width.max(1),
        h = frame.height.max(1),
        label = escape(&label),
        unit = escape(&opts.unit),
    )
}

/// A "No data" picture of the frame's size.
pub(crate) fn no_data(kind: &str, frame: ChartFrame, opts: &ChartOptions) -> String {
    let mut svg = svg_open(kind, frame, opts, "");
    svg.push_str(&format!(
        r#"<text class="no-data" x="{}" y="{}" text-anchor="middle">No data</text></svg>"#,
        frame.width / 2,
        frame.height / 2
    ));
    svg
}
