//! OTLP traces → the store's spans.
//!
//! Each span is checked on its own; a refused span is counted in `rejected_spans` of the
//! partial success and named in its message, the rest of the request is stored:
//!
//! - `trace_id` must be 16 bytes and `span_id` 8 bytes, neither all zeros;
//!   `parent_span_id` empty (a root) or 8 bytes (all zeros is read as a root);
//! - `start_time_unix_nano` must be set (not 0); it and `end_time_unix_nano` may be at most
//!   `limits.max_future` ahead of the server's clock ([`FutureLimit`]); an end before the
//!   start gives a duration of 0;
//! - attributes are kept under the limits of [`super::otlp_common`].

use didban_store::traces::{Span, SpanEvent, SpanLink};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;

use crate::ingest::attributes::{attributes_map, id_hex, nanos_i64, resource_map, service_name, FutureLimit};

/// The spans of a request and what was refused.
#[derive(Debug, Default)]
pub struct MappedSpans {
    /// Spans to store.
    pub spans: Vec<Span>,
    /// Spans refused.
    pub rejected: u64,
    /// Why the first refused span was refused.
    pub first_error: Option<String>,
}

/// Maps a request; `limit` holds the server's clock.
pub fn map_traces(request: &ExportTraceServiceRequest, limit: FutureLimit) -> MappedSpans {
    let mut out = MappedSpans::default();
    for rs in &request.resource_spans {
        let service = service_name(rs.resource.as_ref());
        // One map per resource, shared by its spans (not a copy per span).
        let resource = std::sync::Arc::new(resource_map(rs.resource.as_ref()));
        for ss in &rs.scope_spans {
            let (scope_name, scope_version) = match &ss.scope {
                Some(s) => (s.name.clone(), s.version.clone()),
                None => (String::new(), String::new()),
            };
            for span in &ss.spans {
                match map_span(span, limit) {
                    Ok(mut s) => {
                        s.service = service.clone();
                        s.resource = resource.clone();
                        s.scope_name = scope_name.clone();
                        s.scope_version = scope_version.clone();
                        out.spans.push(s);
                    }
                    Err(e) => {
                        out.rejected += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(format!("span {:?}: {e}", span.name));
                        }
                    }
                }
            }
        }
    }
    out
}

fn map_span(span: &OtlpSpan, limit: FutureLimit) -> Result<Span, String> {
    let trace_id = id_hex(&span.trace_id, 16, "trace_id")?;
    let span_id = id_hex(&span.span_id, 8, "span_id")?;
    let parent_span_id = if span.parent_span_id.is_empty() || span.parent_span_id.iter().all(|b| *b == 0) {
        String::new()
    } else {
        id_hex(&span.parent_span_id, 8, "parent_span_id")?
    };
    if span.start_time_unix_nano == 0 {
        return Err("start_time_unix_nano is 0".to_string());
    }
    let start = nanos_i64(span.start_time_unix_nano);
    limit.check("start_time_unix_nano", start)?;
    let end = nanos_i64(span.end_time_unix_nano);
    limit.check("end_time_unix_nano", end)?;
    let mut events = Vec::with_capacity(span.events.len());
    for e in &span.events {
        events.push(SpanEvent {
            time_unix_nano: nanos_i64(e.time_unix_nano),
            name: e.name.clone(),
            attributes: attributes_map(&e.attributes),
        });
    }
    let mut links = Vec::with_capacity(span.links.len());
    for l in &span.links {
        let (Ok(trace_id), Ok(span_id)) = (
            id_hex(&l.trace_id, 16, "link trace_id"),
            id_hex(&l.span_id, 8, "link span_id"),
        ) else {
            continue;
        };
        links.push(SpanLink {
            trace_id,
            span_id,
            trace_state: l.trace_state.clone(),
            attributes: attributes_map(&l.attributes),
        });
    }
    let (status_code, status_message) = match &span.status {
        Some(s) => (s.code, s.message.clone()),
        None => (0, String::new()),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state.clone(),
        name: span.name.clone(),
        kind: span.kind,
        service: String::new(),
        start_unix_nano: start,
        duration_nano: end.saturating_sub(start).max(0),
        status_code,
        status_message,
        attributes: attributes_map(&span.attributes),
        resource: Default::default(),
        scope_name: String::new(),
        scope_version: String::new(),
        events,
        links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    use didban_testkit::kv;

    fn otlp_span(trace: Vec<u8>, id: Vec<u8>, start: u64) -> OtlpSpan {
        OtlpSpan {
            trace_id: trace,
            span_id: id,
            name: "GET /".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: start.saturating_add(5_000),
            attributes: vec![kv("http.method", "GET")],
            ..OtlpSpan::default()
        }
    }

    const HOUR: u64 = 3_600 * 1_000_000_000;

    #[test]
    fn valid_spans_are_kept_and_bad_ones_named() {
        let now = 1_700_000_000_000_000_000i64;
        let start = now as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "shop")],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        otlp_span(vec![1; 16], vec![2; 8], start),
                        otlp_span(vec![1; 15], vec![2; 8], start),
                        otlp_span(vec![0; 16], vec![2; 8], start),
                        otlp_span(vec![1; 16], vec![3; 8], 0),
                        otlp_span(vec![1; 16], vec![4; 8], start + 2 * HOUR),
                        otlp_span(vec![1; 16], vec![5; 8], u64::MAX),
                    ],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let limit = FutureLimit::new(now, std::time::Duration::from_secs(3600));
        let mapped = map_traces(&request, limit);
        assert_eq!(mapped.spans.len(), 1);
        assert_eq!(mapped.rejected, 5);
        assert!(mapped.first_error.unwrap().contains("trace_id"));
        let s = &mapped.spans[0];
        assert_eq!(s.service, "shop");
        assert_eq!(s.trace_id, "01".repeat(16));
        assert_eq!(s.duration_nano, 5_000);
        assert_eq!(s.attributes["http.method"], "GET");
        assert_eq!(s.resource["service.name"], "shop");
    }
}
