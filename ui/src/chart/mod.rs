//! SVG charts drawn on the server. A chart gets [`Series`] already queried at about one point
//! per pixel column and returns an SVG string; the page embeds it as is. Text placed in the
//! SVG (legends, labels) is escaped with [`escape`].

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

/// A plain line chart: one `<path>` per series over the frame, y from the data's min/max.
/// (The first cut; axes, units, stacking and thresholds build on it.)
pub fn line_chart(series: &[Series], frame: ChartFrame) -> String {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for &(_, v) in &s.points {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let w = f64::from(frame.width);
    let h = f64::from(frame.height);
    let span = (frame.end_ms - frame.start_ms).max(1) as f64;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img">"#,
        frame.width, frame.height, frame.width, frame.height
    );
    for (i, s) in series.iter().enumerate() {
        let mut d = String::new();
        let mut pen_down = false;
        for &(t, v) in &s.points {
            if !v.is_finite() {
                pen_down = false;
                continue;
            }
            let x = (t - frame.start_ms) as f64 / span * w;
            let y = h - (v - lo) / (hi - lo) * h;
            d.push_str(if pen_down { "L" } else { "M" });
            d.push_str(&format!("{x:.1},{y:.1}"));
            pen_down = true;
        }
        svg.push_str(&format!(
            r#"<path class="series s{}" d="{}" fill="none"><title>{}</title></path>"#,
            i % 10,
            d,
            escape(&s.name)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Which visualisation a panel draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChartKind {
    /// Lines over time; `stacked` draws stacked areas.
    #[default]
    TimeSeries,
    /// Stacked areas over time.
    StackedArea,
    /// One big number (the last value of the first series) with a sparkline.
    Stat,
    /// A dial showing the last value between min and max.
    Gauge,
    /// One horizontal bar per series (last value).
    BarGauge,
    /// Buckets over time as coloured cells (series are `le` buckets of one histogram).
    Heatmap,
}

/// A colour step: values at or above `value` take `color` (a CSS colour).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Lower bound of the step.
    pub value: f64,
    /// CSS colour.
    pub color: String,
}

/// How values are shown, shared by every chart kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChartOptions {
    /// Unit id (`bytes`, `seconds`, `percent`, `percentunit`, `ops`, `currencyUSD`, `short`…).
    pub unit: String,
    /// Decimals to show; `None` picks them from the magnitude.
    pub decimals: Option<u32>,
    /// Fixed y-axis / gauge minimum.
    pub min: Option<f64>,
    /// Fixed y-axis / gauge maximum.
    pub max: Option<f64>,
    /// Threshold steps in ascending order.
    pub thresholds: Vec<Threshold>,
}

/// Draws `series` as `kind` into `frame`; the result is a complete `<svg>` element (or, for
/// kinds that are not pictures, an HTML fragment) safe to embed as is.
pub fn render(kind: ChartKind, series: &[Series], frame: ChartFrame, _opts: &ChartOptions) -> String {
    match kind {
        ChartKind::TimeSeries
        | ChartKind::StackedArea
        | ChartKind::Stat
        | ChartKind::Gauge
        | ChartKind::BarGauge
        | ChartKind::Heatmap => line_chart(series, frame),
    }
}
