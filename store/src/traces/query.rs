//! What a trace search asks for, and how a span is matched against it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::span::{status, Span};

/// A search for traces: a trace is found when one of its spans matches every condition.
/// Serialisable: queriers send it to ingesters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceQuery {
    /// `service.name` of the matching span.
    pub service: Option<String>,
    /// Operation (span name) of the matching span.
    pub operation: Option<String>,
    /// Attribute conditions `key = value`, looked up in the span's attributes, then its
    /// resource. The key `error` also matches spans with an error status.
    pub tags: Vec<(String, String)>,
    /// Shortest matching span duration, nanoseconds.
    pub min_duration_nano: Option<i64>,
    /// Longest matching span duration, nanoseconds.
    pub max_duration_nano: Option<i64>,
    /// Earliest span start, nanoseconds since the epoch (inclusive).
    pub start_unix_nano: i64,
    /// Latest span start, nanoseconds since the epoch (inclusive).
    pub end_unix_nano: i64,
    /// Most traces returned (newest first).
    pub limit: usize,
}

impl TraceQuery {
    /// True when `span` satisfies every condition.
    pub fn matches(&self, span: &Span) -> bool {
        if span.start_unix_nano < self.start_unix_nano || span.start_unix_nano > self.end_unix_nano {
            return false;
        }
        if let Some(service) = &self.service {
            if &span.service != service {
                return false;
            }
        }
        if let Some(op) = &self.operation {
            if &span.name != op {
                return false;
            }
        }
        if let Some(min) = self.min_duration_nano {
            if span.duration_nano < min {
                return false;
            }
        }
        if let Some(max) = self.max_duration_nano {
            if span.duration_nano > max {
                return false;
            }
        }
        for (key, want) in &self.tags {
            if !tag_matches(span, key, want) {
                return false;
            }
        }
        true
    }

    /// True when a block covering `[min_start, max_start]` with these services may hold a
    /// matching span.
    pub(crate) fn may_match_block(&self, min_start: i64, max_start: i64, services: &[String]) -> bool {
        if max_start < self.start_unix_nano || min_start > self.end_unix_nano {
            return false;
        }
        match &self.service {
            Some(s) => services.iter().any(|x| x == s),
            None => true,
        }
    }
}

fn tag_matches(span: &Span, key: &str, want: &str) -> bool {
    if let Some(v) = span.attributes.get(key).or_else(|| span.resource.get(key)) {
        return value_text(v) == want;
    }
    if key == "error" {
        let is_error = span.status_code == status::ERROR;
        return (want == "true") == is_error;
    }
    if key == "span.kind" {
        return super::span::kind_name(span.kind) == want;
    }
    false
}

/// The text of an attribute value as a user would type it (`500`, `true`, `GET`).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::span::tests::span;
    use super::*;

    #[test]
    fn conditions_combine() {
        let s = span(1, 1, 0, "shop", "GET /", 100);
        let mut q = TraceQuery {
            start_unix_nano: 0,
            end_unix_nano: 1000,
            limit: 10,
            ..TraceQuery::default()
        };
        assert!(q.matches(&s));
        q.service = Some("shop".into());
        q.tags = vec![("http.status_code".into(), "200".into())];
        assert!(q.matches(&s));
        q.tags.push(("error".into(), "true".into()));
        assert!(!q.matches(&s));
        q.tags.pop();
        q.min_duration_nano = Some(2_000_000);
        assert!(!q.matches(&s));
        q.min_duration_nano = None;
        q.end_unix_nano = 50;
        assert!(!q.matches(&s));
    }
}
