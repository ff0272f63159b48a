//! Phase 2: the collected views mapped to series, with the label cache keyed by raw
//! attribute bytes.

use super::walk::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;

use super::super::label_cache::Attrs;
use super::super::map::{
    add_scope_labels, check_temporality, describe, map_metric, ms, number_point, record_point,
    resource_labels, target_info, MapOptions, Mapped, PointAttrs, PointContext, PointError,
};
use super::super::names::{metric_name, NameKind};
use super::super::series_set::SeriesSet;
use super::super::{histograms, native, nhcb};
use super::view::*;

/// Phase 2: the mapping, as [`map_request`] does it.
pub(super) fn map_walked(request: &Request<'_>, options: &MapOptions<'_>) -> Mapped {
    let mut mapped = Mapped::default();
    let set = RefCell::new(SeriesSet::default());
    let mut scratch = HistogramDataPoint::default();
    for rm in &request.resources {
        let resource_common = resource_labels(rm.resource.as_ref());
        let mut newest_ms: Option<i64> = None;
        for sm in &rm.scopes {
            let mut common: BTreeMap<String, String> = resource_common.clone();
            add_scope_labels(&mut common, sm.scope.as_ref());
            let ctx = PointContext::new(&common, options, &set);
            for metric in &sm.metrics {
                match metric {
                    MetricView::Owned(m) => map_metric(m, &ctx, &mut mapped, &mut newest_ms),
                    MetricView::Fast {
                        name,
                        description,
                        unit,
                        data,
                    } => {
                        let head = Head {
                            otlp_name: name,
                            help: description,
                            unit,
                        };
                        map_fast(&head, data, &ctx, &mut mapped, &mut newest_ms, &mut scratch);
                    }
                }
            }
        }
        if let Some(ts) = newest_ms {
            target_info(
                rm.resource.as_ref(),
                &resource_common,
                ts,
                options,
                &mut mapped,
                &set,
            );
        }
    }
    mapped.series = set.into_inner().finish();
    mapped
}

pub(super) struct Head<'a> {
    otlp_name: &'a str,
    help: &'a str,
    unit: &'a str,
}

pub(super) fn point_attrs<'a>(a: &'a AttrsView<'_>) -> PointAttrs<'a> {
    PointAttrs {
        key: Attrs::Raw(a.raw),
        decoded: &a.decoded,
    }
}

pub(super) fn map_fast(
    head: &Head<'_>,
    data: &FastData<'_>,
    ctx: &PointContext<'_>,
    mapped: &mut Mapped,
    newest_ms: &mut Option<i64>,
    scratch: &mut HistogramDataPoint,
) {
    match data {
        FastData::Gauge(points) => {
            let name = metric_name(head.otlp_name, head.unit, NameKind::Gauge);
            describe(mapped, &name, "gauge", head.help, head.unit);
            for p in points {
                let result = number_point(head.otlp_name, &name, &p.point, point_attrs(&p.attrs), None, ctx);
                record_point(mapped, ctx, ms(p.point.time_unix_nano), result, newest_ms);
            }
        }
        FastData::Sum {
            points,
            temporality,
            monotonic,
        } => {
            let kind = if *monotonic {
                NameKind::Counter
            } else {
                NameKind::Other
            };
            let name = metric_name(head.otlp_name, head.unit, kind);
            let kind_name = if *monotonic { "counter" } else { "gauge" };
            describe(mapped, &name, kind_name, head.help, head.unit);
            let temporality = check_temporality(head.otlp_name, *temporality);
            for p in points {
                let result: Result<_, PointError> = match &temporality {
                    Ok(t) => number_point(
                        head.otlp_name,
                        &name,
                        &p.point,
                        point_attrs(&p.attrs),
                        Some(*t),
                        ctx,
                    ),
                    Err(e) => Err(e.clone()),
                };
                record_point(mapped, ctx, ms(p.point.time_unix_nano), result, newest_ms);
            }
        }
        FastData::Histogram { points, temporality } => {
            let name = metric_name(head.otlp_name, head.unit, NameKind::Other);
            describe(mapped, &name, "histogram", head.help, head.unit);
            let temporality = check_temporality(head.otlp_name, *temporality);
            for p in points {
                if ctx.histograms_to_nhcb {
                    fill_scratch(scratch, p);
                    let result = match &temporality {
                        Ok(t) => nhcb::explicit_point(
                            head.otlp_name,
                            &name,
                            scratch,
                            point_attrs(&p.attrs),
                            *t,
                            ctx,
                        ),
                        Err(e) => Err(e.clone()),
                    };
                    // Points with exemplars never take this path (the walker hands them to prost).
                    native::record_native_point(mapped, ctx, ms(p.time), result, &[], newest_ms);
                    continue;
                }
                let result = match &temporality {
                    Ok(t) => {
                        fill_scratch(scratch, p);
                        histograms::histogram_point(
                            head.otlp_name,
                            &name,
                            scratch,
                            point_attrs(&p.attrs),
                            *t,
                            ctx,
                        )
                    }
                    Err(e) => Err(e.clone()),
                };
                record_point(mapped, ctx, ms(p.time), result, newest_ms);
            }
        }
    }
}

/// Copies a walked histogram point into the reusable prost point the histogram mappings
/// take (attributes stay in the view: the mappings get them as [`PointAttrs`]).
fn fill_scratch(scratch: &mut HistogramDataPoint, p: &HistogramView<'_>) {
    scratch.start_time_unix_nano = p.start;
    scratch.time_unix_nano = p.time;
    scratch.count = p.count;
    scratch.sum = p.sum;
    scratch.flags = p.flags;
    fill_u64(p.bucket_counts, &mut scratch.bucket_counts);
    fill_f64(p.explicit_bounds, &mut scratch.explicit_bounds);
}
