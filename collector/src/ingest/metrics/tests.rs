//! Unit tests of the OTLP → Prometheus mapping, one per metric type and rule.
#![allow(clippy::unwrap_used)]

use didban_store::model::is_stale_nan;
use didban_store::{Labels, SeriesLimits, SeriesSamples};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets as ExpBuckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use prost::Message;

use super::delta::DeltaTracker;
use super::map::{map_request, MapOptions, Mapped, SharedLabels, FLAG_NO_RECORDED_VALUE};
use super::wire::decode_and_map;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

use didban_testkit::kv;

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "my.lib".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn service() -> Vec<KeyValue> {
    vec![
        kv("service.name", "api"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "host-1:8080"),
        kv("host.name", "host-1"),
        kv("deployment.environment", "prod"),
    ]
}

fn number(time: u64, start: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn sum(points: Vec<NumberDataPoint>, temporality: i32, monotonic: bool) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

/// A delta tracker and shared labels for the borrowing decoder's runs.
type Shadow = (Rc<DeltaTracker>, Rc<SharedLabels>);

thread_local! {
    /// Per tracker of a test (by address), the tracker of the same history that the
    /// borrowing decoder's runs use.
    static SHADOW: RefCell<HashMap<usize, Shadow>> = RefCell::new(HashMap::new());
}

/// Maps `req` with [`map_request`] and checks that the borrowing decoder gives exactly the
/// same result from its protobuf encoding (with a delta tracker of the same history).
fn run(req: &ExportMetricsServiceRequest, tracker: &DeltaTracker) -> Mapped {
    run_limited(req, tracker, &SeriesLimits::default())
}

fn run_limited(req: &ExportMetricsServiceRequest, tracker: &DeltaTracker, limits: &SeriesLimits) -> Mapped {
    let mapped = map_request(
        req,
        &MapOptions {
            limits,
            delta: tracker,
            shared: None,
            histograms_to_nhcb: false,
        },
    );
    // With labels shared across the requests of one test.
    let (shadow, shared) = SHADOW.with(|s| {
        s.borrow_mut()
            .entry(tracker as *const DeltaTracker as usize)
            .or_insert_with(|| (Rc::new(tracker.empty_like()), Rc::new(SharedLabels::default())))
            .clone()
    });
    let fused = decode_and_map(
        &req.encode_to_vec(),
        &MapOptions {
            limits,
            delta: &shadow,
            shared: Some(&shared),
            histograms_to_nhcb: false,
        },
    )
    .unwrap();
    assert_eq!(
        format!("{fused:?}"),
        format!("{mapped:?}"),
        "borrowing decoder differs"
    );
    mapped
}

fn find<'a>(mapped: &'a Mapped, name: &str, extra: &[(&str, &str)]) -> &'a SeriesSamples {
    let mut found = None;
    for s in &mapped.series {
        if s.labels.metric_name() != Some(name) {
            continue;
        }
        if extra.iter().all(|(k, v)| s.labels.get(k) == Some(*v)) {
            found = Some(s);
        }
    }
    found.unwrap_or_else(|| panic!("no series {name} {extra:?} in {:#?}", names(mapped)))
}

fn names(mapped: &Mapped) -> Vec<String> {
    mapped.series.iter().map(|s| s.labels.to_string()).collect()
}

fn values(s: &SeriesSamples) -> Vec<f64> {
    s.samples.iter().map(|x| x.value).collect()
}

#[test]
fn gauge_gets_job_instance_scope_and_sanitised_labels() {
    let req = request(
        service(),
        vec![metric(
            "system.cpu.utilization",
            "1",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(T0, 0, 0.25, vec![kv("cpu.state", "idle")])],
            }),
        )],
    );
    let m = run(&req, &DeltaTracker::new(0));
    assert_eq!(m.rejected_points, 0, "{:?}", m.first_error);
    let s = find(&m, "system_cpu_utilization_ratio", &[]);
    let expected = Labels::from_pairs([
        ("__name__", "system_cpu_utilization_ratio"),
        ("cpu_state", "idle"),
        ("instance", "host-1:8080"),
        ("job", "shop/api"),
        ("otel_scope_name", "my.lib"),
        ("otel_scope_version", "1.2"),
    ]);
    assert_eq!(s.labels, expected);
    assert_eq!(s.samples[0].timestamp_ms, (T0 / 1_000_000) as i64);
    assert_eq!(s.samples[0].value, 0.25);
}

