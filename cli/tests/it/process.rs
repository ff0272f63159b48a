//! The real `didban` binary of this crate, started through the test kit, and request
//! bodies several process tests send.

pub use didban_testkit::{free_port, now_ms, Didban};

/// Path of the `didban` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_didban");

/// An OTLP/HTTP JSON body with one gauge point.
pub fn otlp_gauge_json(service: &str, metric: &str, time_ms: i64, value: f64) -> String {
    let ns = (time_ms as i128) * 1_000_000;
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"{metric}","gauge":{{"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":{value}}}]}}}}]}}]}}]}}"#
    )
}
