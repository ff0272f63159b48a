//! The [`Grid`] of a classic Prometheus histogram: the series are the `le` buckets of one
//! metric (cumulative counts or rates), sorted numerically by `le` with `+Inf` last; a
//! bucket's own count is its cumulative value minus the bucket below it.

use std::collections::{BTreeSet, HashMap};

use super::super::options::ChartOptions;
use super::super::series::Series;
use super::grid::Grid;

/// The bucket series with an `le` label, sorted by its numeric upper bound (`+Inf` last);
/// series without a parseable `le` are left out.
pub fn sort_buckets(series: &[Series]) -> Vec<(f64, &Series)> {
    let mut out: Vec<(f64, &Series)> = Vec::new();
    for s in series {
        let Some(le) = s.labels.get("le") else { continue };
        let bound = match le.trim() {
            "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
            other => match other.parse::<f64>() {
                Ok(v) if !v.is_nan() => v,
                _ => continue,
            },
        };
        out.push((bound, s));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// One row per `le` bucket; `None` when no series has an `le`.
pub(super) fn grid(series: &[Series], opts: &ChartOptions) -> Option<Grid> {
    let buckets = sort_buckets(series);
    if buckets.is_empty() {
        return None;
    }
    let mut times = BTreeSet::new();
    for (_, s) in &buckets {
        for &(t, _) in &s.points {
            times.insert(t);
        }
    }
    let times: Vec<i64> = times.into_iter().collect();
    let maps: Vec<HashMap<i64, f64>> = buckets
        .iter()
        .map(|(_, s)| s.points.iter().copied().filter(|p| p.1.is_finite()).collect())
        .collect();
    // per-bucket counts per step: cumulative minus the bucket below, never negative
    let n = buckets.len();
    let mut counts: Vec<Vec<f64>> = vec![Vec::with_capacity(times.len()); n];
    for &t in &times {
        let mut below = 0.0;
        for (b, map) in maps.iter().enumerate() {
            let cum = map.get(&t).copied().unwrap_or(below);
            counts[b].push((cum - below).max(0.0));
            below = cum.max(below);
        }
    }
    let labels = buckets
        .iter()
        .map(|(le, _)| {
            if le.is_infinite() {
                "+Inf".to_string()
            } else {
                opts.format(*le)
            }
        })
        .collect();
    Some(Grid {
        times,
        labels,
        counts,
        rows_text: format!("{n} buckets"),
    })
}
