//! What a chart is asked to draw: its kind ([`ChartKind`]), its size and time window
//! ([`ChartFrame`]) and how values are shown ([`ChartOptions`], [`Threshold`] colours).

use super::exemplars::ExemplarDot;

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
    /// Buckets over time as coloured cells (series are `le` buckets of one histogram, or
    /// native histograms).
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
    /// The `id` of the `<svg>`, so a [`legend`](fn@super::legend) can name the chart it
    /// toggles; `None` leaves the legend to find the chart in its parent element.
    pub chart_id: Option<String>,
    /// Accessible name of the chart (its `aria-label`); empty gives a generic one.
    pub label: String,
    /// Series name → colour name (one of [`super::colors::SERIES_COLORS`]), overriding the
    /// palette and the status colours.
    pub colors: Vec<(String, String)>,
    /// Time series: exemplar dots drawn over the lines, each a link to its trace (already
    /// bounded, see `thin_exemplars`); their values widen the y axis.
    pub exemplars: Vec<ExemplarDot>,
}

impl ChartOptions {
    /// `value` formatted in the options' unit and decimals.
    pub fn format(&self, value: f64) -> String {
        crate::units::format(value, &self.unit, self.decimals)
    }

    /// A native histogram in one line, for stats and tables: its count of observations
    /// and their sum in the options' unit (`count 1.2K, sum 310 ms`).
    pub fn format_histogram(&self, h: &didban_store::model::FloatHistogram) -> String {
        histogram_text(h, &|v| self.format(v))
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

/// `count …, sum …` of a native histogram, the sum formatted by `format_sum` (the count is
/// a plain number), shared by chart and dashboard tables.
pub fn histogram_text(h: &didban_store::model::FloatHistogram, format_sum: &dyn Fn(f64) -> String) -> String {
    format!(
        "count {}, sum {}",
        crate::units::format(h.count, "short", None),
        format_sum(h.sum)
    )
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
