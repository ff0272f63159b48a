//! OTLP metrics → Prometheus series: a pure mapping from an `ExportMetricsServiceRequest`
//! to series and samples, plus a count of the data points it refused and why.
//!
//! The rules are those of the OpenTelemetry "Prometheus and OpenMetrics compatibility"
//! specification; `docs/otlp-mapping.md` documents every one of them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use didban_store::model::{stale_nan, METRIC_NAME_LABEL};
use didban_store::{Labels, Sample, SeriesExemplar, SeriesLimits, SeriesSamples};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric, NumberDataPoint};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::buckets::HistogramError;
use super::delta::{DeltaError, DeltaTracker};
use super::exemplars::{self, Target};
use super::histograms;
use super::label_cache::{scope_key, Attrs, LabelCache, SharedCache};
use super::names::{attribute_value, label_name, metric_name, unit_suffix, NameKind};
use super::series_set::SeriesSet;
use super::validate::{check_series, SeriesError};
use super::{native, nhcb};
use crate::metadata::MetricMetadata;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point marks the series as gone.
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;
/// `AggregationTemporality` values.
pub const TEMPORALITY_DELTA: i32 = 1;
/// `AggregationTemporality` values.
pub const TEMPORALITY_CUMULATIVE: i32 = 2;

/// Resource attributes that become `job` and `instance` rather than `target_info` labels.
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// What the mapping needs besides the request.
pub struct MapOptions<'a> {
    /// Label limits; a point whose series break them is refused.
    pub limits: &'a SeriesLimits,
    /// Running totals for delta temporality.
    pub delta: &'a DeltaTracker,
    /// Labels built by earlier requests (used for points walked by the borrowing decoder).
    pub shared: Option<&'a SharedLabels>,
    /// Explicit-bucket histograms become native histograms with custom buckets
    /// (`[otlp] convert_histograms_to_nhcb`, the `nhcb` module) instead of `_bucket` series.
    pub histograms_to_nhcb: bool,
}

/// Series labels a receiver keeps across requests, keyed by scope, metric name and raw
/// attribute bytes (see [`SharedCache`]).
#[derive(Default)]
pub struct SharedLabels {
    /// Labels of gauge and sum series.
    pub series: SharedCache<Labels>,
    /// Labels of cumulative explicit-bucket histograms.
    pub histograms: SharedCache<Arc<SharedHistogram>>,
}

/// The series of a histogram point shape: the `le` values (as bits) of its finite buckets,
/// whether it had a sum, and the labels of its buckets, `+Inf`, `_sum` (when it had one)
/// and `_count`.
pub struct SharedHistogram {
    pub les: Vec<u64>,
    pub has_sum: bool,
    pub labels: Vec<Labels>,
}

/// Why one data point was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointError {
    /// `time_unix_nano` is zero.
    #[error("data point of metric {0:?} has no timestamp (time_unix_nano is 0)")]
    NoTimestamp(String),
    /// A number point with neither `as_int` nor `as_double`.
    #[error("data point of metric {0:?} has no value")]
    NoValue(String),
    /// A sum or histogram with `AGGREGATION_TEMPORALITY_UNSPECIFIED` or an unknown value.
    #[error("metric {metric:?} has invalid aggregation temporality {temporality}")]
    Temporality { metric: String, temporality: i32 },
    /// A metric without a data field.
    #[error("metric {0:?} has no data (gauge, sum, histogram, exponential histogram or summary)")]
    NoData(String),
    /// A malformed histogram.
    #[error("metric {metric:?}: {source}")]
    Histogram {
        metric: String,
        #[source]
        source: HistogramError,
    },
    /// Delta → cumulative refused it.
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// The resulting series broke a naming rule or a limit.
    #[error(transparent)]
    Series(#[from] SeriesError),
}

impl PointError {
    /// The `reason` label this refusal is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            PointError::Delta(DeltaError::OutOfOrder { .. }) => "delta_out_of_order",
            PointError::Delta(DeltaError::TooManyStreams { .. }) => "delta_series_limit",
            PointError::Series(e) => e.reason.as_str(),
            _ => "invalid_data_point",
        }
    }
}