#[test]
fn target_info_holds_the_other_resource_attributes() {
    let req = request(
        service(),
        vec![metric(
            "g",
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(T0, 0, 1.0, vec![]), number(T0 + SEC, 0, 2.0, vec![])],
            }),
        )],
    );
    let m = run(&req, &DeltaTracker::new(0));
    let info = find(&m, "target_info", &[]);
    assert_eq!(info.labels.get("job"), Some("shop/api"));
    assert_eq!(info.labels.get("instance"), Some("host-1:8080"));
    assert_eq!(info.labels.get("host_name"), Some("host-1"));
    assert_eq!(info.labels.get("deployment_environment"), Some("prod"));
    assert_eq!(info.labels.get("service_name"), None);
    assert_eq!(info.samples.len(), 1);
    assert_eq!(info.samples[0].value, 1.0);
    assert_eq!(info.samples[0].timestamp_ms, ((T0 + SEC) / 1_000_000) as i64);
    // Only service attributes: no target_info; service.name alone gives job = name.
    let req = request(
        vec![kv("service.name", "solo")],
        vec![metric(
            "g",
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(T0, 0, 1.0, vec![])],
            }),
        )],
    );
    let m = run(&req, &DeltaTracker::new(0));
    assert_eq!(m.series.len(), 1, "{:?}", names(&m));
    assert_eq!(m.series[0].labels.get("job"), Some("solo"));
}

#[test]
fn cumulative_sums_become_counters_or_gauges() {
    let req = request(
        service(),
        vec![
            metric(
                "http.requests",
                "{request}",
                sum(vec![number(T0, T0 - SEC, 7.0, vec![])], 2, true),
            ),
            metric(
                "queue.size",
                "By",
                sum(vec![number(T0, T0 - SEC, -3.0, vec![])], 2, false),
            ),
        ],
    );
    let m = run(&req, &DeltaTracker::new(0));
    assert_eq!(values(find(&m, "http_requests_total", &[])), vec![7.0]);
    assert_eq!(values(find(&m, "queue_size_bytes", &[])), vec![-3.0]);
}

#[test]
fn delta_sums_accumulate_across_requests() {
    let tracker = DeltaTracker::new(0);
    let make = |start: u64, time: u64, v: f64| {
        request(
            service(),
            vec![metric(
                "jobs.done",
                "",
                sum(vec![number(time, start, v, vec![])], 1, true),
            )],
        )
    };
    let m = run(&make(T0, T0 + SEC, 2.0), &tracker);
    assert_eq!(values(find(&m, "jobs_done_total", &[])), vec![2.0]);
    let m = run(&make(T0 + SEC, T0 + 2 * SEC, 3.0), &tracker);
    assert_eq!(values(find(&m, "jobs_done_total", &[])), vec![5.0]);
    // A retry of the same point is refused, the total unchanged.
    let m = run(&make(T0 + SEC, T0 + 2 * SEC, 3.0), &tracker);
    assert_eq!(m.rejected_points, 1);
    assert!(m.first_error.unwrap().contains("not after the last point"));
    // Non-monotonic delta sums accumulate too, as gauges.
    let req = request(
        service(),
        vec![metric(
            "balance",
            "",
            sum(
                vec![
                    number(T0 + SEC, T0, 5.0, vec![]),
                    number(T0 + 2 * SEC, T0 + SEC, -2.0, vec![]),
                ],
                1,
                false,
            ),
        )],
    );
    let m = run(&req, &tracker);
    assert_eq!(values(find(&m, "balance", &[])), vec![5.0, 3.0]);
}

