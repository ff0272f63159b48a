//! OTLP metrics → Prometheus series: a pure mapping from an `ExportMetricsServiceRequest`
//! to series and samples, plus a count of the data points it refused and why.
//!
//! The rules are those of the OpenTelemetry "Prometheus and OpenMetrics compatibility"
//! specification; `docs/otlp-mapping.md` documents every one of them.

use std::collections::BTreeMap;

use foldhash::HashMap;

use didban_store::model::{stale_nan, METRIC_NAME_LABEL};
use didban_store::{Labels, Sample, SeriesLimits, SeriesSamples};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric, NumberDataPoint};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::delta::{DeltaError, DeltaTracker};
use super::histogram::HistogramError;
use super::label_cache::LabelCache;
use super::names::{attribute_value, label_name, metric_name, unit_suffix, NameKind};
use super::otlp_histograms;
use super::validate::{check_series, SeriesError};
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
    /// Series with their samples, each series once, samples in timestamp order.
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
}

impl Mapped {
    fn reject(&mut self, error: &PointError) {
        self.rejected_points += 1;
        *self.rejected_by_reason.entry(error.reason()).or_insert(0) += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    /// Total samples across all series.
    pub fn sample_count(&self) -> u64 {
        let mut n = 0u64;
        for s in &self.series {
            n += s.samples.len() as u64;
        }
        n
    }
}

/// Series being collected, each label set once.
#[derive(Default)]
struct SeriesSet {
    by_labels: HashMap<Labels, Vec<Sample>>,
}

impl SeriesSet {
    fn push(&mut self, labels: Labels, sample: Sample) {
        // The entry takes the labels by value: no copy for a series seen before.
        self.by_labels.entry(labels).or_default().push(sample);
    }