/// The result of mapping one request.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Series with their samples, each series once, samples in timestamp order, series in
    /// the order the request first named them.
    pub series: Vec<SeriesSamples>,
    /// Data points in the request.
    pub points: u64,
    /// Data points refused by the mapping.
    pub rejected_points: u64,
    /// Refused points per reason.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// The first refusal, for the reply.
    pub first_error: Option<String>,
    /// Type, help and unit per Prometheus metric name, for `/api/v1/metadata`.
    pub metadata: Vec<(String, MetricMetadata)>,
    /// Exemplars of sum and histogram points, with the series they belong to.
    pub exemplars: Vec<SeriesExemplar>,
}

impl Mapped {
    pub(super) fn reject(&mut self, error: &PointError) {
        self.rejected_points += 1;
        *self.rejected_by_reason.entry(error.reason()).or_insert(0) += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    /// Total samples (float and native histogram) across all series.
    pub fn sample_count(&self) -> u64 {
        let mut n = 0u64;
        for s in &self.series {
            n += (s.samples.len() + s.histograms.len()) as u64;
        }
        n
    }
}

/// The series of a cumulative explicit-bucket histogram point as built once in a scope:
/// the `le` values (as bits) of its finite buckets and the slots of its buckets, `+Inf`,
/// `_sum` (when it had a sum) and `_count`.
pub(super) struct CachedHistogram {
    pub les: Vec<u64>,
    pub has_sum: bool,
    pub slots: Vec<usize>,
}

/// A point's attributes: the cache key and the decoded list the labels are built from.
#[derive(Clone, Copy)]
pub(super) struct PointAttrs<'a> {
    pub key: Attrs<'a>,
    pub decoded: &'a [KeyValue],
}

impl<'a> PointAttrs<'a> {
    /// Attributes decoded by prost.
    pub fn decoded(list: &'a [KeyValue]) -> Self {
        PointAttrs {
            key: Attrs::Decoded(list),
            decoded: list,
        }
    }
}

/// Labels shared by every point of one scope, plus what a point needs to emit series.
pub(super) struct PointContext<'a> {
    /// `job`, `instance`, `otel_scope_name`, `otel_scope_version`: override attributes.
    pub common: &'a BTreeMap<String, String>,
    pub limits: &'a SeriesLimits,
    pub delta: &'a DeltaTracker,
    /// The request's series.
    pub set: &'a RefCell<SeriesSet>,
    /// Series labels (and their slot) already built in this scope, by metric name and raw
    /// attributes: a request usually carries several points of one series, and building
    /// labels (sanitising, stringifying, sorting, checking) was most of the mapping's cost.
    pub cache: LabelCache<(Labels, usize)>,
    /// The same for whole cumulative histograms.
    pub histograms: LabelCache<Rc<CachedHistogram>>,
    /// Labels built by earlier requests, and this scope's key in them.
    pub shared: Option<&'a SharedLabels>,
    pub scope_key: Arc<str>,
    /// [`MapOptions::histograms_to_nhcb`].
    pub histograms_to_nhcb: bool,
}

impl<'a> PointContext<'a> {
    /// A context for one scope.
    pub fn new(
        common: &'a BTreeMap<String, String>,
        options: &'a MapOptions<'a>,
        set: &'a RefCell<SeriesSet>,
    ) -> Self {
        PointContext {
            common,
            limits: options.limits,
            delta: options.delta,
            set,
            cache: LabelCache::default(),
            histograms: LabelCache::default(),
            shared: options.shared,
            histograms_to_nhcb: options.histograms_to_nhcb,
            scope_key: if options.shared.is_some() {
                scope_key(common)
            } else {
                Arc::from("")
            },
        }
    }

    /// The labels of the series in `slot`.
    pub fn slot_labels(&self, slot: usize) -> Option<Labels> {
        self.set.borrow().labels(slot)
    }

    /// The slot of `labels` in the request's series.
    pub fn slot(&self, labels: Labels) -> usize {
        self.set.borrow_mut().slot(labels)
    }

