//! OTLP/HTTP protobuf requests (`POST /v1/metrics`) carrying the same data as remote_write.
//!
//! One `ResourceMetrics` per host (`service.name` = `node`, `service.instance.id` = the
//! instance, which the OpenTelemetry/Prometheus rules map to `job` and `instance`), counters
//! as cumulative monotonic sums named without `_total` (the mapping appends it), gauges as
//! gauges, the latency histogram as an explicit-bucket histogram. Samples are counted the
//! Prometheus way (a histogram point = buckets + `+Inf` + sum + count).

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::load::{Plan, Request};
use crate::remote_write::Batching;
use didban_demo::node::dataset::Dataset;
use didban_demo::node::Kind;

use didban_base::otlp::kv;

/// Encodes the whole data set as OTLP requests, grouped like [`crate::remote_write::build_plan`].
pub fn build_plan(d: &Dataset, b: Batching) -> anyhow::Result<Plan> {
    let hosts = d.shape.hosts;
    let hpr = b.hosts_per_request.max(1);
    let sps = b.samples_per_series.max(1);
    let start_ns = (d.shape.start_ms as u64).saturating_sub(3_600_000) * 1_000_000;
    let mut states: Vec<_> = (0..hosts).map(|h| d.host_state(h)).collect();
    let attrs: Vec<Vec<Vec<KeyValue>>> = d
        .families
        .iter()
        .map(|f| {
            f.label_sets
                .iter()
                .map(|set| set.iter().map(|(k, v)| kv(k, v)).collect())
                .collect()
        })
        .collect();
    let mut chunks = Vec::new();
    let mut k = 0;
    while k < d.shape.steps {
        let n = sps.min(d.shape.steps - k);
        let mut chunk = Vec::new();
        let mut req = ExportMetricsServiceRequest::default();
        let mut samples = 0u64;
        for (h, st) in states.iter_mut().enumerate() {
            let mut steps = Vec::with_capacity(n);
            for j in 0..n {
                d.step(st, k + j);
                steps.push(st.values.clone());
            }
            let mut metrics = Vec::with_capacity(d.families.len());
            let mut i = 0;
            for (fi, f) in d.families.iter().enumerate() {
                let width = f.width();
                let mut numbers = Vec::new();
                let mut hists = Vec::new();
                for (si, a) in attrs[fi].iter().enumerate() {
                    let at = i + si * width;
                    for (j, vals) in steps.iter().enumerate() {
                        let time_unix_nano = d.shape.ts(k + j) as u64 * 1_000_000;
                        match f.metric.kind {
                            Kind::Histogram(bounds) => {
                                let nb = bounds.len();
                                let mut counts = Vec::with_capacity(nb + 1);
                                let mut prev = 0.0;
                                for c in &vals[at..=at + nb] {
                                    counts.push((c - prev).max(0.0) as u64);
                                    prev = *c;
                                }
                                hists.push(HistogramDataPoint {
                                    attributes: a.clone(),
                                    start_time_unix_nano: start_ns,
                                    time_unix_nano,
                                    count: vals[at + nb + 2] as u64,
                                    sum: Some(vals[at + nb + 1]),
                                    bucket_counts: counts,
                                    explicit_bounds: bounds.to_vec(),
                                    ..Default::default()
                                });
                            }
                            _ => numbers.push(NumberDataPoint {
                                attributes: a.clone(),
                                start_time_unix_nano: start_ns,
                                time_unix_nano,
                                value: Some(number_data_point::Value::AsDouble(vals[at])),
                                ..Default::default()
                            }),
                        }
                        samples += width as u64;
                    }
                }
                i += attrs[fi].len() * width;
                let data = match f.metric.kind {
                    Kind::Counter => metric::Data::Sum(Sum {
                        data_points: numbers,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    }),
                    Kind::Gauge => metric::Data::Gauge(Gauge { data_points: numbers }),
                    Kind::Histogram(_) => metric::Data::Histogram(Histogram {
                        data_points: hists,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    }),
                };
                let name = f
                    .metric
                    .name
                    .strip_suffix("_total")
                    .unwrap_or(f.metric.name)
                    .to_string();
                metrics.push(Metric {
                    name,
                    data: Some(data),
                    ..Default::default()
                });
            }
            req.resource_metrics.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "node"),
                        kv("service.instance.id", &Dataset::instance(h)),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
            if (h + 1) % hpr == 0 || h + 1 == hosts {
                let body = std::mem::take(&mut req).encode_to_vec();
                chunk.push(Request {
                    body: Bytes::from(body),
                    samples,
                });
                samples = 0;
            }
        }
        chunks.push(chunk);
        k += n;
    }
    Ok(Plan {
        requests: chunks,
        chunk_ms: sps as i64 * d.shape.interval_ms,
    })
}

/// Headers of an OTLP/HTTP protobuf request.
pub fn headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Content-Type", "application/x-protobuf"),
        ("User-Agent", "didban-bench"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use didban_demo::node::dataset::Shape;

    #[test]
    fn otlp_plan_counts_the_same_samples_as_remote_write() -> anyhow::Result<()> {
        let d = Dataset::new(Shape {
            hosts: 3,
            cpus: 1,
            interval_ms: 15_000,
            start_ms: 1_000,
            steps: 5,
        });
        let plan = build_plan(
            &d,
            Batching {
                hosts_per_request: 2,
                samples_per_series: 2,
            },
        )?;
        assert_eq!(plan.samples(), d.samples());
        assert_eq!(plan.requests[0].len(), 2);
        let req = ExportMetricsServiceRequest::decode(plan.requests[0][1].body.as_ref())?;
        assert_eq!(req.resource_metrics.len(), 1);
        Ok(())
    }
}
