//! Axes: the value range and its ticks in the unit, the time ticks and their labels, and the
//! plot area left inside the frame once the labels have their room.

use chrono::DateTime;

use super::options::{ChartFrame, ChartOptions};
use super::svg::escape;
use crate::units;

/// The value axis: range snapped to ticks, the ticks and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueAxis {
    /// Bottom of the axis.
    pub lo: f64,
    /// Top of the axis.
    pub hi: f64,
    /// Tick values, ascending.
    pub ticks: Vec<f64>,
    /// One label per tick.
    pub labels: Vec<String>,
}

impl ValueAxis {
    /// An axis over data from `data_lo` to `data_hi` (either may be infinite when there is
    /// no data), overridden by `opts.min`/`opts.max`, with about `target` ticks.
    pub fn new(data_lo: f64, data_hi: f64, target: usize, opts: &ChartOptions) -> ValueAxis {
        let (mut lo, mut hi) = (data_lo, data_hi);
        if !lo.is_finite() || !hi.is_finite() {
            lo = 0.0;
            hi = 1.0;
        }
        if let Some(m) = opts.min.filter(|m| m.is_finite()) {
            lo = m;
        }
        if let Some(m) = opts.max.filter(|m| m.is_finite()) {
            hi = m;
        }
        if hi <= lo {
            // a flat line (or limits that cross): give it room
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            match (opts.min.is_some(), opts.max.is_some()) {
                (false, false) => {
                    hi = lo + pad;
                    lo -= pad;
                    if data_lo >= 0.0 && lo < 0.0 {
                        lo = 0.0;
                    }
                }
                (true, false) => hi = lo + pad,
                (false, true) => lo = hi - pad,
                (true, true) => hi = lo + pad,
            }
        }
        let step = units::tick_step(lo, hi, target, &opts.unit);
        if opts.min.is_none() {
            lo = (lo / step).floor() * step;
        }
        if opts.max.is_none() {
            hi = (hi / step).ceil() * step;
        }
        if hi <= lo {
            hi = lo + step;
        }
        let ticks = units::ticks(lo, hi, target, &opts.unit);
        let labels = units::tick_labels(&ticks, &opts.unit);
        ValueAxis {
            lo,
            hi,
            ticks,
            labels,
        }
    }

    /// The widest label in characters.
    pub fn label_chars(&self) -> usize {
        self.labels.iter().map(|l| l.chars().count()).max().unwrap_or(1)
    }
}

/// The plot area inside the frame, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plot {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Time at the left edge.
    pub start_ms: i64,
    /// Time at the right edge.
    pub end_ms: i64,
    /// Value at the bottom edge.
    pub lo: f64,
    /// Value at the top edge.
    pub hi: f64,
}

impl Plot {
    /// The plot area for a frame with value labels `label_chars` wide.
    pub fn new(frame: ChartFrame, axis: &ValueAxis) -> Plot {
        let left = (axis.label_chars() as f64 * 6.6 + 10.0).clamp(28.0, 120.0);
        let (top, right, bottom) = (8.0, 10.0, 20.0);
        Plot {
            left,
            top,
            width: (f64::from(frame.width) - left - right).max(10.0),
            height: (f64::from(frame.height) - top - bottom).max(10.0),
            start_ms: frame.start_ms,
            end_ms: frame.end_ms.max(frame.start_ms + 1),
            lo: axis.lo,
            hi: axis.hi,
        }
    }

    /// x of time `t`.
    pub fn x(&self, t: i64) -> f64 {
        self.left + (t - self.start_ms) as f64 / (self.end_ms - self.start_ms) as f64 * self.width
    }

    /// y of value `v` (clamped a little outside the plot so huge values stay drawable).
    pub fn y(&self, v: f64) -> f64 {
        let y = self.top + self.height - (v - self.lo) / (self.hi - self.lo) * self.height;
        y.clamp(self.top - self.height, self.top + 2.0 * self.height)
    }

    /// Bottom edge.
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// Right edge.
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    /// The data attributes the script reads: time window and plot geometry.
    pub fn data_attrs(&self) -> String {
        format!(
            r#" data-start-ms="{}" data-end-ms="{}" data-plot="{:.1} {:.1} {:.1} {:.1}""#,
            self.start_ms, self.end_ms, self.left, self.top, self.width, self.height
        )
    }
}

/// Steps the time axis may take, in milliseconds.
const TIME_STEPS: &[i64] = &[
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
    1_209_600_000,
    2_592_000_000,
];

