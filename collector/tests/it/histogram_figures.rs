//! Figures for docs/benchmarks.md ("Native vs classic histograms"), not a check: the same
//! request latencies sent as OTLP explicit-bucket histograms (stored classic, and as NHCB)
//! and as OTLP exponential histograms (stored native), mapped by the OTLP mapping and
//! cut into blocks; bytes per histogram point on disk and in the head, and the latency of
//! `histogram_quantile` over each. Run by hand:
//! `cargo nextest run -p didban-collector --run-ignored only histogram_figures --no-capture`.

use std::path::Path;
use std::time::{Duration, Instant};

use didban_collector::ingest::metrics::delta::DeltaTracker;
use didban_collector::ingest::metrics::map::{map_request, MapOptions};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::{Db, DbOptions, SeriesLimits};
use didban_testkit::rng::SeededRng;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, ExponentialHistogram, ExponentialHistogramDataPoint,
    Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::ingest_support::kv;

const SERVICES: usize = 10;
const ROUTES: usize = 5;
const STEP_MS: i64 = 15_000;
const HOURS: i64 = 6;
/// Requests per series per 15 s.
const PER_STEP: usize = 20;
/// The OpenTelemetry SDKs' default explicit bounds (milliseconds there, seconds here).
const BOUNDS: [f64; 15] = [
    0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The scale an SDK's 160-bucket exponential aggregation settles on for 5 ms – 3 s.
const SCALE: i32 = 4;

/// How the same observations are sent and stored.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Classic,
    Nhcb,
    Exponential,
}

/// Cumulative state of one series: explicit counts, exponential counts by OTLP index.
struct Totals {
    explicit: Vec<u64>,
    exponential: std::collections::BTreeMap<i32, u64>,
    count: u64,
    sum: f64,
}

fn otlp_index(v: f64) -> i32 {
    // OTLP bucket i is (base^i, base^(i+1)], base = 2^(2^-SCALE).
    let scaled = v.log2() * f64::from(1 << SCALE);
    (scaled.ceil() as i32) - 1
}

fn request(form: Form, time_ms: i64, totals: &[Totals]) -> ExportMetricsServiceRequest {
    let mut metrics = Vec::new();
    let time_unix_nano = u64::try_from(time_ms).unwrap() * 1_000_000;
    let mut explicit_points = Vec::new();
    let mut exp_points = Vec::new();
    for (i, t) in totals.iter().enumerate() {
        let attributes = vec![
            kv("service", &format!("svc{}", i / ROUTES)),
            kv("route", &format!("/r{}", i % ROUTES)),
        ];
        if form == Form::Exponential {
            let (offset, counts) = match (t.exponential.keys().next(), t.exponential.keys().last()) {
                (Some(lo), Some(hi)) => {
                    let mut counts = vec![0u64; (hi - lo + 1) as usize];
                    for (k, c) in &t.exponential {
                        counts[(k - lo) as usize] = *c;
                    }
                    (*lo, counts)
                }
                _ => (0, Vec::new()),
            };
            exp_points.push(ExponentialHistogramDataPoint {
                attributes,
                time_unix_nano,
                count: t.count,
                sum: Some(t.sum),
                scale: SCALE,
                positive: Some(Buckets {
                    offset,
                    bucket_counts: counts,
                }),
                ..Default::default()
            });
        } else {
            explicit_points.push(HistogramDataPoint {
                attributes,
                time_unix_nano,
                count: t.count,
                sum: Some(t.sum),
                explicit_bounds: BOUNDS.to_vec(),
                bucket_counts: t.explicit.clone(),
                ..Default::default()
            });
        }
    }
    let data = if form == Form::Exponential {
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: exp_points,
            aggregation_temporality: 2,
        })
    } else {
        metric::Data::Histogram(Histogram {
            data_points: explicit_points,
            aggregation_temporality: 2,
        })
    };
    metrics.push(Metric {
        name: "http.server.duration".into(),
        unit: "s".into(),
        data: Some(data),
        ..Default::default()
    });
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop")],
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

fn options(dir: &Path) -> DbOptions {
    let mut o = DbOptions::new(dir);
    o.retention_time = Duration::ZERO;
    o.max_sample_age = Duration::from_secs(48 * 3600);
    o
}

