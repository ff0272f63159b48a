//! Memory per request is bounded by the request's size: a 20 MB OTLP trace batch
//! (380,000 spans under one resource, as the issue sent) is measured with a counting
//! allocator, on this thread, while it is mapped to spans and appended to a real store.

use allocation_counter::measure;
use didban_collector::ingest::attributes::FutureLimit;
use didban_collector::ingest::traces::map::map_traces;
use didban_store::traces::{TraceOptions, TraceStore};
use didban_testkit::kv;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::time::Duration;

const SPANS: usize = 380_000;

/// One resource with the attributes a Kubernetes deployment sends, and small spans.
fn big_request(now: u64) -> ExportTraceServiceRequest {
    let mut resource = vec![kv("service.name", "checkout")];
    for (k, v) in [
        ("service.version", "1.24.7"),
        ("deployment.environment", "production"),
        ("host.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
        ("k8s.namespace.name", "shop"),
        ("k8s.pod.name", "checkout-7d9f8c6b5-x2x7q"),
        ("k8s.deployment.name", "checkout"),
        ("k8s.node.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
        (
            "container.id",
            "3f2a9c1e5b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a",
        ),
        ("cloud.provider", "aws"),
        ("cloud.region", "eu-west-1"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.version", "1.27.0"),
    ] {
        resource.push(kv(k, v));
    }
    let mut spans = Vec::with_capacity(SPANS);
    for i in 0..SPANS {
        let n = i as u64;
        let mut trace_id = vec![0u8; 16];
        trace_id[..8].copy_from_slice(&(n / 8 + 1).to_be_bytes());
        spans.push(Span {
            trace_id,
            span_id: (n + 1).to_be_bytes().to_vec(),
            name: "GET /api/cart".into(),
            kind: 2,
            start_time_unix_nano: now - 1_000_000 + n,
            end_time_unix_nano: now + n,
            ..Span::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[test]
fn a_20_mb_trace_request_costs_a_bounded_multiple_of_its_size() {
    let now = didban_base::now_nanos() as u64;
    let request = big_request(now);
    let wire = request.encoded_len() as i64;
    assert!(wire > 15_000_000, "the request is {wire} bytes");
    let dir = tempfile::tempdir().unwrap();
    let mut options = TraceOptions::new(dir.path());
    options.head_memory_bytes = 4 << 30;
    let store = TraceStore::open(options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut mapped_spans = Vec::new();
    let mapping = measure(|| {
        let mapped = map_traces(&request, FutureLimit::new(now as i64, Duration::from_secs(600)));
        assert_eq!(mapped.rejected, 0);
        mapped_spans = mapped.spans;
    });
    assert_eq!(mapped_spans.len(), SPANS);
    let appending = measure(|| {
        let stored = runtime
            .block_on(store.append(std::mem::take(&mut mapped_spans)))
            .unwrap();
        assert_eq!(stored, SPANS);
    });
    let per_span = |b: i64| b / SPANS as i64;
    eprintln!(
        "request {wire} B on the wire; mapping: peak {} B ({} B/span), kept {} B; append: peak {} B, kept {} B",
        mapping.bytes_max,
        per_span(mapping.bytes_max as i64),
        mapping.bytes_current,
        appending.bytes_max,
        appending.bytes_current,
    );
    // Generous but real: the mapped spans cost a small multiple of their wire size, not
    // gigabytes (before the resource was shared, every span carried its own copy).
    assert!(
        (mapping.bytes_max as i64) < 16 * wire,
        "mapping peaked at {} B for a {wire} B request",
        mapping.bytes_max
    );
    assert!(
        (mapping.bytes_max + appending.bytes_max) < 32 * wire as u64,
        "mapping and append peaked at {} B for a {wire} B request",
        mapping.bytes_max + appending.bytes_max
    );
    runtime.block_on(store.close()).unwrap();
}
