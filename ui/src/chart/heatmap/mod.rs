//! Heatmaps: buckets over time as shaded cells. Two sources fill the same grid:
//!
//! - `classic`: the `le` bucket series of a Prometheus histogram (cumulative counts or
//!   rates), one row per bucket;
//! - `native`: native histogram samples (exponential schemas on a log axis, custom bounds
//!   of schema −53 as they are), at most [`MAX_NATIVE_ROWS`] rows.
//!
//! Both fill a `grid::Grid`, drawn the same way: each time step becomes a column of cells,
//! one per row, shaded in eight levels by the count that fell into that row alone. When
//! there are more steps than fit, neighbouring steps are summed into one column.

mod classic;
mod grid;
mod native;

use super::options::{ChartFrame, ChartOptions};
use super::series::Series;
use super::svg::no_data;

pub use classic::sort_buckets;
pub use native::MAX_NATIVE_ROWS;

/// Native histograms when any series has them, else the `le` bucket series.
pub(super) fn render(series: &[Series], frame: ChartFrame, opts: &ChartOptions) -> String {
    let filled = if series.iter().any(|s| !s.histograms.is_empty()) {
        native::grid(series, opts)
    } else {
        classic::grid(series, opts)
    };
    match filled {
        Some(g) if !g.labels.is_empty() => grid::draw(&g, frame, opts),
        _ => no_data("heatmap", frame, opts),
    }
}

#[cfg(test)]
mod tests;
