//! Prometheus duration syntax (`500ms`, `15s`, `5m`, `2h`, `15d`, `1w`, `1y`, combined as
//! `1h30m`; a lone `0` is zero), shared by config files, the HTTP API, the agent and test
//! files so they all accept exactly what PromQL accepts.

use std::time::Duration;

/// A duration that does not follow the syntax; the message names the text and, where one
/// is to blame, the unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {text:?}: {problem}expected a number and a unit (ms, s, m, h, d, w, y), e.g. \"5m\" or \"1h30m\""
)]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong beyond the general syntax (`unknown unit "x"; `), or empty.
    problem: String,
}

impl DurationError {
    fn new(text: &str) -> DurationError {
        DurationError {
            text: text.to_string(),
            problem: String::new(),
        }
    }

    fn unknown_unit(text: &str, unit: &str) -> DurationError {
        DurationError {
            text: text.to_string(),
            problem: format!("unknown unit {unit:?}; "),
        }
    }
}

/// Parses a Prometheus duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || DurationError::new(text);
    if s.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u128 = rest.get(..digits).unwrap_or("").parse().map_err(|_| bad())?;
        rest = rest.get(digits..).unwrap_or("");
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit_ms: u128 = match rest.get(..unit_len).unwrap_or("") {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            "" => return Err(bad()),
            other => return Err(DurationError::unknown_unit(text, other)),
        };
        rest = rest.get(unit_len..).unwrap_or("");
        let part = n.checked_mul(unit_ms).ok_or_else(bad)?;
        total_ms = total_ms.checked_add(part).ok_or_else(bad)?;
    }
    let ms = u64::try_from(total_ms).map_err(|_| bad())?;
    Ok(Duration::from_millis(ms))
}

/// Parses a plain number of seconds (`15`, `0.5`, as the Prometheus HTTP API accepts for
/// `step` and `timeout`) or else a Prometheus duration. Negative, infinite, NaN or
/// overlong values are refused.
pub fn parse_seconds_or_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| DurationError::new(text));
    }
    parse_duration(s)
}

/// Parses a Go duration (`1.5s`, `100ms`, `250us`, `2m`, `1h30m`: what Jaeger's
/// `minDuration`/`maxDuration` and its UI use) into nanoseconds. Fractions are allowed in
/// every part; the result must fit an `i64`.
pub fn parse_go_duration_nanos(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a duration like 100ms or 1.5s");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest.get(..n).unwrap_or_default().parse().map_err(|_| bad())?;
        rest = rest.get(n..).unwrap_or_default();
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match rest.get(..u).unwrap_or_default() {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = rest.get(u..).unwrap_or_default();
        total += number * factor;
    }
    if !total.is_finite() || total > 9.2e18 {
        return Err(bad());
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("15d").unwrap(), Duration::from_secs(15 * 86400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["5", "5 minutes", "", "m", "99999999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let e = parse_duration("1x").unwrap_err().to_string();
        assert!(e.contains("\"1x\"") && e.contains("unknown unit \"x\""), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration_nanos("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_go_duration_nanos("250us").unwrap(), 250_000);
        assert_eq!(parse_go_duration_nanos("1h30m").unwrap(), 5_400_000_000_000);
        for bad in ["", "5", "1x", "1e30h"] {
            assert!(parse_go_duration_nanos(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_or_durations() {
        assert_eq!(parse_seconds_or_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(
            parse_seconds_or_duration("0.5").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_seconds_or_duration("1m30s").unwrap(),
            Duration::from_secs(90)
        );
        for bad in ["-1", "NaN", "inf", "fast", "", "1e300"] {
            assert!(parse_seconds_or_duration(bad).is_err(), "{bad}");
        }
    }
}