    /// Checked labels of series `name` for a point with `attributes` and their slot, from
    /// the cache when this scope built them before.
    pub fn cached_series_labels(
        &self,
        name: &str,
        attributes: PointAttrs<'_>,
    ) -> Result<(Labels, usize), SeriesError> {
        if let Some(hit) = self.cache.get(name, attributes.key) {
            return Ok(hit);
        }
        let labels = match (self.shared, attributes.key) {
            (Some(shared), Attrs::Raw(raw)) => match shared.series.get(&self.scope_key, name, raw) {
                Some(labels) => labels,
                None => {
                    let labels = self.series_labels(&self.point_labels(attributes.decoded), name, None)?;
                    shared.series.insert(&self.scope_key, name, raw, labels.clone());
                    labels
                }
            },
            _ => self.series_labels(&self.point_labels(attributes.decoded), name, None)?,
        };
        let slot = self.slot(labels.clone());
        self.cache.insert(name, attributes.key, (labels.clone(), slot));
        Ok((labels, slot))
    }

    /// The label map of a point: its attributes, then the common labels over them.
    pub fn point_labels(&self, attributes: &[KeyValue]) -> BTreeMap<String, String> {
        let mut labels = attributes_to_labels(attributes, &[]);
        for (k, v) in self.common {
            labels.insert(k.clone(), v.clone());
        }
        labels
    }

    /// Checked labels for series `name` of a point, with an optional extra label
    /// (`le`, `quantile`) that replaces an attribute of the same name.
    pub fn series_labels(
        &self,
        point: &BTreeMap<String, String>,
        name: &str,
        extra: Option<(&str, &str)>,
    ) -> Result<Labels, SeriesError> {
        let mut list: Vec<(&str, &str)> = Vec::with_capacity(point.len() + 2);
        list.push((METRIC_NAME_LABEL, name));
        for (k, v) in point {
            let replaced = extra.is_some_and(|(extra_name, _)| extra_name == k);
            if !replaced {
                list.push((k, v));
            }
        }
        if let Some(pair) = extra {
            list.push(pair);
        }
        let labels = Labels::from_pairs(list);
        check_series(&labels, self.limits)?;
        Ok(labels)
    }
}

/// One point's output: series (slots of the request's [`SeriesSet`]) and values at a
/// single timestamp.
pub(super) type PointSeries = Vec<(usize, f64)>;

