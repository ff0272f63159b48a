//! Severity of a plain-text record, read from its first line: a syslog `<PRI>` prefix, else the
//! first level word in a usual position — written in capitals (`ERROR:django.request:…`,
//! `[…: WARNING/MainProcess]`, `[ERROR]`), in brackets in any case (`[error]`, `<warn>`), or
//! after `level=` / `severity=` / `lvl=`. A level word in lower case in running text
//! ("an error occurred") does not count.

use super::fields::severity_number;

/// How far into the line a level word is looked for.
const HEAD_BYTES: usize = 200;

/// Level words that count when written in capitals anywhere in the head of the line.
const CAPITAL_LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL",
];

/// Keys after which a level word counts in any case.
const LEVEL_KEYS: &[&str] = &["level=", "severity=", "lvl=", "level: ", "level\":\""];

/// `(severity number, severity text)` of `text`, when it names one.
pub fn detect(text: &str) -> Option<(i32, &str)> {
    let head = super::line::first_line(text, HEAD_BYTES);
    if let Some(found) = syslog_priority(head) {
        return Some(found);
    }
    let bytes = head.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
        }
        let Some(word) = head.get(start..i) else {
            continue;
        };
        if word.len() < 3 || word.len() > 13 {
            continue;
        }
        let number = severity_number(word);
        if number == 0 {
            continue;
        }
        let before = if start == 0 {
            b' '
        } else {
            bytes.get(start - 1).copied().unwrap_or(b' ')
        };
        let after = bytes.get(i).copied().unwrap_or(b' ');
        if after.is_ascii_digit() || after == b'_' || before.is_ascii_digit() || before == b'_' {
            continue;
        }
        let capitals = CAPITAL_LEVELS.contains(&word);
        let bracketed = before == b'[' || before == b'<' || after == b']' || after == b'>';
        let before_text = head.get(..start).unwrap_or_default();
        let keyed = LEVEL_KEYS.iter().any(|k| ends_with_ignore_case(before_text, k));
        if capitals || bracketed || keyed {
            return Some((number, word));
        }
    }
    None
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text
            .get(text.len() - suffix.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
}

/// `<PRI>` at the start of a syslog line: the severity is `PRI % 8`, mapped as the
/// OpenTelemetry log data model maps syslog severities.
fn syslog_priority(head: &str) -> Option<(i32, &'static str)> {
    let rest = head.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = rest.get(..end)?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u32 = digits.parse().ok()?;
    if pri > 191 {
        return None;
    }
    let (number, name) = match pri % 8 {
        0 => (21, "EMERG"),
        1 => (19, "ALERT"),
        2 => (18, "CRIT"),
        3 => (17, "ERR"),
        4 => (13, "WARNING"),
        5 => (10, "NOTICE"),
        6 => (9, "INFO"),
        _ => (5, "DEBUG"),
    };
    Some((number, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(text: &str) -> Option<(i32, &str)> {
        detect(text)
    }

    #[test]
    fn usual_positions() {
        let cases = [
            (
                "ERROR:django.request:Internal Server Error: /api/",
                Some((17, "ERROR")),
            ),
            ("WARNING:root:disk almost full", Some((13, "WARNING"))),
            (
                "[2026-12-03 10:00:00,123: ERROR/MainProcess] Task failed",
                Some((17, "ERROR")),
            ),
            (
                "[2026-12-03 10:00:00 +0000] [123] [INFO] Booting worker with pid: 123",
                Some((9, "INFO")),
            ),
            (
                "2026/12/03 10:00:00 [error] 12#12: *1 open() failed",
                Some((17, "error")),
            ),
            ("ts=2026-12-03T10:00:00Z level=warn msg=slow", Some((13, "warn"))),
            ("<11>Dec  3 10:00:00 host app: boom", Some((17, "ERR"))),
            ("<14>Dec  3 10:00:00 host app: ok", Some((9, "INFO"))),
            ("2026-12-03 10:00:00 CRITICAL db down", Some((21, "CRITICAL"))),
            ("2026-12-03 10:00:00 DEBUG x=1", Some((5, "DEBUG"))),
            ("an error occurred while saving", None),
            ("INFORMATIONAL text ERRORS", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(level(text), want, "{text:?}");
        }
    }
}
