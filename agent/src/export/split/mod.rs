//! Splitting encoded OTLP requests by bytes: a request the collector refused as too large
//! (HTTP 413) is halved and the halves are sent instead, down to a single item; and requests
//! are cut to `export.batch_max_bytes` before they are buffered. Halves keep the resource and
//! scope of the items they carry, and the items keep their order.

pub mod cut;
pub mod metrics;
pub mod spans_logs;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::export::otlp::Signal;

/// Items (data points, spans, log records) in an encoded request of `signal`; `None` when it
/// does not decode.
pub fn count_items(signal: Signal, payload: &[u8]) -> Option<u64> {
    let n = match signal {
        Signal::Metrics => metrics::count(&ExportMetricsServiceRequest::decode(payload).ok()?),
        Signal::Traces => spans_logs::count_spans(&ExportTraceServiceRequest::decode(payload).ok()?),
        Signal::Logs => spans_logs::count_logs(&ExportLogsServiceRequest::decode(payload).ok()?),
    };
    Some(n as u64)
}

/// The encoded request cut into two with about half of the items' bytes each; `None` when it
/// holds fewer than two items or does not decode.
pub fn halve(signal: Signal, payload: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    match signal {
        Signal::Metrics => {
            let (a, b) = metrics::halve(ExportMetricsServiceRequest::decode(payload).ok()?)?;
            Some((a.encode_to_vec(), b.encode_to_vec()))
        }
        Signal::Traces => {
            let (a, b) = spans_logs::halve_spans(ExportTraceServiceRequest::decode(payload).ok()?)?;
            Some((a.encode_to_vec(), b.encode_to_vec()))
        }
        Signal::Logs => {
            let (a, b) = spans_logs::halve_logs(ExportLogsServiceRequest::decode(payload).ok()?)?;
            Some((a.encode_to_vec(), b.encode_to_vec()))
        }
    }
}

/// `payload` as requests of at most `max_bytes` each, in item order. A request that cannot be
/// halved (one item, or not decodable) is returned as it is, whatever its size.
pub fn fit(signal: Signal, payload: Vec<u8>, max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // A stack whose top is the next piece in order.
    let mut todo = vec![payload];
    while let Some(piece) = todo.pop() {
        if piece.len() <= max_bytes {
            out.push(piece);
            continue;
        }
        match halve(signal, &piece) {
            Some((first, second)) => {
                todo.push(second);
                todo.push(first);
            }
            None => out.push(piece),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use didban_base::otlp::kv;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn logs(resources: &[&[usize]]) -> ExportLogsServiceRequest {
        let mut seq = 0;
        let mut resource_logs = Vec::new();
        for (r, scopes) in resources.iter().enumerate() {
            let mut scope_logs = Vec::new();
            for n in scopes.iter() {
                let mut log_records = Vec::new();
                for _ in 0..*n {
                    log_records.push(LogRecord {
                        attributes: vec![kv("seq", &seq.to_string())],
                        // Uneven sizes: every third record is large.
                        severity_text: "x".repeat(if seq % 3 == 0 { 500 } else { 20 }),
                        ..Default::default()
                    });
                    seq += 1;
                }
                scope_logs.push(ScopeLogs {
                    log_records,
                    ..Default::default()
                });
            }
            resource_logs.push(ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", &format!("svc-{r}"))],
                    ..Default::default()
                }),
                scope_logs,
                ..Default::default()
            });
        }
        ExportLogsServiceRequest { resource_logs }
    }

    /// (service, seq) of every record, in order.
    fn log_seqs(payloads: &[Vec<u8>]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in payloads {
            let req = ExportLogsServiceRequest::decode(p.as_slice()).unwrap();
            for r in req.resource_logs {
                let svc = format!("{:?}", r.resource.unwrap().attributes[0].value);
                for s in r.scope_logs {
                    for l in s.log_records {
                        out.push((svc.clone(), format!("{:?}", l.attributes[0].value)));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn fit_cuts_logs_under_the_limit_keeping_order_and_resources() {
        let req = logs(&[&[3, 4], &[5], &[1, 7]]);
        let whole = req.encode_to_vec();
        assert_eq!(count_items(Signal::Logs, &whole), Some(20));
        let pieces = fit(Signal::Logs, whole.clone(), 1200);
        assert!(pieces.len() > 2, "{}", pieces.len());
        for p in &pieces {
            assert!(p.len() <= 1200, "{}", p.len());
        }
        assert_eq!(log_seqs(&pieces), log_seqs(&[whole]));
        let counted: u64 = pieces.iter().map(|p| count_items(Signal::Logs, p).unwrap()).sum();
        assert_eq!(counted, 20);
    }

    #[test]
    fn one_item_cannot_be_halved() {
        let one = logs(&[&[1]]).encode_to_vec();
        assert!(halve(Signal::Logs, &one).is_none());
        assert_eq!(fit(Signal::Logs, one.clone(), 10), vec![one]);
        assert!(halve(Signal::Logs, b"\xff\xff\xff").is_none());
        assert_eq!(count_items(Signal::Logs, b"\xff\xff\xff"), None);
    }

    #[test]
    fn metrics_halve_inside_one_metric_keeping_its_header() {
        let points: Vec<NumberDataPoint> = (0..10)
            .map(|i| NumberDataPoint {
                attributes: vec![kv("i", &i.to_string())],
                time_unix_nano: 1,
                ..Default::default()
            })
            .collect();
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource::default()),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m_total".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: points,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (a, b) = halve(Signal::Metrics, &req.encode_to_vec()).unwrap();
        assert_eq!(count_items(Signal::Metrics, &a), Some(5));
        assert_eq!(count_items(Signal::Metrics, &b), Some(5));
        let b = ExportMetricsServiceRequest::decode(b.as_slice()).unwrap();
        let m = &b.resource_metrics[0].scope_metrics[0].metrics[0];
        assert_eq!((m.name.as_str(), m.unit.as_str()), ("m_total", "s"));
        match m.data.as_ref().unwrap() {
            metric::Data::Sum(s) => {
                assert!(s.is_monotonic);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32
                );
                assert_eq!(
                    format!("{:?}", s.data_points[0].attributes[0].value),
                    format!("{:?}", kv("i", "5").value)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spans_halve() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..4)
                        .map(|i| Span {
                            name: format!("s{i}"),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (a, b) = halve(Signal::Traces, &req.encode_to_vec()).unwrap();
        let a = ExportTraceServiceRequest::decode(a.as_slice()).unwrap();
        let b = ExportTraceServiceRequest::decode(b.as_slice()).unwrap();
        assert_eq!(a.resource_spans[0].scope_spans[0].spans[1].name, "s1");
        assert_eq!(b.resource_spans[0].scope_spans[0].spans[0].name, "s2");
    }
}
