//! Replays the fuzz inputs kept in the repository — the seed corpora `fuzz/corpus/<target>/`
//! and every crash found so far, `fuzz/regressions/<target>/` — through the fuzz targets'
//! own bodies (`fuzz/src/targets.rs`, included here), on the stable toolchain: a decoder
//! that once panicked on an input is checked on it in every CI run.
//!
//! `write_fuzz_seeds` (ignored) regenerates the binary seeds from the hand-written OTLP JSON
//! seeds with the protocol's own encoders: `cargo test -p didban-collector --test it
//! write_fuzz_seeds -- --ignored`.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use didban_collector::ingest::remote_write::{
    v2, MetricMetadata, TimeSeries, WireExemplar, WireLabel, WireSample, WriteRequest,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

#[path = "../../../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly in `dir`, sorted (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The target directories under `dir` (`fuzz/corpus` or `fuzz/regressions`).
fn target_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fuzz_corpora_and_regressions_replay_without_panicking() {
    let root = fuzz_dir();
    let mut replayed = 0;
    let mut failures = Vec::new();
    for kind in ["corpus", "regressions"] {
        for dir in target_dirs(&root.join(kind)) {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let Some((_, run)) = targets::TARGETS.iter().find(|(n, _)| *n == name) else {
                panic!(
                    "{} names no fuzz target (known: see fuzz/src/targets.rs)",
                    dir.display()
                );
            };
            for file in files(&dir) {
                let data = fs::read(&file).unwrap();
                if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                    failures.push(file.display().to_string());
                }
                replayed += 1;
            }
        }
    }
    assert!(failures.is_empty(), "fuzz inputs that panic: {failures:#?}");
    // Every target has seeds: a target without any is not exercised by this test.
    for (name, _) in targets::TARGETS {
        let seeds = files(&root.join("corpus").join(name));
        assert!(
            !seeds.is_empty(),
            "fuzz target {name} has no seed in fuzz/corpus/{name}/"
        );
    }
    assert!(replayed >= targets::TARGETS.len());
}

/// The remote_write seed: two series (one with unsorted labels), metadata, and a series
/// with a native histogram (refused by the receiver).
fn remote_write_seed() -> WriteRequest {
    let label = |name: &str, value: &str| WireLabel {
        name: name.into(),
        value: value.into(),
    };
    let sample = |timestamp: i64, value: f64| WireSample { value, timestamp };
    WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: vec![
                    label("__name__", "up"),
                    label("instance", "a:9100"),
                    label("job", "node"),
                ],
                samples: vec![
                    sample(targets::NOW_MS - 15_000, 1.0),
                    sample(targets::NOW_MS, 1.0),
                ],
                exemplars: vec![],
                histograms: vec![],
            },
            TimeSeries {
                labels: vec![
                    label("job", "api"),
                    label("__name__", "http_requests_total"),
                    label("code", "500"),
                ],
                samples: vec![sample(targets::NOW_MS, f64::NAN)],
                exemplars: vec![WireExemplar {
                    labels: vec![label("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")],
                    value: 0.5,
                    timestamp: targets::NOW_MS,
                }],
                histograms: vec![didban_collector::ingest::remote_write::histogram::Histogram2 {
                    count_int: Some(1),
                    zero_count_int: Some(1),
                    timestamp: targets::NOW_MS,
                    ..Default::default()
                }],
            },
        ],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Requests.".into(),
            unit: String::new(),
        }],
    }
}

/// Writes the binary seeds: the OTLP JSON seeds as protobuf, and remote_write bodies (snappy
/// and raw).
#[test]
#[ignore = "writes fuzz/corpus seeds; run by hand when the seeds change"]
fn write_fuzz_seeds() {
    let corpus = fuzz_dir().join("corpus");
    for json in files(&corpus.join("otlp_json")) {
        let text = fs::read_to_string(&json).unwrap();
        let stem = json.file_stem().and_then(|s| s.to_str()).unwrap().to_string();
        let (target, bytes) = if text.contains("\"resourceMetrics\"") {
            let r: ExportMetricsServiceRequest = serde_json::from_str(&text).unwrap();
            ("otlp_metrics_protobuf", r.encode_to_vec())
        } else if text.contains("\"resourceSpans\"") {
            let r: ExportTraceServiceRequest = serde_json::from_str(&text).unwrap();
            ("otlp_traces_protobuf", r.encode_to_vec())
        } else {
            let r: ExportLogsServiceRequest = serde_json::from_str(&text).unwrap();
            ("otlp_logs_protobuf", r.encode_to_vec())
        };
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{stem}.pb")), bytes).unwrap();
    }
    let plain = remote_write_seed().encode_to_vec();
    let snappy = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
    let dir = corpus.join("remote_write");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("two_series.snappy"), snappy).unwrap();
    fs::write(dir.join("two_series.pb"), plain).unwrap();
    let plain = remote_write_v2_seed().encode_to_vec();
    let snappy = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
    fs::write(dir.join("v2_two_series.snappy"), snappy).unwrap();
    fs::write(dir.join("v2_two_series.pb"), plain).unwrap();
}

/// The remote write 2.0 seed: a symbols table, a counter with an exemplar, metadata and a
/// created timestamp, and a series with a native histogram (refused by the receiver).
fn remote_write_v2_seed() -> v2::Request {
    let symbols: Vec<String> = [
        "",
        "__name__",
        "http_requests_total",
        "job",
        "api",
        "trace_id",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "Requests.",
        "rpc_seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v2::Request {
        symbols,
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![v2::Sample2 {
                    value: 3.0,
                    timestamp: targets::NOW_MS,
                    start_timestamp: targets::NOW_MS - 60_000,
                }],
                exemplars: vec![v2::Exemplar2 {
                    labels_refs: vec![5, 6],
                    value: 1.0,
                    timestamp: targets::NOW_MS,
                }],
                metadata: Some(v2::Metadata2 {
                    r#type: 1,
                    help_ref: 7,
                    unit_ref: 0,
                }),
                created_timestamp: targets::NOW_MS - 60_000,
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 8, 3, 4],
                // Integer counts: one observation, in the zero bucket.
                histograms: vec![didban_collector::ingest::remote_write::histogram::Histogram2 {
                    count_int: Some(1),
                    zero_count_int: Some(1),
                    zero_threshold: 1e-128,
                    timestamp: targets::NOW_MS,
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}
