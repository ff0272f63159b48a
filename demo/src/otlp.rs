//! Builders of OTLP messages (attributes, spans, log records, resources) shared by the
//! demo's generators, and [`Output`]: what one simulated interval produced.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

use didban_agent::model::Sample;
use didban_collector::ingest::remote_write::TimeSeries;

/// Everything one simulated interval produced, by the protocol it travels over.
#[derive(Default)]
pub struct Output {
    /// Spans (OTLP traces).
    pub spans: Vec<ResourceSpans>,
    /// Log records (OTLP logs).
    pub logs: Vec<ResourceLogs>,
    /// Agent-shaped samples, sent as the agent sends them (OTLP metrics).
    pub agent: Vec<Sample>,
    /// Other OTLP metrics (histograms an SDK pushes).
    pub metrics: Vec<ResourceMetrics>,
    /// Prometheus-shaped series (remote_write).
    pub remote_write: Vec<TimeSeries>,
}

impl Output {
    /// Moves everything of `other` into `self`.
    pub fn append(&mut self, mut other: Output) {
        self.spans.append(&mut other.spans);
        self.logs.append(&mut other.logs);
        self.agent.append(&mut other.agent);
        self.metrics.append(&mut other.metrics);
        self.remote_write.append(&mut other.remote_write);
    }

    /// Spans in this output.
    pub fn span_count(&self) -> usize {
        let mut n = 0;
        for r in &self.spans {
            for s in &r.scope_spans {
                n += s.spans.len();
            }
        }
        n
    }

    /// Log records in this output.
    pub fn log_count(&self) -> usize {
        let mut n = 0;
        for r in &self.logs {
            for s in &r.scope_logs {
                n += s.log_records.len();
            }
        }
        n
    }

    /// Metric samples in this output (histogram points count as one).
    pub fn sample_count(&self) -> usize {
        let mut n = self.agent.len();
        for ts in &self.remote_write {
            n += ts.samples.len();
        }
        for r in &self.metrics {
            for s in &r.scope_metrics {
                n += s.metrics.len();
            }
        }
        n
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
            && self.logs.is_empty()
            && self.agent.is_empty()
            && self.metrics.is_empty()
            && self.remote_write.is_empty()
    }
}

/// A string attribute.
pub use didban_base::otlp::kv;

/// An integer attribute.
pub fn kv_i(key: &str, value: i64) -> KeyValue {
    any(key, any_value::Value::IntValue(value))
}

/// A boolean attribute.
pub fn kv_b(key: &str, value: bool) -> KeyValue {
    any(key, any_value::Value::BoolValue(value))
}

fn any(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A resource with these attributes.
pub fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_string(),
        version: "1.0.0".to_string(),
        ..Default::default()
    })
}

/// Spans of one resource and instrumentation scope.
pub fn resource_spans(attributes: Vec<KeyValue>, scope_name: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: resource(attributes),
        scope_spans: vec![ScopeSpans {
            scope: scope(scope_name),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Log records of one resource and instrumentation scope.
pub fn resource_logs(attributes: Vec<KeyValue>, scope_name: &str, records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: resource(attributes),
        scope_logs: vec![ScopeLogs {
            scope: scope(scope_name),
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Milliseconds to OTLP nanoseconds (0 before 1970).
pub fn ms_to_ns(ms: f64) -> u64 {
    if ms <= 0.0 {
        0
    } else {
        (ms * 1e6) as u64
    }
}

/// A span in the making; [`SpanBuilder::build`] turns it into the OTLP message.
pub struct SpanBuilder {
    span: Span,
}

impl SpanBuilder {
    /// A span of `trace_id` with its own `span_id`, child of `parent` (empty for a root),
    /// running from `start_ms` for `duration_ms`.
    pub fn new(
        trace_id: &[u8],
        span_id: Vec<u8>,
        parent: &[u8],
        name: &str,
        kind: SpanKind,
        start_ms: f64,
        duration_ms: f64,
    ) -> SpanBuilder {
        SpanBuilder {
            span: Span {
                trace_id: trace_id.to_vec(),
                span_id,
                parent_span_id: parent.to_vec(),
                name: name.to_string(),
                kind: kind as i32,
                start_time_unix_nano: ms_to_ns(start_ms),
                end_time_unix_nano: ms_to_ns(start_ms + duration_ms.max(0.0)),
                flags: 0x100,
                ..Default::default()
            },
        }
    }

    /// The span's id.
    pub fn id(&self) -> &[u8] {
        &self.span.span_id
    }

    /// Adds attributes.
    pub fn attrs(mut self, attributes: Vec<KeyValue>) -> SpanBuilder {
        self.span.attributes.extend(attributes);
        self
    }

    /// Marks the span failed with an `exception` event (OpenTelemetry's exception
    /// conventions) at its end.
    pub fn exception(mut self, exc_type: &str, message: &str, stacktrace: &str) -> SpanBuilder {
        self.span.events.push(Event {
            time_unix_nano: self.span.end_time_unix_nano,
            name: "exception".to_string(),
            attributes: vec![
                kv("exception.type", exc_type),
                kv("exception.message", message),
                kv("exception.stacktrace", stacktrace),
            ],
            ..Default::default()
        });
        self.error(message)
    }

    /// Sets the status to ERROR with `message`.
    pub fn error(mut self, message: &str) -> SpanBuilder {
        self.span.status = Some(Status {
            message: message.to_string(),
            code: status::StatusCode::Error as i32,
        });
        self
    }

    /// The OTLP span.
    pub fn build(self) -> Span {
        self.span
    }
}

/// Severity numbers of OTLP.
pub mod severity {
    /// INFO.
    pub const INFO: i32 = 9;
    /// WARN.
    pub const WARN: i32 = 13;
    /// ERROR.
    pub const ERROR: i32 = 17;
}

/// A log record at `time_ms`, inside the span (`trace_id`, `span_id`) when they are not
/// empty.
pub fn log(
    time_ms: f64,
    severity_number: i32,
    body: &str,
    trace_id: &[u8],
    span_id: &[u8],
    attributes: Vec<KeyValue>,
) -> LogRecord {
    let severity_text = match severity_number {
        n if n >= severity::ERROR => "ERROR",
        n if n >= severity::WARN => "WARN",
        _ => "INFO",
    };
    LogRecord {
        time_unix_nano: ms_to_ns(time_ms),
        observed_time_unix_nano: ms_to_ns(time_ms),
        severity_number,
        severity_text: severity_text.to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_string())),
        }),
        attributes,
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        flags: if trace_id.is_empty() { 0 } else { 1 },
        ..Default::default()
    }
}
