//! The legend below a chart: each series with its colour and min/max/avg/last in the unit.
//! Each row's button toggles its series in the chart (through the script); without the script
//! the legend is still a readable table.

use super::options::ChartOptions;
use super::series::Series;
use super::svg::{escape, series_class};

/// Min, max, mean and last of a series' non-`NaN` values (all `NaN` when it has none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesSummary {
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// Mean of the values.
    pub avg: f64,
    /// Last value.
    pub last: f64,
}

impl SeriesSummary {
    /// The summary of `series`.
    pub fn of(series: &Series) -> SeriesSummary {
        let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for &(_, v) in &series.points {
            if v.is_nan() {
                continue;
            }
            min = min.min(v);
            max = max.max(v);
            sum += v;
            n += 1;
        }
        if n == 0 {
            return SeriesSummary {
                min: f64::NAN,
                max: f64::NAN,
                avg: f64::NAN,
                last: f64::NAN,
            };
        }
        SeriesSummary {
            min,
            max,
            avg: sum / n as f64,
            last: series.last_value().unwrap_or(f64::NAN),
        }
    }
}

/// The legend as an HTML fragment. `opts.chart_id` names the chart it belongs to (else the
/// script looks for the chart in the legend's parent element).
pub fn legend(series: &[Series], opts: &ChartOptions) -> String {
    let chart = opts
        .chart_id
        .as_ref()
        .map(|id| format!(r#" data-chart="{}""#, escape(id)))
        .unwrap_or_default();
    let mut html = format!(
        r#"<div class="legend"{chart}><table><thead><tr><th scope="col">Series</th><th scope="col" class="num">Min</th><th scope="col" class="num">Max</th><th scope="col" class="num">Avg</th><th scope="col" class="num">Last</th></tr></thead><tbody>"#
    );
    for (i, s) in series.iter().enumerate() {
        let sum = SeriesSummary::of(s);
        let cell = |v: f64| {
            if v.is_nan() {
                String::new()
            } else {
                escape(&opts.format(v))
            }
        };
        html.push_str(&format!(
            r#"<tr data-series="{i}"><td><button type="button" class="legend-toggle" data-series="{i}" aria-pressed="true" title="Show or hide this series"><span class="swatch {}" aria-hidden="true"></span>{}</button></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            series_class(i),
            escape(&s.name),
            cell(sum.min),
            cell(sum.max),
            cell(sum.avg),
            cell(sum.last),
        ));
    }
    html.push_str("</tbody></table></div>");
    html
}
