//! Celery events as they travel on Redis: kombu publishes each message of the fanout
//! exchange `celeryev` on a pub/sub channel as a JSON envelope whose `body` is the event
//! (base64 unless `properties.body_encoding` says otherwise); a worker that buffers task
//! events sends a list of them at once (routing key `task.multi`). Only the JSON event
//! serializer (Celery's default) is understood.

use base64::Engine;
use serde_json::Value;

/// The fields of one Celery event the metrics need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// `worker-heartbeat`, `task-succeeded`, …
    pub kind: String,
    /// The sender: the worker's node name (`celery@host`), or the client for `task-sent`.
    pub hostname: String,
    /// The task id, for task events.
    pub uuid: Option<String>,
    /// The task name (only `task-sent` and `task-received` carry it).
    pub name: Option<String>,
    /// The exception text of `task-failed` / `task-retried` (`ValueError('boom')`).
    pub exception: Option<String>,
    /// Seconds the task ran (`task-succeeded`).
    pub runtime: Option<f64>,
    /// The worker's heartbeat interval in seconds (worker events).
    pub freq: Option<f64>,
    /// Tasks the worker is running (`worker-heartbeat`).
    pub active: Option<f64>,
}

/// Why an envelope was not understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// Not a JSON object.
    #[error("not a kombu JSON envelope: {0}")]
    Envelope(String),
    /// A serializer other than JSON.
    #[error("event content type {0:?} is not supported (only application/json)")]
    ContentType(String),
    /// The body could not be decoded.
    #[error("event body: {0}")]
    Body(String),
}

/// The events of one pub/sub message payload.
pub fn decode(payload: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let envelope: Value =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Envelope(e.to_string()))?;
    let Some(obj) = envelope.as_object() else {
        return Err(DecodeError::Envelope("not an object".into()));
    };
    let content_type = obj
        .get("content-type")
        .and_then(Value::as_str)
        .unwrap_or("application/json");
    if content_type != "application/json" {
        return Err(DecodeError::ContentType(content_type.to_string()));
    }
    let body = match obj.get("body") {
        Some(Value::String(text)) => {
            let encoding = obj
                .get("properties")
                .and_then(|p| p.get("body_encoding"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let raw = if encoding == "base64" {
                base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|e| DecodeError::Body(format!("base64: {e}")))?
            } else {
                text.as_bytes().to_vec()
            };
            serde_json::from_slice::<Value>(&raw).map_err(|e| DecodeError::Body(e.to_string()))?
        }
        Some(other) => other.clone(),
        None => return Err(DecodeError::Body("no body".into())),
    };
    let mut out = Vec::new();
    match body {
        Value::Array(items) => {
            for item in &items {
                if let Some(e) = event_of(item) {
                    out.push(e);
                }
            }
        }
        other => {
            if let Some(e) = event_of(&other) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

fn event_of(v: &Value) -> Option<Event> {
    let obj = v.as_object()?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let number = |k: &str| obj.get(k).and_then(Value::as_f64);
    Some(Event {
        kind: text("type")?,
        hostname: text("hostname").unwrap_or_default(),
        uuid: text("uuid"),
        name: text("name"),
        exception: text("exception"),
        runtime: number("runtime"),
        freq: number("freq"),
        active: number("active"),
    })
}

/// The exception's type from its text (`ValueError('boom')` → `ValueError`), so the label
/// does not carry messages.
pub fn exception_type(text: &str) -> String {
    let head = text.split('(').next().unwrap_or(text).trim();
    if head.is_empty() || head.len() > 100 || head.contains(char::is_whitespace) {
        return "other".to_string();
    }
    head.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn envelope(body: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(body);
        format!(
            r#"{{"body": "{b64}", "content-encoding": "utf-8", "content-type": "application/json",
                "headers": {{}}, "properties": {{"body_encoding": "base64", "delivery_info":
                {{"exchange": "celeryev", "routing_key": "task.multi"}}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn single_and_buffered_events_are_decoded() {
        let one = decode(&envelope(
            r#"{"type": "worker-heartbeat", "hostname": "celery@a", "freq": 2.0, "active": 3, "timestamp": 1.5}"#,
        ))
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].kind, "worker-heartbeat");
        assert_eq!(one[0].active, Some(3.0));
        let many = decode(&envelope(
            r#"[{"type": "task-received", "uuid": "u1", "name": "app.add", "hostname": "celery@a"},
                {"type": "task-failed", "uuid": "u1", "exception": "ValueError('x')", "hostname": "celery@a"}]"#,
        ))
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].name.as_deref(), Some("app.add"));
        assert_eq!(
            exception_type(many[1].exception.as_deref().unwrap()),
            "ValueError"
        );
    }

    #[test]
    fn other_serializers_and_garbage_are_refused() {
        assert!(matches!(decode(b"nope"), Err(DecodeError::Envelope(_))));
        assert!(matches!(
            decode(br#"{"content-type": "application/x-python-serialize", "body": "x"}"#),
            Err(DecodeError::ContentType(_))
        ));
        assert_eq!(exception_type("a b c"), "other");
        assert_eq!(
            exception_type("celery.exceptions.Retry"),
            "celery.exceptions.Retry"
        );
    }
}
