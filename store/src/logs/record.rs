//! The log record model kept by the log store, its WAL encoding, and its day.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::LogPosition;

/// One log record with every OTLP field Didban keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the event happened (OTLP `time_unix_nano`, or the observed time when that is
    /// 0), nanoseconds since the epoch.
    pub timestamp_unix_nano: i64,
    /// When a collector first saw it, nanoseconds since the epoch.
    pub observed_unix_nano: i64,
    /// OTLP severity number (1–24; 0 unspecified).
    pub severity_number: i32,
    /// Severity text (`ERROR`, `warn`, …; derived from the number when not sent).
    pub severity_text: String,
    /// `service.name` of the resource.
    pub service: String,
    /// The body: strings as they are, other values as JSON text.
    pub body: String,
    /// Record attributes.
    pub attributes: Map<String, Value>,
    /// Resource attributes.
    pub resource: Map<String, Value>,
    /// Trace id, hex (empty when not in a trace).
    pub trace_id: String,
    /// Span id, hex (empty when not in a span).
    pub span_id: String,
    /// Instrumentation scope name.
    pub scope_name: String,
}

/// Version byte of a log WAL record: JSON.
const RECORD_VERSION: u8 = 1;

/// Version byte of a log WAL record taken from the ingest log: the partition (u32 LE)
/// and the stream sequence of the batch's first message (u64 LE; the record's position
/// names the last), then JSON.
const RECORD_VERSION_FROM: u8 = 2;

/// Encodes a batch of records as one WAL record: a version byte, then JSON. Also the
/// form of a log batch in an ingest-log message.
pub(crate) fn encode_record(records: &[LogRecord]) -> Vec<u8> {
    encode(vec![RECORD_VERSION], records)
}

/// Encodes a batch taken from the ingest log whose first message was `first`:
/// replaying it tells which sequences the day indexes it goes to hold (see
/// `day::DayIndex::first`).
pub(crate) fn encode_record_from(first: LogPosition, records: &[LogRecord]) -> Vec<u8> {
    let mut buf = vec![RECORD_VERSION_FROM];
    buf.extend_from_slice(&first.partition.to_le_bytes());
    buf.extend_from_slice(&first.seq.to_le_bytes());
    encode(buf, records)
}

fn encode(mut buf: Vec<u8>, records: &[LogRecord]) -> Vec<u8> {
    let header = buf.len();
    if serde_json::to_writer(&mut buf, records).is_err() {
        buf.truncate(header);
        buf.extend_from_slice(b"[]");
    }
    buf
}

/// Decodes a WAL record written by [`encode_record`] or [`encode_record_from`].
pub(crate) fn decode_record(payload: &[u8]) -> Result<Vec<LogRecord>, String> {
    decode_record_from(payload).map(|(records, _)| records)
}

/// Decodes a WAL record with the first ingest-log message it carries (`None` for a
/// record of [`encode_record`]).
pub(crate) fn decode_record_from(payload: &[u8]) -> Result<(Vec<LogRecord>, Option<LogPosition>), String> {
    let json = |rest: &[u8]| serde_json::from_slice(rest).map_err(|e| e.to_string());
    match payload.split_first() {
        Some((&RECORD_VERSION, rest)) => Ok((json(rest)?, None)),
        Some((&RECORD_VERSION_FROM, rest)) => {
            let short = || "log record too short for its first ingest-log message".to_string();
            let (partition, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            let (seq, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            let first = LogPosition {
                partition: u32::from_le_bytes(*partition),
                seq: u64::from_le_bytes(*seq),
            };
            Ok((json(rest)?, Some(first)))
        }
        Some((v, _)) => Err(format!("unknown log record version {v}")),
        None => Err("empty log record".to_string()),
    }
}

/// The UTC day (`yyyy-mm-dd`) of a timestamp in nanoseconds, naming its index.
pub fn day_of(unix_nano: i64) -> String {
    let secs = unix_nano.div_euclid(1_000_000_000);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.format("%Y-%m-%d").to_string(),
        None => "1970-01-01".to_string(),
    }
}

/// Nanoseconds of the start of day `yyyy-mm-dd` (UTC), if it is a valid day name.
pub fn day_start(day: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let t = date.and_hms_opt(0, 0, 0)?.and_utc();
    t.timestamp().checked_mul(1_000_000_000)
}

/// The OTLP short name of a severity number (`TRACE` … `FATAL`, empty for 0).
pub fn severity_name(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn days_and_severities() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_764_115_200_000_000_000), "2025-11-26");
        assert_eq!(day_start("2025-11-26"), Some(1_764_115_200_000_000_000));
        assert_eq!(day_start("../etc"), None);
        assert_eq!(severity_name(17), "ERROR");
        assert_eq!(severity_name(0), "");
        let r = vec![LogRecord {
            timestamp_unix_nano: 1,
            observed_unix_nano: 2,
            severity_number: 9,
            severity_text: "INFO".into(),
            service: "s".into(),
            body: "hello".into(),
            attributes: Map::new(),
            resource: Map::new(),
            trace_id: String::new(),
            span_id: String::new(),
            scope_name: String::new(),
        }];
        assert_eq!(decode_record(&encode_record(&r)).unwrap(), r);
        let first = LogPosition {
            partition: 3,
            seq: 42,
        };
        assert_eq!(
            decode_record_from(&encode_record_from(first, &r)).unwrap(),
            (r.clone(), Some(first))
        );
        assert_eq!(decode_record(&encode_record_from(first, &r)).unwrap(), r);
        assert!(decode_record(&[2, 1, 2]).is_err());
    }
}
