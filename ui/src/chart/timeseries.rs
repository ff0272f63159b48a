//! Time series: lines (one `<path class="series">` per series, lifted at `NaN` gaps) and
//! stacked areas, over a grid with a y axis in the unit and a time axis, with threshold
//! lines (and optionally bands).
//!
//! Every series' line carries `data-series` (its index, for the legend) and `data-values`
//! (the raw value of each vertex of its path, in the path's order, separated by spaces) for
//! the script's tooltip, which takes the x positions from the path itself; the `<svg>`
//! carries `data-start-ms`, `data-end-ms`, `data-plot` and `data-unit`. Exemplar dots
//! (`opts.exemplars`) are drawn above the lines.

use std::collections::{BTreeSet, HashMap};

use super::axis::{draw_axes, Plot, ValueAxis};
use super::colors::color_class;
use super::exemplars::ExemplarDot;
use super::options::{threshold_color, ChartFrame, ChartOptions};
use super::series::Series;
use super::svg::{compact, escape, svg_open};
use crate::downsample;

/// Stacks `series` on a common time grid (the union of their timestamps): for each series,
/// `(t, base, top)` where `base` is the sum of the series before it and `top = base + value`.
/// A missing or `NaN` value adds nothing.
pub fn stack(series: &[Series]) -> Vec<Vec<(i64, f64, f64)>> {
    let mut times = BTreeSet::new();
    for s in series {
        for &(t, _) in &s.points {
            times.insert(t);
        }
    }
    let times: Vec<i64> = times.into_iter().collect();
    let mut base = vec![0.0; times.len()];
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let by_time: HashMap<i64, f64> = s.points.iter().copied().collect();
        let mut layer = Vec::with_capacity(times.len());
        for (i, &t) in times.iter().enumerate() {
            let v = by_time.get(&t).copied().filter(|v| v.is_finite()).unwrap_or(0.0);
            layer.push((t, base[i], base[i] + v));
            base[i] += v;
        }
        out.push(layer);
    }
    out
}

