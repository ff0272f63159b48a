//! The event time written in a record: ISO 8601 / RFC 3339 (also Python's
//! `%Y-%m-%d %H:%M:%S,%f` and nginx's error-log `2026/12/03 10:00:00`), nginx/apache
//! `[03/Dec/2026:10:00:00 +0000]` (and Django's `[03/Dec/2026 10:00:00]`), syslog
//! `Dec  3 10:00:00` (year inferred), epoch seconds/milliseconds/microseconds/nanoseconds
//! (JSON), and a configured strftime pattern. Times without a zone are local time.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone};
use regex::Regex;

/// How far into the line a timestamp is looked for.
const HEAD_BYTES: usize = 80;

static SYSLOG: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:<\d{1,3}>)?([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2})\b").ok());

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix nanoseconds of the first timestamp in the head of `text`: the `custom` strftime
/// pattern at the start of the line first (when set), then the built-in formats.
/// `now_ns` infers the year of syslog times.
pub fn find(text: &str, custom: &str, now_ns: u64) -> Option<u64> {
    let head = super::line::first_line(text, HEAD_BYTES);
    if !custom.is_empty() {
        if let Some(ns) = strftime(head, custom) {
            return Some(ns);
        }
    }
    if !head.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    iso(head).or_else(|| clf(head)).or_else(|| syslog(head, now_ns))
}

/// Nanoseconds of a time string as a JSON field may hold it (RFC 3339 or a built-in format).
pub fn from_string(text: &str, custom: &str, now_ns: u64) -> Option<u64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return nanos(&t);
    }
    find(text, custom, now_ns)
}

/// Nanoseconds of an epoch number, its unit told by its size (s, ms, µs or ns).
pub fn from_epoch(value: f64) -> Option<u64> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let ns = if value >= 1e17 {
        value
    } else if value >= 1e14 {
        value * 1e3
    } else if value >= 1e11 {
        value * 1e6
    } else {
        value * 1e9
    };
    if ns >= u64::MAX as f64 {
        return None;
    }
    Some(ns as u64)
}

fn nanos<Tz: TimeZone>(t: &DateTime<Tz>) -> Option<u64> {
    t.timestamp_nanos_opt().and_then(|n| u64::try_from(n).ok())
}

fn local(naive: &NaiveDateTime) -> Option<u64> {
    let t = Local.from_local_datetime(naive).earliest()?;
    nanos(&t)
}

fn strftime(head: &str, pattern: &str) -> Option<u64> {
    let line = head.strip_prefix('[').unwrap_or(head);
    if let Ok((t, _)) = DateTime::parse_and_remainder(line, pattern) {
        return nanos(&t);
    }
    let (t, _) = NaiveDateTime::parse_and_remainder(line, pattern).ok()?;
    local(&t)
}

fn number<T: std::str::FromStr>(caps: &regex::Captures, i: usize) -> Option<T> {
    caps.get(i)?.as_str().trim().parse().ok()
}

fn offset(text: &str) -> Option<FixedOffset> {
    if text == "Z" || text == "UTC" || text == "GMT" {
        return FixedOffset::east_opt(0);
    }
    let sign = if text.starts_with('-') { -1 } else { 1 };
    // `hhmm` from the first four digits (`+05:30` and `+0530` alike), without collecting
    // them into a string: this runs for every line with a zone.
    let mut d = [0i32; 4];
    let mut found = 0;
    for (slot, b) in d.iter_mut().zip(text.bytes().filter(u8::is_ascii_digit)) {
        *slot = i32::from(b - b'0');
        found += 1;
    }
    if found < 4 {
        return None;
    }
    let [h1, h2, m1, m2] = d;
    FixedOffset::east_opt(sign * ((h1 * 10 + h2) * 3600 + (m1 * 10 + m2) * 60))
}

fn with_zone(naive: &NaiveDateTime, zone: Option<&str>) -> Option<u64> {
    match zone {
        Some(z) => {
            let t = offset(z)?.from_local_datetime(naive).single()?;
            nanos(&t)
        }
        None => local(naive),
    }
}

