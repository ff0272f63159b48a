//! Spans in the JSON of Jaeger's HTTP query API (`/api/traces…`), the shape Grafana's
//! Jaeger data source and the Jaeger UI read: a trace is `{traceID, spans, processes,
//! warnings}`; a span has `references` (`CHILD_OF` its parent, `FOLLOWS_FROM` its links),
//! times in microseconds, typed `tags` and `logs` (from span events); each distinct
//! service + resource is a process `p1`, `p2`, ….
//!
//! OTLP fields without a Jaeger field become tags, as the OpenTelemetry → Jaeger
//! translation does: `span.kind`, `otel.status_code`, `otel.status_description`, `error`
//! (true for an error status), `otel.scope.name`, `otel.scope.version`, `w3c.tracestate`.

use std::collections::BTreeMap;

use didban_store::traces::{kind, kind_name, status, Span};
use serde_json::{json, Map, Value};

/// One Jaeger tag from an attribute, typed as Jaeger types them.
pub fn tag(key: &str, value: &Value) -> Value {
    match value {
        Value::Bool(b) => json!({"key": key, "type": "bool", "value": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"key": key, "type": "int64", "value": n}),
        Value::Number(n) => json!({"key": key, "type": "float64", "value": n}),
        Value::String(s) => json!({"key": key, "type": "string", "value": s}),
        other => json!({"key": key, "type": "string", "value": other.to_string()}),
    }
}

fn tags(map: &Map<String, Value>, skip: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        if k != skip {
            out.push(tag(k, v));
        }
    }
    out
}

fn micros(nanos: i64) -> i64 {
    nanos.div_euclid(1000)
}

/// A trace in Jaeger's JSON, with a `didbanLogs` link to the trace's log records.
pub fn trace_json(spans: &[Span]) -> Value {
    let trace_id = spans.first().map(|s| s.trace_id.clone()).unwrap_or_default();
    let mut processes: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let mut process_of: Vec<String> = Vec::with_capacity(spans.len());
    for s in spans {
        let key = format!("{}\u{0}{}", s.service, Value::Object((*s.resource).clone()));
        let next = format!("p{}", processes.len() + 1);
        let id = match processes.get(&key) {
            Some((id, _)) => id.clone(),
            None => {
                let process = json!({"serviceName": s.service, "tags": tags(&s.resource, "service.name")});
                processes.insert(key, (next.clone(), process));
                next
            }
        };
        process_of.push(id);
    }
    let mut known: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for s in spans {
        known.insert(s.span_id.as_str());
    }
    let mut out_spans = Vec::with_capacity(spans.len());
    for (s, process_id) in spans.iter().zip(process_of) {
        let mut warnings = Vec::new();
        if !s.parent_span_id.is_empty() && !known.contains(s.parent_span_id.as_str()) {
            warnings.push(Value::from(format!(
                "invalid parent span IDs={}; skipping clock skew adjustment",
                s.parent_span_id
            )));
        }
        out_spans.push(span_json(s, &process_id, warnings));
    }
    let mut process_map = Map::new();
    for (_, (id, p)) in processes {
        process_map.insert(id, p);
    }
    json!({
        "traceID": trace_id,
        "spans": out_spans,
        "processes": process_map,
        "warnings": null,
        "didbanLogs": format!("/api/traces/{trace_id}/logs"),
    })
}

