//! OTLP histograms, exponential histograms and summaries → Prometheus `_bucket{le}`,
//! `_sum`, `_count` and `{quantile}` series.

use std::collections::BTreeMap;

use didban_store::model::stale_nan;
use didban_store::Labels;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, SummaryDataPoint,
};

use super::histogram::Buckets;
use super::names::format_float;
use super::otlp_metrics::{PointContext, PointError, PointSeries, FLAG_NO_RECORDED_VALUE, TEMPORALITY_DELTA};

/// An explicit-bucket histogram point.
pub(super) fn histogram_point(
    metric: &Metric,
    name: &str,
    p: &HistogramDataPoint,
    temporality: i32,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    if p.time_unix_nano == 0 {
        return Err(PointError::NoTimestamp(metric.name.clone()));
    }
    let point = ctx.point_labels(&p.attributes);
    let inf = inf_bucket_labels(ctx, &point, name)?;
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        let mut bounds: Vec<f64> = Vec::new();
        for b in &p.explicit_bounds {
            if b.is_finite() {
                bounds.push(*b);
            }
        }
        return stale_series(ctx, &point, name, inf, &bounds);
    }
    let buckets =
        Buckets::from_explicit(&p.explicit_bounds, &p.bucket_counts, p.count, p.sum).map_err(|source| {
            PointError::Histogram {
                metric: metric.name.clone(),
                source,
            }
        })?;
    finish(
        ctx,
        &point,
        name,
        inf,
        buckets,
        PointTime {
            start_ns: p.start_time_unix_nano,
            time_ns: p.time_unix_nano,
            temporality,
        },
    )
}

/// An exponential histogram point, mapped to classic buckets (see [`Buckets::from_exponential`]).
pub(super) fn exponential_point(
    metric: &Metric,
    name: &str,
    p: &ExponentialHistogramDataPoint,
    temporality: i32,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    if p.time_unix_nano == 0 {
        return Err(PointError::NoTimestamp(metric.name.clone()));
    }
    let point = ctx.point_labels(&p.attributes);
    let inf = inf_bucket_labels(ctx, &point, name)?;
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return stale_series(ctx, &point, name, inf, &[]);
    }
    let buckets = Buckets::from_exponential(p).map_err(|source| PointError::Histogram {
        metric: metric.name.clone(),
        source,
    })?;
    finish(
        ctx,
        &point,
        name,
        inf,
        buckets,
        PointTime {
            start_ns: p.start_time_unix_nano,
            time_ns: p.time_unix_nano,
            temporality,
        },
    )
}

/// A summary point: `{quantile}`, `_sum`, `_count` (summaries are always cumulative).
pub(super) fn summary_point(
    metric: &Metric,
    name: &str,
    p: &SummaryDataPoint,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    if p.time_unix_nano == 0 {
        return Err(PointError::NoTimestamp(metric.name.clone()));
    }
    let point = ctx.point_labels(&p.attributes);
    let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
    let mut out = Vec::with_capacity(p.quantile_values.len() + 2);
    for q in &p.quantile_values {
        let quantile = format_float(q.quantile);
        let labels = ctx.series_labels(&point, name, Some(("quantile", &quantile)))?;
        out.push((labels, if stale { stale_nan() } else { q.value }));
    }
    let sum_labels = ctx.series_labels(&point, &format!("{name}_sum"), None)?;
    out.push((sum_labels, if stale { stale_nan() } else { p.sum }));
    let count_labels = ctx.series_labels(&point, &format!("{name}_count"), None)?;
    out.push((count_labels, if stale { stale_nan() } else { p.count as f64 }));
    Ok(out)
}

/// The checked labels of the `le="+Inf"` bucket, the longest series of a histogram. Built
/// before any state changes, so a point with bad labels never reaches the delta tracker;
/// every other bucket differs from it only in `le`.
fn inf_bucket_labels(
    ctx: &PointContext<'_>,
    point: &BTreeMap<String, String>,
    name: &str,
) -> Result<Labels, PointError> {
    Ok(ctx.series_labels(point, &format!("{name}_bucket"), Some(("le", "+Inf")))?)
}

/// A histogram point's time window and temporality.
struct PointTime {
    start_ns: u64,
    time_ns: u64,
    temporality: i32,
}

fn finish(
    ctx: &PointContext<'_>,
    point: &BTreeMap<String, String>,
    name: &str,
    inf: Labels,
    buckets: Buckets,
    when: PointTime,
) -> Result<PointSeries, PointError> {
    let buckets = if when.temporality == TEMPORALITY_DELTA {
        let key = ctx.series_labels(point, name, None)?;
        ctx.delta
            .add_histogram(&key, when.start_ns, when.time_ns, &buckets)?
    } else {
        buckets
    };
    let cumulative = buckets.cumulative();
    let mut out = Vec::with_capacity(cumulative.len() + 3);
    for (le, count) in cumulative {
        out.push((inf.with("le", &format_float(le)), count as f64));
    }
    out.push((inf, buckets.count as f64));
    if let Some(sum) = buckets.sum {
        out.push((ctx.series_labels(point, &format!("{name}_sum"), None)?, sum));
    }
    let count = ctx.series_labels(point, &format!("{name}_count"), None)?;
    out.push((count, buckets.count as f64));
    Ok(out)
}

/// Stale markers for every series a histogram point with no recorded value would have had.
fn stale_series(
    ctx: &PointContext<'_>,
    point: &BTreeMap<String, String>,
    name: &str,
    inf: Labels,
    bounds: &[f64],
) -> Result<PointSeries, PointError> {
    let mut out = Vec::with_capacity(bounds.len() + 3);
    for b in bounds {
        out.push((inf.with("le", &format_float(*b)), stale_nan()));
    }
    out.push((inf, stale_nan()));
    out.push((
        ctx.series_labels(point, &format!("{name}_sum"), None)?,
        stale_nan(),
    ));
    out.push((
        ctx.series_labels(point, &format!("{name}_count"), None)?,
        stale_nan(),
    ));
    Ok(out)
}
