//! OTLP exemplars → stored exemplars, as Prometheus' OTLP receiver maps them: the trace and
//! span ids become the `trace_id` and `span_id` labels (lowercase hex), the filtered
//! attributes become labels too (names sanitised like point attributes), the time is the
//! exemplar's own (the point's when unset).
//!
//! Which series an exemplar belongs to:
//! - a sum point's exemplars: its series;
//! - an exponential histogram's: its native histogram series (passed as [`Target::Number`],
//!   the point's only series);
//! - an explicit-bucket histogram's: the `_bucket` series of the smallest `le` not below the
//!   exemplar's value, the bucket that counted it (`+Inf` for the largest values).
//!
//! Exemplars of points that were refused or carry no recorded value are dropped with them.

use didban_store::model::{is_stale_nan, METRIC_NAME_LABEL};
use didban_store::{Exemplar, Labels, SeriesExemplar};
use opentelemetry_proto::tonic::metrics::v1::{exemplar, Exemplar as OtlpExemplar};

use super::map::{attributes_to_labels, ms, PointContext, PointSeries};
use crate::ingest::attributes::hex;

/// Where a point's exemplars go.
pub(super) enum Target<'a> {
    /// The point's only series (a sum, or a native histogram).
    Number,
    /// The bucket series of histogram `name` (without `_bucket`).
    Histogram(&'a str),
}

/// Adds the exemplars of a mapped point (`series`, at `point_ms`) to `out`.
pub(super) fn attach(
    ctx: &PointContext<'_>,
    series: &PointSeries,
    exemplars: &[OtlpExemplar],
    point_ms: i64,
    target: Target<'_>,
    out: &mut Vec<SeriesExemplar>,
) {
    if exemplars.is_empty() || series.iter().any(|(_, v)| is_stale_nan(*v)) {
        return;
    }
    let buckets = match target {
        Target::Number => None,
        Target::Histogram(name) => Some(bucket_bounds(ctx, series, &format!("{name}_bucket"))),
    };
    for e in exemplars {
        let value = match e.value {
            Some(exemplar::Value::AsDouble(v)) => v,
            Some(exemplar::Value::AsInt(v)) => v as f64,
            None => continue,
        };
        let labels = match &buckets {
            None => series.first().and_then(|(slot, _)| ctx.slot_labels(*slot)),
            Some(bounds) => {
                let mut best: Option<&(f64, Labels)> = None;
                for b in bounds {
                    if value <= b.0 && best.is_none_or(|x| b.0 < x.0) {
                        best = Some(b);
                    }
                }
                best.map(|(_, l)| l.clone())
            }
        };
        let Some(series_labels) = labels else {
            continue;
        };
        let timestamp_ms = if e.time_unix_nano == 0 {
            point_ms
        } else {
            ms(e.time_unix_nano)
        };
        out.push(SeriesExemplar {
            series: series_labels,
            exemplar: Exemplar {
                labels: exemplar_labels(e),
                value,
                timestamp_ms,
            },
        });
    }
}

/// The `le` bound and labels of every bucket series of a mapped histogram point.
fn bucket_bounds(ctx: &PointContext<'_>, series: &PointSeries, bucket_name: &str) -> Vec<(f64, Labels)> {
    let mut out = Vec::new();
    for (slot, _) in series {
        let Some(labels) = ctx.slot_labels(*slot) else {
            continue;
        };
        if labels.get(METRIC_NAME_LABEL) != Some(bucket_name) {
            continue;
        }
        let le = match labels.get("le") {
            Some("+Inf") => f64::INFINITY,
            Some(v) => match v.parse::<f64>() {
                Ok(b) => b,
                Err(_) => continue,
            },
            None => continue,
        };
        out.push((le, labels));
    }
    out
}

/// `trace_id`, `span_id` (when set) and the filtered attributes.
fn exemplar_labels(e: &OtlpExemplar) -> Labels {
    let mut map = attributes_to_labels(&e.filtered_attributes, &[]);
    if !e.trace_id.is_empty() && e.trace_id.iter().any(|b| *b != 0) {
        map.insert("trace_id".to_string(), hex(&e.trace_id));
    }
    if !e.span_id.is_empty() && e.span_id.iter().any(|b| *b != 0) {
        map.insert("span_id".to_string(), hex(&e.span_id));
    }
    Labels::from_pairs(map)
}