#[test]
fn explicit_histogram_gives_buckets_sum_and_count() {
    let point = |time: u64, start: u64, counts: Vec<u64>, total: u64, s: f64| HistogramDataPoint {
        attributes: vec![kv("route", "/x")],
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: total,
        sum: Some(s),
        bucket_counts: counts,
        explicit_bounds: vec![0.1, 1.0],
        ..Default::default()
    };
    let hist = |p: HistogramDataPoint, temporality: i32| {
        request(
            service(),
            vec![metric(
                "http.server.duration",
                "s",
                metric::Data::Histogram(Histogram {
                    data_points: vec![p],
                    aggregation_temporality: temporality,
                }),
            )],
        )
    };
    let tracker = DeltaTracker::new(0);
    let m = run(&hist(point(T0, T0 - SEC, vec![1, 2, 3], 6, 9.5), 2), &tracker);
    let n = "http_server_duration_seconds";
    assert_eq!(
        values(find(&m, &format!("{n}_bucket"), &[("le", "0.1")])),
        vec![1.0]
    );
    assert_eq!(
        values(find(&m, &format!("{n}_bucket"), &[("le", "1")])),
        vec![3.0]
    );
    assert_eq!(
        values(find(&m, &format!("{n}_bucket"), &[("le", "+Inf")])),
        vec![6.0]
    );
    assert_eq!(values(find(&m, &format!("{n}_sum"), &[])), vec![9.5]);
    assert_eq!(
        values(find(&m, &format!("{n}_count"), &[("route", "/x")])),
        vec![6.0]
    );
    // Delta histograms are summed per bucket.
    run(&hist(point(T0 + SEC, T0, vec![1, 0, 0], 1, 0.05), 1), &tracker);
    let m = run(
        &hist(point(T0 + 2 * SEC, T0 + SEC, vec![0, 1, 1], 2, 3.0), 1),
        &tracker,
    );
    assert_eq!(
        values(find(&m, &format!("{n}_bucket"), &[("le", "0.1")])),
        vec![1.0]
    );
    assert_eq!(
        values(find(&m, &format!("{n}_bucket"), &[("le", "1")])),
        vec![2.0]
    );
    assert_eq!(values(find(&m, &format!("{n}_count"), &[])), vec![3.0]);
    assert_eq!(values(find(&m, &format!("{n}_sum"), &[])), vec![3.05]);
    // Malformed: bucket counts do not match bounds.
    let m = run(&hist(point(T0, 0, vec![1, 2], 3, 1.0), 2), &tracker);
    assert_eq!(m.rejected_points, 1);
    assert!(m
        .first_error
        .unwrap()
        .contains("2 bucket counts for 2 explicit bounds"));
}

fn exp_request(p: ExponentialHistogramDataPoint, temporality: i32) -> ExportMetricsServiceRequest {
    request(
        service(),
        vec![metric(
            "latency",
            "ms",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![p],
                aggregation_temporality: temporality,
            }),
        )],
    )
}

#[test]
fn exponential_histogram_becomes_one_native_histogram_series() {
    let p = ExponentialHistogramDataPoint {
        time_unix_nano: T0,
        start_time_unix_nano: T0 - SEC,
        count: 6,
        sum: Some(12.0),
        scale: 0,
        zero_count: 1,
        positive: Some(ExpBuckets {
            offset: 0,
            bucket_counts: vec![2, 1],
        }),
        negative: Some(ExpBuckets {
            offset: 1,
            bucket_counts: vec![2],
        }),
        ..Default::default()
    };
    let m = run(&exp_request(p.clone(), 2), &DeltaTracker::new(0));
    // One series besides target_info: no `_bucket`, `_sum` or `_count`.
    assert_eq!(m.series.len(), 2, "{:?}", m.series);
    let s = find(&m, "latency_milliseconds", &[]);
    assert!(s.samples.is_empty());
    assert_eq!(s.histograms.len(), 1);
    let h = &s.histograms[0].h;
    assert_eq!(s.histograms[0].timestamp_ms, (T0 / 1_000_000) as i64);
    assert_eq!((h.schema, h.count, h.sum, h.zero_count), (0, 6.0, 12.0, 1.0));
    assert_eq!(h.positive_pairs(), vec![(1, 2.0), (2, 1.0)]);
    assert_eq!(h.negative_pairs(), vec![(2, 2.0)]);
    assert_eq!(m.sample_count(), 2);

    // Delta points accumulate; a point without a recorded value is the stale marker.
    let tracker = DeltaTracker::new(0);
    run(&exp_request(p.clone(), 1), &tracker);
    let mut next = p.clone();
    next.start_time_unix_nano = T0;
    next.time_unix_nano = T0 + SEC;
    let m = run(&exp_request(next.clone(), 1), &tracker);
    let h = &find(&m, "latency_milliseconds", &[]).histograms[0].h;
    assert_eq!((h.count, h.sum), (12.0, 24.0));
    assert_eq!(h.positive_pairs(), vec![(1, 4.0), (2, 2.0)]);
    next.time_unix_nano = T0 + 2 * SEC;
    next.flags = 1;
    let m = run(&exp_request(next, 2), &tracker);
    assert!(find(&m, "latency_milliseconds", &[]).histograms[0].h.is_stale());

    // Scale below -4: refused, naming the metric and the scale.
    let mut bad = p;
    bad.scale = -5;
    let m = run(&exp_request(bad, 2), &DeltaTracker::new(0));
    assert_eq!(m.rejected_points, 1);
    let e = m.first_error.unwrap();
    assert!(e.contains("\"latency\"") && e.contains("scale -5"), "{e}");
}

