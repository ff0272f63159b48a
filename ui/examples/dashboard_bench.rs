//! Dashboard rendering benchmark: a real database in a temp dir with 12 metrics × 1,000
//! series × 1 h at 15 s, and a 12-panel dashboard (time series, stacked, stat, gauge,
//! bargauge, table, heatmap) rendered server-side through the UI router many times.
//! Prints p50/p99/mean render time of the whole page (all panel queries included).
//!
//! `cargo run --release -p didban-ui --example dashboard_bench [-- --iterations 50]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use didban_store::logs::{LogOptions, LogStore};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::traces::{TraceOptions, TraceStore};
use didban_store::{Db, DbOptions, FsyncMode, Labels, Sample, SeriesSamples};
use didban_ui::UiContext;
use tower::ServiceExt;

const METRICS: usize = 12;
const SERIES: usize = 1000;
const STEP_MS: i64 = 15_000;
const SPAN_MS: i64 = 3_600_000;

/// Twelve panels over the twelve metrics, each aggregating all 1,000 series.
const DASHBOARD: &str = r#"
id: bench
title: Benchmark
variables:
  - name: shard
    type: query
    query: label_values(bench_m0_total, shard)
    multi: true
    include_all: true
panels:
  - {title: Rate by shard, type: timeseries, unit: ops, x: 0, y: 0, w: 12, h: 8,
     queries: [{expr: 'sum by (shard) (rate(bench_m0_total{shard=~"$shard"}[$__rate_interval]))', legend: '{{shard}}'}]}
  - {title: Top instances, type: timeseries, x: 12, y: 0, w: 12, h: 8,
     queries: [{expr: 'topk(5, sum by (instance) (rate(bench_m1_total[$__rate_interval])))', legend: '{{instance}}'}]}
  - {title: Stacked, type: stacked, x: 0, y: 8, w: 12, h: 8,
     queries: [{expr: 'sum by (shard) (bench_m2)', legend: '{{shard}}'}]}
  - {title: Average gauge, type: timeseries, x: 12, y: 8, w: 12, h: 8,
     queries: [{expr: 'avg by (shard) (bench_m3)', legend: '{{shard}}'}, {expr: 'max(bench_m3)', legend: max}]}
  - {title: Total rate, type: stat, unit: ops, x: 0, y: 16, w: 6, h: 4,
     queries: [{expr: 'sum(rate(bench_m4_total[$__rate_interval]))'}]}
  - {title: Mean, type: stat, x: 6, y: 16, w: 6, h: 4,
     queries: [{expr: 'avg(bench_m5)'}]}
  - {title: Usage, type: gauge, unit: percent, min: 0, max: 100, x: 12, y: 16, w: 6, h: 4,
     queries: [{expr: 'avg(bench_m6)'}]}
  - {title: Per shard, type: bargauge, x: 18, y: 16, w: 6, h: 4,
     queries: [{expr: 'sum by (shard) (bench_m7)', legend: '{{shard}}'}]}
  - {title: Top series, type: table, x: 0, y: 20, w: 12, h: 8,
     queries: [{expr: 'topk(20, rate(bench_m8_total[5m]))'}]}
  - {title: Latency, type: heatmap, unit: s, x: 12, y: 20, w: 12, h: 8,
     queries: [{expr: 'sum by (le) (rate(bench_m9_bucket[$__rate_interval]))', legend: '{{le}}'}]}
  - {title: p95, type: timeseries, unit: s, x: 0, y: 28, w: 12, h: 8,
     queries: [{expr: 'histogram_quantile(0.95, sum by (le) (rate(bench_m9_bucket[$__rate_interval])))', legend: p95}]}
  - {title: Ratio, type: timeseries, unit: percentunit, x: 12, y: 28, w: 12, h: 8,
     queries: [{expr: 'sum(rate(bench_m10_total[$__rate_interval])) / sum(rate(bench_m11_total[$__rate_interval]))', legend: ratio}]}
"#;

/// Name and whether the metric is a counter; metric 9 is a histogram (`le` label).
fn metric_name(m: usize) -> String {
    match m {
        9 => "bench_m9_bucket".to_string(),
        0 | 1 | 4 | 8 | 10 | 11 => format!("bench_m{m}_total"),
        _ => format!("bench_m{m}"),
    }
}

