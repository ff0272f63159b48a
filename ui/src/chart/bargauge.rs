//! Bar gauge: one horizontal bar per series, as long as its last value on the gauge scale,
//! coloured by the thresholds (else the series colour), with name and value.

use super::colors::color_class;
use super::gauge::{fraction, scale};
use super::options::{threshold_color, ChartFrame, ChartOptions};
use super::series::Series;
use super::svg::{escape, no_data, svg_open};

/// One bar per series, top to bottom.
pub(super) fn render(series: &[Series], frame: ChartFrame, opts: &ChartOptions) -> String {
    if series.is_empty() {
        return no_data("bargauge", frame, opts);
    }
    let (fw, fh) = (f64::from(frame.width.max(1)), f64::from(frame.height.max(1)));
    // at least 16 units per row: more series than fit are left out
    let fit = ((fh / 16.0).floor() as usize).max(1);
    let shown = &series[..series.len().min(fit)];
    let lasts: Vec<f64> = shown.iter().map(|s| s.last_value().unwrap_or(f64::NAN)).collect();
    let range = scale(&lasts, opts);
    let row = fh / shown.len() as f64;
    let name_w = (fw * 0.3).min(220.0);
    let value_w = 80.0;
    let bar_x = name_w + 6.0;
    let bar_w = (fw - bar_x - value_w - 6.0).max(10.0);
    let bar_h = (row * 0.7).clamp(4.0, 40.0);
    let mut svg = svg_open("bargauge", frame, opts, "");
    for (i, (s, &v)) in shown.iter().zip(&lasts).enumerate() {
        let y = row * i as f64 + (row - bar_h) / 2.0;
        let mid = y + bar_h / 2.0 + 4.0;
        let class = color_class(s, i, opts);
        let style = opts
            .threshold_for(v)
            .map(|t| format!(r#" style="fill:{}""#, escape(&threshold_color(&t.color))))
            .unwrap_or_default();
        let text = if v.is_nan() {
            "No data".to_string()
        } else {
            opts.format(v)
        };
        svg.push_str(&format!(
            r#"<g class="bar" data-series="{i}"><text class="bar-name" x="{name_w:.1}" y="{mid:.1}" text-anchor="end">{name}</text><rect class="bar-track" x="{bar_x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{bar_h:.1}"/><rect class="bar-value {class}" x="{bar_x:.1}" y="{y:.1}" width="{:.1}" height="{bar_h:.1}"{style}/><text class="bar-text" x="{:.1}" y="{mid:.1}">{}</text><title>{name}</title></g>"#,
            bar_w * fraction(v, range),
            bar_x + bar_w + 6.0,
            escape(&text),
            name = escape(&s.name),
        ));
    }
    svg.push_str("</svg>");
    svg
}
