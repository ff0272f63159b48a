//! The wall clock as Unix time. Every timestamp Didban stamps itself (ingest arrival, rule
//! evaluation, maintenance, test data) reads it here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by the wall clock; 0 if the clock is before 1970,
/// `i64::MAX` past the year 292 million.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Nanoseconds since the Unix epoch by the wall clock (OTLP's unit); 0 before 1970,
/// `i64::MAX` past 2262.
pub fn now_nanos() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_agree_and_are_after_2020() {
        let ms = now_ms();
        let ns = now_nanos();
        assert!(ms > 1_577_836_800_000, "{ms}");
        assert!((ns / 1_000_000 - ms).abs() < 60_000, "{ns} vs {ms}");
    }
}