/// Maps a whole request. Never fails: bad points are counted in [`Mapped::rejected_points`].
pub fn map_request(request: &ExportMetricsServiceRequest, options: &MapOptions<'_>) -> Mapped {
    let mut mapped = Mapped::default();
    let set = RefCell::new(SeriesSet::default());
    for rm in &request.resource_metrics {
        let resource_common = resource_labels(rm.resource.as_ref());
        let mut newest_ms: Option<i64> = None;
        for sm in &rm.scope_metrics {
            let mut common = resource_common.clone();
            add_scope_labels(&mut common, sm.scope.as_ref());
            let ctx = PointContext::new(&common, options, &set);
            for metric in &sm.metrics {
                map_metric(metric, &ctx, &mut mapped, &mut newest_ms);
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

/// Records type, help and unit of metric `name`.
pub(super) fn describe(mapped: &mut Mapped, name: &str, kind: &str, help: &str, unit: &str) {
    mapped.metadata.push((
        name.to_string(),
        MetricMetadata {
            kind: kind.to_string(),
            help: help.to_string(),
            unit: unit_suffix(unit).unwrap_or_default(),
        },
    ));
}

/// Counts one point's outcome and adds its samples.
pub(super) fn record_point(
    mapped: &mut Mapped,
    ctx: &PointContext<'_>,
    timestamp_ms: i64,
    result: Result<PointSeries, PointError>,
    newest_ms: &mut Option<i64>,
) {
    mapped.points += 1;
    match result {
        Ok(series) => {
            let mut set = ctx.set.borrow_mut();
            for (slot, value) in series {
                set.push(slot, Sample::new(timestamp_ms, value));
            }
            *newest_ms = Some(newest_ms.map_or(timestamp_ms, |n| n.max(timestamp_ms)));
        }
        Err(e) => mapped.reject(&e),
    }
}

pub(super) fn map_metric(
    metric: &Metric,
    ctx: &PointContext<'_>,
    mapped: &mut Mapped,
    newest_ms: &mut Option<i64>,
) {
    let help = metric.description.as_str();
    let unit = metric.unit.as_str();
    match &metric.data {
        None => {
            mapped.points += 1;
            mapped.reject(&PointError::NoData(metric.name.clone()));
        }
        Some(metric::Data::Gauge(g)) => {
            let name = metric_name(&metric.name, unit, NameKind::Gauge);
            describe(mapped, &name, "gauge", help, unit);
            for p in &g.data_points {
                let attrs = PointAttrs::decoded(&p.attributes);
                let result = number_point(&metric.name, &name, p, attrs, None, ctx);
                record_point(mapped, ctx, ms(p.time_unix_nano), result, newest_ms);
            }
        }
        Some(metric::Data::Sum(s)) => {
            let kind = if s.is_monotonic {
                NameKind::Counter
            } else {
                NameKind::Other
            };
            let name = metric_name(&metric.name, unit, kind);
            describe(
                mapped,
                &name,
                if s.is_monotonic { "counter" } else { "gauge" },
                help,
                unit,
            );
            let temporality = check_temporality(&metric.name, s.aggregation_temporality);
            for p in &s.data_points {
                let result = match &temporality {
                    Ok(t) => number_point(
                        &metric.name,
                        &name,
                        p,
                        PointAttrs::decoded(&p.attributes),
                        Some(*t),
                        ctx,
                    ),
                    Err(e) => Err(e.clone()),
                };
                if let Ok(series) = &result {
                    let t = ms(p.time_unix_nano);
                    exemplars::attach(
                        ctx,
                        series,
                        &p.exemplars,
                        t,
                        Target::Number,
                        &mut mapped.exemplars,
                    );
                }
                record_point(mapped, ctx, ms(p.time_unix_nano), result, newest_ms);
            }
        }
        Some(metric::Data::Histogram(h)) => {
            let name = metric_name(&metric.name, unit, NameKind::Other);
            describe(mapped, &name, "histogram", help, unit);
            let temporality = check_temporality(&metric.name, h.aggregation_temporality);
            let to_nhcb = ctx.histograms_to_nhcb || nhcb::requested_by_sender(metric);
            for p in &h.data_points {
                if to_nhcb {
                    let attrs = PointAttrs::decoded(&p.attributes);
                    let result = match &temporality {
                        Ok(t) => nhcb::explicit_point(&metric.name, &name, p, attrs, *t, ctx),
                        Err(e) => Err(e.clone()),
                    };
                    let t = ms(p.time_unix_nano);
                    native::record_native_point(mapped, ctx, t, result, &p.exemplars, newest_ms);
                    continue;
                }
                let result = match &temporality {
                    Ok(t) => histograms::histogram_point(
                        &metric.name,
                        &name,
                        p,
                        PointAttrs::decoded(&p.attributes),
                        *t,
                        ctx,
                    ),
                    Err(e) => Err(e.clone()),
                };
                if let Ok(series) = &result {
                    let t = ms(p.time_unix_nano);
                    let target = Target::Histogram(&name);
                    exemplars::attach(ctx, series, &p.exemplars, t, target, &mut mapped.exemplars);
                }
                record_point(mapped, ctx, ms(p.time_unix_nano), result, newest_ms);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            let name = metric_name(&metric.name, unit, NameKind::Other);
            describe(mapped, &name, "histogram", help, unit);
            let temporality = check_temporality(&metric.name, h.aggregation_temporality);
            for p in &h.data_points {
                let result = match &temporality {
                    Ok(t) => native::exponential_point(metric, &name, p, *t, ctx),
                    Err(e) => Err(e.clone()),
                };
                let t = ms(p.time_unix_nano);
                native::record_native_point(mapped, ctx, t, result, &p.exemplars, newest_ms);
            }
        }
        Some(metric::Data::Summary(s)) => {
            let name = metric_name(&metric.name, unit, NameKind::Other);
            describe(mapped, &name, "summary", help, unit);
            for p in &s.data_points {
                let result = histograms::summary_point(metric, &name, p, ctx);
                record_point(mapped, ctx, ms(p.time_unix_nano), result, newest_ms);
            }
        }
    }
}

/// Nanoseconds since the epoch → milliseconds.
pub(super) fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

pub(super) fn check_temporality(metric: &str, temporality: i32) -> Result<i32, PointError> {
    if temporality == TEMPORALITY_DELTA || temporality == TEMPORALITY_CUMULATIVE {
        Ok(temporality)
    } else {
        Err(PointError::Temporality {
            metric: metric.to_string(),
            temporality,
        })
    }
}

/// A gauge point (`temporality` None) or a sum point of metric `metric` (its OTLP name,
/// for errors); the point's attributes are `attrs`, not `p.attributes`.
pub(super) fn number_point(
    metric: &str,
    name: &str,
    p: &NumberDataPoint,
    attrs: PointAttrs<'_>,
    temporality: Option<i32>,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    if p.time_unix_nano == 0 {
        return Err(PointError::NoTimestamp(metric.to_string()));
    }
    let (labels, slot) = ctx.cached_series_labels(name, attrs)?;
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Ok(vec![(slot, stale_nan())]);
    }
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None => return Err(PointError::NoValue(metric.to_string())),
    };
    let value = if temporality == Some(TEMPORALITY_DELTA) {
        ctx.delta
            .add_number(&labels, p.start_time_unix_nano, p.time_unix_nano, value)?
    } else {
        value
    };
    Ok(vec![(slot, value)])
}

/// Attributes as label names and values: names sanitised, values stringified, keys that
/// sanitise to the same name joined with `;` in the order of their original keys. Keys in
/// `skip` and empty values are left out.
pub fn attributes_to_labels(attributes: &[KeyValue], skip: &[&str]) -> BTreeMap<String, String> {
    let mut sorted: Vec<&KeyValue> = Vec::with_capacity(attributes.len());
    for kv in attributes {
        if !skip.contains(&kv.key.as_str()) {
            sorted.push(kv);
        }
    }
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let value = attribute_value(kv.value.as_ref());
        if value.is_empty() {
            continue;
        }
        let name = label_name(&kv.key);
        match out.get_mut(&name) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&value);
            }
            None => {
                out.insert(name, value);
            }
        }
    }
    out
}

