//! Times the OTLP metrics hot path without a server: protobuf decoding and the mapping to
//! series, on requests shaped like `didban-bench`'s (node-exporter-like hosts, 4 hosts ×
//! 4 samples per request, a 24-series latency histogram per host).
//!
//! ```sh
//! cargo run --release -p didban-collector --example otlp_metrics_map -- 200
//! valgrind --tool=callgrind target/release/examples/otlp_metrics_map 20
//! ```

use std::time::Instant;

use didban_collector::ingest::metrics::delta::DeltaTracker;
use didban_collector::ingest::metrics::map::{MapOptions, SharedLabels};
use didban_collector::ingest::metrics::wire::decode_and_map;
use didban_store::SeriesLimits;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use didban_testkit::kv;

const BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// (name, counter?, label sets) of one host.
fn families() -> Vec<(String, bool, Vec<Vec<KeyValue>>)> {
    let mut f = Vec::new();
    let mut cpu = Vec::new();
    for c in 0..4 {
        for m in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            cpu.push(vec![kv("cpu", &c.to_string()), kv("mode", m)]);
        }
    }
    f.push(("node_cpu_seconds".to_string(), true, cpu));
    for i in 0..12 {
        f.push((format!("node_memory_m{i}_bytes"), false, vec![vec![]]));
    }
    for i in 0..3 {
        f.push((format!("node_load{i}"), false, vec![vec![]]));
    }
    for i in 0..8 {
        let sets = (0..4).map(|d| vec![kv("device", &format!("eth{d}"))]).collect();
        f.push((format!("node_network_n{i}"), true, sets));
    }
    for i in 0..5 {
        let sets = (0..5)
            .map(|d| {
                vec![
                    kv("device", &format!("/dev/sda{d}")),
                    kv("fstype", "ext4"),
                    kv("mountpoint", &format!("/mnt/{d}")),
                ]
            })
            .collect();
        f.push((format!("node_filesystem_f{i}_bytes"), false, sets));
    }
    for i in 0..5 {
        let sets = (0..3).map(|d| vec![kv("device", &format!("sd{d}"))]).collect();
        f.push((format!("node_disk_d{i}"), true, sets));
    }
    f
}

fn request(hosts: usize, step0: usize) -> ExportMetricsServiceRequest {
    let mut req = ExportMetricsServiceRequest::default();
    let fams = families();
    for h in 0..hosts {
        let mut metrics = Vec::new();
        for (name, counter, sets) in &fams {
            let mut points = Vec::new();
            for (si, a) in sets.iter().enumerate() {
                for j in 0..4 {
                    points.push(NumberDataPoint {
                        attributes: a.clone(),
                        start_time_unix_nano: 1_000_000_000,
                        time_unix_nano: (1_700_000_000_000 + (step0 + j) as u64 * 15_000) * 1_000_000,
                        value: Some(number_data_point::Value::AsDouble((si * 7 + j) as f64 * 1.5)),
                        ..Default::default()
                    });
                }
            }
            let data = if *counter {
                metric::Data::Sum(Sum {
                    data_points: points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })
            } else {
                metric::Data::Gauge(Gauge { data_points: points })
            };
            metrics.push(Metric {
                name: name.clone(),
                data: Some(data),
                ..Default::default()
            });
        }
        let mut hists = Vec::new();
        for handler in ["/a", "/b", "/c", "/d", "/e", "/f"] {
            for method in ["GET", "POST"] {
                for status in ["200", "500"] {
                    for j in 0..4u64 {
                        let counts: Vec<u64> = (0..12).map(|i| i + j).collect();
                        hists.push(HistogramDataPoint {
                            attributes: vec![
                                kv("handler", handler),
                                kv("method", method),
                                kv("status", status),
                            ],
                            start_time_unix_nano: 1_000_000_000,
                            time_unix_nano: (1_700_000_000_000 + (step0 as u64 + j) * 15_000) * 1_000_000,
                            count: counts.iter().sum(),
                            sum: Some(12.5 * j as f64),
                            bucket_counts: counts,
                            explicit_bounds: BOUNDS.to_vec(),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        metrics.push(Metric {
            name: "http_request_duration".to_string(),
            unit: "s".to_string(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: hists,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        });
        req.resource_metrics.push(ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "node"),
                    kv("service.instance.id", &format!("host-{h}:9100")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    req
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let bodies: Vec<bytes::Bytes> = (0..8)
        .map(|i| bytes::Bytes::from(request(4, i * 4).encode_to_vec()))
        .collect();
    let limits = SeriesLimits::default();
    let delta = DeltaTracker::new(1000);
    let shared = SharedLabels::default();
    let options = MapOptions {
        limits: &limits,
        delta: &delta,
        shared: None,
        histograms_to_nhcb: false,
    };
    let shared_options = MapOptions {
        limits: &limits,
        delta: &delta,
        shared: Some(&shared),
        histograms_to_nhcb: false,
    };
    let mut samples = 0u64;
    let mut fused_samples = 0u64;
    let mut decode_ns = 0u128;
    let mut map_ns = 0u128;
    let mut fused_ns = 0u128;
    let start = Instant::now();
    for r in 0..rounds {
        let body = &bodies[r % bodies.len()];
        let t0 = Instant::now();
        let request = ExportMetricsServiceRequest::decode(body.clone()).unwrap_or_default();
        let t1 = Instant::now();
        let mapped = didban_collector::ingest::metrics::map::map_request(&request, &options);
        let t2 = Instant::now();
        drop(request);
        decode_ns += (t1 - t0).as_nanos();
        map_ns += (t2 - t1).as_nanos();
        samples += mapped.sample_count();
        let t3 = Instant::now();
        let fused = decode_and_map(body, &shared_options)
            .map(|m| m.sample_count())
            .unwrap_or(0);
        fused_ns += t3.elapsed().as_nanos();
        fused_samples += fused;
    }
    let total = start.elapsed();
    let m = samples as f64 / 1e6;
    println!(
        "{rounds} requests, {samples} samples ({} bytes/request): prost decode {:.3} s/M samples, map {:.3} s/M samples; borrowing decode+map (labels shared across requests) {:.3} s/M samples ({fused_samples} samples); total loop {:.2?}",
        bodies[0].len(),
        decode_ns as f64 / 1e9 / m,
        map_ns as f64 / 1e9 / m,
        fused_ns as f64 / 1e9 / m,
        total
    );
}
