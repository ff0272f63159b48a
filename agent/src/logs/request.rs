//! Encodes a round's log records straight into `ExportLogsServiceRequest` protobuf bytes.
//!
//! Building an OTLP `LogRecord` per line (a `String` for the body, two for each file
//! attribute), encoding it and dropping it again was about a fifth of the agent's CPU while
//! tailing (issue 12). Here each record is written field by field from what the tailer and the
//! parser already hold: the body straight from the line, the file attributes from bytes encoded
//! once per file and round. The result decodes to exactly the record
//! [`super::record::assemble`] builds (a test checks it on the parser's corpus).
//!
//! Requests are cut at [`super::RECORDS_PER_REQUEST`] records or at `max_bytes`, so the disk
//! buffer never has to decode one to split it (a single record above `max_bytes` still goes
//! alone and is split or refused there, as before).

use super::parse::fields::{string_value, Attribute, Parsed, Value};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encoded_len_varint, WireType};

// Field numbers of opentelemetry/proto/logs/v1/logs.proto and its collector service.
const REQUEST_RESOURCE_LOGS: u32 = 1;
const RESOURCE_LOGS_RESOURCE: u32 = 1;
const RESOURCE_LOGS_SCOPE_LOGS: u32 = 2;
const SCOPE_LOGS_SCOPE: u32 = 1;
const SCOPE_LOGS_LOG_RECORDS: u32 = 2;
const RECORD_TIME: u32 = 1;
const RECORD_SEVERITY_NUMBER: u32 = 2;
const RECORD_SEVERITY_TEXT: u32 = 3;
const RECORD_BODY: u32 = 5;
const RECORD_ATTRIBUTES: u32 = 6;
const RECORD_TRACE_ID: u32 = 9;
const RECORD_SPAN_ID: u32 = 10;
const RECORD_OBSERVED_TIME: u32 = 11;
const ANY_VALUE_STRING: u32 = 1;
const ANY_VALUE_BOOL: u32 = 2;
const ANY_VALUE_INT: u32 = 3;
const ANY_VALUE_DOUBLE: u32 = 4;
const KEY_VALUE_KEY: u32 = 1;
const KEY_VALUE_VALUE: u32 = 2;

/// The `log.file.path` and `log.file.name` attributes of one file, encoded as `LogRecord`
/// attribute fields, ready to be copied into each of its records.
#[derive(Debug, Clone)]
pub struct FileAttributes {
    encoded: Vec<u8>,
}

impl FileAttributes {
    /// The attributes of records read from `path`.
    pub fn of(path: &str) -> FileAttributes {
        let mut encoded = Vec::new();
        let mut attributes = vec![didban_base::otlp::kv_any("log.file.path", string_value(path))];
        if let Some(name) = std::path::Path::new(path).file_name().and_then(|n| n.to_str()) {
            attributes.push(didban_base::otlp::kv_any("log.file.name", string_value(name)));
        }
        for kv in &attributes {
            prost::encoding::message::encode(RECORD_ATTRIBUTES, kv, &mut encoded);
        }
        FileAttributes { encoded }
    }
}

/// Encoded requests of one resource and scope, filled record by record.
#[derive(Debug)]
pub struct RequestBuilder {
    /// `ResourceLogs.resource`, framed.
    resource: Vec<u8>,
    /// `ScopeLogs.scope`, framed.
    scope: Vec<u8>,
    max_records: usize,
    max_bytes: usize,
    /// Framed `LogRecord`s of the request being filled.
    records: Vec<u8>,
    count: usize,
    /// One record, encoded before its length is known.
    scratch: Vec<u8>,
    done: Vec<Vec<u8>>,
}

