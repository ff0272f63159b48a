//! What a log search asks for and what it answers: the query, the page cursor, a page of
//! records, a histogram bucket.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::LogError;
use super::record::LogRecord;

/// A log search.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Tantivy query syntax over `body` (the default field) and the named fields; empty or
    /// `*` matches everything. Terms are combined with AND unless `OR` is written.
    pub query: String,
    /// Only records of this trace (hex), when set.
    pub trace_id: Option<String>,
    /// Earliest record timestamp, nanoseconds (inclusive).
    pub start_unix_nano: i64,
    /// Latest record timestamp, nanoseconds (inclusive).
    pub end_unix_nano: i64,
    /// Most records per page.
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

/// A position in a newest-first result list: the timestamp of the last record returned
/// and how many records with exactly that timestamp were returned so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Timestamp of the last record returned, nanoseconds.
    pub timestamp_unix_nano: i64,
    /// Records with that timestamp already returned.
    pub skip: u64,
}

impl Cursor {
    /// The text form, `<timestamp>:<skip>`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.timestamp_unix_nano, self.skip)
    }

    /// Parses the text form.
    pub fn decode(text: &str) -> Result<Cursor, LogError> {
        let bad = || LogError::BadRequest(format!("invalid cursor {text:?}: expected <timestamp>:<skip>"));
        let (t, s) = text.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            timestamp_unix_nano: t.parse().map_err(|_| bad())?,
            skip: s.parse().map_err(|_| bad())?,
        })
    }
}

/// One page of results.
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    /// Records, newest first.
    pub records: Vec<LogRecord>,
    /// Cursor for the next page; `None` when this was the last one.
    pub next_cursor: Option<String>,
}

/// One bucket of the volume histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBucket {
    /// Bucket start, milliseconds since the epoch.
    pub start_ms: i64,
    /// Records in the bucket.
    pub count: u64,
    /// Records per severity text (records without one under `""`).
    pub by_severity: BTreeMap<String, u64>,
}
