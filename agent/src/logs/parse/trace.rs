//! Trace context written in a record's text: `trace_id=…`/`trace_id: …`/`traceId":"…"`/
//! `otelTraceID=…` (and the matching span ids), or a W3C `traceparent`
//! (`00-<32 hex>-<16 hex>-<2 hex>`). All-zero ids are no ids.

/// How far into a record trace context is looked for.
const HEAD_BYTES: usize = 8 * 1024;

/// `(trace id, span id)` written in `text`; empty when absent. Read by hand rather than with
/// regexes: this runs on every line, and regex captures were most of its cost (issue 12).
pub fn find(text: &str) -> (Vec<u8>, Vec<u8>) {
    let text = head(text);
    let mut trace = keyed_id(text, b"trace", 32).map(hex).unwrap_or_default();
    let mut span = keyed_id(text, b"span", 16).map(hex).unwrap_or_default();
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

/// The first `<word>[_.-]?id["']?\s*[=:]\s*["']?<len hex digits>` followed by a word
/// boundary (any case; `otelTraceID` is covered by `TraceID`): the hex digits.
fn keyed_id<'a>(text: &'a str, word: &[u8], len: usize) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(at) = find_ignore_case(b, from, word) {
        from = at + 1;
        let mut j = at + word.len();
        if matches!(b.get(j), Some(b'_' | b'.' | b'-')) {
            j += 1;
        }
        if !b.get(j..j + 2).is_some_and(|w| w.eq_ignore_ascii_case(b"id")) {
            continue;
        }
        j += 2;
        if matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        j = skip_spaces(b, j);
        if !matches!(b.get(j), Some(b'=' | b':')) {
            continue;
        }
        j = skip_spaces(b, j + 1);
        if matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        if hex_run(b, j, len, true) && boundary_after(text, j + len) {
            return text.get(j..j + len);
        }
    }
    None
}

/// A W3C `traceparent` (`vv-<32 hex>-<16 hex>-ff`, lower-case hex between word boundaries):
/// its trace and span ids.
fn traceparent(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    let mut from = 0;
    // `str::find` of one ASCII character is a memchr: most lines hold no traceparent.
    while let Some(found) = text.get(from..).and_then(|rest| rest.find('-')) {
        let i = from + found;
        from = i + 1;
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

/// Where `word` (lower case) next occurs in `b` at or after `from`, in any case.
fn find_ignore_case(b: &[u8], from: usize, word: &[u8]) -> Option<usize> {
    let first = *word.first()?;
    let mut i = from;
    while i + word.len() <= b.len() {
        // `c | 0x20` is the lower case of an ASCII letter; only `first` in either case
        // matches it. A tight loop over bytes: this runs twice over every line.
        let skip = b.get(i..)?.iter().position(|c| c | 0x20 == first)?;
        i += skip;
        if b.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
        {
            return Some(i);
        }
        i += 1;
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
