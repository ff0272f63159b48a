//! The span data model kept by the trace store, and its WAL record encoding.
//!
//! Ids are lowercase hex (32 digits for a trace, 16 for a span), the form Jaeger, Grafana
//! and DuckDB users type. Attribute maps keep their OTLP types as JSON values (strings,
//! booleans, integers, doubles; bytes as base64; arrays and key-value lists as JSON).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// OTLP `SPAN_KIND_*` numbers.
pub mod kind {
    /// Unspecified.
    pub const UNSPECIFIED: i32 = 0;
    /// Internal operation.
    pub const INTERNAL: i32 = 1;
    /// Server side of a synchronous call.
    pub const SERVER: i32 = 2;
    /// Client side of a synchronous call.
    pub const CLIENT: i32 = 3;
    /// Producer of an asynchronous message.
    pub const PRODUCER: i32 = 4;
    /// Consumer of an asynchronous message.
    pub const CONSUMER: i32 = 5;
}

/// OTLP `STATUS_CODE_*` numbers.
pub mod status {
    /// Unset.
    pub const UNSET: i32 = 0;
    /// Ok.
    pub const OK: i32 = 1;
    /// Error.
    pub const ERROR: i32 = 2;
}

/// The lower-case name of a span kind (`server`, `client`, …; `unspecified` otherwise).
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        kind::INTERNAL => "internal",
        kind::SERVER => "server",
        kind::CLIENT => "client",
        kind::PRODUCER => "producer",
        kind::CONSUMER => "consumer",
        _ => "unspecified",
    }
}

/// The OTLP name of a status code (`STATUS_CODE_UNSET`, `STATUS_CODE_OK`, `STATUS_CODE_ERROR`).
pub fn status_name(code: i32) -> &'static str {
    match code {
        status::OK => "STATUS_CODE_OK",
        status::ERROR => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

/// One span, with every OTLP field Didban keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, empty for a root span.
    pub parent_span_id: String,
    /// W3C trace state, as sent.
    pub trace_state: String,
    /// Operation name.
    pub name: String,
    /// OTLP span kind number (see [`kind`]).
    pub kind: i32,
    /// `service.name` of the resource (`unknown_service` when absent).
    pub service: String,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nano: i64,
    /// End minus start, in nanoseconds (0 when the end is before the start).
    pub duration_nano: i64,
    /// OTLP status code number (see [`status`]).
    pub status_code: i32,
    /// Status message.
    pub status_message: String,
    /// Span attributes.
    pub attributes: Map<String, Value>,
    /// Resource attributes, shared by the spans of one resource in a request (a request of
    /// 380,000 spans under one resource holds it once, not 380,000 times). Not serialised
    /// with the span: the WAL record keeps one copy per resource (read back from the old
    /// per-span form too).
    #[serde(default, skip_serializing)]
    pub resource: Arc<Map<String, Value>>,
    /// Instrumentation scope name and version.
    pub scope_name: String,
    /// Instrumentation scope version.
    pub scope_version: String,
    /// Span events (Jaeger calls them logs).
    pub events: Vec<SpanEvent>,
    /// Links to other spans.
    pub links: Vec<SpanLink>,
}

/// A timestamped event inside a span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Nanoseconds since the Unix epoch.
    pub time_unix_nano: i64,
    /// Event name.
    pub name: String,
    /// Event attributes.
    pub attributes: Map<String, Value>,
}

/// A link from a span to another span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    /// Linked trace, hex.
    pub trace_id: String,
    /// Linked span, hex.
    pub span_id: String,
    /// W3C trace state of the link.
    pub trace_state: String,
    /// Link attributes.
    pub attributes: Map<String, Value>,
}

impl Span {
    /// Approximate bytes the span takes in memory, for the head limit.
    pub fn approx_bytes(&self) -> u64 {
        let mut n = 256 + self.name.len() + self.service.len() + self.status_message.len();
        // A resource shared by n spans is counted a 1/n share per span.
        let sharers = Arc::strong_count(&self.resource).max(1);
        n += map_bytes(&self.attributes) + map_bytes(&self.resource) / sharers;
        for e in &self.events {
            n += 64 + e.name.len() + map_bytes(&e.attributes);
        }
        for l in &self.links {
            n += 96 + map_bytes(&l.attributes);
        }
        n as u64
    }

    /// End time in nanoseconds.
    pub fn end_unix_nano(&self) -> i64 {
        self.start_unix_nano.saturating_add(self.duration_nano)
    }
}

fn map_bytes(m: &Map<String, Value>) -> usize {
    let mut n = 0;
    for (k, v) in m {
        n += 48 + k.len();
        n += match v {
            Value::String(s) => s.len(),
            Value::Array(_) | Value::Object(_) => v.to_string().len(),
            _ => 8,
        };
    }
    n
}

/// Version byte of the first trace WAL records: a JSON array of spans, each with its
/// resource (still read at replay).
const RECORD_V1: u8 = 1;
/// Version byte of trace WAL records: JSON [`RecordV2`], each distinct resource once.
const RECORD_V2: u8 = 2;

/// The body of a version 2 record: the resources of the batch, each once, and per span
/// the index of its resource.
#[derive(Serialize, Deserialize)]
struct RecordV2<'a> {
    resources: Vec<std::borrow::Cow<'a, Map<String, Value>>>,
    resource_of: Vec<u32>,
    spans: std::borrow::Cow<'a, [Span]>,
}

