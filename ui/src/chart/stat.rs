//! Stat: one tile per series with its last value, big and coloured by the thresholds, over a
//! sparkline of the series. A series of native histograms shows its last count and sum over
//! a sparkline of its count.

use super::colors::color_class;
use super::options::{threshold_color, ChartFrame, ChartOptions};
use super::series::Series;
use super::svg::{escape, no_data, svg_open};
use crate::downsample;

/// At most this many tiles; more series are left out (the table shows them all).
const MAX_TILES: usize = 24;

/// The sparkline of `points` inside the box `(x, y, w, h)`: a line and the area under it.
fn sparkline(points: &[(i64, f64)], frame: ChartFrame, bx: (f64, f64, f64, f64), class: &str) -> String {
    let (x0, y0, w, h) = bx;
    let pts = downsample::min_max(points, frame.start_ms, frame.end_ms, w.max(1.0) as usize);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, v) in &pts {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return String::new();
    }
    if hi <= lo {
        hi = lo + 1.0;
        lo -= 1.0;
    }
    let span = (frame.end_ms - frame.start_ms).max(1) as f64;
    let mut line = String::new();
    let mut area = String::new();
    let mut pen = false;
    let mut first_x = None;
    let mut last_x = 0.0;
    for &(t, v) in &pts {
        if !v.is_finite() {
            pen = false;
            continue;
        }
        let x = x0 + (t - frame.start_ms) as f64 / span * w;
        let y = y0 + h - (v - lo) / (hi - lo) * h;
        line.push(if pen { 'L' } else { 'M' });
        line.push_str(&format!("{x:.1},{y:.1}"));
        // the area bridges gaps; the line shows them
        area.push(if first_x.is_some() { 'L' } else { 'M' });
        area.push_str(&format!("{x:.1},{y:.1}"));
        pen = true;
        first_x.get_or_insert(x);
        last_x = x;
    }
    let Some(first_x) = first_x else {
        return String::new();
    };
    let bottom = y0 + h;
    area.push_str(&format!("L{last_x:.1},{bottom:.1}L{first_x:.1},{bottom:.1}Z"));
    format!(
        r#"<path class="sparkline-area {class}" d="{area}"/><path class="sparkline {class}" d="{line}"/>"#
    )
}

/// One tile per series.
pub(super) fn render(series: &[Series], frame: ChartFrame, opts: &ChartOptions) -> String {
    if series.is_empty() {
        return no_data("stat", frame, opts);
    }
    let shown = &series[..series.len().min(MAX_TILES)];
    let n = shown.len() as f64;
    let (fw, fh) = (f64::from(frame.width.max(1)), f64::from(frame.height.max(1)));
    // tiles side by side when wide, stacked when tall
    let across = if fw >= fh { n } else { 1.0 };
    let down = if fw >= fh { 1.0 } else { n };
    let (tw, th) = (fw / across, fh / down);
    let mut svg = svg_open("stat", frame, opts, "");
    for (i, s) in shown.iter().enumerate() {
        let (col, row) = if fw >= fh {
            (i as f64, 0.0)
        } else {
            (0.0, i as f64)
        };
        let (x, y) = (col * tw, row * th);
        let last = s.last_value();
        let histogram = s.last_histogram();
        let text = match (histogram, last) {
            (Some(h), _) => opts.format_histogram(h),
            (None, Some(v)) => opts.format(v),
            (None, None) => "No data".into(),
        };
        // a histogram's sparkline is its count over time; thresholds colour values only
        let (last, line): (Option<f64>, Vec<(i64, f64)>) = if histogram.is_some() {
            (None, s.histograms.iter().map(|(t, h)| (*t, h.count)).collect())
        } else {
            (last, Vec::new())
        };
        let line: &[(i64, f64)] = if histogram.is_some() { &line } else { &s.points };
        let style = last
            .and_then(|v| opts.threshold_for(v))
            .map(|t| format!(r#" style="fill:{}""#, escape(&threshold_color(&t.color))))
            .unwrap_or_default();
        let chars = text.chars().count().max(1) as f64;
        let size = (th * 0.38).min(tw * 0.85 / (chars * 0.68)).clamp(10.0, 120.0);
        let class = color_class(s, i, opts);
        svg.push_str(&format!(r#"<g class="stat-tile" data-series="{i}">"#));
        svg.push_str(&sparkline(
            line,
            frame,
            (x + 4.0, y + th * 0.6, tw - 8.0, th * 0.38),
            &class,
        ));
        if shown.len() > 1 {
            svg.push_str(&format!(
                r#"<text class="stat-name" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + tw / 2.0,
                y + 14.0,
                escape(&s.name)
            ));
        }
        svg.push_str(&format!(
            r#"<text class="stat-value" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="{size:.0}"{style}>{}<title>{}</title></text></g>"#,
            x + tw / 2.0,
            y + th * 0.45 + size * 0.35,
            escape(&text),
            escape(&s.name)
        ));
    }
    svg.push_str("</svg>");
    svg
}
