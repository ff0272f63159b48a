//! The fuzz targets' bodies: one function per decoder of outside input, each feeding the bytes
//! through the same code the server or the agent runs on them.
//!
//! Every function must return normally for every input: a decoder may refuse the input (an
//! `Err` is fine), but a panic, an abort or a stack overflow is a bug. The libFuzzer binaries
//! in `fuzz/fuzz_targets/` call these functions, and the stable regression test
//! (`collector/tests/it/fuzz_regressions.rs`, which includes this file) replays every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through [`TARGETS`], so an input
//! that once crashed stays tested in CI without the nightly toolchain.
//!
//! Clocks are fixed ([`NOW_NANOS`]) so that a replay does what the fuzzing run did.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use didban_agent::collectors::scrape::parse as exposition;
use didban_agent::collectors::statsd::aggregate::Aggregator;
use didban_agent::collectors::statsd::parse::parse_line;
use didban_agent::logs::record;
use didban_alerting::rules::parse_rule_file;
use didban_alerting::rules::template::{Template, TemplateData};
use didban_collector::config::traces_logs::FaasConfig;
use didban_collector::ingest::attributes::FutureLimit;
use didban_collector::ingest::body::decompress_snappy;
use didban_collector::ingest::logs::map::map_logs;
use didban_collector::ingest::metrics::delta::DeltaTracker;
use didban_collector::ingest::metrics::map::{map_request, MapOptions};
use didban_collector::ingest::metrics::validate::check_series;
use didban_collector::ingest::metrics::wire::decode_and_map;
use didban_collector::ingest::remote_write::{v2, WriteRequest};
use didban_collector::ingest::traces::map::map_traces;
use didban_collector::ingest::traces::span_metrics::{DurationLayout, SpanMetrics};
use didban_store::promql::{Engine, EngineOptions, MemStorage};
use didban_store::{Label, Labels, Sample, SeriesLimits};
use didban_ui::dashboard::grafana;
use didban_ui::dashboard::Dashboard;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The fixed "now" of every target: 2026-01-01T00:00:00Z in Unix nanoseconds.
pub const NOW_NANOS: i64 = 1_767_225_600_000_000_000;

/// The fixed "now" in Unix milliseconds.
pub const NOW_MS: i64 = NOW_NANOS / 1_000_000;

/// The collector's default acceptance of future timestamps (`limits.max_future`, 10 min)
/// at [`NOW_NANOS`].
fn future_limit() -> FutureLimit {
    FutureLimit::new(NOW_NANOS, Duration::from_secs(600))
}

/// Largest decompressed remote_write body, as the server's default body limit bounds it.
const BODY_LIMIT: usize = 16 << 20;

/// A target: its name (the directory under `fuzz/corpus/` and `fuzz/regressions/`, and the
/// binary under `fuzz/fuzz_targets/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("otlp_metrics_protobuf", otlp_metrics_protobuf),
    ("otlp_traces_protobuf", otlp_traces_protobuf),
    ("otlp_logs_protobuf", otlp_logs_protobuf),
    ("otlp_json", otlp_json),
    ("remote_write", remote_write),
    ("exposition", exposition),
    ("statsd", statsd),
    ("log_record", log_record),
    ("promql", promql),
    ("rule_file", rule_file),
    ("template", template),
    ("dashboard_import", dashboard_import),
];

/// OTLP metrics as protobuf, through the collector's borrowing decoder (the path of OTLP/HTTP
/// and gRPC); when prost also accepts the bytes, its mapping must agree on the counts.
pub fn otlp_metrics_protobuf(data: &[u8]) {
    let limits = SeriesLimits::default();
    let walked_delta = DeltaTracker::new(1024);
    let walked = decode_and_map(
        data,
        &MapOptions {
            limits: &limits,
            delta: &walked_delta,
            shared: None,
            histograms_to_nhcb: false,
        },
    );
    let Ok(request) = ExportMetricsServiceRequest::decode(data) else {
        return;
    };
    let plain_delta = DeltaTracker::new(1024);
    let plain = map_request(
        &request,
        &MapOptions {
            limits: &limits,
            delta: &plain_delta,
            shared: None,
            histograms_to_nhcb: false,
        },
    );
    if let Ok(walked) = walked {
        assert_eq!(
            walked.points, plain.points,
            "borrowing decoder and prost disagree on points"
        );
        assert_eq!(
            walked.rejected_points, plain.rejected_points,
            "borrowing decoder and prost disagree on rejected points"
        );
    }
}

/// OTLP traces as protobuf: prost, the span mapping and the span-derived metrics.
pub fn otlp_traces_protobuf(data: &[u8]) {
    if let Ok(request) = ExportTraceServiceRequest::decode(data) {
        traces(&request);
    }
}

fn traces(request: &ExportTraceServiceRequest) {
    let mapped = map_traces(request, future_limit());
    let classic = DurationLayout::Classic(vec![0.005, 0.1, 1.0, 10.0]);
    for layout in [DurationLayout::Native, classic] {
        let metrics = SpanMetrics::new(layout, FaasConfig::default());
        let _ = metrics.observe(&mapped.spans, NOW_MS);
    }
}

/// OTLP logs as protobuf: prost and the record mapping.
pub fn otlp_logs_protobuf(data: &[u8]) {
    if let Ok(request) = ExportLogsServiceRequest::decode(data) {
        logs(&request);
    }
}

fn logs(request: &ExportLogsServiceRequest) {
    let min_nano = NOW_NANOS - 7 * 24 * 3600 * 1_000_000_000;
    let _ = map_logs(request, future_limit(), min_nano);
}