/// Whether the byte at `i` is an ASCII digit.
fn digit(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// The number written by the ASCII digits `b[from..to]` (the caller checked they are digits).
fn digits(b: &[u8], from: usize, to: usize) -> u32 {
    let mut n = 0;
    for i in from..to {
        n = n * 10 + u32::from(b.get(i).copied().unwrap_or(b'0') - b'0');
    }
    n
}

/// Whether a regex `\b` holds before `head[i..]` after a word character: `i` is the end or
/// starts a character that is not a word character.
fn word_ends(head: &str, i: usize) -> bool {
    match head.get(i..).and_then(|rest| rest.chars().next()) {
        Some(c) => !(c.is_alphanumeric() || c == '_'),
        None => true,
    }
}

/// The zone written at `head[i..]`: `Z`, `UTC`, `GMT`, `+hh:mm` or `+hhmm`, ending a word.
fn zone_at(head: &str, i: usize) -> Option<&str> {
    let b = head.as_bytes();
    let mut candidates = [0usize; 2];
    match b.get(i)? {
        b'Z' => candidates[0] = 1,
        b'U' | b'G' if matches!(head.get(i..i + 3), Some("UTC" | "GMT")) => candidates[0] = 3,
        b'+' | b'-' if digit(b, i + 1) && digit(b, i + 2) => {
            if b.get(i + 3) == Some(&b':') && digit(b, i + 4) && digit(b, i + 5) {
                candidates[0] = 6;
            }
            if digit(b, i + 3) && digit(b, i + 4) {
                candidates[1] = 5;
            }
        }
        _ => return None,
    }
    for len in candidates {
        if len > 0 && word_ends(head, i + len) {
            return head.get(i..i + len);
        }
    }
    None
}

/// `(year, month, day, hour, minute, second)`, the fraction's digits and the zone.
type IsoParts<'a> = ((i32, u32, u32, u32, u32, u32), &'a str, Option<&'a str>);

/// `yyyy-mm-dd[T ]hh:mm:ss[.fraction][ zone]` (or `/` between the date's parts) at `head[i..]`:
/// `(date-time, fraction digits, zone)`. Scanned by hand: a regex with captures on every line
/// was the largest cost of parsing (issue 12).
fn iso_at(head: &str, i: usize) -> Option<IsoParts<'_>> {
    let b = head.as_bytes();
    let layout = b"dddd-dd-dd dd:dd:dd";
    for (k, want) in layout.iter().enumerate() {
        let c = *b.get(i + k)?;
        let ok = match want {
            b'd' => c.is_ascii_digit(),
            b'-' => c == b'-' || c == b'/',
            b' ' => c == b'T' || c == b' ',
            _ => c == *want,
        };
        if !ok {
            return None;
        }
    }
    let year = i32::try_from(digits(b, i, i + 4)).ok()?;
    let parts = (
        year,
        digits(b, i + 5, i + 7),
        digits(b, i + 8, i + 10),
        digits(b, i + 11, i + 13),
        digits(b, i + 14, i + 16),
        digits(b, i + 17, i + 19),
    );
    let mut p = i + layout.len();
    let mut fraction = "";
    if matches!(b.get(p), Some(b'.' | b',')) && digit(b, p + 1) {
        let mut end = p + 1;
        while end < p + 10 && digit(b, end) {
            end += 1;
        }
        fraction = head.get(p + 1..end).unwrap_or_default();
        p = end;
    }
    let zone = if b.get(p) == Some(&b' ') {
        zone_at(head, p + 1)
    } else {
        zone_at(head, p)
    };
    Some((parts, fraction, zone))
}

fn iso(head: &str) -> Option<u64> {
    let b = head.as_bytes();
    let mut found = None;
    for i in 0..b.len() {
        if !digit(b, i) {
            continue;
        }
        if let Some(f) = iso_at(head, i) {
            found = Some(f);
            break;
        }
    }
    let ((year, month, day, hour, minute, second), fraction, zone) = found?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let mut nano = 0u32;
    if !fraction.is_empty() {
        nano = fraction.parse().ok()?;
        for _ in fraction.len()..9 {
            nano *= 10;
        }
    }
    let naive = date.and_hms_nano_opt(hour, minute, second, nano)?;
    with_zone(&naive, zone)
}

fn month(name: &str) -> Option<u32> {
    let i = MONTHS.iter().position(|m| *m == name)?;
    u32::try_from(i + 1).ok()
}

/// `[dd/Mon/yyyy:hh:mm:ss +hhmm]` (or a space after the year, or no zone) at `head[i..]`:
/// `(year, month name, day, hour, minute, second)` and the zone.
type ClfParts<'a> = ((u32, &'a str, u32, u32, u32, u32), Option<&'a str>);

fn clf_at(head: &str, i: usize) -> Option<ClfParts<'_>> {
    let b = head.as_bytes();
    let layout = b"[dd/Mmm/dddd:dd:dd:dd";
    for (k, want) in layout.iter().enumerate() {
        let c = *b.get(i + k)?;
        let ok = match want {
            b'd' => c.is_ascii_digit(),
            b'M' => c.is_ascii_uppercase(),
            b'm' => c.is_ascii_lowercase(),
            b':' if k == 12 => c == b':' || c == b' ',
            _ => c == *want,
        };
        if !ok {
            return None;
        }
    }
    let mut p = i + layout.len();
    let mut zone = None;
    if b.get(p) == Some(&b' ')
        && matches!(b.get(p + 1), Some(b'+' | b'-'))
        && (p + 2..p + 6).all(|k| digit(b, k))
    {
        zone = head.get(p + 1..p + 6);
        p += 6;
    }
    if b.get(p) != Some(&b']') {
        return None;
    }
    let parts = (
        digits(b, i + 8, i + 12),
        head.get(i + 4..i + 7)?,
        digits(b, i + 1, i + 3),
        digits(b, i + 13, i + 15),
        digits(b, i + 16, i + 18),
        digits(b, i + 19, i + 21),
    );
    Some((parts, zone))
}

