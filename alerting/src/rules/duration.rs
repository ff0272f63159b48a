//! Prometheus durations as rule files write them (`30s`, `1h30m`, `1d`): parsing and
//! printing.

use std::time::Duration;

/// Parses a Prometheus duration (`30s`, `5m`, `1h30m`, `1d`, `1w`, `1y`, `100ms`, `0`).
pub fn parse_prom_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err("empty duration string".into());
    }
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("not a valid duration string: {t:?}"));
        }
        let n: u64 = rest
            .get(..digits)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("not a valid duration string: {t:?}"))?;
        rest = rest.get(digits..).unwrap_or("");
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit = rest.get(..unit_len).unwrap_or("");
        rest = rest.get(unit_len..).unwrap_or("");
        let ms: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("not a valid duration string: {t:?} (unit {unit:?})")),
        };
        total_ms = n
            .checked_mul(ms)
            .and_then(|x| total_ms.checked_add(x))
            .ok_or_else(|| format!("duration out of range: {t:?}"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way Prometheus prints them (`1h30m`, `5m`, `0s`).
pub fn format_prom_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}