/// Encodes a batch of spans as one WAL record: a version byte, then JSON with each
/// resource once (spans of one resource share it in memory, see [`Span::resource`]).
pub(crate) fn encode_record(spans: &[Span]) -> Vec<u8> {
    let mut resources: Vec<std::borrow::Cow<'_, Map<String, Value>>> = Vec::new();
    let mut last: Option<(&Arc<Map<String, Value>>, u32)> = None;
    let mut resource_of = Vec::with_capacity(spans.len());
    for span in spans {
        let index = match last {
            Some((r, i)) if Arc::ptr_eq(r, &span.resource) => i,
            _ => {
                let i = u32::try_from(resources.len()).unwrap_or(u32::MAX);
                resources.push(std::borrow::Cow::Borrowed(&*span.resource));
                last = Some((&span.resource, i));
                i
            }
        };
        resource_of.push(index);
    }
    let record = RecordV2 {
        resources,
        resource_of,
        spans: std::borrow::Cow::Borrowed(spans),
    };
    let mut buf = vec![RECORD_V2];
    // Serialising plain structs of strings, numbers and JSON values cannot fail.
    if serde_json::to_writer(&mut buf, &record).is_err() {
        buf.truncate(1);
        buf.extend_from_slice(br#"{"resources":[],"resource_of":[],"spans":[]}"#);
    }
    buf
}

/// Spans as bytes for another process — the ingest log, an ingester answering a querier:
/// the WAL record form (JSON, each resource once), so the resources the spans of one
/// request share travel once, not once per span.
pub fn encode_spans(spans: &[Span]) -> Vec<u8> {
    encode_record(spans)
}

/// Decodes what [`encode_spans`] (or the WAL) wrote; the error says what is wrong.
pub fn decode_spans(bytes: &[u8]) -> Result<Vec<Span>, String> {
    decode_record(bytes)
}

/// Decodes a WAL record written by [`encode_record`] (or by a version writing version 1).
pub(crate) fn decode_record(payload: &[u8]) -> Result<Vec<Span>, String> {
    match payload.split_first() {
        Some((&RECORD_V2, rest)) => {
            let record: RecordV2<'_> = serde_json::from_slice(rest).map_err(|e| e.to_string())?;
            let resources: Vec<Arc<Map<String, Value>>> = record
                .resources
                .into_iter()
                .map(|r| Arc::new(r.into_owned()))
                .collect();
            let mut spans = record.spans.into_owned();
            for (span, index) in spans.iter_mut().zip(&record.resource_of) {
                let Some(r) = resources.get(*index as usize) else {
                    return Err(format!(
                        "span resource index {index} of {} resources",
                        resources.len()
                    ));
                };
                span.resource = r.clone();
            }
            Ok(spans)
        }
        Some((&RECORD_V1, rest)) => serde_json::from_slice(rest).map_err(|e| e.to_string()),
        Some((v, _)) => Err(format!("unknown trace record version {v}")),
        None => Err("empty trace record".to_string()),
    }
}

/// True when `s` is `len` lowercase hex digits and not all zeros.
pub fn is_valid_hex_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A span for tests.
    pub(crate) fn span(trace: u8, id: u8, parent: u8, service: &str, name: &str, start: i64) -> Span {
        let mut attributes = Map::new();
        attributes.insert("http.status_code".into(), Value::from(200));
        Span {
            trace_id: format!("{trace:032x}"),
            span_id: format!("{id:016x}"),
            parent_span_id: if parent == 0 {
                String::new()
            } else {
                format!("{parent:016x}")
            },
            trace_state: String::new(),
            name: name.into(),
            kind: kind::SERVER,
            service: service.into(),
            start_unix_nano: start,
            duration_nano: 1_000_000,
            status_code: status::UNSET,
            status_message: String::new(),
            attributes,
            resource: Arc::default(),
            scope_name: String::new(),
            scope_version: String::new(),
            events: vec![SpanEvent {
                time_unix_nano: start + 10,
                name: "ev".into(),
                attributes: Map::new(),
            }],
            links: Vec::new(),
        }
    }

    #[test]
    fn records_round_trip_and_ids_are_checked() {
        let spans = vec![span(1, 1, 0, "a", "GET", 5), span(1, 2, 1, "a", "db", 6)];
        assert_eq!(decode_record(&encode_record(&spans)).unwrap(), spans);
        assert!(decode_record(&[9, b'[', b']']).is_err());

        // Spans sharing a resource: written once, shared again when read back.
        let mut map = Map::new();
        map.insert("service.name".into(), Value::from("a"));
        map.insert("host.name".into(), Value::from("h1"));
        let shared = Arc::new(map);
        let mut spans = spans;
        for s in &mut spans {
            s.resource = shared.clone();
        }
        spans.push(span(2, 3, 0, "b", "GET", 7));
        let record = encode_record(&spans);
        let text = String::from_utf8_lossy(&record);
        assert_eq!(text.matches("h1").count(), 1, "{text}");
        let back = decode_record(&record).unwrap();
        assert_eq!(back, spans);
        assert!(Arc::ptr_eq(&back[0].resource, &back[1].resource));
        assert!(back[2].resource.is_empty());

        // Version 1 records (a JSON array of spans with their resources) still read.
        let v1 = format!(
            "\u{1}[{}]",
            serde_json::to_string(&spans[0]).unwrap().replacen(
                '{',
                r#"{"resource":{"host.name":"h1","service.name":"a"},"#,
                1
            )
        );
        let old = decode_record(v1.as_bytes()).unwrap();
        assert_eq!(old, vec![spans[0].clone()]);
        assert!(decode_record(b"\x02{\"resources\":[],\"resource_of\":[5],\"spans\":[]}").is_ok());
        assert!(is_valid_hex_id(&format!("{:032x}", 5), 32));
        assert!(!is_valid_hex_id(&"0".repeat(32), 32));
        assert!(!is_valid_hex_id("abc", 32));
    }
}