fn clf(head: &str) -> Option<u64> {
    let b = head.as_bytes();
    let mut found = None;
    for i in 0..b.len() {
        if b.get(i) != Some(&b'[') {
            continue;
        }
        if let Some(f) = clf_at(head, i) {
            found = Some(f);
            break;
        }
    }
    let ((year, month_name, day, hour, minute, second), zone) = found?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month(month_name)?, day)?;
    let naive = date.and_hms_opt(hour, minute, second)?;
    with_zone(&naive, zone)
}

/// Syslog times have no year: this year, or last year when that would put the time more than
/// a day ahead of `now_ns` (a December line read in January).
fn syslog(head: &str, now_ns: u64) -> Option<u64> {
    let caps = SYSLOG.as_ref()?.captures(head)?;
    let now = i64::try_from(now_ns).ok()?;
    let year = DateTime::from_timestamp_nanos(now).with_timezone(&Local).year();
    let m = month(caps.get(1)?.as_str())?;
    let day: u32 = number(&caps, 2)?;
    let (h, min, s) = (number(&caps, 3)?, number(&caps, 4)?, number(&caps, 5)?);
    let this_year = local(&NaiveDate::from_ymd_opt(year, m, day)?.and_hms_opt(h, min, s)?);
    match this_year {
        Some(ns) if ns <= now_ns.saturating_add(86_400_000_000_000) => Some(ns),
        _ => local(&NaiveDate::from_ymd_opt(year - 1, m, day)?.and_hms_opt(h, min, s)?),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> u64 {
        nanos(&DateTime::parse_from_rfc3339(s).unwrap()).unwrap()
    }

    fn local_ns(s: &str) -> u64 {
        local(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()).unwrap()
    }

    #[test]
    fn built_in_formats() {
        let now = utc("2026-12-03T12:00:00Z");
        let cases = [
            ("2026-12-03T10:00:00Z GET /", utc("2026-12-03T10:00:00Z")),
            ("2026-12-03T10:00:00.25+01:00 x", utc("2026-12-03T09:00:00.25Z")),
            (
                "2026-12-03 10:00:00,123 ERROR x",
                local_ns("2026-12-03 10:00:00.123"),
            ),
            (
                "[2026-12-03 10:00:00,5: INFO/MainProcess] y",
                local_ns("2026-12-03 10:00:00.5"),
            ),
            (
                "[2026-12-03 10:00:00 +0000] [1] [INFO] z",
                utc("2026-12-03T10:00:00Z"),
            ),
            (
                "2026/12/03 10:00:00 [error] 1#1: boom",
                local_ns("2026-12-03 10:00:00"),
            ),
            (
                "1.2.3.4 - - [03/Dec/2026:10:00:00 +0100] \"GET / HTTP/1.1\" 200 1",
                utc("2026-12-03T09:00:00Z"),
            ),
            (
                "[03/Dec/2026 10:00:00] \"GET / HTTP/1.1\" 200 5",
                local_ns("2026-12-03 10:00:00"),
            ),
            (
                "Dec  3 10:00:00 host cron[1]: ok",
                local_ns("2026-12-03 10:00:00"),
            ),
            (
                "<13>Dec 31 23:00:00 host app: late",
                local_ns("2025-12-31 23:00:00"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(find(text, "", now), Some(want), "{text:?}");
        }
        assert_eq!(find("no time here", "", now), None);
        assert_eq!(find("2026-13-45T99:00:00Z bad", "", now), None);
    }

    #[test]
    fn custom_and_epoch() {
        let now = utc("2026-12-03T12:00:00Z");
        assert_eq!(
            find("03.12.2026 10:00:00 +0000 | x", "%d.%m.%Y %H:%M:%S %z", now),
            Some(utc("2026-12-03T10:00:00Z"))
        );
        assert_eq!(
            find("12/03/26-10:00:00 x", "%m/%d/%y-%H:%M:%S", now),
            Some(local_ns("2026-12-03 10:00:00"))
        );
        let s = utc("2026-12-03T10:00:00Z");
        assert_eq!(from_epoch(1_796_292_000.0), Some(1_796_292_000_000_000_000));
        assert_eq!(from_epoch(1_796_292_000_000.0), Some(1_796_292_000_000_000_000));
        assert_eq!(from_epoch(s as f64), Some(s));
        assert_eq!(from_epoch(-1.0), None);
        assert_eq!(from_epoch(f64::NAN), None);
    }
}
