//! Serverless (FaaS) metrics and estimated cost from spans carrying the OpenTelemetry
//! FaaS attributes. A span is a function invocation when its resource (or the span) has
//! `faas.name` and it is a server span or carries `faas.trigger`/`faas.invocation_id`.
//!
//! Labels: `faas_name`, `cloud_provider`, `cloud_region`, `faas_trigger`:
//!
//! - `faas_invocations_total`, `faas_errors_total` (error status), `faas_coldstarts_total`
//!   (`faas.coldstart` true); all three exist from a function's first invocation on, at 0
//!   until something is counted;
//! - `faas_invoke_duration_seconds`: a native histogram, or `…_{bucket,sum,count}` with
//!   `[traces] duration_histogram = "classic"` (as the span duration histogram, with its
//!   exemplars);
//! - `faas_gb_seconds_total` and `faas_estimated_cost_usd_total` (labels `faas_name`,
//!   `cloud_provider`, `cloud_region`, `host_arch`): per invocation, the duration rounded
//!   up to the millisecond × `faas.max_memory` in GiB, and `request price / 1e6 +
//!   GB-seconds × GB-second price` from the `[faas]` price table (provider
//!   `cloud.provider`, architecture from `host.arch`: `arm64`/`aarch64` → `arm64`, anything
//!   else `x86_64`). Without `faas.max_memory` only the request price is counted; without
//!   a price row for the provider no cost is counted.
//!
//! `faas.max_memory` is bytes (current conventions); values below 1 MiB are read as MiB
//! (older conventions).

use didban_store::traces::{kind, status, Span};
use serde_json::Value;

use super::totals::{DurationLayout, Totals};
use crate::config::traces_logs::FaasConfig;

/// Computes FaaS metrics from spans.
pub(crate) struct FaasMeter {
    config: FaasConfig,
}

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a Value> {
    s.attributes.get(key).or_else(|| s.resource.get(key))
}

fn text(s: &Span, key: &str) -> String {
    match attr(s, key) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Memory in bytes from `faas.max_memory`.
pub fn memory_bytes(v: Option<&Value>) -> Option<f64> {
    let n = number(v)?;
    if n.is_nan() || n <= 0.0 {
        return None;
    }
    if n < 1024.0 * 1024.0 {
        Some(n * 1024.0 * 1024.0)
    } else {
        Some(n)
    }
}

/// `x86_64` or `arm64` from `host.arch`.
pub fn arch_family(host_arch: &str) -> &'static str {
    match host_arch.to_ascii_lowercase().as_str() {
        "arm64" | "aarch64" | "arm" | "arm32" => "arm64",
        _ => "x86_64",
    }
}

impl FaasMeter {
    pub(crate) fn new(config: FaasConfig) -> FaasMeter {
        FaasMeter { config }
    }

