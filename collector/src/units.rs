//! Human-friendly durations (`90s`, `5m`, `2h`, `15d`, `1w`, `500ms`, combined like `1h30m`)
//! and byte sizes (`512`, `64KiB`, `20MiB`, `2GiB`, `1GB`) as used in the config file.

use std::time::Duration;

/// Why a duration or size did not parse.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("invalid duration {0:?}: expected a number and a unit (ms, s, m, h, d, w, y), e.g. \"5m\" or \"1h30m\"")]
    Duration(String),
    #[error("invalid size {0:?}: expected bytes or a number with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. \"20MiB\"")]
    Bytes(String),
}

/// Parses a Prometheus-style duration (see [`didban_store::duration`]).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    didban_store::duration::parse_duration(text).map_err(|_| UnitError::Duration(text.to_string()))
}

/// Parses a byte size; binary (KiB) and decimal (KB) units, case-insensitive.
pub fn parse_bytes(text: &str) -> Result<u64, UnitError> {
    let s = text.trim();
    let bad = || UnitError::Bytes(text.to_string());
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = s[..digits].parse().map_err(|_| bad())?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("20MiB").unwrap(), 20 << 20);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
    }
}