/// Appends `M`/`L` commands for `(x, y)` points; `None` lifts the pen.
fn path_data(points: impl Iterator<Item = Option<(f64, f64)>>) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for p in points {
        match p {
            Some((x, y)) => {
                d.push(if pen_down { 'L' } else { 'M' });
                d.push_str(&format!("{x:.1},{y:.1}"));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d
}

/// `data-values` text: the values of the path's vertices (the finite ones), in order.
fn tooltip_values(values: impl Iterator<Item = f64>) -> String {
    let mut out = String::new();
    for v in values {
        if !v.is_finite() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&compact(v));
    }
    out
}

fn thresholds(plot: &Plot, opts: &ChartOptions) -> String {
    let mut svg = String::new();
    let steps = &opts.thresholds;
    for (i, t) in steps.iter().enumerate() {
        let color = escape(&threshold_color(&t.color));
        if opts.threshold_bands {
            let from = t.value.max(plot.lo);
            let to = steps.get(i + 1).map(|n| n.value).unwrap_or(plot.hi).min(plot.hi);
            if to > from {
                let (y1, y2) = (plot.y(to), plot.y(from));
                svg.push_str(&format!(
                    r#"<rect class="threshold-band" x="{:.1}" y="{y1:.1}" width="{:.1}" height="{:.1}" style="fill:{color}"/>"#,
                    plot.left,
                    plot.width,
                    y2 - y1
                ));
            }
        }
        if t.value.is_finite() && t.value > plot.lo && t.value < plot.hi {
            let y = plot.y(t.value);
            svg.push_str(&format!(
                r#"<line class="threshold" x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" style="stroke:{color}"/>"#,
                plot.left,
                plot.right()
            ));
        }
    }
    svg
}

/// Radius of an exemplar dot in SVG units.
const EXEMPLAR_RADIUS: f64 = 3.5;

/// The exemplar dots inside the plot (others are left out), as a `<g class="exemplars">`:
/// each a circle in a link to its trace, with a tooltip naming the trace and the value.
fn exemplar_dots(plot: &Plot, dots: &[ExemplarDot], opts: &ChartOptions) -> String {
    if dots.is_empty() {
        return String::new();
    }
    let mut svg = String::from(r#"<g class="exemplars">"#);
    for d in dots {
        if d.t_ms < plot.start_ms || d.t_ms > plot.end_ms || d.value < plot.lo || d.value > plot.hi {
            continue;
        }
        let id = escape(&d.trace_id);
        svg.push_str(&format!(
            r#"<a class="exemplar" href="/traces/{id}"><circle cx="{:.1}" cy="{:.1}" r="{EXEMPLAR_RADIUS}"/><title>Trace {id}: {}</title></a>"#,
            plot.x(d.t_ms),
            plot.y(d.value),
            escape(&opts.format(d.value)),
        ));
    }
    svg.push_str("</g>");
    svg
}

/// Draws lines (or stacked areas when `stacked`).
pub(super) fn render(series: &[Series], frame: ChartFrame, opts: &ChartOptions, stacked: bool) -> String {
    let columns = frame.width.max(1) as usize;
    let kind = if stacked { "stacked" } else { "timeseries" };
    // (index, points) per series after downsampling; for stacks (t, base, top).
    let mut lines: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut layers: Vec<Vec<(i64, f64, f64)>> = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    if stacked {
        for layer in stack(series) {
            let keep = 2 * columns;
            let layer: Vec<(i64, f64, f64)> = if layer.len() > keep {
                let k = layer.len().div_ceil(keep);
                layer.into_iter().step_by(k).collect()
            } else {
                layer
            };
            for &(_, b, t) in &layer {
                lo = lo.min(b).min(t);
                hi = hi.max(b).max(t);
            }
            layers.push(layer);
        }
    } else {
        for s in series {
            let pts = downsample::min_max(&s.points, frame.start_ms, frame.end_ms, columns);
            for &(_, v) in &pts {
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            lines.push(pts);
        }
    }
    for d in &opts.exemplars {
        if d.t_ms >= frame.start_ms && d.t_ms <= frame.end_ms {
            lo = lo.min(d.value);
            hi = hi.max(d.value);
        }
    }
    let target = ((f64::from(frame.height) / 45.0).floor() as usize).clamp(2, 10);
    let axis = ValueAxis::new(lo, hi, target, opts);
    let plot = Plot::new(frame, &axis);
    let decimals = opts
        .decimals
        .map(|d| format!(r#" data-decimals="{d}""#))
        .unwrap_or_default();
    let mut svg = svg_open(kind, frame, opts, &format!("{}{decimals}", plot.data_attrs()));
    svg.push_str(&draw_axes(&plot, &axis));
    svg.push_str(&thresholds(&plot, opts));
    svg.push_str(r#"<g class="plot">"#);
    if stacked {
        for (i, (s, layer)) in series.iter().zip(&layers).enumerate() {
            let class = color_class(s, i, opts);
            let name = escape(&s.name);
            if layer.is_empty() {
                continue;
            }
            // area: along the tops, back along the bases
            let mut d = path_data(layer.iter().map(|&(t, _, top)| Some((plot.x(t), plot.y(top)))));
            for &(t, base, _) in layer.iter().rev() {
                d.push_str(&format!("L{:.1},{:.1}", plot.x(t), plot.y(base)));
            }
            d.push('Z');
            svg.push_str(&format!(
                r#"<path class="area {class}" data-series="{i}" d="{d}"/>"#
            ));
            let top = path_data(layer.iter().map(|&(t, _, top)| Some((plot.x(t), plot.y(top)))));
            let values = tooltip_values(layer.iter().map(|&(_, b, top)| top - b));
            svg.push_str(&format!(
                r#"<path class="series {class}" data-series="{i}" data-values="{values}" d="{top}"><title>{name}</title></path>"#
            ));
        }
    } else {
        for (i, (s, pts)) in series.iter().zip(&lines).enumerate() {
            let class = color_class(s, i, opts);
            let name = escape(&s.name);
            let d = path_data(pts.iter().map(|&(t, v)| {
                if v.is_finite() {
                    Some((plot.x(t), plot.y(v)))
                } else {
                    None
                }
            }));
            let values = tooltip_values(pts.iter().map(|&(_, v)| v));
            svg.push_str(&format!(
                r#"<path class="series {class}" data-series="{i}" data-values="{values}" d="{d}"><title>{name}</title></path>"#
            ));
        }
    }
    svg.push_str("</g>");
    svg.push_str(&exemplar_dots(&plot, &opts.exemplars, opts));
    let empty = series.iter().all(|s| s.points.iter().all(|p| p.1.is_nan()));
    if empty {
        svg.push_str(&format!(
            r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">No data</text>"#,
            plot.left + plot.width / 2.0,
            plot.top + plot.height / 2.0
        ));
    }
    svg.push_str("</svg>");
    svg
}
