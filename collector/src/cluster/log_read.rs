//! The querier's log reads: every live ingester's unpublished records (its writable and
//! staged days, asked over `POST /internal/v1/logs`) merged with the sealed days in the
//! bucket, ordered and paged as the single-node search does.
//!
//! The ingesters are asked first and the sealed days listed after (unless they were
//! listed after the asking began): an ingester records an uploaded day in the metastore
//! before it stops answering for it, so every acknowledged (and committed) record is in
//! an answer or in a listed day. A day uploaded between the two may be in both.
//!
//! **Identity.** A record seen twice is the same record when all its fields are equal —
//! timestamp, observed time, severity, service, body, attributes, resource, trace and
//! span ids, scope — compared by their stored JSON form (a record is stored as the JSON
//! it was received as, so both sources hold the same text). Merging keeps each identity
//! as many times as the source holding it most often has it: a day in both an answer
//! and the bucket counts once, while records a client sent twice to one ingester stay
//! twice, as on a single node. Records with equal timestamps are ordered by a hash of
//! that form, so pages are repeatable.
//!
//! Histograms and top values are counts: they are summed over the sources without that
//! identity, so a day sealed while the query runs may be counted twice for that one
//! query (days are sealed hours after they end, so only queries over past days can see
//! it). Top values take each source's top `size` and sum them, as the store does over
//! its days.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use didban_alerting::eval::storage::log_query;
use didban_store::logs::{Cursor, HistogramBucket, LogError, LogPage, LogQuery, LogRecord, LogStore};
use didban_ui::signal_reads::{LogReads, ReadFailure};
use serde::de::DeserializeOwned;

use super::logs::{LogsRequest, SearchAnswer, WireBucket, WireLogQuery, LOGS_PATH};
use super::reader::{ClusterReader, IngesterError};

