//! Celery events as they travel on the broker. On Redis kombu publishes each message of the
//! fanout exchange `celeryev` on a pub/sub channel as a JSON envelope whose `body` is the
//! event (base64 unless `properties.body_encoding` says otherwise) ([`decode`]); on AMQP the
//! message body is the event itself, its content type and encoding in the message properties
//! ([`decode_body`]). A worker that buffers task events sends a list of them at once
//! (routing key `task.multi`). Only the JSON event serializer (Celery's default) is
//! understood.

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
    /// When the sender sent it, seconds since the epoch on the sender's clock.
    pub timestamp: Option<f64>,
    /// Whether the task is scheduled for later (`eta` or `countdown`: a non-null `eta` on
    /// `task-sent`/`task-received`), so its wait is not queueing.
    pub scheduled: bool,
    /// The queue the task was sent to (only `task-sent` carries it).
    pub queue: Option<String>,
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
    /// A body encoding other than UTF-8 (or a compressed body).
    #[error("event content encoding {0:?} is not supported (only utf-8, uncompressed)")]
    ContentEncoding(String),
    /// The body could not be decoded.
    #[error("event body: {0}")]
    Body(String),
}

/// The events of one Redis pub/sub message payload (a kombu envelope).
pub fn decode(payload: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let envelope: Value =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Envelope(e.to_string()))?;
    let Some(obj) = envelope.as_object() else {
        return Err(DecodeError::Envelope("not an object".into()));
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
    let (content_type, content_encoding) = (text("content-type"), text("content-encoding"));
    if obj.get("headers").and_then(|h| h.get("compression")).is_some() {
        return Err(DecodeError::ContentEncoding("compressed".into()));
    }
    match obj.get("body") {
        Some(Value::String(body)) => {
            let encoding = obj
                .get("properties")
                .and_then(|p| p.get("body_encoding"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if encoding == "base64" {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .map_err(|e| DecodeError::Body(format!("base64: {e}")))?;
                decode_body(content_type, content_encoding, &raw)
            } else {
                decode_body(content_type, content_encoding, body.as_bytes())
            }
        }
        Some(other) => {
            check_content(content_type, content_encoding)?;
            Ok(events_of(other))
        }
        None => Err(DecodeError::Body("no body".into())),
    }
}

/// The events of one message body whose properties say `content_type` and
/// `content_encoding` (empty when absent: JSON in UTF-8 is assumed, as kombu does).
pub fn decode_body(
    content_type: &str,
    content_encoding: &str,
    body: &[u8],
) -> Result<Vec<Event>, DecodeError> {
    check_content(content_type, content_encoding)?;
    let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?;
    Ok(events_of(&value))
}

fn check_content(content_type: &str, content_encoding: &str) -> Result<(), DecodeError> {
    if !content_type.is_empty() && content_type != "application/json" {
        return Err(DecodeError::ContentType(content_type.to_string()));
    }
    let encoding = content_encoding.to_ascii_lowercase();
    if !matches!(encoding.as_str(), "" | "utf-8" | "utf8") {
        return Err(DecodeError::ContentEncoding(content_encoding.to_string()));
    }
    Ok(())
}

/// One event, or each of a `task.multi` list.
fn events_of(body: &Value) -> Vec<Event> {
    let mut out = Vec::new();
    match body {
        Value::Array(items) => {
            for item in items {
                if let Some(e) = event_of(item) {
                    out.push(e);
                }
            }
        }
        other => {
            if let Some(e) = event_of(other) {
                out.push(e);
            }
        }
    }
    out
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
        timestamp: number("timestamp"),
        scheduled: obj.get("eta").is_some_and(|v| !v.is_null()),
        queue: text("queue"),
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
    fn an_amqp_body_is_the_event_itself_with_its_times_and_queue() {
        let sent = decode_body(
            "application/json",
            "utf-8",
            br#"{"type": "task-sent", "uuid": "u", "name": "a", "queue": "mail", "eta": null,
                 "timestamp": 1700000000.25, "hostname": "gen1@h"}"#,
        )
        .unwrap();
        assert_eq!(sent[0].timestamp, Some(1_700_000_000.25));
        assert_eq!(sent[0].queue.as_deref(), Some("mail"));
        assert!(!sent[0].scheduled);
        let later = decode_body(
            "",
            "",
            br#"[{"type": "task-received", "uuid": "u", "eta": "2026-01-01T00:00:00+00:00"}]"#,
        )
        .unwrap();
        assert!(later[0].scheduled);
    }

    #[test]
    fn other_serializers_and_garbage_are_refused() {
        assert!(matches!(decode(b"nope"), Err(DecodeError::Envelope(_))));
        assert!(matches!(
            decode_body("application/json", "binary", b"{}"),
            Err(DecodeError::ContentEncoding(_))
        ));
        assert!(matches!(
            decode_body("application/json", "utf-8", b"{"),
            Err(DecodeError::Body(_))
        ));
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
