//! Byte sizes as written in config files and flags: a number of bytes (`512`, `1.5`), or a
//! number with a binary (`KiB`, `MiB`, `GiB`, `TiB`, also `K`, `M`, `G`, `T`) or decimal
//! (`KB`, `MB`, `GB`, `TB`) unit, case-insensitive, with optional space before the unit.

/// A size that does not follow the syntax; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size {0:?}: expected bytes or a number with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. \"20MiB\""
)]
pub struct BytesError(pub String);

/// Parses a byte size; fractions are rounded down to whole bytes.
pub fn parse_bytes(text: &str) -> Result<u64, BytesError> {
    let s = text.trim();
    let bad = || BytesError(text.to_string());
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number = s.get(..split).unwrap_or("");
    if number.is_empty() {
        return Err(bad());
    }
    let unit = s.get(split..).unwrap_or("").trim().to_ascii_lowercase();
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
    // Whole numbers stay exact; only a fraction goes through floating point.
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let n: f64 = number.parse().map_err(|_| bad())?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("20MiB").unwrap(), 20 << 20);
        assert_eq!(parse_bytes("256MiB").unwrap(), 256 * 1024 * 1024);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("2g").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("2 KB").unwrap(), 2000);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("1.5KiB").unwrap(), 1536);
        for bad in ["lots", "", "KiB", "1 XB", "99999999999TiB", "1.2.3"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
