//! The [`Grid`] every heatmap fills (per-row counts at each step) and its drawing: rows
//! bottom to top, one column per step, neighbouring steps summed when they do not fit,
//! cells shaded in eight levels of the largest.

use super::super::axis::{draw_axes, Plot, ValueAxis};
use super::super::options::{ChartFrame, ChartOptions};
use super::super::svg::{escape, svg_open};

/// Shades of a cell, 1..=LEVELS (0 is not drawn).
const LEVELS: f64 = 8.0;
/// The narrowest column in SVG units.
const MIN_CELL: f64 = 4.0;

/// What a heatmap draws: per-row counts at each step, rows bottom to top.
pub(super) struct Grid {
    /// Step timestamps, ascending.
    pub times: Vec<i64>,
    /// Row labels, bottom to top (a bucket's upper bound).
    pub labels: Vec<String>,
    /// `counts[row][step]`: what fell into the row at that step (never negative).
    pub counts: Vec<Vec<f64>>,
    /// What the rows are, for the chart's title ("12 buckets").
    pub rows_text: String,
}

/// The cells: rows bottom to top, columns left to right.
pub(super) fn draw(grid: &Grid, frame: ChartFrame, opts: &ChartOptions) -> String {
    let n = grid.labels.len();
    let times = &grid.times;
    let mut labels = grid.labels.clone();
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
        let sums: Vec<f64> = grid
            .counts
            .iter()
            .map(|c| c.get(i..j).map(|s| s.iter().sum::<f64>()).unwrap_or(0.0))
            .collect();
        // a cell is centred on its steps
        columns.push((times[i] - step / 2, times[j - 1] + step - step / 2, sums));
        i = j;
    }
    let max = columns
        .iter()
        .flat_map(|c| c.2.iter().copied())
        .filter(|c| c.is_finite())
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
            if c.is_nan() || c <= 0.0 || max <= 0.0 {
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
            "Heatmap of {}, largest count {}",
            grid.rows_text,
            crate::units::format(max, "short", None)
        ))
    ));
    svg
}