fn span_json(s: &Span, process_id: &str, warnings: Vec<Value>) -> Value {
    let mut references = Vec::new();
    if !s.parent_span_id.is_empty() {
        references.push(json!({"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_span_id}));
    }
    for l in &s.links {
        references.push(json!({"refType": "FOLLOWS_FROM", "traceID": l.trace_id, "spanID": l.span_id}));
    }
    let mut span_tags = tags(&s.attributes, "");
    if s.kind != kind::UNSPECIFIED {
        span_tags.push(tag("span.kind", &Value::from(kind_name(s.kind))));
    }
    match s.status_code {
        status::ERROR => {
            span_tags.push(tag("otel.status_code", &Value::from("ERROR")));
            if !s.attributes.contains_key("error") {
                span_tags.push(tag("error", &Value::Bool(true)));
            }
        }
        status::OK => span_tags.push(tag("otel.status_code", &Value::from("OK"))),
        _ => {}
    }
    if !s.status_message.is_empty() {
        span_tags.push(tag(
            "otel.status_description",
            &Value::from(s.status_message.as_str()),
        ));
    }
    if !s.scope_name.is_empty() {
        span_tags.push(tag("otel.scope.name", &Value::from(s.scope_name.as_str())));
    }
    if !s.scope_version.is_empty() {
        span_tags.push(tag("otel.scope.version", &Value::from(s.scope_version.as_str())));
    }
    if !s.trace_state.is_empty() {
        span_tags.push(tag("w3c.tracestate", &Value::from(s.trace_state.as_str())));
    }
    let mut logs = Vec::with_capacity(s.events.len());
    for e in &s.events {
        let mut fields = vec![tag("event", &Value::from(e.name.as_str()))];
        fields.extend(tags(&e.attributes, ""));
        logs.push(json!({"timestamp": micros(e.time_unix_nano), "fields": fields}));
    }
    json!({
        "traceID": s.trace_id,
        "spanID": s.span_id,
        "operationName": s.name,
        "references": references,
        "flags": 1,
        "startTime": micros(s.start_unix_nano),
        "duration": micros(s.duration_nano),
        "tags": span_tags,
        "logs": logs,
        "processID": process_id,
        "warnings": if warnings.is_empty() { Value::Null } else { Value::Array(warnings) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use didban_store::traces::SpanEvent;

    fn span(id: &str, parent: &str, code: i32) -> Span {
        let mut attributes = Map::new();
        attributes.insert("http.status_code".into(), Value::from(500));
        attributes.insert("ratio".into(), Value::from(0.5));
        let mut resource = Map::new();
        resource.insert("service.name".into(), Value::from("shop"));
        resource.insert("host.name".into(), Value::from("a"));
        Span {
            trace_id: "ab".repeat(16),
            span_id: id.into(),
            parent_span_id: parent.into(),
            trace_state: String::new(),
            name: "GET /".into(),
            kind: kind::SERVER,
            service: "shop".into(),
            start_unix_nano: 1_000_000_123_456,
            duration_nano: 2_500_000,
            status_code: code,
            status_message: String::new(),
            attributes,
            resource: resource.into(),
            scope_name: "flask".into(),
            scope_version: String::new(),
            events: vec![SpanEvent {
                time_unix_nano: 1_000_000_200_000,
                name: "exception".into(),
                attributes: Map::new(),
            }],
            links: Vec::new(),
        }
    }

    #[test]
    fn spans_become_jaeger_json() {
        let spans = vec![
            span("0000000000000001", "", 2),
            span("0000000000000002", "0000000000000001", 0),
        ];
        let t = trace_json(&spans);
        assert_eq!(t["processes"].as_object().map(|m| m.len()), Some(1));
        assert_eq!(t["processes"]["p1"]["serviceName"], "shop");
        let root = &t["spans"][0];
        assert_eq!(root["startTime"], 1_000_000_123);
        assert_eq!(root["duration"], 2_500);
        assert!(root["references"].as_array().is_some_and(|r| r.is_empty()));
        let root_tags = root["tags"].to_string();
        assert!(root_tags.contains(r#"{"key":"http.status_code","type":"int64","value":500}"#));
        assert!(root_tags.contains(r#"{"key":"ratio","type":"float64","value":0.5}"#));
        assert!(root_tags.contains(r#"{"key":"error","type":"bool","value":true}"#));
        assert!(root_tags.contains(r#"{"key":"span.kind","type":"string","value":"server"}"#));
        assert_eq!(root["logs"][0]["fields"][0]["value"], "exception");
        let child = &t["spans"][1];
        assert_eq!(child["references"][0]["refType"], "CHILD_OF");
        assert_eq!(child["references"][0]["spanID"], "0000000000000001");
        assert!(child["warnings"].is_null());
    }
}