/// OTLP JSON (the OTLP/HTTP `application/json` encoding) of all three signals, decoded as the
/// HTTP receiver decodes it and mapped.
pub fn otlp_json(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<ExportMetricsServiceRequest>(data) {
        let limits = SeriesLimits::default();
        let delta = DeltaTracker::new(1024);
        let _ = map_request(
            &request,
            &MapOptions {
                limits: &limits,
                delta: &delta,
                shared: None,
                histograms_to_nhcb: false,
            },
        );
    }
    if let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        traces(&request);
    }
    if let Ok(request) = serde_json::from_slice::<ExportLogsServiceRequest>(data) {
        logs(&request);
    }
}

/// A Prometheus remote_write body: snappy, protobuf (as a 1.0 and as a 2.0 message), then each
/// series' labels checked, or symbol references resolved, as the receiver does.
/// Raw (not snappy) protobuf is tried too, so the fuzzer reaches the
/// protobuf decoder without having to learn snappy framing first.
pub fn remote_write(data: &[u8]) {
    if let Ok(plain) = decompress_snappy(data, BODY_LIMIT) {
        write_request(&plain);
    }
    write_request(data);
}

fn write_request(plain: &[u8]) {
    // The same body as a remote write 2.0 request: every symbol reference resolved or
    // refused.
    if let Ok(request) = v2::Request::decode(plain) {
        let _ = v2::resolve(request);
    }
    let Ok(request) = WriteRequest::decode(plain) else {
        return;
    };
    let limits = SeriesLimits::default();
    for ts in &request.timeseries {
        let mut list = Vec::with_capacity(ts.labels.len());
        for l in &ts.labels {
            list.push(Label::new(l.name.clone(), l.value.clone()));
        }
        if let Ok(labels) = Labels::new(list) {
            let _ = check_series(&labels, &limits);
        }
    }
}

/// A scrape body in both exposition formats (Prometheus text 0.0.4 and OpenMetrics).
pub fn exposition(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = exposition::parse(&text, exposition::Format::Text);
    let _ = exposition::parse(&text, exposition::Format::OpenMetrics);
}

/// A StatsD packet: every line parsed as the agent's listener does, aggregated and flushed.
pub fn statsd(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut aggregator = Aggregator::new(1000, vec![0.5, 0.9, 0.99]);
    for line in text.lines() {
        if let Ok(parsed) = parse_line(line) {
            aggregator.add(parsed);
        }
    }
    let _ = aggregator.flush(NOW_MS);
}

/// A log line read by the agent's file tail, as plain text and as a JSON record.
pub fn log_record(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let observed = u64::try_from(NOW_NANOS).unwrap_or(0);
    let _ = record::build(&text, "/var/log/app.log", false, observed);
    let _ = record::build(&text, "/var/log/app.json", true, observed);
}

/// A small in-memory storage for the PromQL target: a counter, a gauge and a histogram over
/// the ten minutes before [`NOW_MS`].
fn promql_storage() -> &'static MemStorage {
    static STORAGE: OnceLock<MemStorage> = OnceLock::new();
    STORAGE.get_or_init(|| {
        let mut storage = MemStorage::new();
        let mut series = Vec::new();
        for (name, extra) in [
            ("http_requests_total", vec![("code", "200"), ("job", "api")]),
            ("http_requests_total", vec![("code", "500"), ("job", "api")]),
            ("up", vec![("job", "api"), ("instance", "a:9100")]),
            ("up", vec![("job", "db"), ("instance", "b:9100")]),
            ("latency_seconds_bucket", vec![("le", "0.1"), ("job", "api")]),
            ("latency_seconds_bucket", vec![("le", "1"), ("job", "api")]),
            ("latency_seconds_bucket", vec![("le", "+Inf"), ("job", "api")]),
        ] {
            let mut list = vec![Label::new("__name__", name)];
            for (k, v) in extra {
                list.push(Label::new(k, v));
            }
            if let Ok(labels) = Labels::new(list) {
                series.push(labels);
            }
        }
        for (i, labels) in series.iter().enumerate() {
            for step in 0..40_i64 {
                let t = NOW_MS - 600_000 + step * 15_000;
                let v = (step as f64) * (i as f64 + 1.0);
                storage.add(labels, Sample::new(t, v));
            }
        }
        storage
    })
}

/// A PromQL query: parsed and evaluated as an instant query and as a range query over the
/// in-memory storage, with limits small enough that a fuzzing run stays fast.
pub fn promql(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let engine = Engine::new(EngineOptions {
        timeout: Duration::from_secs(2),
        max_samples: 200_000,
        ..EngineOptions::default()
    });
    let storage = promql_storage();
    let _ = engine.instant_query(storage, query, NOW_MS);
    let _ = engine.range_query(storage, query, NOW_MS - 600_000, NOW_MS, 60_000);
}

/// A rule file (Prometheus YAML with Didban's log conditions): parsed and validated, which
/// also parses every expression and template in it.
pub fn rule_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_rule_file(Path::new("fuzz.yml"), &text);
}

/// An alert template: parsed, then expanded over labels and a value.
pub fn template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = Template::parse(&text) else {
        return;
    };
    let mut tdata = TemplateData {
        value: 1234.5,
        external_url: "http://didban.example:9090".into(),
        ..TemplateData::default()
    };
    tdata.labels.insert("instance".into(), "db-1:9187".into());
    tdata.labels.insert("job".into(), "postgres".into());
    tdata.external_labels.insert("cluster".into(), "prod".into());
    let _ = parsed.expand(&tdata);
}

/// A dashboard import: Grafana JSON through the converter, and Didban's own YAML.
pub fn dashboard_import(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(dashboard) = grafana::import(&text) {
        let _ = dashboard.to_yaml();
    }
    let _ = Dashboard::from_yaml("fuzz.yml", &text);
}
