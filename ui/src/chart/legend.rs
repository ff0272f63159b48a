//! The legend below a chart: each series with its colour and min/max/avg/last in the unit.
//! Each row's button toggles its series in the chart (through the script); without the script
//! the legend is still a readable table.
//!
//! [`sort_series`] orders series before they are drawn (largest first by default), so the
//! legend, the draw order, the colours and the tooltip all follow the same order.

use serde::{Deserialize, Serialize};

use super::colors::color_class;
use super::options::ChartOptions;
use super::series::Series;
use super::svg::escape;

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

/// Which way a legend is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Largest first (the default: the series that matter are seen without scrolling).
    #[default]
    Desc,
    /// Smallest first.
    Asc,
    /// As the queries return them.
    None,
}

/// What a legend is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Mean of the values in the range (the default).
    #[default]
    Mean,
    /// Last value.
    Last,
    /// Highest value.
    Max,
    /// Lowest value.
    Min,
    /// The legend text (alphabetical).
    Name,
}

/// A panel's legend order (`legend: {sort: desc, by: mean}` in the dashboard format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegendSort {
    /// Direction; `none` keeps the query order.
    #[serde(default)]
    pub sort: SortOrder,
    /// The figure compared.
    #[serde(default)]
    pub by: SortBy,
}

/// Orders `series` as `how` says. The sort is stable, series without values (`NaN` figures)
/// go last in either direction, and ties keep their order, so a refresh does not shuffle
/// the legend.
pub fn sort_series(series: &mut [Series], how: LegendSort) {
    if how.sort == SortOrder::None {
        return;
    }
    if how.by == SortBy::Name {
        series.sort_by(|a, b| {
            let ord = a.name.cmp(&b.name);
            if how.sort == SortOrder::Desc {
                ord.reverse()
            } else {
                ord
            }
        });
        return;
    }
    let mut keyed: Vec<(f64, Series)> = Vec::with_capacity(series.len());
    for s in series.iter() {
        let sum = SeriesSummary::of(s);
        let key = match how.by {
            SortBy::Mean | SortBy::Name => sum.avg,
            SortBy::Last => sum.last,
            SortBy::Max => sum.max,
            SortBy::Min => sum.min,
        };
        keyed.push((key, s.clone()));
    }
    keyed.sort_by(|(a, _), (b, _)| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => {
            if how.sort == SortOrder::Desc {
                b.total_cmp(a)
            } else {
                a.total_cmp(b)
            }
        }
    });
    for (slot, (_, s)) in series.iter_mut().zip(keyed) {
        *slot = s;
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
            color_class(s, i, opts),
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
