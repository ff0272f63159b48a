//! Figures for docs/benchmarks.md ("Span-derived duration histograms"), not a check: the disk
//! cost of an hour of span-derived duration histograms, native vs classic, for the same spans
//! (four endpoints, 25 log-normal spans each per 10 s batch), in the metric store's Parquet
//! blocks. Run by hand:
//! `cargo nextest run -p didban-collector --run-ignored only span_metrics_figures --no-capture`.

use std::path::Path;
use std::time::Duration;

use didban_collector::config::traces_logs::FaasConfig;
use didban_collector::ingest::traces::span_metrics::{DurationLayout, SpanMetrics};
use didban_store::traces::{kind, Span};
use didban_store::{Db, DbOptions};
use didban_testkit::now_ms;
use didban_testkit::rng::SeededRng;

const ENDPOINTS: [(&str, f64); 4] = [
    ("GET /", 0.040),
    ("GET /search", 0.120),
    ("POST /checkout", 0.350),
    ("GET /report", 0.900),
];
const SPANS_PER_ENDPOINT: usize = 25;
const STEP_MS: i64 = 10_000;
const BATCHES: i64 = 360;

fn span(name: &str, seconds: f64) -> Span {
    Span {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: "00f067aa0ba902b7".into(),
        parent_span_id: String::new(),
        trace_state: String::new(),
        name: name.into(),
        kind: kind::SERVER,
        service: "shop".into(),
        start_unix_nano: 1,
        duration_nano: (seconds * 1e9) as i64,
        status_code: 0,
        status_message: String::new(),
        attributes: Default::default(),
        resource: Default::default(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Block bytes, float samples, histogram samples and their populated buckets, of the
/// duration series only.
async fn measure(layout: DurationLayout) -> (u64, usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = DbOptions::new(dir.path());
    options.max_sample_age = Duration::from_secs(3 * 3600);
    let db = Db::open(options).unwrap();
    let meter = SpanMetrics::new(layout, FaasConfig::default());
    let mut rng = SeededRng::new(3);
    let start = now_ms() - BATCHES * STEP_MS;
    let (mut floats, mut histograms, mut buckets) = (0, 0, 0);
    for b in 0..BATCHES {
        let mut spans = Vec::new();
        for (name, median) in ENDPOINTS {
            for _ in 0..SPANS_PER_ENDPOINT {
                let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                let v = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                let normal = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                spans.push(span(name, (median * (0.7 * normal).exp()).clamp(0.005, 3.0)));
            }
        }
        let mut out = meter.observe(&spans, start + b * STEP_MS).samples;
        // Only the duration series: calls and errors are the same in both layouts.
        out.retain(|s| {
            s.labels
                .metric_name()
                .is_some_and(|n| n.starts_with("traces_span_metrics_duration_seconds"))
        });
        for s in &out {
            floats += s.samples.len();
            histograms += s.histograms.len();
            for h in &s.histograms {
                buckets += h.h.positive_buckets.len();
            }
        }
        db.append(out).await.unwrap();
    }
    db.flush_head().unwrap();
    let bytes = dir_bytes(db.blocks_dir());
    db.close().await.unwrap();
    (bytes, floats, histograms, buckets)
}

#[tokio::test]
#[ignore = "figures for docs/benchmarks.md, run by hand"]
async fn span_duration_histogram_disk_cost_native_vs_classic() {
    let (native_bytes, _, native_samples, buckets) = measure(DurationLayout::Native).await;
    let classic = DurationLayout::Classic(vec![
        0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]);
    let (classic_bytes, classic_samples, _, _) = measure(classic).await;
    let per_point = |bytes: u64| bytes as f64 / (BATCHES as f64 * ENDPOINTS.len() as f64);
    println!(
        "native:  {native_bytes} B of blocks, {native_samples} histogram samples ({:.1} buckets each), {:.1} B/sample, {:.1} B per endpoint and batch",
        buckets as f64 / native_samples as f64,
        native_bytes as f64 / native_samples as f64,
        per_point(native_bytes)
    );
    println!(
        "classic: {classic_bytes} B of blocks, {classic_samples} float samples, {:.2} B/sample, {:.1} B per endpoint and batch",
        classic_bytes as f64 / classic_samples as f64,
        per_point(classic_bytes)
    );
    assert!(native_samples > 0 && classic_samples > 0);
}
