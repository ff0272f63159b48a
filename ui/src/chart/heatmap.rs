//! Heatmap of a Prometheus histogram: the series are the `le` buckets of one metric
//! (cumulative counts or rates), sorted numerically by `le` with `+Inf` last. Each time step
//! becomes a column of cells, one per bucket, shaded by the count that fell into that bucket
//! alone (the cumulative value minus the bucket below it). When there are more steps than
//! fit, neighbouring steps are summed into one column.

use std::collections::{BTreeSet, HashMap};

use super::axis::{draw_axes, Plot, ValueAxis};
use super::options::{ChartFrame, ChartOptions};
use super::series::Series;
use super::svg::{escape, no_data, svg_open};

/// Shades of a cell, 1..=LEVELS (0 is not drawn).
const LEVELS: f64 = 8.0;
/// The narrowest column in SVG units.
const MIN_CELL: f64 = 4.0;

/// The bucket series with an `le` label, sorted by its numeric upper bound (`+Inf` last);
/// series without a parseable `le` are left out.
pub fn sort_buckets(series: &[Series]) -> Vec<(f64, &Series)> {
    let mut out: Vec<(f64, &Series)> = Vec::new();
    for s in series {
        let Some(le) = s.labels.get("le") else { continue };
        let bound = match le.trim() {
            "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
            other => match other.parse::<f64>() {
                Ok(v) if !v.is_nan() => v,
                _ => continue,
            },
        };
        out.push((bound, s));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The cells: buckets bottom to top, columns left to right.
pub(super) fn render(series: &[Series], frame: ChartFrame, opts: &ChartOptions) -> String {
    let buckets = sort_buckets(series);
    if buckets.is_empty() {
        return no_data("heatmap", frame, opts);
    }
    let mut times = BTreeSet::new();
    for (_, s) in &buckets {
        for &(t, _) in &s.points {
            times.insert(t);
        }
    }
    let times: Vec<i64> = times.into_iter().collect();
    let maps: Vec<HashMap<i64, f64>> = buckets
        .iter()
        .map(|(_, s)| s.points.iter().copied().filter(|p| p.1.is_finite()).collect())
        .collect();
    // per-bucket counts per step: cumulative minus the bucket below, never negative
    let n = buckets.len();
    let mut counts: Vec<Vec<f64>> = vec![Vec::with_capacity(times.len()); n];
    for &t in &times {
        let mut below = 0.0;
        for (b, map) in maps.iter().enumerate() {
            let cum = map.get(&t).copied().unwrap_or(below);
            counts[b].push((cum - below).max(0.0));
            below = cum.max(below);
        }
    }
    let mut labels: Vec<String> = buckets
        .iter()
        .map(|(le, _)| {
            if le.is_infinite() {
                "+Inf".to_string()
            } else {
                opts.format(*le)
            }
        })
        .collect();
    let row_every = ((n as f64 * 14.0) / f64::from(frame.height.max(1)))
        .ceil()
        .max(1.0) as usize;
    for (i, l) in labels.iter_mut().enumerate() {
        if i % row_every != 0 {
            l.clear();
        }
    }
    let axis = ValueAxis {
        lo: 0.0,
        hi: n as f64,
        ticks: (0..n).map(|i| i as f64 + 0.5).collect(),
        labels,
    };
    let plot = Plot::new(frame, &axis);
    let mut svg = svg_open("heatmap", frame, opts, &plot.data_attrs());
    svg.push_str(&draw_axes(&plot, &axis));
    // group steps into columns no narrower than MIN_CELL
    let max_cols = ((plot.width / MIN_CELL).floor() as usize).max(1);
    let per_col = times.len().div_ceil(max_cols).max(1);
    let step = if times.len() > 1 {
        (times[times.len() - 1] - times[0]) / (times.len() as i64 - 1)
    } else {
        (frame.end_ms - frame.start_ms).max(1)
    };
    let mut columns: Vec<(i64, i64, Vec<f64>)> = Vec::new();
    let mut i = 0;
    while i < times.len() {
        let j = (i + per_col).min(times.len());
        let sums: Vec<f64> = counts.iter().map(|c| c[i..j].iter().sum()).collect();
        // a cell is centred on its steps
        columns.push((times[i] - step / 2, times[j - 1] + step - step / 2, sums));
        i = j;
    }
    let max = columns
        .iter()
        .flat_map(|c| c.2.iter().copied())
        .fold(0.0f64, f64::max);
    let row_h = plot.height / n as f64;
    svg.push_str(r#"<g class="cells">"#);
    for (from, to, sums) in &columns {
        let x1 = plot.x(*from).max(plot.left);
        let x2 = plot.x(*to).min(plot.right());
        if x2 <= x1 {
            continue;
        }
        for (b, &c) in sums.iter().enumerate() {
            if c <= 0.0 || max <= 0.0 {
                continue;
            }
            let level = ((c / max) * LEVELS).ceil().clamp(1.0, LEVELS) as u32;
            let y = plot.bottom() - (b as f64 + 1.0) * row_h;
            svg.push_str(&format!(
                r#"<rect class="hm{level}" x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"/>"#,
                x2 - x1,
                row_h
            ));
        }
    }
    svg.push_str("</g>");
    svg.push_str(&format!(
        "<title>{}</title></svg>",
        escape(&format!(
            "Heatmap of {} buckets, largest count {}",
            n,
            crate::units::format(max, "short", None)
        ))
    ));
    svg
}
