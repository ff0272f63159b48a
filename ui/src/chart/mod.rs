//! SVG charts drawn on the server. A chart gets [`Series`] already queried at about one point
//! per pixel column (more is downsampled, see [`crate::downsample`]) and returns an SVG
//! string; the page embeds it as is. Text placed in the SVG (legends, labels) is escaped with
//! [`escape`]. Colours come from CSS classes and custom properties (`assets/charts.css`), so
//! the light and dark themes both work.
//!
//! One module per concept: `series` ([`Series`]) and `options` (what to draw: [`ChartKind`],
//! [`ChartFrame`], [`ChartOptions`]), `colors` (palette and status colours by meaning,
//! [`color_class`]), `svg` (escaping and the pieces every chart shares),
//! [`axis`] (ticks and the time axis), `timeseries` (lines and stacked areas), `exemplars`
//! (trace-linked dots over a time series), `stat` (big number with sparkline), `gauge`,
//! `bargauge`, `heatmap` (classic `le` buckets and native histograms), `table` and `legend`
//! (HTML fragments).

pub mod axis;
mod bargauge;
mod colors;
mod exemplars;
mod gauge;
mod heatmap;
mod legend;
mod options;
mod series;
mod stat;
mod svg;
mod table;
mod timeseries;

pub use colors::{color_class, status_class, status_class_of, SERIES_COLORS, STATUS_LABELS};
pub use exemplars::{thin_exemplars, ExemplarDot, MAX_EXEMPLAR_DOTS};
pub use heatmap::{sort_buckets, MAX_NATIVE_ROWS};
pub use legend::{legend, sort_series, LegendSort, SeriesSummary, SortBy, SortOrder};
pub use options::{histogram_text, threshold_color, ChartFrame, ChartKind, ChartOptions, Threshold};
pub use series::Series;
pub use svg::escape;
pub use table::table;
pub use timeseries::stack;

/// Draws `series` as `kind` into `frame`; the result is a complete `<svg>` element (or, for
/// kinds that are not pictures, an HTML fragment) safe to embed as is.
pub fn render(kind: ChartKind, series: &[Series], frame: ChartFrame, opts: &ChartOptions) -> String {
    match kind {
        ChartKind::TimeSeries => timeseries::render(series, frame, opts, false),
        ChartKind::StackedArea => timeseries::render(series, frame, opts, true),
        ChartKind::Stat => stat::render(series, frame, opts),
        ChartKind::Gauge => gauge::render(series, frame, opts),
        ChartKind::BarGauge => bargauge::render(series, frame, opts),
        ChartKind::Heatmap => heatmap::render(series, frame, opts),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_native;