fn labels(m: usize, s: usize) -> Labels {
    let name = metric_name(m);
    if m == 9 {
        const LE: [&str; 10] = [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
        ];
        let instance = format!("host-{}", s / 10);
        return Labels::from_pairs([
            ("__name__", name.as_str()),
            ("instance", &instance),
            ("le", LE[s % 10]),
        ]);
    }
    let instance = format!("host-{}", s % 100);
    let shard = format!("shard-{}", s / 100);
    Labels::from_pairs([
        ("__name__", name.as_str()),
        ("instance", &instance),
        ("shard", &shard),
    ])
}

fn value(m: usize, s: usize, i: i64) -> f64 {
    let i = i as f64;
    let s = s as f64;
    match m {
        // histogram buckets: cumulative counts growing with the bucket index
        9 => i * (1.0 + (s % 10.0)),
        0 | 1 | 4 | 8 | 10 | 11 => i * (1.0 + s % 7.0) + (i * 0.37).sin().abs(),
        _ => 50.0 + 40.0 * ((i / 20.0) + s).sin(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let mut iterations = 30usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--iterations") {
        iterations = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .expect("--iterations N");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DbOptions::new(dir.path());
    opts.fsync = FsyncMode::Off;
    let db = Db::open(opts).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - SPAN_MS;
    let points = SPAN_MS / STEP_MS + 1;
    let t0 = Instant::now();
    let mut total = 0usize;
    for m in 0..METRICS {
        let mut batch = Vec::with_capacity(SERIES);
        for s in 0..SERIES {
            let samples: Vec<Sample> = (0..points)
                .map(|i| Sample::new(start + i * STEP_MS, value(m, s, i)))
                .collect();
            total += samples.len();
            batch.push(SeriesSamples {
                labels: labels(m, s),
                samples,
                histograms: Vec::new(),
            });
        }
        let report = db.append(batch).await.unwrap();
        assert_eq!(report.rejected_total(), 0, "samples refused");
    }
    println!(
        "wrote {METRICS} metrics × {SERIES} series × {points} samples = {total} samples in {:.1?}",
        t0.elapsed()
    );
    let db = Arc::new(db);
    let logs = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    let traces = Arc::new(TraceStore::open(TraceOptions::new(dir.path())).unwrap());
    let ctx = UiContext {
        reader: db.clone(),
        figures: std::sync::Arc::new(didban_ui::signal_reads::LocalFigures {
            db: db.clone(),
            traces: traces.clone(),
            logs: logs.clone(),
        }),
        db,
        engine: Arc::new(Engine::new(EngineOptions::default())),
        query_limiter: Arc::new(didban_store::promql::QueryLimiter::new(4, 64)),
        query_timeout: std::time::Duration::from_secs(120),
        log_reads: logs.clone(),
        logs,
        trace_reads: traces.clone(),
        traces,
        exemplars: Arc::new(
            didban_store::ExemplarStore::open(didban_store::ExemplarOptions::new(dir.path())).unwrap(),
        ),
        alerting: None,
        data_dir: dir.path().to_path_buf(),
        dashboard_dirs: Vec::new(),
    };
    let user = dir.path().join("dashboards");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("bench.yaml"), DASHBOARD).unwrap();
    let app = didban_ui::router(ctx);
    let render = || async {
        let req = Request::get("/dashboards/bench?from=now-1h&to=now")
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    };
    let first = render().await;
    let errors = first.matches("class=\"panel-error\"").count();
    let empty = first.matches("class=\"panel-empty\"").count();
    println!(
        "page: {} bytes, {} panels, {errors} panel errors, {empty} empty panels",
        first.len(),
        first.matches("<section class=\"panel").count()
    );
    assert_eq!(errors + empty, 0, "every panel should draw data");
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let _ = render().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "render 12-panel dashboard over {} series, {iterations} runs: p50 {:.1} ms, p99 {:.1} ms, mean {:.1} ms, min {:.1} ms, max {:.1} ms",
        METRICS * SERIES,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        mean,
        times[0],
        times[times.len() - 1]
    );
}
