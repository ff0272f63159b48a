//! Turns one log record's text into an OTLP `LogRecord`: plain text as the body, or a JSON
//! object whose fields become attributes, with the message, severity and timestamp taken from
//! the usual keys.

use didban_base::otlp::kv_any;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn json_value(v: &serde_json::Value) -> AnyValue {
    let value = match v {
        serde_json::Value::String(s) => any_value::Value::StringValue(s.clone()),
        serde_json::Value::Bool(b) => any_value::Value::BoolValue(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => any_value::Value::StringValue(other.to_string()),
    };
    AnyValue { value: Some(value) }
}

/// OTLP severity number for a level name (`warn` → 13).
pub fn severity_number(level: &str) -> i32 {
    match level.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" | "information" | "notice" => 9,
        "warn" | "warning" => 13,
        "error" | "err" => 17,
        "fatal" | "critical" | "crit" | "panic" | "alert" | "emerg" => 21,
        _ => 0,
    }
}

/// Builds a record from `text` read from `path` at `observed_ns`.
pub fn build(text: &str, path: &str, json: bool, observed_ns: u64) -> LogRecord {
    let mut record = LogRecord {
        time_unix_nano: observed_ns,
        observed_time_unix_nano: observed_ns,
        attributes: vec![kv_any("log.file.path", string_value(path))],
        ..Default::default()
    };
    if let Some(name) = std::path::Path::new(path).file_name().and_then(|n| n.to_str()) {
        record
            .attributes
            .push(kv_any("log.file.name", string_value(name)));
    }
    let parsed = if json {
        serde_json::from_str::<serde_json::Value>(text).ok()
    } else {
        None
    };
    let Some(serde_json::Value::Object(fields)) = parsed else {
        record.body = Some(string_value(text));
        return record;
    };
    let mut body = None;
    for (key, value) in &fields {
        match key.as_str() {
            "message" | "msg" if body.is_none() => {
                body = Some(match value {
                    serde_json::Value::String(s) => string_value(s),
                    other => json_value(other),
                });
            }
            "level" | "severity" | "levelname" => {
                let level = value.as_str().unwrap_or_default();
                record.severity_text = level.to_string();
                record.severity_number = severity_number(level);
            }
            "time" | "timestamp" | "@timestamp" | "ts" => {
                let parsed = value
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                match parsed
                    .and_then(|t| t.timestamp_nanos_opt())
                    .and_then(|n| u64::try_from(n).ok())
                {
                    Some(ns) => record.time_unix_nano = ns,
                    None => record.attributes.push(kv_any(key, json_value(value))),
                }
            }
            _ => record.attributes.push(kv_any(key, json_value(value))),
        }
    }
    record.body = Some(body.unwrap_or_else(|| string_value(text)));
    record
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
            7,
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
}
