//! nginx/apache `common` and `combined` access-log lines, with an optional request time after
//! the user agent (a common nginx extension):
//! `1.2.3.4 - user [03/Dec/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 512 "ref" "ua" 0.012`.

use super::fields::Parsed;
use super::http::Access;
use super::timestamp;
use super::trace;

/// Whether `text` could be a `common`/`combined` line (cheap check before the regex).
pub fn looks_like(text: &str) -> bool {
    text.contains(" [") && text.contains("] \"")
}

/// The fields of a `common`/`combined` line; `None` when `text` is not one.
pub fn parse(text: &str, now_ns: u64) -> Option<Parsed<'_>> {
    let f = fields(text)?;
    let mut access = Access::default();
    access.set("remote_addr", f.client);
    access.set("remote_user", f.user);
    access.request_line(f.request);
    access.set("status", f.status);
    access.set("body_bytes_sent", f.bytes);
    access.set("http_referer", f.referer);
    access.set("http_user_agent", f.user_agent);
    access.set("request_time", f.request_time);
    let mut parsed = Parsed {
        time_ns: timestamp::find(f.time, "", now_ns),
        ..Parsed::default()
    };
    access.apply(&mut parsed);
    let (trace_id, span_id) = trace::find(text);
    parsed.trace_id = trace_id;
    parsed.span_id = span_id;
    Some(parsed)
}

/// The fields of a `combined`/`common` line, as written (empty when absent).
#[derive(Debug, Default, PartialEq)]
struct Fields<'a> {
    client: &'a str,
    user: &'a str,
    time: &'a str,
    request: &'a str,
    status: &'a str,
    bytes: &'a str,
    referer: &'a str,
    user_agent: &'a str,
    request_time: &'a str,
}

/// Splits a line of the form
/// `client ident user [time] "request" status bytes[ "referer" "agent"[ request_time]]`
/// (what the regex `^(\S+) \S+ (\S+) (\[[^\]]+\]) "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "…" "…"(?: (\d+(?:\.\d+)?)\b)?)?`
/// matched). Read by hand: regex captures on every access-log line were the largest cost of
/// parsing them (issue 12).
fn fields(text: &str) -> Option<Fields<'_>> {
    let mut f = Fields::default();
    let (client, rest) = token(text)?;
    let (_ident, rest) = token(rest)?;
    let (user, rest) = token(rest)?;
    let close = rest.strip_prefix('[')?.find(']')?;
    if close == 0 {
        return None;
    }
    f.time = rest.get(..close + 2)?;
    let rest = rest.get(close + 2..)?.strip_prefix(' ')?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let status = rest.get(..3).filter(|s| s.bytes().all(|b| b.is_ascii_digit()))?;
    let rest = rest.get(3..)?.strip_prefix(' ')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (bytes, rest) = if digits > 0 {
        rest.split_at(digits)
    } else {
        (rest.get(..1).filter(|b| *b == "-")?, rest.get(1..)?)
    };
    (f.client, f.user, f.request, f.status, f.bytes) = (client, user, request, status, bytes);
    let Some((referer, user_agent, rest)) = referer_and_agent(rest) else {
        return Some(f);
    };
    (f.referer, f.user_agent) = (referer, user_agent);
    if let Some(rest) = rest.strip_prefix(' ') {
        f.request_time = request_time(rest);
    }
    Some(f)
}

/// ` "referer" "agent"` at the start of `rest`, and what follows.
fn referer_and_agent(rest: &str) -> Option<(&str, &str, &str)> {
    let (referer, rest) = quoted(rest.strip_prefix(' ')?)?;
    let (user_agent, rest) = quoted(rest.strip_prefix(' ')?)?;
    Some((referer, user_agent, rest))
}

/// A run of non-space characters ended by one space: the run and what follows the space.
fn token(text: &str) -> Option<(&str, &str)> {
    let (word, rest) = text.split_once(' ')?;
    if word.is_empty() || word.chars().any(char::is_whitespace) {
        return None;
    }
    Some((word, rest))
}

/// A double-quoted string (backslash escapes any character but a newline) at the start of
/// `text`: its inside and what follows the closing quote.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('"')?;
    let b = inner.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Some((inner.get(..i)?, inner.get(i + 1..)?)),
            b'\\' if b.get(i + 1).is_some_and(|n| *n != b'\n') => i += 2,
            b'\\' => return None,
            _ => i += 1,
        }
    }
    None
}

/// `\d+(?:\.\d+)?` ending a word at the start of `text`, or "" (the regex's backtracking:
/// `1.5x` gives `1`, `15x` nothing).
fn request_time(text: &str) -> &str {
    let b = text.as_bytes();
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int == 0 {
        return "";
    }
    let after_int = text.get(int..).unwrap_or_default();
    if after_int.starts_with('.') {
        let frac = b.iter().skip(int + 1).take_while(|c| c.is_ascii_digit()).count();
        if frac > 0 && ends_word(text, int + 1 + frac) {
            return text.get(..int + 1 + frac).unwrap_or_default();
        }
        return text.get(..int).unwrap_or_default();
    }
    if ends_word(text, int) {
        return text.get(..int).unwrap_or_default();
    }
    ""
}

/// Whether no word character follows `text[..i]`.
fn ends_word(text: &str, i: usize) -> bool {
    !text
        .get(i..)
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The regex this parser replaced, as the reference for the hand-written one.
    const COMBINED: &str = r#"^(\S+) \S+ (\S+) (\[[^\]]+\]) "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"(?: (\d+(?:\.\d+)?)\b)?)?"#;

    fn by_regex(text: &str) -> Option<Fields<'_>> {
        let re = regex::Regex::new(COMBINED).unwrap();
        let caps = re.captures(text)?;
        let group = |i: usize| caps.get(i).map(|m| m.as_str()).unwrap_or_default();
        Some(Fields {
            client: group(1),
            user: group(2),
            time: group(3),
            request: group(4),
            status: group(5),
            bytes: group(6),
            referer: group(7),
            user_agent: group(8),
            request_time: group(9),
        })
    }

    #[test]
    fn splits_lines_as_the_regex_did() {
        let lines = [
            r#"203.0.113.7 - - [03/Dec/2026:10:00:00 +0000] "GET /api/orders/7?page=2 HTTP/1.1" 200 512 "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)" 0.045"#,
            r#"203.0.113.7 - alice [03/Dec/2026:10:00:00 +0000] "POST /a HTTP/2.0" 503 - "-" "curl/8" 12"#,
            r#"::1 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 404 0"#,
            r#"1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET /q\"x HTTP/1.1" 200 5 "r\\" "ua" 0.5s"#,
            r#"1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "r" "ua" 15x"#,
            r#"1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "r" "ua" 1.x"#,
            r#"1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "r" "ua"tail"#,
            r#"1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "r"#,
            r#"1.2.3.4 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512abc"#,
            r#"1.2.3.4 - - [] "GET / HTTP/1.1" 200 5"#,
            r#"1.2.3.4 - - [x] "GET / HTTP/1.1" 2000 5"#,
            r#"1.2.3.4  - - [x] "GET / HTTP/1.1" 200 5"#,
            r#"1.2.3.4 - - [x] "GET / HTTP/1.1" 200 x"#,
            r#"1.2.3.4	- - [x] "GET / HTTP/1.1" 200 5"#,
            r#"1.2.3.4 - - [x] "unterminated 200 5"#,
            "2026-12-03 10:00:00 INFO not an access line [x] \"y\"",
            "",
        ];
        for line in lines {
            assert_eq!(fields(line), by_regex(line), "{line}");
        }
    }
}
