//! What parsing one record found, shared by every format parser: the parts of an OTLP log
//! record a line can carry (severity, timestamp, trace context, attributes, body).

use didban_base::otlp::kv_any;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

/// The fields one record's text yielded; anything left unset comes from the reader (read time
/// as the timestamp, the text as the body).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    /// The body when it is not the text itself (a JSON record's `message`).
    pub body: Option<AnyValue>,
    /// OTLP severity number; 0 = not found.
    pub severity_number: i32,
    /// The level as written (`WARNING`, `error`), or the syslog/HTTP-derived name.
    pub severity_text: String,
    /// Event time in Unix nanoseconds, when the text had one.
    pub time_ns: Option<u64>,
    /// 16-byte trace id, or empty.
    pub trace_id: Vec<u8>,
    /// 8-byte span id, or empty.
    pub span_id: Vec<u8>,
    /// Attributes found in the text.
    pub attributes: Vec<KeyValue>,
}

impl Parsed {
    /// Sets the severity from a level word (`warn` → 13), keeping the word as the text.
    pub fn set_level(&mut self, level: &str) {
        self.severity_text = level.to_string();
        self.severity_number = severity_number(level);
    }

    /// Adds a string attribute.
    pub fn push_str(&mut self, key: &str, value: &str) {
        self.attributes.push(kv_any(key, string_value(value)));
    }

    /// Adds an attribute of any value.
    pub fn push(&mut self, key: &str, value: AnyValue) {
        self.attributes.push(kv_any(key, value));
    }
}

/// A string `AnyValue`.
pub fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

/// An integer `AnyValue`.
pub fn int_value(i: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    }
}

/// A float `AnyValue`.
pub fn double_value(f: f64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::DoubleValue(f)),
    }
}

/// A JSON value as an `AnyValue`: scalars as themselves, arrays and objects as JSON text.
pub fn json_value(v: &serde_json::Value) -> AnyValue {
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

/// Level names and their OTLP severity numbers, matched without regard to case.
const LEVELS: &[(&str, i32)] = &[
    ("trace", 1),
    ("debug", 5),
    ("info", 9),
    ("information", 9),
    ("informational", 9),
    ("notice", 9),
    ("warn", 13),
    ("warning", 13),
    ("error", 17),
    ("err", 17),
    ("fatal", 21),
    ("critical", 21),
    ("crit", 21),
    ("panic", 21),
    ("alert", 21),
    ("emerg", 21),
    ("emergency", 21),
];

/// OTLP severity number for a level name (`warn` → 13); 0 for a word that is not a level.
/// Called for every word at the head of every plain-text line, so it does not allocate.
pub fn severity_number(level: &str) -> i32 {
    for (name, number) in LEVELS {
        if level.len() == name.len() && level.eq_ignore_ascii_case(name) {
            return *number;
        }
    }
    0
}
