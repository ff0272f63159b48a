//! Halving an `ExportMetricsServiceRequest` at the data-point level.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use prost::Message;

use super::cut::{cut, middle};

fn data_points(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(d)) => d.data_points.len(),
        Some(Data::Sum(d)) => d.data_points.len(),
        Some(Data::Histogram(d)) => d.data_points.len(),
        Some(Data::ExponentialHistogram(d)) => d.data_points.len(),
        Some(Data::Summary(d)) => d.data_points.len(),
        None => 0,
    }
}

fn point_sizes(m: &Metric, out: &mut Vec<usize>) {
    match &m.data {
        Some(Data::Gauge(d)) => out.extend(d.data_points.iter().map(Message::encoded_len)),
        Some(Data::Sum(d)) => out.extend(d.data_points.iter().map(Message::encoded_len)),
        Some(Data::Histogram(d)) => out.extend(d.data_points.iter().map(Message::encoded_len)),
        Some(Data::ExponentialHistogram(d)) => out.extend(d.data_points.iter().map(Message::encoded_len)),
        Some(Data::Summary(d)) => out.extend(d.data_points.iter().map(Message::encoded_len)),
        None => {}
    }
}

fn split_data(data: Data, k: usize) -> (Data, Data) {
    match data {
        Data::Gauge(mut d) => {
            let rest = d.data_points.split_off(k);
            (Data::Gauge(d), Data::Gauge(Gauge { data_points: rest }))
        }
        Data::Sum(mut d) => {
            let rest = Sum {
                data_points: d.data_points.split_off(k),
                aggregation_temporality: d.aggregation_temporality,
                is_monotonic: d.is_monotonic,
            };
            (Data::Sum(d), Data::Sum(rest))
        }
        Data::Histogram(mut d) => {
            let rest = Histogram {
                data_points: d.data_points.split_off(k),
                aggregation_temporality: d.aggregation_temporality,
            };
            (Data::Histogram(d), Data::Histogram(rest))
        }
        Data::ExponentialHistogram(mut d) => {
            let rest = ExponentialHistogram {
                data_points: d.data_points.split_off(k),
                aggregation_temporality: d.aggregation_temporality,
            };
            (Data::ExponentialHistogram(d), Data::ExponentialHistogram(rest))
        }
        Data::Summary(mut d) => {
            let rest = d.data_points.split_off(k);
            (Data::Summary(d), Data::Summary(Summary { data_points: rest }))
        }
    }
}

fn split_metric(mut m: Metric, k: usize) -> (Metric, Metric) {
    let Some(data) = m.data.take() else {
        return (m.clone(), m);
    };
    let (a, b) = split_data(data, k);
    let second = Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data: Some(b),
    };
    m.data = Some(a);
    (m, second)
}

fn scope_points(s: &ScopeMetrics) -> usize {
    s.metrics.iter().map(data_points).sum()
}

fn split_scope(mut s: ScopeMetrics, k: usize) -> (ScopeMetrics, ScopeMetrics) {
    let (a, b) = cut(std::mem::take(&mut s.metrics), k, data_points, split_metric);
    let second = ScopeMetrics {
        scope: s.scope.clone(),
        metrics: b,
        schema_url: s.schema_url.clone(),
    };
    s.metrics = a;
    (s, second)
}

fn resource_points(r: &ResourceMetrics) -> usize {
    r.scope_metrics.iter().map(scope_points).sum()
}

fn split_resource(mut r: ResourceMetrics, k: usize) -> (ResourceMetrics, ResourceMetrics) {
    let (a, b) = cut(std::mem::take(&mut r.scope_metrics), k, scope_points, split_scope);
    let second = ResourceMetrics {
        resource: r.resource.clone(),
        scope_metrics: b,
        schema_url: r.schema_url.clone(),
    };
    r.scope_metrics = a;
    (r, second)
}

/// Data points in the request.
pub fn count(request: &ExportMetricsServiceRequest) -> usize {
    request.resource_metrics.iter().map(resource_points).sum()
}

/// The request cut into two with about half of the points' bytes each; `None` for fewer
/// than two points.
pub fn halve(
    request: ExportMetricsServiceRequest,
) -> Option<(ExportMetricsServiceRequest, ExportMetricsServiceRequest)> {
    let mut sizes = Vec::new();
    for r in &request.resource_metrics {
        for s in &r.scope_metrics {
            for m in &s.metrics {
                point_sizes(m, &mut sizes);
            }
        }
    }
    let k = middle(&sizes)?;
    let (a, b) = cut(request.resource_metrics, k, resource_points, split_resource);
    Some((
        ExportMetricsServiceRequest { resource_metrics: a },
        ExportMetricsServiceRequest { resource_metrics: b },
    ))
}
