//! Serde deserializers for the configuration's durations (`"10s"` or seconds) and sizes
//! (`"256MiB"` or bytes).

use std::time::Duration;

use didban_base::{parse_bytes, parse_seconds_or_duration};
use serde::{Deserialize, Deserializer};

/// Accepts a duration as a string (`"10s"`) or a number of seconds.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(f64),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Text(t) => t,
        Raw::Secs(s) => s.to_string(),
    };
    parse_seconds_or_duration(&text).map_err(serde::de::Error::custom)
}

/// [`de_duration`] for an optional key.
pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Accepts a size as a string (`"256MiB"`) or a number of bytes.
pub(crate) fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Bytes(u64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(t) => parse_bytes(&t).map_err(serde::de::Error::custom),
        Raw::Bytes(b) => Ok(b),
    }
}

/// [`de_bytes`] for a size held in a `usize`.
pub(crate) fn de_bytes_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let bytes = de_bytes(d)?;
    usize::try_from(bytes).map_err(serde::de::Error::custom)
}
