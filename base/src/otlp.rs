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

/// Metric metadata key (OTLP `Metric.metadata`) by which a sender asks that an
/// explicit-bucket histogram be stored as a native histogram with custom buckets (NHCB)
/// whatever the server's `[otlp] convert_histograms_to_nhcb`: the agent sets it on the
/// classic histograms of scrape jobs with `convert_classic_histograms_to_nhcb`, as
/// Prometheus converts per scrape job. Value: the string `"true"`.
pub const CONVERT_TO_NHCB_KEY: &str = "didban.convert_to_nhcb";
