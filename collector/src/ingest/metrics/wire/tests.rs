//! The walk against prost + the generic mapping on every request shape, and against
//! malformed input.

#![allow(clippy::unwrap_used)]
use super::view::*;
use super::walk::*;
use super::*;
use crate::ingest::protowire::{field, Reader, I32, I64, LEN, VARINT};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    number_data_point, HistogramDataPoint, Metric, NumberDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::super::map::{map_request, MapOptions};
use crate::ingest::metrics::delta::DeltaTracker;
use didban_store::SeriesLimits;

use opentelemetry_proto::tonic::metrics::v1::{
    metric, Exemplar, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum,
};

use didban_testkit::kv;

const T: u64 = 1_700_000_000_000_000_000;

fn number(t: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn hist(t: u64, attrs: Vec<KeyValue>) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs,
        time_unix_nano: t,
        count: 6,
        sum: Some(2.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.1, 1.0],
        ..Default::default()
    }
}

fn sample_request() -> ExportMetricsServiceRequest {
    let a = || vec![kv("cpu", "0"), kv("mode", "idle")];
    let b = || vec![kv("cpu", "1"), kv("mode", "idle")];
    let metrics = vec![
        Metric {
            name: "node_cpu_seconds".into(),
            unit: "s".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![
                    number(T, 1.0, a()),
                    number(T + 15_000_000_000, 2.0, a()),
                    number(T, 3.0, b()),
                    number(T + 15_000_000_000, 4.0, b()),
                ],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "load1".into(),
            description: "load".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![number(T, 0.5, vec![]), number(T + 1_000_000_000, 0.7, vec![])],
            })),
            ..Default::default()
        },
        Metric {
            name: "http.duration".into(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![
                    hist(T, vec![kv("handler", "/a")]),
                    hist(T + 15_000_000_000, vec![kv("handler", "/a")]),
                    // Other bounds for the same series: not from the cache.
                    HistogramDataPoint {
                        explicit_bounds: vec![0.2, 1.0],
                        ..hist(T + 30_000_000_000, vec![kv("handler", "/a")])
                    },
                    // Stale, then bad counts.
                    HistogramDataPoint {
                        flags: 1,
                        ..hist(T + 45_000_000_000, vec![kv("handler", "/a")])
                    },
                    HistogramDataPoint {
                        count: 7,
                        ..hist(T + 60_000_000_000, vec![kv("handler", "/a")])
                    },
                ],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "node"),
                    kv("service.instance.id", "h1"),
                    kv("os", "linux"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn both(body: &[u8]) -> (Result<String, String>, Result<String, String>) {
    both_with(body, false)
}

/// Maps `body` with the borrowing decoder and with prost + [`map_request`], explicit-bucket
/// histograms as NHCB when `nhcb`.
fn both_with(body: &[u8], nhcb: bool) -> (Result<String, String>, Result<String, String>) {
    let limits = SeriesLimits::default();
    let (d1, d2) = (DeltaTracker::new(0), DeltaTracker::new(0));
    let fused = decode_and_map(
        body,
        &MapOptions {
            limits: &limits,
            delta: &d1,
            shared: None,
            histograms_to_nhcb: nhcb,
        },
    )
    .map(|m| format!("{m:?}"))
    .map_err(|e| e.to_string());
    let generic = ExportMetricsServiceRequest::decode(body)
        .map(|r| {
            let m = map_request(
                &r,
                &MapOptions {
                    limits: &limits,
                    delta: &d2,
                    shared: None,
                    histograms_to_nhcb: nhcb,
                },
            );
            format!("{m:?}")
        })
        .map_err(|e| e.to_string());
    (fused, generic)
}

fn same(body: &[u8]) -> Result<String, String> {
    let (fused, generic) = both(body);
    assert_eq!(fused, generic);
    fused
}

#[test]
fn maps_like_prost_and_map_request() {
    let body = sample_request().encode_to_vec();
    assert!(
        walk_request(&body).is_ok(),
        "the sample is walked, not left to prost"
    );
    let out = same(&body).unwrap();
    assert!(out.contains("node_cpu_seconds_total"), "{out}");
    assert!(out.contains("http_duration_seconds_bucket"), "{out}");
    assert!(out.contains("target_info"), "{out}");
}

#[test]
fn histograms_as_nhcb_map_like_prost() {
    let body = sample_request().encode_to_vec();
    let (fused, generic) = both_with(&body, true);
    assert_eq!(fused, generic);
    let out = fused.unwrap();
    assert!(!out.contains("http_duration_seconds_bucket"), "{out}");
    assert!(out.contains("schema: -53"), "{out}");
}

#[test]
fn labels_shared_across_requests_give_the_same_result() {
    let limits = SeriesLimits::default();
    let shared = crate::ingest::metrics::map::SharedLabels::default();
    let body = sample_request().encode_to_vec();
    let generic = map_request(
        &sample_request(),
        &MapOptions {
            limits: &limits,
            delta: &DeltaTracker::new(0),
            shared: None,
            histograms_to_nhcb: false,
        },
    );
    for _ in 0..3 {
        let options = MapOptions {
            limits: &limits,
            delta: &DeltaTracker::new(0),
            shared: Some(&shared),
            histograms_to_nhcb: false,
        };
        let fused = decode_and_map(&body, &options).unwrap();
        assert_eq!(format!("{fused:?}"), format!("{generic:?}"));
    }
    assert!(!shared.series.is_empty() && !shared.histograms.is_empty());
}

#[test]
fn unusual_shapes_fall_back_to_prost_per_metric() {
    let mut req = sample_request();
    let metrics = &mut req.resource_metrics[0].scope_metrics[0].metrics;
    if let Some(metric::Data::Sum(s)) = &mut metrics[0].data {
        s.data_points[1].exemplars.push(Exemplar {
            filtered_attributes: vec![kv("trace", "x")],
            ..Default::default()
        });
    }
    metrics[1].metadata.push(kv("m", "1"));
    let body = req.encode_to_vec();
    let walked = walk_request(&body).unwrap();
    let owned = walked.resources[0].scopes[0]
        .metrics
        .iter()
        .filter(|m| matches!(m, MetricView::Owned(_)))
        .count();
    assert_eq!(owned, 2);
    same(&body).unwrap();
}

fn kv_bytes(k: &str, v: &str) -> Vec<u8> {
    kv(k, v).encode_to_vec()
}

/// A request with one gauge whose only point is `point` (raw bytes).
fn gauge_request(point: &[u8]) -> Vec<u8> {
    let gauge = field(1, LEN, point);
    let mut metric = field(1, LEN, b"g");
    metric.extend(field(5, LEN, &gauge));
    let scope = field(2, LEN, &metric);
    let rm = field(2, LEN, &scope);
    field(1, LEN, &rm)
}

fn point(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn hand_written_points_match_prost() {
    let time = field(3, I64, &T.to_le_bytes());
    let value = field(4, I64, &1.5f64.to_le_bytes());
    let a = field(7, LEN, &kv_bytes("a", "1"));
    let b = field(7, LEN, &kv_bytes("b", "2"));
    // Attributes before, after, and split around other fields (the last is left to prost).
    for p in [
        point(&[a.clone(), b.clone(), time.clone(), value.clone()]),
        point(&[time.clone(), value.clone(), a.clone(), b.clone()]),
        point(&[a.clone(), time.clone(), b.clone(), value.clone()]),
    ] {
        let out = same(&gauge_request(&p)).unwrap();
        assert!(out.contains("\"a\"") && out.contains("\"b\""), "{out}");
    }
    // Unknown fields of every wire type are skipped, at every level.
    let unknown = [
        field(99, VARINT, &[0x96, 0x01]),
        field(98, I64, &[0; 8]),
        field(97, LEN, b"xyz"),
        field(96, I32, &[0; 4]),
    ]
    .concat();
    let p = point(&[unknown.clone(), time.clone(), value.clone(), a.clone()]);
    let mut body = gauge_request(&p);
    body.extend_from_slice(&unknown);
    assert!(walk_request(&body).is_ok());
    let out = same(&body).unwrap();
    assert!(out.contains("1.5"), "{out}");
    // as_int after as_double: the last one wins.
    let p = point(&[time.clone(), value.clone(), field(6, I64, &7i64.to_le_bytes())]);
    assert!(same(&gauge_request(&p)).unwrap().contains("value: 7.0"));
}

#[test]
fn malformed_bodies_give_prosts_error() {
    let time = field(3, I64, &T.to_le_bytes());
    let value = field(4, I64, &1.5f64.to_le_bytes());
    let good = gauge_request(&point(&[time.clone(), value.clone()]));
    let mut cases: Vec<Vec<u8>> = vec![
        // Truncated varint (a key with the continuation bit and nothing after).
        vec![0x8a],
        // A varint of 11 bytes.
        [vec![0x08], vec![0xff; 10], vec![0x01]].concat(),
        // Wrong wire type for resource_metrics.
        field(1, VARINT, &[1]),
        // Wrong wire type for a point's time.
        gauge_request(&field(3, VARINT, &[1])),
        // Length past the end.
        vec![0x0a, 0x05, 0x01],
        gauge_request(&[0x3a, 0x09, 0x0a, 0x01]),
        // Field number 0, wire type 7, a group.
        vec![0x02, 0x00],
        vec![0x0f],
        vec![0x0b],
        // Invalid UTF-8 in an attribute key and in a metric name.
        gauge_request(&field(7, LEN, &field(1, LEN, &[0xff, 0xfe]))),
        field(1, LEN, &field(2, LEN, &field(2, LEN, &field(1, LEN, &[0xc0])))),
        // Packed bucket counts that are not a multiple of 8 bytes.
        field(
            1,
            LEN,
            &field(
                2,
                LEN,
                &field(2, LEN, &field(9, LEN, &field(1, LEN, &field(6, LEN, &[0; 7])))),
            ),
        ),
    ];
    // Every truncation of a good body.
    for n in 1..good.len() {
        cases.push(good[..n].to_vec());
    }
    for body in cases {
        let (fused, generic) = both(&body);
        assert_eq!(fused, generic, "body {body:02x?}");
        if body.len() < 8 {
            assert!(fused.is_err(), "body {body:02x?} accepted: {fused:?}");
        }
    }
    assert!(same(&good).is_ok());
}

#[test]
fn reader_primitives() {
    let mut r = Reader::new(&[0xac, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
    assert_eq!(r.varint(), Ok(300));
    assert_eq!(r.fixed64(), Ok(0x0807060504030201));
    assert!(r.is_empty());
    assert_eq!(r.varint(), Err(Malformed));
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
    let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(Reader::new(&over).varint(), Err(Malformed));
    assert_eq!(Reader::new(&[0x05, 0x01]).bytes(), Err(Malformed));
    assert_eq!(Reader::new(&[0x08 | 6]).key(), Err(Malformed));
    assert_eq!(Reader::new(&[0x0b]).skip(3), Err(Malformed));
}
