//! nginx/apache `common` and `combined` access-log lines, with an optional request time after
//! the user agent (a common nginx extension):
//! `1.2.3.4 - user [03/Dec/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 512 "ref" "ua" 0.012`.

use std::sync::LazyLock;

use regex::Regex;

use super::fields::Parsed;
use super::http::Access;
use super::timestamp;
use super::trace;

static COMBINED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"^(\S+) \S+ (\S+) (\[[^\]]+\]) "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"(?: (\d+(?:\.\d+)?)\b)?)?"#,
    )
    .ok()
});

/// Whether `text` could be a `common`/`combined` line (cheap check before the regex).
pub fn looks_like(text: &str) -> bool {
    text.contains(" [") && text.contains("] \"")
}

/// The fields of a `common`/`combined` line; `None` when `text` is not one.
pub fn parse(text: &str, now_ns: u64) -> Option<Parsed> {
    let caps = COMBINED.as_ref()?.captures(text)?;
    let group = |i: usize| caps.get(i).map(|m| m.as_str()).unwrap_or_default();
    let mut access = Access::default();
    access.set("remote_addr", group(1));
    access.set("remote_user", group(2));
    access.request_line(group(4));
    access.set("status", group(5));
    access.set("body_bytes_sent", group(6));
    access.set("http_referer", group(7));
    access.set("http_user_agent", group(8));
    access.set("request_time", group(9));
    let mut parsed = Parsed {
        time_ns: timestamp::find(group(3), "", now_ns),
        ..Parsed::default()
    };
    access.apply(&mut parsed);
    let (trace_id, span_id) = trace::find(text);
    parsed.trace_id = trace_id;
    parsed.span_id = span_id;
    Some(parsed)
}
