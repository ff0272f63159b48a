//! Request parameters of the Prometheus HTTP API: merged from the query string and a
//! form-encoded POST body, with Prometheus' time and duration formats.

use chrono::DateTime;

use super::response::ApiError;

/// All `key=value` pairs of a request, query string first, then the form body; keys may
/// repeat (`match[]`).
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses the query string and, for form POSTs, the body.
    pub fn from_parts(query: Option<&str>, form_body: Option<&[u8]>) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            let parsed: Vec<(String, String)> = serde_urlencoded::from_str(q)
                .map_err(|e| ApiError::bad_data(format!("invalid query string: {e}")))?;
            pairs.extend(parsed);
        }
        if let Some(body) = form_body {
            let parsed: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|e| ApiError::bad_data(format!("invalid form body: {e}")))?;
            pairs.extend(parsed);
        }
        Ok(Params(pairs))
    }

    /// The first value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required parameter, or a `bad_data` error naming it.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::bad_data(format!("missing required parameter {key:?}"))),
        }
    }

    /// A time parameter in ms, or `default_ms` when absent.
    pub fn time_or(&self, key: &str, default_ms: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => {
                parse_time(v).map_err(|e| ApiError::bad_data(format!("invalid parameter {key:?}: {e}")))
            }
            _ => Ok(default_ms),
        }
    }
}

/// Smallest and largest times Prometheus accepts as "unbounded" (used as defaults for the
/// series and labels APIs).
pub const MIN_TIME_MS: i64 = -9_223_372_036_854_775 / 1000 * 1000;
pub const MAX_TIME_MS: i64 = 9_223_372_036_854_775 / 1000 * 1000;

/// Parses a Prometheus API time: Unix seconds with optional fraction, or RFC 3339.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {text:?} to a valid timestamp"));
        }
        let ms = (secs * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Err(format!(
                "cannot parse {text:?} to a valid timestamp: out of range"
            ));
        }
        return Ok(ms as i64);
    }
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Ok(t.timestamp_millis()),
        Err(_) => Err(format!("cannot parse {text:?} to a valid timestamp")),
    }
}

/// Parses a Prometheus API duration: float seconds or a duration like `15s`, `1m30s`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e15 {
            return Err(format!("cannot parse {text:?} to a valid duration"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    match didban_base::parse_duration(text) {
        Ok(d) => i64::try_from(d.as_millis()).map_err(|_| format!("duration {text:?} is too long")),
        Err(_) => Err(format!("cannot parse {text:?} to a valid duration")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_in_both_formats() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("1435781451").unwrap(), 1_435_781_451_000);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations_in_both_formats() {
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("0.5").unwrap(), 500);
        assert_eq!(parse_duration_ms("1m30s").unwrap(), 90_000);
        assert!(parse_duration_ms("fast").is_err());
    }

    #[test]
    fn params_merge_query_and_form_with_repeats() {
        let p = Params::from_parts(Some("match[]=up&start=1"), Some(b"match[]=down&query=x")).unwrap();
        assert_eq!(p.all("match[]"), ["up", "down"]);
        assert_eq!(p.get("query"), Some("x"));
        assert!(p.required("end").is_err());
    }
}
