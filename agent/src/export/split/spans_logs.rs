//! Halving `ExportTraceServiceRequest`s (by span) and `ExportLogsServiceRequest`s (by log
//! record): the same three levels as metrics, one level shallower.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

use super::cut::{cut, middle};

fn scope_spans(s: &ScopeSpans) -> usize {
    s.spans.len()
}

fn split_scope_spans(mut s: ScopeSpans, k: usize) -> (ScopeSpans, ScopeSpans) {
    let second = ScopeSpans {
        scope: s.scope.clone(),
        spans: s.spans.split_off(k.min(s.spans.len())),
        schema_url: s.schema_url.clone(),
    };
    (s, second)
}

fn resource_spans(r: &ResourceSpans) -> usize {
    r.scope_spans.iter().map(scope_spans).sum()
}

fn split_resource_spans(mut r: ResourceSpans, k: usize) -> (ResourceSpans, ResourceSpans) {
    let (a, b) = cut(
        std::mem::take(&mut r.scope_spans),
        k,
        scope_spans,
        split_scope_spans,
    );
    let second = ResourceSpans {
        resource: r.resource.clone(),
        scope_spans: b,
        schema_url: r.schema_url.clone(),
    };
    r.scope_spans = a;
    (r, second)
}

/// Spans in the request.
pub fn count_spans(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().map(resource_spans).sum()
}

/// The request cut into two with about half of the spans' bytes each; `None` for fewer than
/// two spans.
pub fn halve_spans(
    request: ExportTraceServiceRequest,
) -> Option<(ExportTraceServiceRequest, ExportTraceServiceRequest)> {
    let mut sizes = Vec::new();
    for r in &request.resource_spans {
        for s in &r.scope_spans {
            sizes.extend(s.spans.iter().map(Message::encoded_len));
        }
    }
    let k = middle(&sizes)?;
    let (a, b) = cut(request.resource_spans, k, resource_spans, split_resource_spans);
    Some((
        ExportTraceServiceRequest { resource_spans: a },
        ExportTraceServiceRequest { resource_spans: b },
    ))
}

fn scope_logs(s: &ScopeLogs) -> usize {
    s.log_records.len()
}

fn split_scope_logs(mut s: ScopeLogs, k: usize) -> (ScopeLogs, ScopeLogs) {
    let second = ScopeLogs {
        scope: s.scope.clone(),
        log_records: s.log_records.split_off(k.min(s.log_records.len())),
        schema_url: s.schema_url.clone(),
    };
    (s, second)
}

fn resource_logs(r: &ResourceLogs) -> usize {
    r.scope_logs.iter().map(scope_logs).sum()
}

fn split_resource_logs(mut r: ResourceLogs, k: usize) -> (ResourceLogs, ResourceLogs) {
    let (a, b) = cut(std::mem::take(&mut r.scope_logs), k, scope_logs, split_scope_logs);
    let second = ResourceLogs {
        resource: r.resource.clone(),
        scope_logs: b,
        schema_url: r.schema_url.clone(),
    };
    r.scope_logs = a;
    (r, second)
}

/// Log records in the request.
pub fn count_logs(request: &ExportLogsServiceRequest) -> usize {
    request.resource_logs.iter().map(resource_logs).sum()
}

/// The request cut into two with about half of the records' bytes each; `None` for fewer
/// than two records.
pub fn halve_logs(
    request: ExportLogsServiceRequest,
) -> Option<(ExportLogsServiceRequest, ExportLogsServiceRequest)> {
    let mut sizes = Vec::new();
    for r in &request.resource_logs {
        for s in &r.scope_logs {
            sizes.extend(s.log_records.iter().map(Message::encoded_len));
        }
    }
    let k = middle(&sizes)?;
    let (a, b) = cut(request.resource_logs, k, resource_logs, split_resource_logs);
    Some((
        ExportLogsServiceRequest { resource_logs: a },
        ExportLogsServiceRequest { resource_logs: b },
    ))
}