/// Time ticks between `start_ms` and `end_ms` (about `target` of them, at round UTC times)
/// with labels fitting the range: seconds for short ranges, hours and minutes within a
/// day, dates beyond.
pub fn time_ticks(start_ms: i64, end_ms: i64, target: usize) -> Vec<(i64, String)> {
    let span = end_ms - start_ms;
    if span <= 0 {
        return Vec::new();
    }
    let raw = span / target.max(1) as i64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|&s| s >= raw)
        .unwrap_or(TIME_STEPS[TIME_STEPS.len() - 1]);
    let pattern = if step < 60_000 {
        "%H:%M:%S"
    } else if step < 86_400_000 && span <= 86_400_000 {
        "%H:%M"
    } else if step < 86_400_000 {
        "%m-%d %H:%M"
    } else if span <= 366 * 86_400_000 {
        "%m-%d"
    } else {
        "%Y-%m-%d"
    };
    let mut out = Vec::new();
    let mut t = start_ms.div_euclid(step) * step;
    if t < start_ms {
        t += step;
    }
    while t <= end_ms && out.len() < 60 {
        if let Some(dt) = DateTime::from_timestamp_millis(t) {
            out.push((t, dt.format(pattern).to_string()));
        }
        t += step;
    }
    out
}

/// Grid lines and labels of both axes for `plot`.
pub fn draw_axes(plot: &Plot, axis: &ValueAxis) -> String {
    let mut svg = String::from(r#"<g class="grid">"#);
    for &v in &axis.ticks {
        let y = plot.y(v);
        svg.push_str(&format!(
            r#"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/>"#,
            plot.left,
            plot.right()
        ));
    }
    let target = (plot.width / 90.0).floor().max(2.0) as usize;
    let times = time_ticks(plot.start_ms, plot.end_ms, target);
    for (t, _) in &times {
        let x = plot.x(*t);
        svg.push_str(&format!(
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            plot.top,
            plot.bottom()
        ));
    }
    svg.push_str(r#"</g><g class="axis axis-y">"#);
    for (v, label) in axis.ticks.iter().zip(&axis.labels) {
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            plot.left - 4.0,
            plot.y(*v) + 3.5,
            escape(label)
        ));
    }
    svg.push_str(r#"</g><g class="axis axis-x">"#);
    for (t, label) in &times {
        // a label that would run past the frame's right edge is left out (its grid line stays)
        let half = label.chars().count() as f64 * 3.3;
        if plot.x(*t) + half > plot.right() + 9.0 {
            continue;
        }
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot.x(*t),
            plot.bottom() + 14.0,
            escape(label)
        ));
    }
    svg.push_str("</g>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_axis_snaps_to_ticks_and_honours_limits() {
        let opts = ChartOptions::default();
        let a = ValueAxis::new(3.0, 97.0, 5, &opts);
        assert_eq!((a.lo, a.hi), (0.0, 100.0));
        assert_eq!(a.labels.first().map(String::as_str), Some("0"));
        assert_eq!(a.labels.last().map(String::as_str), Some("100"));
        let opts = ChartOptions {
            min: Some(0.0),
            max: Some(1.0),
            unit: "percentunit".into(),
            ..Default::default()
        };
        let a = ValueAxis::new(0.2, 0.3, 5, &opts);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        assert_eq!(a.labels, vec!["0%", "20%", "40%", "60%", "80%", "100%"]);
    }

    #[test]
    fn flat_and_empty_data_still_give_an_axis() {
        let opts = ChartOptions::default();
        let a = ValueAxis::new(5.0, 5.0, 4, &opts);
        assert!(a.lo <= 5.0 && a.hi > 5.0, "{a:?}");
        let a = ValueAxis::new(f64::INFINITY, f64::NEG_INFINITY, 4, &opts);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        let a = ValueAxis::new(0.0, 0.0, 4, &opts);
        assert!(a.lo >= 0.0 && a.hi > 0.0, "{a:?}");
    }

    #[test]
    fn time_labels_fit_the_range() {
        // 2023-11-14T22:00:00Z
        let t0 = 1_699_999_200_000;
        let five_min = time_ticks(t0, t0 + 300_000, 5);
        assert_eq!(five_min[0], (t0, "22:00".to_string()));
        let minute = time_ticks(t0, t0 + 60_000, 4);
        assert_eq!(minute[1], (t0 + 15_000, "22:00:15".to_string()));
        assert_eq!(five_min[1].0 - five_min[0].0, 60_000);
        let hour = time_ticks(t0, t0 + 3_600_000, 6);
        assert_eq!(hour[1], (t0 + 600_000, "22:10".to_string()));
        let week = time_ticks(t0, t0 + 7 * 86_400_000, 7);
        assert_eq!(week[0].1, "11-15");
        let two_days = time_ticks(t0, t0 + 2 * 86_400_000, 6);
        assert!(two_days[0].1.contains("11-1"), "{two_days:?}");
        assert!(time_ticks(t0, t0, 5).is_empty());
    }
}
