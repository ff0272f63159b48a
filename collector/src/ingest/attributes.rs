//! What the trace and log mappings share: OTLP attributes as JSON maps under size limits,
//! ids as hex, the service name of a resource, how far ahead a timestamp may be
//! ([`FutureLimit`]).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

use super::metrics::names::json_value;

/// Longest string kept in an attribute value; longer ones are cut (at a character
/// boundary) and end with `…`.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;
/// Most attributes kept per span, event, link, log record or resource; later ones are
/// dropped.
pub const MAX_ATTRIBUTES: usize = 256;
/// Deepest nesting of arrays and key-value lists kept; deeper values become their JSON
/// text (itself cut at [`MAX_ATTRIBUTE_VALUE_BYTES`]).
pub const MAX_ATTRIBUTE_DEPTH: usize = 8;

/// The server clock and how far ahead of it a span or log record may be dated
/// (`limits.max_future`): later ones are refused one by one, so that a client clock hours
/// ahead (or `time_unix_nano = u64::MAX`) cannot fill day indexes and blocks that
/// retention would keep for as long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureLimit {
    /// The server clock, Unix nanoseconds.
    pub now_nano: i64,
    /// Nanoseconds a timestamp may lie ahead of `now_nano` (0 = no limit).
    pub max_future_nano: i64,
}

impl FutureLimit {
    /// The limit at server time `now_nano` for the configured `max_future`.
    pub fn new(now_nano: i64, max_future: std::time::Duration) -> FutureLimit {
        FutureLimit {
            now_nano,
            max_future_nano: i64::try_from(max_future.as_nanos()).unwrap_or(i64::MAX),
        }
    }

    /// Refuses `t` (of field `what`) when it lies too far ahead, saying by how much.
    pub fn check(&self, what: &str, t: i64) -> Result<(), String> {
        if self.max_future_nano <= 0 || t <= self.now_nano.saturating_add(self.max_future_nano) {
            return Ok(());
        }
        Err(format!(
            "{what} {t} is {} s ahead of the server clock, more than the {} s allowed (limits.max_future)",
            t.saturating_sub(self.now_nano) / 1_000_000_000,
            self.max_future_nano / 1_000_000_000
        ))
    }
}

/// The service name of the resource (`unknown_service` when absent, as the SDKs default).
pub fn service_name(resource: Option<&Resource>) -> String {
    if let Some(r) = resource {
        for kv in &r.attributes {
            if kv.key == "service.name" {
                let text = super::metrics::names::attribute_value(kv.value.as_ref());
                if !text.is_empty() {
                    return text;
                }
            }
        }
    }
    "unknown_service".to_string()
}

/// Attributes as a JSON map under the limits above.
pub fn attributes_map(attributes: &[KeyValue]) -> Map<String, Value> {
    let mut map = Map::new();
    for kv in attributes.iter().take(MAX_ATTRIBUTES) {
        let value = json_value(kv.value.as_ref().and_then(|v| v.value.as_ref()));
        map.insert(cut(&kv.key, 1024), limit_value(value, 0));
    }
    map
}

/// The resource's attributes as a JSON map.
pub fn resource_map(resource: Option<&Resource>) -> Map<String, Value> {
    match resource {
        Some(r) => attributes_map(&r.attributes),
        None => Map::new(),
    }
}

fn limit_value(value: Value, depth: usize) -> Value {
    match value {
        Value::String(s) => Value::String(cut(&s, MAX_ATTRIBUTE_VALUE_BYTES)),
        Value::Array(_) | Value::Object(_) if depth >= MAX_ATTRIBUTE_DEPTH => {
            Value::String(cut(&value.to_string(), MAX_ATTRIBUTE_VALUE_BYTES))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len().min(MAX_ATTRIBUTES));
            for item in items.into_iter().take(MAX_ATTRIBUTES) {
                out.push(limit_value(item, depth + 1));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map.into_iter().take(MAX_ATTRIBUTES) {
                out.insert(cut(&k, 1024), limit_value(v, depth + 1));
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// `s` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s.get(..end).unwrap_or_default().to_string();
    out.push('…');
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A trace (16 bytes) or span (8 bytes) id as hex; `what` names it in the error.
pub fn id_hex(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!(
            "{what} {:?} has {} bytes, want {len}",
            hex(bytes),
            bytes.len()
        ));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{what} is all zeros"));
    }
    Ok(hex(bytes))
}

/// Nanoseconds as i64 (saturating), from OTLP's u64.
pub fn nanos_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};

    #[test]
    fn values_are_limited_and_ids_checked() {
        let long = "é".repeat(MAX_ATTRIBUTE_VALUE_BYTES);
        let mut nested = AnyValue {
            value: Some(V::IntValue(1)),
        };
        for _ in 0..20 {
            nested = AnyValue {
                value: Some(V::ArrayValue(ArrayValue { values: vec![nested] })),
            };
        }
        let attrs = vec![
            KeyValue {
                key: "long".into(),
                value: Some(AnyValue {
                    value: Some(V::StringValue(long)),
                }),
                ..KeyValue::default()
            },
            KeyValue {
                key: "deep".into(),
                value: Some(nested),
                ..KeyValue::default()
            },
        ];
        let map = attributes_map(&attrs);
        let s = map["long"].as_str().unwrap_or_default();
        assert!(s.len() <= MAX_ATTRIBUTE_VALUE_BYTES && s.ends_with('…'));
        assert!(map["deep"].to_string().contains("[[1]]"));
        assert_eq!(id_hex(&[0, 1], 2, "span id"), Ok("0001".to_string()));
        assert_eq!(
            id_hex(&[1, 2, 3], 8, "span id").unwrap_err(),
            "span id \"010203\" has 3 bytes, want 8"
        );
        assert_eq!(id_hex(&[0; 8], 8, "span id").unwrap_err(), "span id is all zeros");
    }
}