    pub(crate) fn observe(&self, s: &Span, layout: &DurationLayout, counters: &mut Totals) {
        let name = text(s, "faas.name");
        if name.is_empty() {
            return;
        }
        let invocation = s.kind == kind::SERVER
            || s.attributes.contains_key("faas.trigger")
            || s.attributes.contains_key("faas.invocation_id");
        if !invocation {
            return;
        }
        let provider = text(s, "cloud.provider");
        let region = text(s, "cloud.region");
        let trigger = text(s, "faas.trigger");
        let labels = [
            ("faas_name", name.as_str()),
            ("cloud_provider", provider.as_str()),
            ("cloud_region", region.as_str()),
            ("faas_trigger", trigger.as_str()),
        ];
        counters.add("faas_invocations_total", &labels, 1.0);
        // Added even when zero, so a function without failures reads 0 errors (and a 0%
        // error ratio), not "no data".
        let failed = s.status_code == status::ERROR;
        counters.add("faas_errors_total", &labels, if failed { 1.0 } else { 0.0 });
        let cold = match attr(s, "faas.coldstart") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(v)) => v == "true",
            _ => false,
        };
        counters.add("faas_coldstarts_total", &labels, if cold { 1.0 } else { 0.0 });
        counters.observe("faas_invoke_duration_seconds", &labels, layout, s);

        let arch = arch_family(&text(s, "host.arch"));
        let cost_labels = [
            ("faas_name", name.as_str()),
            ("cloud_provider", provider.as_str()),
            ("cloud_region", region.as_str()),
            ("host_arch", arch),
        ];
        let billed_seconds = (s.duration_nano as f64 / 1e6).ceil() / 1e3;
        let gb_seconds = match memory_bytes(attr(s, "faas.max_memory")) {
            Some(bytes) => billed_seconds * bytes / (1024.0 * 1024.0 * 1024.0),
            None => 0.0,
        };
        counters.add("faas_gb_seconds_total", &cost_labels, gb_seconds);
        if let Some(price) = self.config.price(&provider, arch) {
            let cost = price.per_million_requests / 1e6 + gb_seconds * price.per_gb_second;
            counters.add("faas_estimated_cost_usd_total", &cost_labels, cost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::span_metrics::SpanMetrics;
    use super::*;
    use didban_store::traces::{Span, SpanEvent};

    fn lambda_span(ms: i64, cold: bool) -> Span {
        let mut attributes = serde_json::Map::new();
        attributes.insert("faas.coldstart".into(), Value::Bool(cold));
        attributes.insert("faas.trigger".into(), Value::from("http"));
        let mut resource = serde_json::Map::new();
        resource.insert("faas.name".into(), Value::from("resize"));
        resource.insert("faas.max_memory".into(), Value::from(134_217_728i64));
        resource.insert("cloud.provider".into(), Value::from("aws"));
        resource.insert("cloud.region".into(), Value::from("eu-west-1"));
        Span {
            trace_id: "1".repeat(32),
            span_id: "2".repeat(16),
            parent_span_id: String::new(),
            trace_state: String::new(),
            name: "resize".into(),
            kind: kind::SERVER,
            service: "resize".into(),
            start_unix_nano: 1,
            duration_nano: ms * 1_000_000 - 300_000,
            status_code: 0,
            status_message: String::new(),
            attributes,
            resource: resource.into(),
            scope_name: String::new(),
            scope_version: String::new(),
            events: Vec::<SpanEvent>::new(),
            links: Vec::new(),
        }
    }

    fn value(out: &[didban_store::SeriesSamples], name: &str) -> f64 {
        let mut total = 0.0;
        for s in out {
            if s.labels.metric_name() == Some(name) {
                total += s.samples.last().map_or(0.0, |p| p.value);
            }
        }
        total
    }

    #[test]
    fn cold_starts_and_cost_match_the_hand_computed_values() {
        let m = SpanMetrics::new(DurationLayout::Native, FaasConfig::default());
        let spans = vec![
            lambda_span(100, true),
            lambda_span(200, false),
            lambda_span(300, false),
        ];
        let recorded = m.observe(&spans, 1000);
        let out = recorded.samples;
        assert_eq!(value(&out, "faas_invocations_total"), 3.0);
        assert_eq!(value(&out, "faas_coldstarts_total"), 1.0);
        // No invocation failed: the error counter exists and reads 0.
        assert!(out
            .iter()
            .any(|s| s.labels.metric_name() == Some("faas_errors_total")));
        assert_eq!(value(&out, "faas_errors_total"), 0.0);
        // 0.6 s billed × 0.125 GiB = 0.075 GB-s; 3 requests × $0.20/M + 0.075 × $0.0000166667.
        assert!((value(&out, "faas_gb_seconds_total") - 0.075).abs() < 1e-12);
        let want = 3.0 * 0.2 / 1e6 + 0.075 * 0.0000166667;
        assert!((value(&out, "faas_estimated_cost_usd_total") - want).abs() < 1e-15);
        assert_eq!(value(&out, "traces_span_metrics_calls_total"), 3.0);
        // The invocation durations: one native histogram with the slowest as exemplar.
        let d = out
            .iter()
            .find(|s| s.labels.metric_name() == Some("faas_invoke_duration_seconds"))
            .and_then(|s| s.histograms.last())
            .map(|h| h.h.count);
        assert_eq!(d, Some(3.0));
        let ex = recorded
            .exemplars
            .iter()
            .find(|e| e.series.metric_name() == Some("faas_invoke_duration_seconds"))
            .map(|e| e.exemplar.value);
        assert_eq!(ex, Some(0.2997));
        assert_eq!(arch_family("aarch64"), "arm64");
        assert_eq!(memory_bytes(Some(&Value::from(128))), Some(134_217_728.0));
    }
}
