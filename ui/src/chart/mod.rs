//! SVG charts drawn on the server. A chart gets [`Series`] already queried at about one point
//! per pixel column (more is downsampled, see [`crate::downsample`]) and returns an SVG
//! string; the page embeds it as is. Text placed in the SVG (legends, labels) is escaped with
//! [`escape`]. Colours come from CSS classes and custom properties (`assets/charts.css`), so
//! the light and dark themes both work.
//!
//! One module per concept: [`axis`] (ticks and the time axis), `timeseries` (lines and
//! stacked areas), `stat` (big number with sparkline), `gauge`, `bargauge`, `heatmap`,
//! `table` and `legend` (HTML fragments).

pub mod axis;
mod bargauge;
mod gauge;
mod heatmap;
mod legend;
mod stat;
mod table;
mod timeseries;

pub use heatmap::sort_buckets;
pub use legend::{legend, SeriesSummary};
pub use table::table;
pub use timeseries::stack;

use didban_store::model::Labels;

/// One line of a chart: the series' labels, a display name, and `(ms, value)` points in time
/// order. `NaN` values are gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Legend text; defaults to the labels in PromQL form.
    pub name: String,
    /// Points in time order.
    pub points: Vec<(i64, f64)>,
}

impl Series {
    /// A series named after its labels.
    pub fn new(labels: Labels, points: Vec<(i64, f64)>) -> Series {
        let name = labels.to_string();
        Series { labels, name, points }
    }

    /// The last value that is not `NaN`.
    pub fn last_value(&self) -> Option<f64> {
        self.points.iter().rev().map(|p| p.1).find(|v| !v.is_nan())
    }
}

/// Size and time window of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartFrame {
    /// Width in CSS pixels.
    pub width: u32,
    /// Height in CSS pixels.
    pub height: u32,
    /// Left edge of the x axis.
    pub start_ms: i64,
    /// Right edge of the x axis.
    pub end_ms: i64,
}

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

/// Which visualisation a panel draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChartKind {
    /// Lines over time.
    #[default]
    TimeSeries,
    /// Stacked areas over time.
    StackedArea,
    /// One big number per series (its last value) with a sparkline.
    Stat,
    /// A dial per series showing the last value between min and max.
    Gauge,
    /// One horizontal bar per series (last value).
    BarGauge,
    /// Buckets over time as coloured cells (series are `le` buckets of one histogram).
    Heatmap,
}

/// A colour step: values at or above `value` take `color`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Lower bound of the step (`f64::NEG_INFINITY` for the base colour).
    pub value: f64,
    /// A colour name (`green`, `red`, `orange`, `yellow`, `blue`, `purple`: theme-aware
    /// custom properties), or a CSS colour (`#e02f44`, `rgb(…)`).
    pub color: String,
}

/// How values are shown, shared by every chart kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChartOptions {
    /// Unit id (`bytes`, `seconds`, `percent`, `percentunit`, `ops`, `currencyUSD`, `short`…;
    /// see [`crate::units`]).
    pub unit: String,
    /// Decimals to show; `None` picks them from the magnitude.
    pub decimals: Option<u32>,
    /// Fixed y-axis / gauge minimum.
    pub min: Option<f64>,
    /// Fixed y-axis / gauge maximum.
    pub max: Option<f64>,
    /// Threshold steps in ascending order.
    pub thresholds: Vec<Threshold>,
    /// Time series: also shade the band above each threshold (lines are always drawn).
    pub threshold_bands: bool,
    /// The `id` of the `<svg>`, so a [`legend`] can name the chart it toggles; `None` leaves
    /// the legend to find the chart in its parent element.
    pub chart_id: Option<String>,
    /// Accessible name of the chart (its `aria-label`); empty gives a generic one.
    pub label: String,
}

impl ChartOptions {
    /// `value` formatted in the options' unit and decimals.
    pub fn format(&self, value: f64) -> String {
        crate::units::format(value, &self.unit, self.decimals)
    }

    /// The threshold step `value` falls into (the last one whose bound it reaches).
    pub fn threshold_for(&self, value: f64) -> Option<&Threshold> {
        let mut found = None;
        for t in &self.thresholds {
            if value >= t.value {
                found = Some(t);
            }
        }
        found
    }
}

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

/// The CSS colour for a threshold colour: known names map to theme-aware custom properties,
/// hex and `rgb()`/`hsl()` colours pass, anything else falls back to the text colour.
pub fn threshold_color(color: &str) -> String {
    let c = color.trim();
    let named = [
        "green",
        "red",
        "orange",
        "yellow",
        "blue",
        "purple",
        "text",
        "transparent",
    ];
    let lower = c.to_ascii_lowercase();
    let base = lower
        .strip_prefix("dark-")
        .or_else(|| lower.strip_prefix("semi-dark-"))
        .or_else(|| lower.strip_prefix("light-"))
        .unwrap_or(&lower);
    if named.contains(&base) {
        return match base {
            "text" => "var(--fg)".into(),
            "transparent" => "transparent".into(),
            name => format!("var(--th-{name})"),
        };
    }
    let hex = c
        .strip_prefix('#')
        .is_some_and(|h| matches!(h.len(), 3 | 4 | 6 | 8) && h.chars().all(|ch| ch.is_ascii_hexdigit()));
    let func = (lower.starts_with("rgb(")
        || lower.starts_with("rgba(")
        || lower.starts_with("hsl(")
        || lower.starts_with("hsla("))
        && lower.ends_with(')')
        && lower
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || " ,.%()/".contains(ch));
    if hex || func {
        c.to_string()
    } else {
        "var(--fg)".into()
    }
}

/// The CSS class of the `i`-th series' colour (ten colours, repeating).
pub(crate) fn series_class(i: usize) -> String {
    format!("s{}", i % 10)
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

#[cfg(test)]
mod tests;
