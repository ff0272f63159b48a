//! Prometheus durations as rule files write them (`30s`, `1h30m`, `1d`): parsing and
//! printing.

use std::time::Duration;

/// Parses a Prometheus duration (`30s`, `5m`, `1h30m`, `1d`, `1w`, `1y`, `100ms`, `0`) with
/// the one parser every part of Didban uses; the error names the bad text.
pub fn parse_prom_duration(s: &str) -> Result<Duration, String> {
    didban_base::parse_duration(s).map_err(|e| e.to_string())
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
