//! Turns agent samples into an OTLP `ExportMetricsServiceRequest`.
//!
//! The collector maps OTLP back to Prometheus series (`job` from `service.name`, `instance`
//! from `service.instance.id`, `_total` added to monotonic sums that lack it, unit suffixes
//! added when a unit is set). So names are sent unchanged with no unit; counters whose name
//! ends in `_total` become cumulative monotonic sums and everything else a gauge, which keeps
//! every name exactly as the Prometheus exporters spell it.
//!
//! A sample whose `instance` is another machine (a PostgreSQL server, a RabbitMQ node, a
//! scraped target) also gets the data point attribute `agent_host` = this agent's host name,
//! so a fleet shows which agent watched the target; the resource keeps `host.name` too (it
//! lands in `target_info`). Samples of the agent's own host carry no `agent_host`.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::model::{ClassicHistogram, MetricKind, Sample};
use didban_base::otlp::{kv, CONVERT_TO_NHCB_KEY};

/// Who is sending: default resource of samples without `job`/`instance` labels.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// `service.name` / `job` of the agent's own collectors (`didban-agent`).
    pub service_name: String,
    /// `host.name`, and `service.instance.id` / `instance` of the agent's own collectors.
    pub host_name: String,
}

fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// Whether the sample is sent as a monotonic cumulative sum.
pub fn is_monotonic_sum(sample: &Sample) -> bool {
    sample.kind == MetricKind::Counter && sample.name.ends_with("_total")
}

/// The data point attribute naming the agent that watched a remote target.
pub const AGENT_HOST: &str = "agent_host";

/// The points of one resource (job, instance): numbers by (name, sent as a monotonic sum),
/// whole histograms by name.
#[derive(Default)]
struct ResourceGroup<'a> {
    numbers: BTreeMap<(&'a str, bool), Vec<NumberDataPoint>>,
    histograms: BTreeMap<&'a str, Vec<HistogramDataPoint>>,
}

/// A whole classic histogram as a cumulative explicit-bucket point.
fn histogram_point(
    h: &ClassicHistogram,
    attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
    start_ms: i64,
    time_ms: i64,
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: ms_to_ns(start_ms),
        time_unix_nano: ms_to_ns(time_ms),
        count: h.count,
        sum: h.sum,
        bucket_counts: h.counts.clone(),
        explicit_bounds: h.bounds.clone(),
        ..Default::default()
    }
}

/// Builds one request from `samples`. Samples carrying `job`/`instance` labels (scraped
/// targets) get their own resource; the others get the agent's. `start_ms` is the start time
/// of cumulative sums (when counting began, as far as the agent knows).
pub fn encode(samples: &[Sample], resource: &ResourceInfo, start_ms: i64) -> ExportMetricsServiceRequest {
    encode_with(samples, resource, &[], start_ms)
}

