//! Gauge: per series a 240° arc from min to max, filled to the last value and coloured by
//! the thresholds, with the threshold steps as a thin outer ring.

use super::colors::color_class;
use super::options::{threshold_color, ChartFrame, ChartOptions};
use super::series::Series;
use super::svg::{escape, no_data, svg_open};
use crate::units;

const MAX_GAUGES: usize = 12;
/// Half the sweep of the dial, in degrees from the top.
const HALF_SWEEP: f64 = 120.0;

/// The scale of gauges and bar gauges: `opts.min`/`opts.max` when set, else 0 (or the
/// lowest value) up to 100 for `percent`, 1 for `percentunit`, or a round number above the
/// highest value.
pub(super) fn scale(values: &[f64], opts: &ChartOptions) -> (f64, f64) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let data_lo = finite.clone().fold(f64::INFINITY, f64::min);
    let data_hi = finite.fold(f64::NEG_INFINITY, f64::max);
    let lo = opts.min.unwrap_or(if data_lo < 0.0 { data_lo } else { 0.0 });
    let hi = opts.max.unwrap_or_else(|| match opts.unit.as_str() {
        "percent" if data_hi <= 100.0 => 100.0,
        "percentunit" if data_hi <= 1.0 => 1.0,
        _ if data_hi.is_finite() && data_hi > lo => {
            let step = units::tick_step(lo, data_hi, 4, &opts.unit);
            (data_hi / step).ceil() * step
        }
        _ => lo + 1.0,
    });
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

/// The fraction of the scale `v` reaches, clamped to 0..=1.
pub(super) fn fraction(v: f64, (lo, hi): (f64, f64)) -> f64 {
    if !v.is_finite() {
        return 0.0;
    }
    let f = (v - lo) / (hi - lo);
    if f.is_nan() {
        0.0
    } else {
        f.clamp(0.0, 1.0)
    }
}

fn point(cx: f64, cy: f64, r: f64, deg: f64) -> (f64, f64) {
    let a = deg.to_radians();
    (cx + r * a.sin(), cy - r * a.cos())
}

/// An arc path from `from` to `to` degrees (clockwise from the top).
fn arc(cx: f64, cy: f64, r: f64, from: f64, to: f64) -> String {
    let (x1, y1) = point(cx, cy, r, from);
    let (x2, y2) = point(cx, cy, r, to);
    let large = if to - from > 180.0 { 1 } else { 0 };
    format!("M{x1:.2},{y1:.2}A{r:.2},{r:.2} 0 {large} 1 {x2:.2},{y2:.2}")
}

fn angle(f: f64) -> f64 {
    -HALF_SWEEP + 2.0 * HALF_SWEEP * f
}

/// One dial per series.
pub(super) fn render(series: &[Series], frame: ChartFrame, opts: &ChartOptions) -> String {
    if series.is_empty() {
        return no_data("gauge", frame, opts);
    }
    let shown = &series[..series.len().min(MAX_GAUGES)];
    let lasts: Vec<f64> = shown.iter().map(|s| s.last_value().unwrap_or(f64::NAN)).collect();
    let range = scale(&lasts, opts);
    let (fw, fh) = (f64::from(frame.width.max(1)), f64::from(frame.height.max(1)));
    let tw = fw / shown.len() as f64;
    let mut svg = svg_open("gauge", frame, opts, "");
    for (i, (s, &v)) in shown.iter().zip(&lasts).enumerate() {
        let name_room = if shown.len() > 1 { 18.0 } else { 0.0 };
        // the dial's outer radius: the arc spans 1.5 radii from top to its ends
        let outer = (tw / 2.0 - 4.0).min((fh - name_room - 8.0) / 1.5).max(10.0);
        let width = (outer * 0.16).max(4.0);
        let ring = outer - 2.0;
        let r = outer - 7.0 - width / 2.0;
        let cx = tw * i as f64 + tw / 2.0;
        let cy = 4.0 + outer;
        let class = color_class(s, i, opts);
        svg.push_str(&format!(r#"<g class="gauge" data-series="{i}">"#));
        svg.push_str(&format!(
            r#"<path class="gauge-track" d="{}" style="stroke-width:{width:.1}"/>"#,
            arc(cx, cy, r, -HALF_SWEEP, HALF_SWEEP)
        ));
        for (k, t) in opts.thresholds.iter().enumerate() {
            let from = fraction(t.value.max(range.0), range);
            let to = opts
                .thresholds
                .get(k + 1)
                .map(|n| fraction(n.value, range))
                .unwrap_or(1.0);
            if to > from {
                svg.push_str(&format!(
                    r#"<path class="gauge-threshold" d="{}" style="stroke:{}"/>"#,
                    arc(cx, cy, ring, angle(from), angle(to)),
                    escape(&threshold_color(&t.color))
                ));
            }
        }
        let f = fraction(v, range);
        if f > 0.0 {
            let color = opts
                .threshold_for(v)
                .map(|t| format!(";stroke:{}", escape(&threshold_color(&t.color))))
                .unwrap_or_default();
            svg.push_str(&format!(
                r#"<path class="gauge-value {class}" d="{}" style="stroke-width:{width:.1}{color}"/>"#,
                arc(cx, cy, r, -HALF_SWEEP, angle(f).max(-HALF_SWEEP + 0.5))
            ));
        }
        let text = if v.is_nan() {
            "No data".to_string()
        } else {
            opts.format(v)
        };
        let size = (r * 0.45)
            .min(tw * 0.8 / (text.chars().count().max(1) as f64 * 0.6))
            .clamp(9.0, 64.0);
        let fill = opts
            .threshold_for(v)
            .map(|t| format!(r#" style="fill:{}""#, escape(&threshold_color(&t.color))))
            .unwrap_or_default();
        svg.push_str(&format!(
            r#"<text class="gauge-text" x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="{size:.0}"{fill}>{}</text>"#,
            cy + size * 0.35,
            escape(&text)
        ));
        if shown.len() > 1 {
            svg.push_str(&format!(
                r#"<text class="gauge-name" x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                (cy + outer * 0.5 + 16.0).min(fh - 4.0),
                escape(&s.name)
            ));
        }
        svg.push_str(&format!("<title>{}</title></g>", escape(&s.name)));
    }
    svg.push_str("</svg>");
    svg
}
