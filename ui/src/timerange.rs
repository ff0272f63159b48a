//! The time range every page keeps in its URL as `from` and `to`: relative to now
//! (`now`, `now-1h`, `now-7d`) as Grafana writes them, or absolute (Unix milliseconds, RFC
//! 3339, or a plain `2026-12-03 10:15:00` in UTC). Relative ranges re-resolve on every load,
//! so a link to "the last hour" stays one. Absolute times are shown to people as
//! [`display`] writes them (UTC, like every time axis and tooltip of the UI).

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use didban_base::parse_duration;

/// Why a `from`/`to` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {value:?}: {reason}")]
pub struct TimeError {
    /// The text as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A resolved range in Unix milliseconds, `start_ms < end_ms`, plus the texts it came from
/// (to write back into links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    /// The `from` text (`now-1h`, a timestamp).
    pub from: String,
    /// The `to` text (`now`, a timestamp).
    pub to: String,
    /// Resolved start.
    pub start_ms: i64,
    /// Resolved end.
    pub end_ms: i64,
}

impl TimeRange {
    /// Resolves `from`/`to` (defaults `now-1h` / `now`) against `now_ms`. An inverted or empty
    /// range is an error, not silently swapped.
    pub fn parse(from: Option<&str>, to: Option<&str>, now_ms: i64) -> Result<TimeRange, TimeError> {
        let from = from.filter(|s| !s.is_empty()).unwrap_or("now-1h");
        let to = to.filter(|s| !s.is_empty()).unwrap_or("now");
        let start_ms = resolve(from, now_ms)?;
        let end_ms = resolve(to, now_ms)?;
        if start_ms >= end_ms {
            return Err(TimeError {
                value: format!("{from}..{to}"),
                reason: "the start must be before the end".into(),
            });
        }
        Ok(TimeRange {
            from: from.to_string(),
            to: to.to_string(),
            start_ms,
            end_ms,
        })
    }

    /// The range length in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// A query step that gives about `points` points over the range, at least 1 s, rounded
    /// to a whole second.
    pub fn step_ms(&self, points: u32) -> i64 {
        let raw = self.duration_ms() / i64::from(points.max(1));
        (raw.max(1000) / 1000) * 1000
    }
}

/// One `from`/`to` value in Unix milliseconds.
pub fn resolve(text: &str, now_ms: i64) -> Result<i64, TimeError> {
    let err = |reason: &str| TimeError {
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let (sign, dur) = match rest.as_bytes()[0] {
            b'-' => (-1, &rest[1..]),
            b'+' => (1, &rest[1..]),
            _ => return Err(err("expected now, now-<duration> or now+<duration>")),
        };
        let d = parse_duration(dur).map_err(|e| err(&e.to_string()))?;
        let ms = i64::try_from(d.as_millis()).map_err(|_| err("duration too long"))?;
        return Ok(now_ms.saturating_add(sign * ms));
    }
    if let Ok(n) = t.parse::<i64>() {
        // Grafana writes epoch milliseconds; ten digits or fewer are seconds.
        return Ok(if n.abs() < 100_000_000_000 { n * 1000 } else { n });
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    if let Some(ms) = parse_plain_utc(t) {
        return Ok(ms);
    }
    Err(err(
        "expected now-<duration>, epoch milliseconds, RFC 3339 or YYYY-MM-DD HH:MM:SS (UTC)",
    ))
}

/// `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD HH:MM`, either with `T` instead of the space (and an
/// optional `Z` or ` UTC`), or a bare `YYYY-MM-DD` (midnight): read as UTC.
fn parse_plain_utc(text: &str) -> Option<i64> {
    let t = text
        .strip_suffix(" UTC")
        .or_else(|| text.strip_suffix('Z'))
        .unwrap_or(text)
        .trim();
    for pattern in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, pattern) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    let day = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// `ms` as `2026-12-03 10:15:00` in UTC (`.123` added when it has milliseconds).
pub fn format_utc(ms: i64) -> String {
    let Some(dt) = DateTime::from_timestamp_millis(ms) else {
        return ms.to_string();
    };
    if ms.rem_euclid(1000) == 0 {
        dt.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }
}

/// A `from`/`to` text as a person reads it in a form field: epoch seconds or milliseconds
/// (what a drag-to-zoom writes into the URL) become [`format_utc`]; relative and other texts
/// are kept as typed. What it returns resolves to the same instant.
pub fn display(text: &str) -> String {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(_) => match resolve(t, 0) {
            Ok(ms) => format_utc(ms),
            Err(_) => text.to_string(),
        },
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn relative_absolute_and_defaults() {
        let r = TimeRange::parse(None, None, NOW).unwrap();
        assert_eq!((r.start_ms, r.end_ms), (NOW - 3_600_000, NOW));
        let r = TimeRange::parse(Some("now-7d"), Some("now-1d"), NOW).unwrap();
        assert_eq!(r.duration_ms(), 6 * 86_400_000);
        let r = TimeRange::parse(Some("1699990000000"), Some("1700000000"), NOW).unwrap();
        assert_eq!((r.start_ms, r.end_ms), (1_699_990_000_000, NOW));
        assert_eq!(resolve("2023-11-14T22:13:20Z", 0).unwrap(), NOW);
    }

    #[test]
    fn bad_values_are_named() {
        let e = TimeRange::parse(Some("now-1x"), None, NOW).unwrap_err();
        assert_eq!(e.value, "now-1x");
        assert!(TimeRange::parse(Some("now"), Some("now-1h"), NOW).is_err());
        assert!(resolve("yesterday", NOW).is_err());
        assert!(resolve("now*2", NOW).is_err());
    }

    #[test]
    fn epoch_texts_display_as_utc_and_read_back() {
        // 2026-12-03 10:15:00 UTC
        let ms = 1_796_292_900_000;
        assert_eq!(display(&ms.to_string()), "2026-12-03 10:15:00");
        assert_eq!(display("1796292900"), "2026-12-03 10:15:00");
        assert_eq!(display("1796292900250"), "2026-12-03 10:15:00.250");
        assert_eq!(display("now-1h"), "now-1h");
        assert_eq!(display("2026-12-03T10:15:00Z"), "2026-12-03T10:15:00Z");
        for typed in [
            "2026-12-03 10:15:00",
            "2026-12-03 10:15",
            "2026-12-03T10:15:00",
            "2026-12-03 10:15:00 UTC",
            "2026-12-03T10:15:00Z",
            "2026-12-03T11:15:00+01:00",
            "1796292900000",
        ] {
            assert_eq!(resolve(typed, 0).unwrap(), ms, "{typed}");
        }
        assert_eq!(resolve("2026-12-03", 0).unwrap(), ms - 36_900_000);
        assert_eq!(resolve(&display("1796292900250"), 0).unwrap(), ms + 250);
        let e = resolve("2026-13-03 10:15:00", 0).unwrap_err();
        assert!(e.reason.contains("YYYY-MM-DD HH:MM:SS"), "{e}");
    }

    #[test]
    fn step_targets_point_count() {
        let r = TimeRange::parse(Some("now-1h"), None, NOW).unwrap();
        assert_eq!(r.step_ms(360), 10_000);
        assert_eq!(r.step_ms(100_000), 1000);
    }
}
