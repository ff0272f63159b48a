//! Trace context written in a record's text: `trace_id=…`/`trace_id: …`/`traceId":"…"`/
//! `otelTraceID=…` (and the matching span ids), or a W3C `traceparent`
//! (`00-<32 hex>-<16 hex>-<2 hex>`). All-zero ids are no ids.

use std::sync::LazyLock;

use regex::Regex;

/// How far into a record trace context is looked for.
const HEAD_BYTES: usize = 8 * 1024;

static TRACE_ID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?i)(?:trace[_.-]?id|oteltraceid)["']?\s*[=:]\s*["']?([0-9a-f]{32})\b"#).ok()
});
static SPAN_ID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"(?i)(?:span[_.-]?id|otelspanid)["']?\s*[=:]\s*["']?([0-9a-f]{16})\b"#).ok()
});
static TRACEPARENT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\b[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b").ok());

/// `(trace id, span id)` found in `text`; each empty when absent.
pub fn find(text: &str) -> (Vec<u8>, Vec<u8>) {
    let text = head(text);
    let mut trace = Vec::new();
    let mut span = Vec::new();
    if contains_ignore_case(text, b"trace") {
        if let Some(c) = TRACE_ID.as_ref().and_then(|r| r.captures(text)) {
            trace = c.get(1).map(|m| hex(m.as_str())).unwrap_or_default();
        }
    }
    if contains_ignore_case(text, b"span") {
        if let Some(c) = SPAN_ID.as_ref().and_then(|r| r.captures(text)) {
            span = c.get(1).map(|m| hex(m.as_str())).unwrap_or_default();
        }
    }
    if trace.is_empty() && text.contains('-') {
        if let Some(c) = TRACEPARENT.as_ref().and_then(|r| r.captures(text)) {
            trace = c.get(1).map(|m| hex(m.as_str())).unwrap_or_default();
            if span.is_empty() {
                span = c.get(2).map(|m| hex(m.as_str())).unwrap_or_default();
            }
        }
    }
    (trace, span)
}

/// Whether `text` contains the lower-case ASCII `word` in any case (a cheap check before the
/// regexes run).
fn contains_ignore_case(text: &str, word: &[u8]) -> bool {
    text.as_bytes()
        .windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word))
}

fn head(text: &str) -> &str {
    if text.len() <= HEAD_BYTES {
        return text;
    }
    let mut cut = HEAD_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.get(..cut).unwrap_or_default()
}

/// Bytes of a hex string (already checked to be hex); empty for all zeros.
fn hex(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let bytes = text.as_bytes();
    for pair in bytes.chunks(2) {
        let s = std::str::from_utf8(pair).unwrap_or("00");
        out.push(u8::from_str_radix(s, 16).unwrap_or(0));
    }
    if out.iter().all(|b| *b == 0) {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    fn ids(text: &str) -> (String, String) {
        let (t, s) = find(text);
        let h = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        (h(t), h(s))
    }

    #[test]
    fn forms() {
        let both = (T.to_string(), S.to_string());
        assert_eq!(ids(&format!("INFO paid trace_id={T} span_id={S}")), both);
        assert_eq!(ids(&format!("INFO paid trace_id: {T}, span_id: {S}")), both);
        assert_eq!(ids(&format!(r#"{{"traceId":"{T}","spanId":"{S}"}}"#)), both);
        assert_eq!(
            ids(&format!("x otelTraceID={} otelSpanID={}", T.to_uppercase(), S)),
            both
        );
        assert_eq!(ids(&format!("GET / traceparent: 00-{T}-{S}-01")), both);
        assert_eq!(
            ids(&format!("trace_id={} span_id={}", "0".repeat(32), "0".repeat(16))),
            (String::new(), String::new())
        );
        assert_eq!(ids("trace_id=abc"), (String::new(), String::new()));
    }
}