impl RequestBuilder {
    /// Requests for `resource` and `scope` of at most `max_records` records and (unless a
    /// single record is larger) `max_bytes` bytes.
    pub fn new(
        resource: &Resource,
        scope: &InstrumentationScope,
        max_records: usize,
        max_bytes: usize,
    ) -> RequestBuilder {
        let mut framed_resource = Vec::new();
        prost::encoding::message::encode(RESOURCE_LOGS_RESOURCE, resource, &mut framed_resource);
        let mut framed_scope = Vec::new();
        prost::encoding::message::encode(SCOPE_LOGS_SCOPE, scope, &mut framed_scope);
        RequestBuilder {
            resource: framed_resource,
            scope: framed_scope,
            max_records: max_records.max(1),
            max_bytes,
            records: Vec::new(),
            count: 0,
            scratch: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Adds the record of `text` read at `observed_ns` from the file of `file`, with what
    /// the parser found in it.
    pub fn push(&mut self, text: &str, file: &FileAttributes, parsed: &Parsed, observed_ns: u64) {
        self.scratch.clear();
        encode_record(&mut self.scratch, text, file, parsed, observed_ns);
        let framed = 1 + encoded_len_varint(self.scratch.len() as u64) + self.scratch.len();
        let overhead = self.resource.len() + self.scope.len() + 24;
        if self.count > 0 && self.records.len() + framed + overhead > self.max_bytes {
            self.cut();
        }
        encode_key(
            SCOPE_LOGS_LOG_RECORDS,
            WireType::LengthDelimited,
            &mut self.records,
        );
        encode_varint(self.scratch.len() as u64, &mut self.records);
        self.records.extend_from_slice(&self.scratch);
        self.count += 1;
        if self.count >= self.max_records {
            self.cut();
        }
    }

    /// Records added so far.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.count == 0
    }

    /// The encoded requests, in the order their records were added.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        if self.count > 0 {
            self.cut();
        }
        self.done
    }

    /// Closes the request being filled.
    fn cut(&mut self) {
        let scope_logs = self.scope.len() + self.records.len();
        let resource_logs = self.resource.len() + 1 + encoded_len_varint(scope_logs as u64) + scope_logs;
        let total = 1 + encoded_len_varint(resource_logs as u64) + resource_logs;
        let mut out = Vec::with_capacity(total);
        encode_key(REQUEST_RESOURCE_LOGS, WireType::LengthDelimited, &mut out);
        encode_varint(resource_logs as u64, &mut out);
        out.extend_from_slice(&self.resource);
        encode_key(RESOURCE_LOGS_SCOPE_LOGS, WireType::LengthDelimited, &mut out);
        encode_varint(scope_logs as u64, &mut out);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(&self.records);
        self.done.push(out);
        self.records.clear();
        self.count = 0;
    }
}

/// One `LogRecord` without its frame; fields left at their default are not written, as prost
/// does not write them.
fn encode_record(buf: &mut Vec<u8>, text: &str, file: &FileAttributes, parsed: &Parsed, observed_ns: u64) {
    let time = parsed.time_ns.unwrap_or(observed_ns);
    if time != 0 {
        encode_key(RECORD_TIME, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&time.to_le_bytes());
    }
    if parsed.severity_number != 0 {
        encode_key(RECORD_SEVERITY_NUMBER, WireType::Varint, buf);
        // int32 is written as the varint of its sign extension to 64 bits.
        encode_varint(i64::from(parsed.severity_number) as u64, buf);
    }
    if !parsed.severity_text.is_empty() {
        encode_bytes_field(RECORD_SEVERITY_TEXT, parsed.severity_text.as_bytes(), buf);
    }
    match &parsed.body {
        Some(body) => encode_value(RECORD_BODY, body, buf),
        None => encode_string_value(RECORD_BODY, text, buf),
    }
    buf.extend_from_slice(&file.encoded);
    for attribute in &parsed.attributes {
        encode_attribute(attribute, buf);
    }
    if !parsed.trace_id.is_empty() {
        encode_bytes_field(RECORD_TRACE_ID, &parsed.trace_id, buf);
    }
    if !parsed.span_id.is_empty() {
        encode_bytes_field(RECORD_SPAN_ID, &parsed.span_id, buf);
    }
    if observed_ns != 0 {
        encode_key(RECORD_OBSERVED_TIME, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&observed_ns.to_le_bytes());
    }
}

/// An `AnyValue` holding the string `text` as field `tag`, without copying `text` into one.
fn encode_string_value(tag: u32, text: &str, buf: &mut Vec<u8>) {
    let inner = 1 + encoded_len_varint(text.len() as u64) + text.len();
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(inner as u64, buf);
    encode_key(ANY_VALUE_STRING, WireType::LengthDelimited, buf);
    encode_varint(text.len() as u64, buf);
    buf.extend_from_slice(text.as_bytes());
}

/// Length of the `AnyValue` message holding `value` (its one field).
fn value_len(value: &Value<'_>) -> usize {
    match value {
        Value::Str(s) => 1 + encoded_len_varint(s.len() as u64) + s.len(),
        // int64 is written as the varint of its two's complement.
        Value::Int(i) => 1 + encoded_len_varint(*i as u64),
        Value::Double(_) => 1 + 8,
        Value::Bool(_) => 1 + 1,
    }
}

