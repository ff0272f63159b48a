//! OTLP explicit-bucket histograms and summaries → Prometheus `_bucket{le}`, `_sum`,
//! `_count` and `{quantile}` series (exponential histograms become native histograms, see
//! the `native` module).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use didban_store::model::stale_nan;
use didban_store::Labels;
use opentelemetry_proto::tonic::metrics::v1::{HistogramDataPoint, Metric, SummaryDataPoint};

use super::buckets::Buckets;
use super::label_cache::Attrs;
use super::map::{
    CachedHistogram, PointAttrs, PointContext, PointError, PointSeries, SharedHistogram,
    FLAG_NO_RECORDED_VALUE, TEMPORALITY_DELTA,
};
use super::names::format_float;

/// Series with their labels, before they get slots in the request's series.
type LabeledSeries = Vec<(Labels, f64)>;

fn to_slots(ctx: &PointContext<'_>, series: LabeledSeries) -> PointSeries {
    let mut out = Vec::with_capacity(series.len());
    for (labels, value) in series {
        out.push((ctx.slot(labels), value));
    }
    out
}

/// An explicit-bucket histogram point of metric `metric` (its OTLP name, for errors); the
/// point's attributes are `attrs`, not `p.attributes`. A cumulative point whose series this
/// scope built before (same name, attributes, bounds and presence of a sum) reuses them.
pub(super) fn histogram_point(
    metric: &str,
    name: &str,
    p: &HistogramDataPoint,
    attrs: PointAttrs<'_>,
    temporality: i32,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    let cacheable =
        temporality != TEMPORALITY_DELTA && p.flags & FLAG_NO_RECORDED_VALUE == 0 && p.time_unix_nano != 0;
    if cacheable {
        if let Some(cached) = ctx.histograms.get(name, attrs.key) {
            // The labels were checked when cached; only the buckets are left to check.
            let buckets = explicit_buckets(metric, p)?;
            if let Some(out) = from_cache(&cached, &buckets) {
                return Ok(out);
            }
        }
    }
    let shared = match (ctx.shared, attrs.key) {
        (Some(shared), Attrs::Raw(raw)) if cacheable => Some((shared, raw)),
        _ => None,
    };
    if let Some((shared, raw)) = shared {
        // Built by an earlier request: the same series in this request's slots.
        if let Some(known) = shared.histograms.get(&ctx.scope_key, name, raw) {
            let buckets = explicit_buckets(metric, p)?;
            let mut slots = Vec::with_capacity(known.labels.len());
            for labels in &known.labels {
                slots.push(ctx.slot(labels.clone()));
            }
            let cached = CachedHistogram {
                les: known.les.clone(),
                has_sum: known.has_sum,
                slots,
            };
            let out = from_cache(&cached, &buckets);
            ctx.histograms.insert(name, attrs.key, Rc::new(cached));
            if let Some(out) = out {
                return Ok(out);
            }
        }
    }
    let out = histogram_point_uncached(metric, name, p, attrs, temporality, ctx)?;
    if cacheable {
        let buckets = explicit_buckets(metric, p)?;
        let les: Vec<u64> = buckets.cumulative().iter().map(|(le, _)| le.to_bits()).collect();
        let slots: Vec<usize> = out.iter().map(|(slot, _)| *slot).collect();
        if slots.len() == les.len() + 2 + usize::from(buckets.sum.is_some()) {
            if let Some((shared, raw)) = shared {
                let labels: Option<Vec<Labels>> = slots.iter().map(|s| ctx.slot_labels(*s)).collect();
                if let Some(labels) = labels {
                    let known = SharedHistogram {
                        les: les.clone(),
                        has_sum: buckets.sum.is_some(),
                        labels,
                    };
                    shared
                        .histograms
                        .insert(&ctx.scope_key, name, raw, Arc::new(known));
                }
            }
            let cached = CachedHistogram {
                les,
                has_sum: buckets.sum.is_some(),
                slots,
            };
            ctx.histograms.insert(name, attrs.key, Rc::new(cached));
        }
    }
    Ok(out)
}

fn explicit_buckets(metric: &str, p: &HistogramDataPoint) -> Result<Buckets, PointError> {
    Buckets::from_explicit(&p.explicit_bounds, &p.bucket_counts, p.count, p.sum).map_err(|source| {
        PointError::Histogram {
            metric: metric.to_string(),
            source,
        }
    })
}

/// The point's series from a cached histogram of the same shape; None when the shape
/// differs (other bounds, a sum only now or no longer).
fn from_cache(cached: &CachedHistogram, buckets: &Buckets) -> Option<PointSeries> {
    if buckets.sum.is_some() != cached.has_sum || buckets.counts.len() != cached.les.len() {
        return None;
    }
    let mut out = Vec::with_capacity(cached.slots.len());
    let mut slots = cached.slots.iter();
    let mut running = 0u64;
    for ((le, count), bits) in buckets.counts.iter().zip(&cached.les) {
        if le.0.to_bits() != *bits {
            return None;
        }
        running = running.saturating_add(*count);
        out.push((*slots.next()?, running as f64));
    }
    out.push((*slots.next()?, buckets.count as f64));
    if let Some(sum) = buckets.sum {
        out.push((*slots.next()?, sum));
    }
    out.push((*slots.next()?, buckets.count as f64));
    Some(out)
}

fn histogram_point_uncached(
    metric: &str,
    name: &str,
    p: &HistogramDataPoint,
    attrs: PointAttrs<'_>,
    temporality: i32,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    if p.time_unix_nano == 0 {
        return Err(PointError::NoTimestamp(metric.to_string()));
    }
    let point = ctx.point_labels(attrs.decoded);
    let inf = inf_bucket_labels(ctx, &point, name)?;
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        let mut bounds: Vec<f64> = Vec::new();
        for b in &p.explicit_bounds {
            if b.is_finite() {
                bounds.push(*b);
            }
        }
        return Ok(to_slots(ctx, stale_series(ctx, &point, name, inf, &bounds)?));
    }
    let buckets = explicit_buckets(metric, p)?;
    let series = finish(
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
    )?;
    Ok(to_slots(ctx, series))
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
    Ok(to_slots(ctx, out))
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
) -> Result<LabeledSeries, PointError> {
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
) -> Result<LabeledSeries, PointError> {
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