#[test]
fn summary_gives_quantiles_sum_and_count() {
    let req = request(
        service(),
        vec![metric(
            "rpc.duration",
            "s",
            metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T0,
                    count: 10,
                    sum: 4.0,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.3,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 0.9,
                        },
                    ],
                    ..Default::default()
                }],
            }),
        )],
    );
    let m = run(&req, &DeltaTracker::new(0));
    assert_eq!(
        values(find(&m, "rpc_duration_seconds", &[("quantile", "0.5")])),
        vec![0.3]
    );
    assert_eq!(
        values(find(&m, "rpc_duration_seconds", &[("quantile", "0.99")])),
        vec![0.9]
    );
    assert_eq!(values(find(&m, "rpc_duration_seconds_sum", &[])), vec![4.0]);
    assert_eq!(values(find(&m, "rpc_duration_seconds_count", &[])), vec![10.0]);
}

#[test]
fn no_recorded_value_is_a_stale_marker_and_nan_inf_pass_through() {
    let mut stale = number(T0, 0, 0.0, vec![]);
    stale.flags = FLAG_NO_RECORDED_VALUE;
    stale.value = None;
    let req = request(
        service(),
        vec![
            metric(
                "gone",
                "",
                metric::Data::Gauge(Gauge {
                    data_points: vec![stale],
                }),
            ),
            metric(
                "odd",
                "",
                metric::Data::Gauge(Gauge {
                    data_points: vec![
                        number(T0, 0, f64::NAN, vec![kv("k", "nan")]),
                        number(T0, 0, f64::INFINITY, vec![kv("k", "inf")]),
                    ],
                }),
            ),
        ],
    );
    let m = run(&req, &DeltaTracker::new(0));
    assert_eq!(m.rejected_points, 0);
    assert!(is_stale_nan(find(&m, "gone", &[]).samples[0].value));
    let nan = find(&m, "odd", &[("k", "nan")]).samples[0].value;
    assert!(nan.is_nan() && !is_stale_nan(nan));
    assert_eq!(find(&m, "odd", &[("k", "inf")]).samples[0].value, f64::INFINITY);
}

#[test]
fn colliding_attribute_names_are_joined_and_bad_points_are_counted() {
    let attrs = vec![kv("a.b", "2"), kv("a_b", "1"), kv("__name__", "evil")];
    let mut no_value = number(T0, 0, 0.0, vec![]);
    no_value.value = None;
    let req = request(
        service(),
        vec![
            metric(
                "m",
                "",
                metric::Data::Gauge(Gauge {
                    data_points: vec![number(T0, 0, 1.0, attrs)],
                }),
            ),
            metric(
                "n",
                "",
                metric::Data::Gauge(Gauge {
                    data_points: vec![no_value, number(0, 0, 1.0, vec![])],
                }),
            ),
            metric("c", "", sum(vec![number(T0, 0, 1.0, vec![])], 0, true)),
            Metric {
                name: "empty".into(),
                ..Default::default()
            },
        ],
    );
    let m = run(&req, &DeltaTracker::new(0));
    let s = find(&m, "m", &[]);
    // Ordered by original key: "a.b" < "a_b".
    assert_eq!(s.labels.get("a_b"), Some("2;1"));
    assert_eq!(s.labels.get("key__name_"), Some("evil"));
    assert_eq!(m.points, 5);
    assert_eq!(m.rejected_points, 4);
    assert_eq!(
        m.first_error.as_deref(),
        Some("data point of metric \"n\" has no value")
    );
    assert_eq!(m.rejected_by_reason.get("invalid_data_point"), Some(&4));
}

#[test]
fn huge_label_values_refuse_the_point_by_name() {
    let req = request(
        service(),
        vec![metric(
            "m",
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![
                    number(T0, 0, 1.0, vec![kv("big", &"x".repeat(10_000))]),
                    number(T0, 0, 1.0, vec![]),
                ],
            }),
        )],
    );
    let m = run(&req, &DeltaTracker::new(0));
    assert_eq!(m.rejected_points, 1);
    assert!(m
        .first_error
        .unwrap()
        .starts_with("value of label \"big\" is 10000 bytes"));
    assert_eq!(m.rejected_by_reason.get("label_value_too_long"), Some(&1));
}