fn find_attribute(resource: Option<&Resource>, key: &str) -> Option<String> {
    let resource = resource?;
    for kv in &resource.attributes {
        if kv.key == key {
            let v = attribute_value(kv.value.as_ref());
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    None
}

/// `job` (`service.namespace/service.name`, or `service.name`) and `instance`
/// (`service.instance.id`) of a resource.
pub fn resource_labels(resource: Option<&Resource>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(name) = find_attribute(resource, SERVICE_NAME) {
        let job = match find_attribute(resource, SERVICE_NAMESPACE) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        out.insert("job".to_string(), job);
    }
    if let Some(instance) = find_attribute(resource, SERVICE_INSTANCE_ID) {
        out.insert("instance".to_string(), instance);
    }
    out
}

pub(super) fn add_scope_labels(labels: &mut BTreeMap<String, String>, scope: Option<&InstrumentationScope>) {
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            labels.insert("otel_scope_name".to_string(), scope.name.clone());
        }
        if !scope.version.is_empty() {
            labels.insert("otel_scope_version".to_string(), scope.version.clone());
        }
    }
}

/// One `target_info` series (value 1, at the newest point time of the resource) holding the
/// resource attributes other than the service name, namespace and instance id; none when
/// there are no such attributes.
pub(super) fn target_info(
    resource: Option<&Resource>,
    common: &BTreeMap<String, String>,
    timestamp_ms: i64,
    options: &MapOptions<'_>,
    mapped: &mut Mapped,
    set: &RefCell<SeriesSet>,
) {
    let Some(resource) = resource else {
        return;
    };
    let mut labels = attributes_to_labels(
        &resource.attributes,
        &[SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID],
    );
    if labels.is_empty() {
        return;
    }
    for (k, v) in common {
        labels.insert(k.clone(), v.clone());
    }
    let ctx = PointContext::new(common, options, set);
    match ctx.series_labels(&labels, "target_info", None) {
        Ok(l) => {
            let slot = ctx.slot(l);
            set.borrow_mut().push(slot, Sample::new(timestamp_ms, 1.0));
        }
        Err(e) => {
            if mapped.first_error.is_none() {
                mapped.first_error = Some(format!("target_info not stored: {e}"));
            }
        }
    }
}
