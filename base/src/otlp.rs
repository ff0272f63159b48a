//! Building OTLP attributes, as the agent, the demo and the tests all do.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

/// An attribute with a string value.
pub fn kv(key: &str, value: &str) -> KeyValue {
    kv_any(key, string_value(value))
}

/// An attribute with any value.
pub fn kv_any(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

/// A string as an OTLP value.
pub fn string_value(value: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.to_string())),
    }
}