/// Why a log read failed.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    /// A live ingester did not answer (or refused the request: `rejected`).
    #[error("{0}")]
    Ingester(#[from] IngesterError),
    /// The local store or the bucket failed, or the request was invalid.
    #[error("{0}")]
    Store(#[from] LogError),
}

/// Log reads over the cluster (or the local store alone); cheap to build per request.
#[derive(Clone)]
pub struct ClusterLogs {
    store: Arc<LogStore>,
    cluster: Option<Arc<ClusterReader>>,
}

impl ClusterLogs {
    /// Reads `store` and, with `cluster`, every live ingester's unpublished records.
    pub fn new(store: Arc<LogStore>, cluster: Option<Arc<ClusterReader>>) -> ClusterLogs {
        ClusterLogs { store, cluster }
    }

    /// Every ingester's JSON answer to `req`, then the sealed days listed again.
    fn ask<T: DeserializeOwned>(&self, req: &LogsRequest) -> Result<Vec<T>, LogReadError> {
        let Some(cluster) = &self.cluster else {
            return Ok(Vec::new());
        };
        let asked = Instant::now();
        let body = serde_json::to_vec(req).unwrap_or_default();
        let mut out = Vec::new();
        for (member, bytes) in cluster.ask(LOGS_PATH, body)? {
            out.push(serde_json::from_slice(&bytes).map_err(|e| IngesterError {
                message: format!(
                    "ingester {} at {}: undecodable answer: {e}",
                    member.id, member.address
                ),
                rejected: false,
            })?);
        }
        self.store.ensure_listed_after(asked)?;
        Ok(out)
    }

    /// Records matching `q`, newest first, one page at a time (`q.cursor` continues a
    /// page this method returned). Blocking.
    pub fn search(&self, q: &LogQuery) -> Result<LogPage, LogReadError> {
        if self.cluster.is_none() {
            return Ok(self.store.search(q)?);
        }
        // Each source is asked for everything up to the cursor's time, enough records to
        // skip what earlier pages returned, fill this one and tell whether more follow.
        let limit = q.limit.max(1);
        let skip = q
            .cursor
            .map_or(0, |c| usize::try_from(c.skip).unwrap_or(usize::MAX));
        let mut wide = q.clone();
        if let Some(c) = q.cursor {
            wide.end_unix_nano = wide.end_unix_nano.min(c.timestamp_unix_nano);
        }
        wide.cursor = None;
        wide.limit = limit.saturating_add(skip).saturating_add(1);
        let answers: Vec<SearchAnswer> = self.ask(&LogsRequest::Search {
            query: WireLogQuery::of(&wide),
        })?;
        let mut sources: Vec<Vec<LogRecord>> = answers.into_iter().map(|a| a.records).collect();
        sources.push(self.store.search(&wide)?.records);
        Ok(page(merge_records(sources), q.cursor, limit))
    }

    /// Record counts per `step_ms` bucket by severity (see [`LogStore::histogram`]),
    /// summed over the sources. Blocking.
    pub fn histogram(&self, q: &LogQuery, step_ms: i64) -> Result<Vec<HistogramBucket>, LogReadError> {
        let answers: Vec<Vec<WireBucket>> = self.ask(&LogsRequest::Histogram {
            query: WireLogQuery::of(q),
            step_ms,
        })?;
        let mut buckets: BTreeMap<i64, HistogramBucket> = BTreeMap::new();
        for b in self.store.histogram(q, step_ms)? {
            buckets.insert(b.start_ms, b);
        }
        for answer in answers {
            for b in answer {
                let slot = buckets.entry(b.start_ms).or_insert_with(|| HistogramBucket {
                    start_ms: b.start_ms,
                    count: 0,
                    by_severity: BTreeMap::new(),
                });
                let b = b.into_bucket();
                slot.count += b.count;
                for (severity, n) in b.by_severity {
                    *slot.by_severity.entry(severity).or_default() += n;
                }
            }
        }
        Ok(buckets.into_values().collect())
    }

    /// The `size` most frequent values of `field` (see [`LogStore::top_values`]), summed
    /// over the sources. Blocking.
    pub fn top_values(
        &self,
        q: &LogQuery,
        field: &str,
        size: usize,
    ) -> Result<Vec<(String, u64)>, LogReadError> {
        let answers: Vec<Vec<(String, u64)>> = self.ask(&LogsRequest::Values {
            query: WireLogQuery::of(q),
            field: field.to_string(),
            size,
        })?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (value, n) in answers
            .into_iter()
            .flatten()
            .chain(self.store.top_values(q, field, size)?)
        {
            *counts.entry(value).or_default() += n;
        }
        let mut list: Vec<(String, u64)> = counts.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(size.max(1));
        Ok(list)
    }
}

/// A record's identity (module comment): its stored JSON form, and a hash of it that
/// orders records with equal timestamps.
fn identity(r: &LogRecord) -> (String, u64) {
    let text = serde_json::to_string(r).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    (text, h.finish())
}

/// The records of several sources (each newest first) as one list, newest first with
/// ties by identity hash; each identity as many times as the source holding it most.
fn merge_records(sources: Vec<Vec<LogRecord>>) -> Vec<LogRecord> {
    let mut kept: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<(i64, u64, LogRecord)> = Vec::new();
    for records in sources {
        let mut here: HashMap<String, usize> = HashMap::new();
        for r in records {
            let (text, hash) = identity(&r);
            let n = here.entry(text.clone()).or_default();
            *n += 1;
            let have = kept.entry(text).or_default();
            if *n > *have {
                *have += 1;
                out.push((r.timestamp_unix_nano, hash, r));
            }
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.into_iter().map(|(_, _, r)| r).collect()
}

/// The page of `merged` (newest first, everything up to the cursor's time) after
/// `cursor`, at most `limit` records, with the cursor of the next page when more follow.
fn page(merged: Vec<LogRecord>, cursor: Option<Cursor>, limit: usize) -> LogPage {
    let mut rest = merged.into_iter().peekable();
    let mut skipped = 0u64;
    if let Some(c) = cursor {
        while skipped < c.skip
            && rest
                .peek()
                .is_some_and(|r| r.timestamp_unix_nano == c.timestamp_unix_nano)
        {
            rest.next();
            skipped += 1;
        }
    }
    let mut records = Vec::with_capacity(limit);
    for r in rest.by_ref() {
        records.push(r);
        if records.len() == limit {
            break;
        }
    }
    let more = rest.next().is_some();
    let next_cursor = match (more, records.last()) {
        (true, Some(last)) => {
            let t = last.timestamp_unix_nano;
            let mut same = records.iter().filter(|r| r.timestamp_unix_nano == t).count() as u64;
            if cursor.is_some_and(|c| c.timestamp_unix_nano == t) {
                same += skipped;
            }
            Some(
                Cursor {
                    timestamp_unix_nano: t,
                    skip: same,
                }
                .encode(),
            )
        }
        _ => None,
    };
    LogPage { records, next_cursor }
}

impl From<LogReadError> for ReadFailure {
    fn from(e: LogReadError) -> Self {
        match e {
            LogReadError::Ingester(i) => i.into(),
            LogReadError::Store(e) => ReadFailure::from(e),
        }
    }
}

/// The UI's log pages read the cluster like the log API.
impl LogReads for ClusterLogs {
    fn search(&self, q: &LogQuery) -> Result<LogPage, ReadFailure> {
        Ok(ClusterLogs::search(self, q)?)
    }

    fn histogram(&self, q: &LogQuery, interval_ms: i64) -> Result<Vec<HistogramBucket>, ReadFailure> {
        Ok(ClusterLogs::histogram(self, q, interval_ms)?)
    }

    fn top_values(&self, q: &LogQuery, field: &str, size: usize) -> Result<Vec<(String, u64)>, ReadFailure> {
        Ok(ClusterLogs::top_values(self, q, field, size)?)
    }
}

impl didban_alerting::eval::LogSource for ClusterLogs {
    /// One histogram bucket spanning the window (at most two after alignment), summed.
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String> {
        let q = log_query(query, start_ms, end_ms);
        let interval = end_ms.saturating_sub(start_ms).saturating_add(1).max(1);
        let buckets = self.histogram(&q, interval).map_err(|e| e.to_string())?;
        Ok(buckets.iter().map(|b| b.count).sum())
    }

    /// The top values of `field` over the cluster.
    fn count_by(
        &self,
        query: &str,
        field: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        self.top_values(&log_query(query, start_ms, end_ms), field, limit)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(t: i64, body: &str) -> LogRecord {
        LogRecord {
            timestamp_unix_nano: t,
            observed_unix_nano: t,
            severity_number: 9,
            severity_text: "INFO".into(),
            service: "shop".into(),
            body: body.into(),
            attributes: serde_json::Map::new(),
            resource: serde_json::Map::new(),
            trace_id: String::new(),
            span_id: String::new(),
            scope_name: String::new(),
        }
    }

    fn bodies(page: &LogPage) -> Vec<(i64, String)> {
        page.records
            .iter()
            .map(|r| (r.timestamp_unix_nano, r.body.clone()))
            .collect()
    }

    #[test]
    fn a_record_in_two_sources_counts_once_and_repeats_within_one_stay() {
        let ingester = vec![record(30, "c"), record(20, "b"), record(20, "b"), record(10, "a")];
        // The bucket holds the day the ingester just sealed: b once, a; and one of its own.
        let bucket = vec![record(25, "x"), record(20, "b"), record(10, "a")];
        let merged = merge_records(vec![ingester, bucket]);
        let got: Vec<(i64, &str)> = merged
            .iter()
            .map(|r| (r.timestamp_unix_nano, r.body.as_str()))
            .collect();
        assert_eq!(got, vec![(30, "c"), (25, "x"), (20, "b"), (20, "b"), (10, "a")]);
        // A field that differs makes another record.
        let mut other = record(10, "a");
        other.service = "cart".into();
        assert_eq!(merge_records(vec![vec![record(10, "a")], vec![other]]).len(), 2);
    }

    #[test]
    fn pages_continue_through_equal_timestamps_without_gaps_or_repeats() {
        let all: Vec<LogRecord> = vec![
            record(50, "e"),
            record(40, "d1"),
            record(40, "d2"),
            record(40, "d3"),
            record(30, "c"),
        ];
        let merged = merge_records(vec![all.clone()]);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            // What a source returns for the next page: everything up to the cursor's time.
            let upto: Vec<LogRecord> = merged
                .iter()
                .filter(|r| cursor.is_none_or(|c: Cursor| r.timestamp_unix_nano <= c.timestamp_unix_nano))
                .cloned()
                .collect();
            let p = page(upto, cursor, 2);
            seen.extend(bodies(&p));
            match p.next_cursor {
                Some(c) => cursor = Some(Cursor::decode(&c).unwrap()),
                None => break,
            }
        }
        let mut want: Vec<(i64, String)> = merged
            .iter()
            .map(|r| (r.timestamp_unix_nano, r.body.clone()))
            .collect();
        assert_eq!(seen, want);
        want.sort();
        want.dedup();
        assert_eq!(want.len(), 5);
    }
}
