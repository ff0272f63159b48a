//! Trace context written in a record's text: `trace_id=…`/`trace_id: …`/`traceId":"…"`/
//! `otelTraceID=…` (and the matching span ids), or a W3C `traceparent`
//! (`00-<32 hex>-<16 hex>-<2 hex>`). All-zero ids are no ids.

/// How far into a record trace context is looked for.
const HEAD_BYTES: usize = 8 * 1024;

/// `(trace id, span id)` written in `text`; empty when absent. Read by hand rather than with
/// regexes: this runs on every line, and regex captures were most of its cost (issue 12).
pub fn find(text: &str) -> (Vec<u8>, Vec<u8>) {
    let text = head(text);
    let (trace, span) = keyed_ids(text);
    let mut trace = trace.map(hex).unwrap_or_default();
    let mut span = span.map(hex).unwrap_or_default();
    if trace.is_empty() {
        if let Some((t, s)) = traceparent(text) {
            trace = hex(t);
            if span.is_empty() {
                span = hex(s);
            }
        }
    }
    (trace, span)
}

/// The hex digits of the first `trace[_.-]?id["']?\s*[=:]\s*["']?<32 hex>` and of the first
/// `span[_.-]?id…<16 hex>`, each followed by a word boundary (any case; `otelTraceID` is
/// covered by `TraceID`).
///
/// Found from the separators: `=` and `:` are rare in a line, where the letters `t` and `s`
/// that start the words are everywhere (looking for the words first was a fifth of the
/// agent's instructions while tailing, issue 12). Each separator is read backwards for the
/// key and forwards for the value.
fn keyed_ids(text: &str) -> (Option<&str>, Option<&str>) {
    let b = text.as_bytes();
    let (mut trace, mut span) = (None, None);
    for p in memchr::memchr2_iter(b'=', b':', b) {
        let Some(word_end) = key_word_end(b, p) else {
            continue;
        };
        let before = b.get(..word_end).unwrap_or_default();
        let (slot, len) = if ends_with_ignore_case(before, b"trace") {
            (&mut trace, 32)
        } else if ends_with_ignore_case(before, b"span") {
            (&mut span, 16)
        } else {
            continue;
        };
        if slot.is_some() {
            continue;
        }
        let mut j = skip_spaces(b, p + 1);
        if matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        if hex_run(b, j, len, true) && boundary_after(text, j + len) {
            *slot = text.get(j..j + len);
            if trace.is_some() && span.is_some() {
                break;
            }
        }
    }
    (trace, span)
}

/// Read backwards from the separator at `p`: `[_.-]?id["']?\s*` before it; where the word
/// before that must end.
fn key_word_end(b: &[u8], p: usize) -> Option<usize> {
    let mut k = p;
    while k > 0 && b.get(k - 1).is_some_and(u8::is_ascii_whitespace) {
        k -= 1;
    }
    if k > 0 && matches!(b.get(k - 1), Some(b'"' | b'\'')) {
        k -= 1;
    }
    let id = k.checked_sub(2)?;
    if !b.get(id..k)?.eq_ignore_ascii_case(b"id") {
        return None;
    }
    if id > 0 && matches!(b.get(id - 1), Some(b'_' | b'.' | b'-')) {
        return Some(id - 1);
    }
    Some(id)
}

/// Whether `b` ends with `word` (lower case) in any case.
fn ends_with_ignore_case(b: &[u8], word: &[u8]) -> bool {
    b.len() >= word.len()
        && b.get(b.len() - word.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(word))
}

/// A W3C `traceparent` (`vv-<32 hex>-<16 hex>-ff`, lower-case hex between word boundaries):
/// its trace and span ids.
fn traceparent(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    for i in memchr::memchr_iter(b'-', b) {
        let Some(start) = i.checked_sub(2) else {
            continue;
        };
        let fits = hex_run(b, start, 2, false)
            && hex_run(b, i + 1, 32, false)
            && b.get(i + 33) == Some(&b'-')
            && hex_run(b, i + 34, 16, false)
            && b.get(i + 50) == Some(&b'-')
            && hex_run(b, i + 51, 2, false)
            && boundary_before(text, start)
            && boundary_after(text, i + 53);
        if fits {
            return Some((text.get(i + 1..i + 33)?, text.get(i + 34..i + 50)?));
        }
    }
    None
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Whether `b[at..at + len]` are hex digits (lower case only unless `any_case`).
fn hex_run(b: &[u8], at: usize, len: usize, any_case: bool) -> bool {
    let Some(run) = b.get(at..at + len) else {
        return false;
    };
    for c in run {
        let ok = c.is_ascii_digit() || (b'a'..=b'f').contains(c) || (any_case && (b'A'..=b'F').contains(c));
        if !ok {
            return false;
        }
    }
    true
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A word boundary after a word character ending at `i`.
fn boundary_after(text: &str, i: usize) -> bool {
    !text
        .get(i..)
        .and_then(|rest| rest.chars().next())
        .is_some_and(is_word)
}

/// A word boundary before a word character starting at `i`.
fn boundary_before(text: &str, i: usize) -> bool {
    !text
        .get(..i)
        .and_then(|before| before.chars().next_back())
        .is_some_and(is_word)
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
    for pair in text.as_bytes().chunks_exact(2) {
        if let [high, low] = pair {
            out.push(nibble(*high) << 4 | nibble(*low));
        }
    }
    if out.iter().all(|b| *b == 0) {
        return Vec::new();
    }
    out
}

/// The value of one hex digit (0 for anything else; callers checked).
fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
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

    /// The separator-first scan finds what the regexes of the keyed forms find (the first
    /// match of each, ASCII text).
    #[test]
    #[allow(clippy::unwrap_used)]
    fn keyed_ids_find_what_the_regexes_find() {
        let key = |word: &str, len: usize| {
            regex::Regex::new(&format!(
                r#"(?i){word}[_.-]?id["']?\s*[=:]\s*["']?([0-9a-f]{{{len}}})\b"#
            ))
            .unwrap()
        };
        let (trace_re, span_re) = (key("trace", 32), key("span", 16));
        let u = T.to_uppercase();
        let lines = [
            format!("INFO paid trace_id={T} span_id={S}"),
            format!("trace_id: {T}, span_id: {S}"),
            format!(r#"{{"traceId":"{T}","spanId":"{S}"}}"#),
            format!("x otelTraceID={u} otelSpanID={S}"),
            format!("trace.id = '{T}' span-id='{S}' TRACE_ID={u}"),
            format!("trace_id\t=\t{T} span_id\n:{S}"),
            format!("trace_id=abc trace_id={T}"),
            format!("trace_id={T}0 trace_id={u}"),
            format!("trace_id=trace_id={T}"),
            format!("trace_id={T}x span_id={S}_ span_id={S}"),
            format!("tracespan_id={S} trace__id={T} traceid={T}"),
            format!("span_id={S} trace_id={T}"),
            format!("trace_id:={T} id={T} ={T}"),
            format!("trace_ids={T} trace_id'={T}"),
            "2026-12-03 10:00:00 INFO views served: ok=1 id: 3".to_string(),
            "=:".to_string(),
            String::new(),
        ];
        for line in &lines {
            let want = |re: &regex::Regex| re.captures(line).map(|c| c.get(1).unwrap().as_str());
            assert_eq!(keyed_ids(line), (want(&trace_re), want(&span_re)), "{line}");
        }
    }
}
