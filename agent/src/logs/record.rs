//! Turns one log record's text into an OTLP `LogRecord`: what [`super::parse`] found (body,
//! severity, event time, trace context, attributes) plus the file it came from; the read time
//! is the observed time, and the timestamp when the text had none.

use didban_base::otlp::kv_any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::parse::fields::{string_value, Parsed};
use super::parse::Parser;
use crate::config::LogFormat;

pub use super::parse::fields::severity_number;

/// Builds a record from `text` read from `path` at `observed_ns`, parsed as JSON when `json`
/// and by the `auto` format otherwise.
pub fn build(text: &str, path: &str, json: bool, observed_ns: u64) -> LogRecord {
    let format = if json { LogFormat::Json } else { LogFormat::Auto };
    let parser = Parser::of(format);
    let parsed = parser.parse(text, observed_ns);
    assemble(text, path, parsed, observed_ns)
}

/// The record of `text` from `path` with the fields `parsed` found.
pub fn assemble(text: &str, path: &str, parsed: Parsed, observed_ns: u64) -> LogRecord {
    let mut attributes = Vec::with_capacity(parsed.attributes.len() + 2);
    attributes.push(kv_any("log.file.path", string_value(path)));
    if let Some(name) = std::path::Path::new(path).file_name().and_then(|n| n.to_str()) {
        attributes.push(kv_any("log.file.name", string_value(name)));
    }
    for a in &parsed.attributes {
        attributes.push(a.to_key_value());
    }
    LogRecord {
        time_unix_nano: parsed.time_ns.unwrap_or(observed_ns),
        observed_time_unix_nano: observed_ns,
        severity_number: parsed.severity_number,
        severity_text: parsed.severity_text.into_owned(),
        body: Some(match &parsed.body {
            Some(body) => body.to_any(),
            None => string_value(text),
        }),
        attributes,
        trace_id: parsed.trace_id,
        span_id: parsed.span_id,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value;

    fn attr<'a>(r: &'a LogRecord, k: &str) -> Option<&'a any_value::Value> {
        r.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn plain_and_json() {
        let r = build("hello world", "/var/log/app.log", false, 7);
        assert_eq!(r.body, Some(string_value("hello world")));
        assert_eq!(r.time_unix_nano, 7);
        assert_eq!(
            attr(&r, "log.file.name"),
            Some(&any_value::Value::StringValue("app.log".into()))
        );

        let r = build(
            r#"{"message":"paid","level":"WARNING","time":"2026-01-02T03:04:05Z","order":42,"ok":true,"ctx":{"a":1}}"#,
            "/x.log",
            true,
            1_767_323_100_000_000_000,
        );
        assert_eq!(r.body, Some(string_value("paid")));
        assert_eq!((r.severity_text.as_str(), r.severity_number), ("WARNING", 13));
        assert_eq!(r.time_unix_nano, 1_767_323_045_000_000_000);
        assert_eq!(attr(&r, "order"), Some(&any_value::Value::IntValue(42)));
        assert_eq!(attr(&r, "ok"), Some(&any_value::Value::BoolValue(true)));
        assert_eq!(
            attr(&r, "ctx"),
            Some(&any_value::Value::StringValue("{\"a\":1}".into()))
        );
        // Not JSON after all: kept as text.
        assert_eq!(
            build("not json", "/x.log", true, 1).body,
            Some(string_value("not json"))
        );
    }

    /// A record far ahead of the read time keeps the read time.
    #[test]
    fn future_times_are_not_believed() {
        let now = 1_796_292_000_000_000_000; // 2026-12-03T10:00:00Z
        let r = build("2027-01-01T00:00:00Z ERROR from the future", "/x.log", false, now);
        assert_eq!(r.time_unix_nano, now);
        assert_eq!(r.severity_number, 17);
        let r = build("2026-12-03T09:59:00Z INFO a minute ago", "/x.log", false, now);
        assert_eq!(r.time_unix_nano, now - 60_000_000_000);
    }

    /// Empty, huge, binary and hostile lines are records, never panics.
    #[test]
    fn odd_input_does_not_panic() {
        let now = 1_796_292_000_000_000_000;
        let huge = "x".repeat(2 * 1024 * 1024);
        let deep = "[".repeat(100_000);
        let invalid = String::from_utf8_lossy(&[0xff, 0xfe, b'E', b'R', 0xc3, 0x28, b'\n', 0]).into_owned();
        let mut lines = vec![
            String::new(),
            " ".into(),
            "{".into(),
            "{}".into(),
            "[]".into(),
            "<999>".into(),
            "<".into(),
            "<1".into(),
            "\"".into(),
            "2026-02-30T25:61:61,9999999999Z".into(),
            "[99/Foo/9999:99:99:99 +9999] \"".into(),
            "1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] \"\" 999 -".into(),
            r#"{"time": 1e300, "ts": -5, "status": "abc", "request": {"headers": 5}, "level": 3}"#.into(),
            r#"{"timestamp": 99999999999999999999999999, "message": {"nested": [1, 2]}}"#.into(),
            "trace_id=".into(),
            format!("traceparent: 00-{}-{}-01", "f".repeat(32), "e".repeat(16)),
            "Dec 99 99:99:99 host x".into(),
            "é".repeat(300),
            huge,
            deep,
            invalid,
        ];
        lines.push(format!("{{\"message\": \"{}\"}}", "ü".repeat(100_000)));
        for format in [
            LogFormat::Auto,
            LogFormat::Text,
            LogFormat::Json,
            LogFormat::NginxCombined,
            LogFormat::Nginx,
        ] {
            let parser = Parser::of(format);
            for line in &lines {
                let r = assemble(line, "/x.log", parser.parse(line, now), now);
                assert!(r.time_unix_nano <= now + super::super::parse::MAX_AHEAD_NS);
            }
        }
        let custom = crate::config::LogsConfig {
            format: LogFormat::Nginx,
            log_format: "$remote_addr [$time_local] \"$request\" $status$".into(),
            timestamp_format: "%d.%m.%Y".into(),
            ..Default::default()
        };
        let parser = Parser::new(&custom).unwrap();
        for line in &lines {
            let _ = parser.parse(line, now);
        }
    }
}