/// `value` as an `AnyValue` message in field `tag`, as prost writes it (a oneof field is
/// written even when it holds its type's default).
fn encode_value(tag: u32, value: &Value<'_>, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value_len(value) as u64, buf);
    match value {
        Value::Str(s) => encode_bytes_field(ANY_VALUE_STRING, s.as_bytes(), buf),
        Value::Int(i) => {
            encode_key(ANY_VALUE_INT, WireType::Varint, buf);
            encode_varint(*i as u64, buf);
        }
        Value::Double(f) => {
            encode_key(ANY_VALUE_DOUBLE, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        Value::Bool(b) => {
            encode_key(ANY_VALUE_BOOL, WireType::Varint, buf);
            buf.push(u8::from(*b));
        }
    }
}

/// One `LogRecord.attributes` entry (a `KeyValue`; an empty key is not written, as prost
/// does not write it).
fn encode_attribute(attribute: &Attribute<'_>, buf: &mut Vec<u8>) {
    let key = attribute.key.as_bytes();
    let key_len = if key.is_empty() {
        0
    } else {
        1 + encoded_len_varint(key.len() as u64) + key.len()
    };
    let value_len = value_len(&attribute.value);
    let inner = key_len + 1 + encoded_len_varint(value_len as u64) + value_len;
    encode_key(RECORD_ATTRIBUTES, WireType::LengthDelimited, buf);
    encode_varint(inner as u64, buf);
    if !key.is_empty() {
        encode_bytes_field(KEY_VALUE_KEY, key, buf);
    }
    encode_value(KEY_VALUE_VALUE, &attribute.value, buf);
}

/// A field key (`tag` and wire type), as prost writes it.
fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

/// A varint, as prost writes it; the one-byte case (every key, most lengths) without going
/// through prost's byte-at-a-time writer (a twentieth of the tail's instructions, issue 12).
fn encode_varint(value: u64, buf: &mut Vec<u8>) {
    if value < 0x80 {
        buf.push(value as u8);
    } else {
        prost::encoding::encode_varint(value, buf);
    }
}

/// A length-delimited field `tag` holding `bytes`.
fn encode_bytes_field(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::LogFormat;
    use crate::logs::parse::Parser;
    use crate::logs::record::assemble;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;

    const NOW: u64 = 1_796_292_000_000_000_000; // 2026-12-03T10:00:00Z

    /// Lines of every shape the parsers treat differently.
    fn corpus() -> Vec<String> {
        vec![
            String::new(),
            "plain words".into(),
            "2026-12-03T09:59:00Z ERROR payment failed trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7".into(),
            "203.0.113.7 - - [03/Dec/2026:09:59:00 +0000] \"GET /api/orders/7?page=2 HTTP/1.1\" 404 512 \"https://shop.example/\" \"Mozilla/5.0\" 0.012".into(),
            r#"{"message":"paid","level":"WARNING","time":"2026-12-03T09:59:00Z","order":42,"ok":true,"ctx":{"a":1}}"#.into(),
            r#"{"level":"info","no_message":1}"#.into(),
            "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: é".into(),
            "<11>Dec  3 09:59:00 host app[1]: disk failing".into(),
            "x".repeat(70_000),
        ]
    }

    fn scope() -> InstrumentationScope {
        InstrumentationScope {
            name: "didban-agent/logs".into(),
            ..Default::default()
        }
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![
                didban_base::otlp::kv("service.name", "shop"),
                didban_base::otlp::kv("host.name", "app-1"),
            ],
            ..Default::default()
        }
    }

    /// Every record decodes to what `assemble` builds from the same line, for every format.
    #[test]
    fn records_decode_to_the_assembled_record() {
        let path = "/var/log/shop/app.log";
        let file = FileAttributes::of(path);
        for format in [
            LogFormat::Auto,
            LogFormat::Text,
            LogFormat::Json,
            LogFormat::NginxCombined,
        ] {
            let parser = Parser::of(format);
            for line in corpus() {
                let parsed = parser.parse(&line, NOW);
                let mut buf = Vec::new();
                encode_record(&mut buf, &line, &file, &parsed, NOW);
                let decoded = LogRecord::decode(buf.as_slice()).unwrap();
                let expected = assemble(&line, path, parsed, NOW);
                assert_eq!(decoded, expected, "{format:?}: {line:.80}");
                assert_eq!(buf.len(), expected.encoded_len(), "{format:?}: {line:.80}");
            }
        }
    }

    /// Parsing and encoding borrow the line: an access-log line's ten attributes cost one
    /// allocation (their list), a plain-text line with a level and a zoned time none (issue 12:
    /// a `String` per attribute key and value was the largest part of parsing).
    #[test]
    fn parsing_and_encoding_borrow_the_line() {
        let parser = Parser::of(LogFormat::Auto);
        let file = FileAttributes::of("/var/log/nginx/access.log");
        let access = corpus()[3].clone();
        let plain = "2026-12-03 09:59:00 +0100 [12] [ERROR] payment failed".to_string();
        let mut buf = Vec::with_capacity(4096);
        for (line, most, attributes) in [(&access, 1, 10), (&plain, 0, 0)] {
            let mut parsed_attributes = 0;
            let allocations = allocation_counter::measure(|| {
                let parsed = parser.parse(line, NOW);
                parsed_attributes = parsed.attributes.len();
                encode_record(&mut buf, line, &file, &parsed, NOW);
            })
            .count_total;
            assert_eq!(parsed_attributes, attributes, "{line}");
            assert!(allocations <= most, "{allocations} allocations for {line}");
            let decoded = LogRecord::decode(buf.as_slice()).unwrap();
            assert_eq!(
                decoded,
                assemble(line, "/var/log/nginx/access.log", parser.parse(line, NOW), NOW)
            );
            buf.clear();
        }
    }

    /// A file without a name (a path ending in `..`) gets only `log.file.path`, as before.
    #[test]
    fn nameless_path_has_only_the_path_attribute() {
        let parsed = Parsed::default();
        let mut buf = Vec::new();
        encode_record(&mut buf, "x", &FileAttributes::of("/var/.."), &parsed, NOW);
        let decoded = LogRecord::decode(buf.as_slice()).unwrap();
        assert_eq!(decoded, assemble("x", "/var/..", parsed, NOW));
        assert_eq!(decoded.attributes.len(), 1);
    }

    /// Requests carry the records in order under one resource and scope, cut at the record
    /// bound and at the byte bound, and decode to what building the structs gave.
    #[test]
    fn requests_are_cut_by_records_and_bytes() {
        let path = "/var/log/app.log";
        let file = FileAttributes::of(path);
        let parser = Parser::of(LogFormat::Auto);
        let lines: Vec<String> = (0..25)
            .map(|i| format!("2026-12-03T09:59:00Z INFO line {i} {}", "y".repeat(i * 40)))
            .collect();
        for (max_records, max_bytes) in [(10, usize::MAX), (1000, 3000), (1, 100)] {
            let mut builder = RequestBuilder::new(&resource(), &scope(), max_records, max_bytes);
            assert!(builder.is_empty());
            let mut expected = Vec::new();
            for line in &lines {
                let parsed = parser.parse(line, NOW);
                builder.push(line, &file, &parsed, NOW);
                expected.push(assemble(line, path, parsed, NOW));
            }
            assert!(!builder.is_empty());
            let requests = builder.finish();
            let mut got = Vec::new();
            for bytes in &requests {
                let request = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
                assert_eq!(request.resource_logs.len(), 1);
                let rl = &request.resource_logs[0];
                assert_eq!(rl.resource, Some(resource()));
                assert_eq!(rl.scope_logs.len(), 1);
                assert_eq!(rl.scope_logs[0].scope, Some(scope()));
                let records = &rl.scope_logs[0].log_records;
                assert!(!records.is_empty() && records.len() <= max_records);
                // Over the byte bound only when one record alone is.
                assert!(
                    records.len() == 1 || bytes.len() <= max_bytes,
                    "{} > {max_bytes}",
                    bytes.len()
                );
                let whole = ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        resource: Some(resource()),
                        scope_logs: vec![ScopeLogs {
                            scope: Some(scope()),
                            log_records: records.clone(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                assert_eq!(bytes.len(), whole.encoded_len());
                got.extend(records.iter().cloned());
            }
            assert_eq!(got, expected, "records {max_records}, bytes {max_bytes}");
        }
        assert!(RequestBuilder::new(&resource(), &scope(), 10, 10)
            .finish()
            .is_empty());
    }
}