fn time_query(db: &Db, expr: &str, start: i64, end: i64) -> Duration {
    let engine = Engine::new(EngineOptions::default());
    let t = Instant::now();
    let r = engine.range_query(db, expr, start, end, 60_000).unwrap();
    assert!(format!("{:?}", r.value).len() > 100, "{expr} answered nothing");
    t.elapsed()
}

#[tokio::test]
#[ignore = "figures for docs/benchmarks.md, run by hand"]
async fn native_vs_classic_histograms_on_disk_and_in_queries() {
    let end = didban_base::now_ms() / 3_600_000 * 3_600_000;
    let start = end - HOURS * 3_600_000;
    let limits = SeriesLimits::default();
    let forms = [Form::Classic, Form::Nhcb, Form::Exponential];
    let mut dirs = Vec::new();
    let mut dbs = Vec::new();
    for _ in forms {
        let dir = tempfile::tempdir().unwrap();
        dbs.push(Db::open(options(dir.path())).unwrap());
        dirs.push(dir);
    }
    let deltas: Vec<DeltaTracker> = forms.iter().map(|_| DeltaTracker::new(0)).collect();
    let mut rng = SeededRng::new(14);
    let mut totals: Vec<Totals> = (0..SERVICES * ROUTES)
        .map(|_| Totals {
            explicit: vec![0; BOUNDS.len() + 1],
            exponential: Default::default(),
            count: 0,
            sum: 0.0,
        })
        .collect();
    let mut points = 0u64;
    let mut float_samples = [0u64; 3];
    let mut t = start;
    while t < end {
        for (i, s) in totals.iter_mut().enumerate() {
            let median = 0.02 * (1 + i % 7) as f64;
            for _ in 0..PER_STEP {
                let v = rng.lognormal(median, 0.9).clamp(0.001, 30.0);
                let b = BOUNDS.iter().position(|b| v <= *b).unwrap_or(BOUNDS.len());
                s.explicit[b] += 1;
                *s.exponential.entry(otlp_index(v)).or_insert(0) += 1;
                s.count += 1;
                s.sum += v;
            }
        }
        points += totals.len() as u64;
        for (k, form) in forms.iter().enumerate() {
            let req = request(*form, t, &totals);
            let mapped = map_request(
                &req,
                &MapOptions {
                    limits: &limits,
                    delta: &deltas[k],
                    shared: None,
                    histograms_to_nhcb: *form == Form::Nhcb,
                },
            );
            assert_eq!(mapped.rejected_points, 0, "{:?}", mapped.first_error);
            for s in &mapped.series {
                float_samples[k] += s.samples.len() as u64;
            }
            dbs[k].append(mapped.series).await.unwrap();
        }
        t += STEP_MS;
        if (t - start) % (2 * 3_600_000) == 0 {
            for db in &dbs {
                db.flush_head().unwrap();
            }
        }
    }
    for db in &dbs {
        db.flush_head().unwrap();
    }
    println!(
        "{points} histogram points of {} series, {HOURS} h at 15 s",
        totals.len()
    );
    println!("| form | float samples | block bytes | bytes per histogram point |");
    for (k, form) in forms.iter().enumerate() {
        let stats = dbs[k].stats();
        println!(
            "| {form:?} | {} | {} | {:.2} |",
            float_samples[k],
            stats.block_bytes,
            stats.block_bytes as f64 / points as f64
        );
    }
    let queries = [
        "histogram_quantile(0.95, sum by (le, service) (rate(http_server_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.95, sum by (service) (rate(http_server_duration_seconds[5m])))",
        "histogram_quantile(0.95, sum by (service) (rate(http_server_duration_seconds[5m])))",
    ];
    println!("| form | query | median of 5, 6 h at 60 s |");
    for (k, form) in forms.iter().enumerate() {
        let _ = time_query(&dbs[k], queries[k], start, end);
        let mut runs: Vec<Duration> = (0..5)
            .map(|_| time_query(&dbs[k], queries[k], start, end))
            .collect();
        runs.sort();
        println!(
            "| {form:?} | `{}` | {:.1} ms |",
            queries[k],
            runs[2].as_secs_f64() * 1000.0
        );
    }
}