    /// The series, each once, samples in timestamp order, sorted by labels so the output
    /// (and the WAL record) does not depend on hash order.
    fn finish(self) -> Vec<SeriesSamples> {
        let mut out = Vec::with_capacity(self.by_labels.len());
        for (labels, mut samples) in self.by_labels {
            samples.sort_by_key(|x| x.timestamp_ms);
            out.push(SeriesSamples { labels, samples });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// Labels shared by every point of one scope, plus what a point needs to emit series.
pub(super) struct PointContext<'a> {
    /// `job`, `instance`, `otel_scope_name`, `otel_scope_version`: override attributes.
    pub common: &'a BTreeMap<String, String>,
    pub limits: &'a SeriesLimits,
    pub delta: &'a DeltaTracker,
    /// Series labels already built in this scope, by metric name and raw attributes: a
    /// request usually carries several points of one series, and building labels
    /// (sanitising, stringifying, sorting, checking) was most of the mapping's cost.
    pub cache: LabelCache,
}

impl PointContext<'_> {
    /// Checked labels of series `name` for a point with `attributes`, from the cache when
    /// this scope built them before.
    pub fn cached_series_labels(&self, name: &str, attributes: &[KeyValue]) -> Result<Labels, SeriesError> {
        if let Some(labels) = self.cache.get(name, attributes) {
            return Ok(labels);
        }
        let point = self.point_labels(attributes);
        let labels = self.series_labels(&point, name, None)?;
        self.cache.insert(name, attributes, labels.clone());
        Ok(labels)
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

/// One point's output: series and values at a single timestamp.
pub(super) type PointSeries = Vec<(Labels, f64)>;

/// Maps a whole request. Never fails: bad points are counted in [`Mapped::rejected_points`].
pub fn map_request(request: &ExportMetricsServiceRequest, options: &MapOptions<'_>) -> Mapped {
    let mut mapped = Mapped::default();
    let mut set = SeriesSet::default();
    for rm in &request.resource_metrics {
        let resource_common = resource_labels(rm.resource.as_ref());
        let mut newest_ms: Option<i64> = None;
        for sm in &rm.scope_metrics {
            let mut common = resource_common.clone();
            add_scope_labels(&mut common, sm.scope.as_ref());
            let ctx = PointContext {
                common: &common,
                limits: options.limits,
                delta: options.delta,
                cache: LabelCache::default(),
            };
            for metric in &sm.metrics {
                map_metric(metric, &ctx, &mut mapped, &mut set, &mut newest_ms);
            }
        }
        if let Some(ts) = newest_ms {
            target_info(
                rm.resource.as_ref(),
                &resource_common,
                ts,
                options,
                &mut mapped,
                &mut set,
            );
        }
    }
    mapped.series = set.finish();
    mapped
}

fn map_metric(
    metric: &Metric,
    ctx: &PointContext<'_>,
    mapped: &mut Mapped,
    set: &mut SeriesSet,
    newest_ms: &mut Option<i64>,
) {
    let mut results: Vec<(i64, Result<PointSeries, PointError>)> = Vec::new();
    let mut describe = |name: &str, kind: &str| {
        mapped.metadata.push((
            name.to_string(),
            MetricMetadata {
                kind: kind.to_string(),
                help: metric.description.clone(),
                unit: unit_suffix(&metric.unit).unwrap_or_default(),
            },
        ));
    };
    match &metric.data {
        None => {
            mapped.points += 1;
            mapped.reject(&PointError::NoData(metric.name.clone()));
            return;
        }
        Some(metric::Data::Gauge(g)) => {
            let name = metric_name(&metric.name, &metric.unit, NameKind::Gauge);
            describe(&name, "gauge");
            for p in &g.data_points {
                results.push((ms(p.time_unix_nano), number_point(metric, &name, p, None, ctx)));
            }
        }
        Some(metric::Data::Sum(s)) => {
            let kind = if s.is_monotonic {
                NameKind::Counter
            } else {
                NameKind::Other
            };
            let name = metric_name(&metric.name, &metric.unit, kind);
            describe(&name, if s.is_monotonic { "counter" } else { "gauge" });
            let temporality = check_temporality(metric, s.aggregation_temporality);
            for p in &s.data_points {
                let result = match &temporality {
                    Ok(t) => number_point(metric, &name, p, Some(*t), ctx),
                    Err(e) => Err(e.clone()),
                };
                results.push((ms(p.time_unix_nano), result));
            }
        }
        Some(metric::Data::Histogram(h)) => {
            let name = metric_name(&metric.name, &metric.unit, NameKind::Other);
            describe(&name, "histogram");
            let temporality = check_temporality(metric, h.aggregation_temporality);
            for p in &h.data_points {
                let result = match &temporality {
                    Ok(t) => otlp_histograms::histogram_point(metric, &name, p, *t, ctx),
                    Err(e) => Err(e.clone()),
                };
                results.push((ms(p.time_unix_nano), result));
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            let name = metric_name(&metric.name, &metric.unit, NameKind::Other);
            describe(&name, "histogram");
            let temporality = check_temporality(metric, h.aggregation_temporality);
            for p in &h.data_points {
                let result = match &temporality {
                    Ok(t) => otlp_histograms::exponential_point(metric, &name, p, *t, ctx),
                    Err(e) => Err(e.clone()),
                };
                results.push((ms(p.time_unix_nano), result));
            }
        }
        Some(metric::Data::Summary(s)) => {
            let name = metric_name(&metric.name, &metric.unit, NameKind::Other);
            describe(&name, "summary");
            for p in &s.data_points {
                results.push((
                    ms(p.time_unix_nano),
                    otlp_histograms::summary_point(metric, &name, p, ctx),
                ));
            }
        }
    }
    for (timestamp_ms, result) in results {
        mapped.points += 1;
        match result {
            Ok(series) => {
                for (labels, value) in series {
                    set.push(labels, Sample::new(timestamp_ms, value));
                }
                *newest_ms = Some(newest_ms.map_or(timestamp_ms, |n| n.max(timestamp_ms)));
            }
            Err(e) => mapped.reject(&e),
        }
    }
}

/// Nanoseconds since the epoch → milliseconds.
pub(super) fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

fn check_temporality(metric: &Metric, temporality: i32) -> Result<i32, PointError> {
    if temporality == TEMPORALITY_DELTA || temporality == TEMPORALITY_CUMULATIVE {
        Ok(temporality)
    } else {
        Err(PointError::Temporality {
            metric: metric.name.clone(),
            temporality,
        })
    }
}

/// A gauge point (`temporality` None) or a sum point.
fn number_point(
    metric: &Metric,
    name: &str,
    p: &NumberDataPoint,
    temporality: Option<i32>,
    ctx: &PointContext<'_>,
) -> Result<PointSeries, PointError> {
    if p.time_unix_nano == 0 {
        return Err(PointError::NoTimestamp(metric.name.clone()));
    }
    let labels = ctx.cached_series_labels(name, &p.attributes)?;
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Ok(vec![(labels, stale_nan())]);
    }
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None => return Err(PointError::NoValue(metric.name.clone())),
    };
    let value = if temporality == Some(TEMPORALITY_DELTA) {
        ctx.delta
            .add_number(&labels, p.start_time_unix_nano, p.time_unix_nano, value)?
    } else {
        value
    };
    Ok(vec![(labels, value)])
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

fn add_scope_labels(labels: &mut BTreeMap<String, String>, scope: Option<&InstrumentationScope>) {
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
fn target_info(
    resource: Option<&Resource>,
    common: &BTreeMap<String, String>,
    timestamp_ms: i64,
    options: &MapOptions<'_>,
    mapped: &mut Mapped,
    set: &mut SeriesSet,
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
    let ctx = PointContext {
        common,
        limits: options.limits,
        delta: options.delta,
        cache: LabelCache::default(),
    };
    match ctx.series_labels(&labels, "target_info", None) {
        Ok(l) => set.push(l, Sample::new(timestamp_ms, 1.0)),
        Err(e) => {
            if mapped.first_error.is_none() {
                mapped.first_error = Some(format!("target_info not stored: {e}"));
            }
        }
    }
}
