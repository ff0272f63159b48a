//! What parsing one record found, shared by every format parser: the parts of an OTLP log
//! record a line can carry (severity, timestamp, trace context, attributes, body).
//!
//! Text is borrowed from the record wherever the parser found it there (a level word, an
//! access log's path and user agent), so a parsed line costs no allocation per field; the
//! request encoder writes the borrowed text straight into the OTLP bytes (issue 12: one
//! `String` per attribute key and value was the largest part of parsing an access log).

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

/// An attribute or body value, as the parsers produce them (the scalar kinds of an OTLP
/// `AnyValue`; JSON arrays and objects arrive as their JSON text).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A string, borrowed from the record when it was read from it.
    Str(Cow<'a, str>),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A boolean.
    Bool(bool),
}

impl Value<'_> {
    /// The OTLP value (allocates; the encoder writes values without building one).
    pub fn to_any(&self) -> AnyValue {
        let value = match self {
            Value::Str(s) => any_value::Value::StringValue(s.to_string()),
            Value::Int(i) => any_value::Value::IntValue(*i),
            Value::Double(f) => any_value::Value::DoubleValue(*f),
            Value::Bool(b) => any_value::Value::BoolValue(*b),
        };
        AnyValue { value: Some(value) }
    }
}

/// One attribute: key and value, each borrowed where it can be.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute<'a> {
    /// The attribute's name (`url.path`, or a JSON key).
    pub key: Cow<'a, str>,
    /// Its value.
    pub value: Value<'a>,
}

impl Attribute<'_> {
    /// The OTLP attribute (allocates).
    pub fn to_key_value(&self) -> KeyValue {
        didban_base::otlp::kv_any(&self.key, self.value.to_any())
    }
}

/// The fields one record's text yielded; anything left unset comes from the reader (read time
/// as the timestamp, the text as the body). `'a` is the life of the record's text (and of the
/// parser, whose configured names may be used as keys).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed<'a> {
    /// The body when it is not the text itself (a JSON record's `message`).
    pub body: Option<Value<'a>>,
    /// OTLP severity number; 0 = not found.
    pub severity_number: i32,
    /// The level as written (`WARNING`, `error`), or the syslog/HTTP-derived name.
    pub severity_text: Cow<'a, str>,
    /// Event time in Unix nanoseconds, when the text had one.
    pub time_ns: Option<u64>,
    /// 16-byte trace id, or empty.
    pub trace_id: Vec<u8>,
    /// 8-byte span id, or empty.
    pub span_id: Vec<u8>,
    /// Attributes found in the text.
    pub attributes: Vec<Attribute<'a>>,
}

impl<'a> Parsed<'a> {
    /// Sets the severity from a level word (`warn` → 13), keeping the word as the text.
    pub fn set_level(&mut self, level: Cow<'a, str>) {
        self.severity_number = severity_number(&level);
        self.severity_text = level;
    }

    /// Adds a string attribute.
    pub fn push_str(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.push(key, Value::Str(value.into()));
    }

    /// Adds an attribute of any value.
    pub fn push(&mut self, key: impl Into<Cow<'a, str>>, value: Value<'a>) {
        self.attributes.push(Attribute {
            key: key.into(),
            value,
        });
    }
}

/// A string `AnyValue`.
pub fn string_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

/// A JSON value as a [`Value`]: scalars as themselves, arrays and objects as JSON text.
pub fn json_value(v: &serde_json::Value) -> Value<'static> {
    match v {
        serde_json::Value::String(s) => Value::Str(Cow::Owned(s.clone())),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => Value::Str(Cow::Owned(other.to_string())),
    }
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