/// [`encode`] with `extra` resource attributes on every resource (`export.resource_attributes`).
pub fn encode_with(
    samples: &[Sample],
    resource: &ResourceInfo,
    extra: &[(String, String)],
    start_ms: i64,
) -> ExportMetricsServiceRequest {
    let mut groups: BTreeMap<(String, String), ResourceGroup> = BTreeMap::new();
    for s in samples {
        let mut job = None;
        let mut instance = None;
        let mut attributes = Vec::with_capacity(s.labels.len());
        for (k, v) in &s.labels {
            match k.as_str() {
                "job" => job = Some(v.clone()),
                "instance" => instance = Some(v.clone()),
                _ if v.is_empty() => {}
                _ => attributes.push(kv(k, v)),
            }
        }
        if let Some(target) = &instance {
            if *target != resource.host_name && s.label(AGENT_HOST).is_none() {
                attributes.push(kv(AGENT_HOST, &resource.host_name));
            }
        }
        let key = (
            job.unwrap_or_else(|| resource.service_name.clone()),
            instance.unwrap_or_else(|| resource.host_name.clone()),
        );
        let group = groups.entry(key).or_default();
        if let Some(h) = &s.histogram {
            let point = histogram_point(h, attributes, start_ms.min(s.timestamp_ms), s.timestamp_ms);
            group.histograms.entry(s.name.as_str()).or_default().push(point);
            continue;
        }
        let sum = is_monotonic_sum(s);
        let point = NumberDataPoint {
            attributes,
            start_time_unix_nano: if sum {
                ms_to_ns(start_ms.min(s.timestamp_ms))
            } else {
                0
            },
            time_unix_nano: ms_to_ns(s.timestamp_ms),
            value: Some(number_data_point::Value::AsDouble(s.value)),
            ..Default::default()
        };
        group
            .numbers
            .entry((s.name.as_str(), sum))
            .or_default()
            .push(point);
    }
    let scope = InstrumentationScope {
        name: "didban-agent".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    };
    let mut resource_metrics = Vec::with_capacity(groups.len());
    for ((job, instance), group) in groups {
        let mut out = Vec::with_capacity(group.numbers.len() + group.histograms.len());
        for ((name, sum), data_points) in group.numbers {
            let data = if sum {
                metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })
            } else {
                metric::Data::Gauge(Gauge { data_points })
            };
            out.push(Metric {
                name: name.to_string(),
                data: Some(data),
                ..Default::default()
            });
        }
        // Only scrape jobs converting to NHCB keep histograms whole: mark them so.
        for (name, data_points) in group.histograms {
            out.push(Metric {
                name: name.to_string(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                })),
                metadata: vec![kv(CONVERT_TO_NHCB_KEY, "true")],
                ..Default::default()
            });
        }
        let mut attributes = vec![
            kv("service.name", &job),
            kv("service.instance.id", &instance),
            kv("host.name", &resource.host_name),
        ];
        for (k, v) in extra {
            attributes.push(kv(k, v));
        }
        resource_metrics.push(ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope.clone()),
                metrics: out,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest { resource_metrics }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

    fn attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        for kv in kvs {
            if kv.key == key {
                if let Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) = &kv.value
                {
                    return Some(s);
                }
            }
        }
        None
    }

    #[test]
    fn whole_histograms_are_explicit_bucket_points_marked_for_nhcb() {
        let res = ResourceInfo {
            service_name: "didban-agent".into(),
            host_name: "h1".into(),
        };
        let mut s = Sample::counter(
            "lat",
            &[("job", "web"), ("instance", "a:1"), ("path", "/")],
            6.0,
            5000,
        );
        s.histogram = Some(Box::new(ClassicHistogram {
            bounds: vec![0.1, 0.5],
            counts: vec![2, 3, 1],
            count: 6,
            sum: Some(1.75),
        }));
        let plain = Sample::counter(
            "lat_other_total",
            &[("job", "web"), ("instance", "a:1")],
            1.0,
            5000,
        );
        let req = encode(&[s, plain], &res, 1000);
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let lat = metrics.iter().find(|m| m.name == "lat").unwrap();
        assert_eq!(attr(&lat.metadata, CONVERT_TO_NHCB_KEY), Some("true"));
        let Some(metric::Data::Histogram(h)) = &lat.data else {
            panic!("{lat:?}")
        };
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &h.data_points[0];
        assert_eq!((p.count, p.sum), (6, Some(1.75)));
        assert_eq!(p.bucket_counts, vec![2, 3, 1]);
        assert_eq!(p.explicit_bounds, vec![0.1, 0.5]);
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (1_000_000_000, 5_000_000_000)
        );
        assert_eq!(attr(&p.attributes, "path"), Some("/"));
        // Other metrics are not marked.
        let other = metrics.iter().find(|m| m.name == "lat_other_total").unwrap();
        assert!(other.metadata.is_empty());
    }

    #[test]
    fn counters_gauges_and_resources() {
        let res = ResourceInfo {
            service_name: "didban-agent".into(),
            host_name: "h1".into(),
        };
        let samples = vec![
            Sample::counter(
                "node_cpu_seconds_total",
                &[("cpu", "0"), ("mode", "idle")],
                5.0,
                2000,
            ),
            Sample::gauge("node_load1", &[], 0.5, 2000),
            Sample::counter("pg_stat_database_blks_hit", &[("datname", "x")], 9.0, 2000),
            Sample::gauge(
                "up",
                &[("job", "django"), ("instance", "localhost:8000")],
                1.0,
                2000,
            ),
        ];
        let req = encode(&samples, &res, 1000);
        assert_eq!(req.resource_metrics.len(), 2);
        let agent = &req.resource_metrics[0];
        let attrs = &agent.resource.as_ref().unwrap().attributes;
        assert_eq!(attr(attrs, "service.name"), Some("didban-agent"));
        assert_eq!(attr(attrs, "service.instance.id"), Some("h1"));
        assert_eq!(attr(attrs, "host.name"), Some("h1"));
        let metrics = &agent.scope_metrics[0].metrics;
        let cpu = metrics
            .iter()
            .find(|m| m.name == "node_cpu_seconds_total")
            .unwrap();
        match cpu.data.as_ref().unwrap() {
            metric::Data::Sum(s) => {
                assert!(s.is_monotonic);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32
                );
                assert_eq!(s.data_points[0].start_time_unix_nano, 1_000_000_000);
                assert_eq!(s.data_points[0].time_unix_nano, 2_000_000_000);
                assert_eq!(attr(&s.data_points[0].attributes, "mode"), Some("idle"));
            }
            other => panic!("{other:?}"),
        }
        assert!(cpu.unit.is_empty());
        let blks = metrics
            .iter()
            .find(|m| m.name == "pg_stat_database_blks_hit")
            .unwrap();
        assert!(matches!(blks.data, Some(metric::Data::Gauge(_))));
        let scraped = &req.resource_metrics[1];
        let attrs = &scraped.resource.as_ref().unwrap().attributes;
        assert_eq!(attr(attrs, "service.name"), Some("django"));
        assert_eq!(attr(attrs, "service.instance.id"), Some("localhost:8000"));
        let up = &scraped.scope_metrics[0].metrics[0];
        match up.data.as_ref().unwrap() {
            metric::Data::Gauge(g) => {
                // job/instance travel in the resource; only the watching agent is added.
                assert_eq!(g.data_points[0].attributes.len(), 1);
                assert_eq!(attr(&g.data_points[0].attributes, AGENT_HOST), Some("h1"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn point_attrs(req: &ExportMetricsServiceRequest, instance: &str, name: &str) -> Vec<KeyValue> {
        for rm in &req.resource_metrics {
            let attrs = &rm.resource.as_ref().unwrap().attributes;
            if attr(attrs, "service.instance.id") != Some(instance) {
                continue;
            }
            for m in &rm.scope_metrics[0].metrics {
                if m.name == name {
                    if let Some(metric::Data::Gauge(g)) = &m.data {
                        return g.data_points[0].attributes.clone();
                    }
                }
            }
        }
        panic!("no {name} for {instance}");
    }

    #[test]
    fn remote_targets_get_agent_host_and_own_host_does_not() {
        let res = ResourceInfo {
            service_name: "didban-agent".into(),
            host_name: "app-1".into(),
        };
        let samples = vec![
            Sample::gauge("pg_up", &[("instance", "db1:5432")], 1.0, 2000),
            Sample::gauge("pg_up", &[("instance", "db2:5433")], 0.0, 2000),
            Sample::gauge("node_load1", &[("instance", "app-1")], 0.5, 2000),
            Sample::gauge("node_load5", &[], 0.5, 2000),
        ];
        let extra = vec![("deployment.environment".to_string(), "prod".to_string())];
        let req = encode_with(&samples, &res, &extra, 1000);
        // One resource per target, all with job didban-agent and the agent's host.name.
        assert_eq!(req.resource_metrics.len(), 3);
        for rm in &req.resource_metrics {
            let attrs = &rm.resource.as_ref().unwrap().attributes;
            assert_eq!(attr(attrs, "service.name"), Some("didban-agent"));
            assert_eq!(attr(attrs, "host.name"), Some("app-1"));
            assert_eq!(attr(attrs, "deployment.environment"), Some("prod"));
        }
        for db in ["db1:5432", "db2:5433"] {
            let attrs = point_attrs(&req, db, "pg_up");
            assert_eq!(attr(&attrs, AGENT_HOST), Some("app-1"), "{db}");
        }
        assert!(point_attrs(&req, "app-1", "node_load1").is_empty());
        assert!(point_attrs(&req, "app-1", "node_load5").is_empty());
    }
}
