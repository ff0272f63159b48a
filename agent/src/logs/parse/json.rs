//! JSON object records: fields become attributes, `message`/`msg` the body, `level`/
//! `severity`/`levelname` the severity, `time`/`timestamp`/`@timestamp`/`ts` (RFC 3339, a
//! built-in text format or epoch s/ms/µs/ns) the timestamp. Access logs written as JSON
//! (nginx `escape=json`, Caddy, Traefik) get the HTTP attributes of [`super::http`] instead of
//! their raw fields.

use serde_json::Value;

use std::borrow::Cow;

use super::fields::{json_value, Parsed};
use super::http::Access;
use super::timestamp;
use super::trace;

/// Keys read as the record's timestamp.
const TIME_KEYS: &[&str] = &[
    "time",
    "timestamp",
    "@timestamp",
    "ts",
    "time_iso8601",
    "time_local",
    "StartUTC",
];

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn time_of(value: &Value, custom: &str, now_ns: u64) -> Option<u64> {
    match value {
        Value::String(s) => {
            // nginx `$time_local` has no brackets in JSON.
            timestamp::from_string(s, custom, now_ns)
                .or_else(|| timestamp::find(&format!("[{s}]"), custom, now_ns))
        }
        Value::Number(n) => timestamp::from_epoch(n.as_f64()?),
        _ => None,
    }
}

/// Caddy's nested `request` object: `remote_ip`, `client_ip`, `method`, `uri`, `proto` and
/// the `User-Agent`/`Referer` headers (arrays of strings).
fn caddy_request(request: &serde_json::Map<String, Value>, access: &mut Access<'static>) {
    for (key, value) in request {
        if key == "headers" {
            let Value::Object(headers) = value else {
                continue;
            };
            for (name, values) in headers {
                let first = match values {
                    Value::Array(a) => a.first().and_then(text_of),
                    other => text_of(other),
                };
                if let Some(v) = first {
                    access.set(name, v);
                }
            }
        } else if let Some(v) = text_of(value) {
            access.set(key, v);
        }
    }
}

/// The fields of `text` when it is a JSON object; `None` otherwise.
pub fn parse(text: &str, custom: &str, now_ns: u64) -> Option<Parsed<'static>> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let mut parsed = Parsed::default();
    let mut access = Access::default();
    // Fields taken as HTTP fields, kept as attributes after all when the record turns out
    // not to be an access-log record.
    let mut taken: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in &fields {
        match key.as_str() {
            "message" | "msg" if parsed.body.is_none() => {
                parsed.body = Some(json_value(value));
            }
            "level" | "severity" | "levelname" | "log.level" => {
                parsed.set_level(Cow::Owned(value.as_str().unwrap_or_default().to_string()));
            }
            k if TIME_KEYS.contains(&k) && parsed.time_ns.is_none() => match time_of(value, custom, now_ns) {
                Some(ns) => parsed.time_ns = Some(ns),
                None => parsed.push(key.clone(), json_value(value)),
            },
            "request" if value.is_object() => {
                if let Value::Object(request) = value {
                    caddy_request(request, &mut access);
                }
                taken.push((key, value));
            }
            _ => {
                let consumed = match text_of(value) {
                    Some(v) => access.set(key, v),
                    None => false,
                };
                if consumed {
                    taken.push((key, value));
                } else {
                    parsed.push(key.clone(), json_value(value));
                }
            }
        }
    }
    if access.is_access() {
        access.apply(&mut parsed);
    } else {
        for (key, value) in taken {
            parsed.push(key.clone(), json_value(value));
        }
    }
    let (trace_id, span_id) = trace::find(text);
    parsed.trace_id = trace_id;
    parsed.span_id = span_id;
    Some(parsed)
}
