//! Searching the day indexes: newest-first pages with a cursor, the volume histogram by
//! severity, top values of a field, and the live-tail poll (methods of [`LogStore`]; the
//! request and answer types are in `query`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::AggregationCollector;
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DateTime, Order, Searcher, TantivyDocument, Term};

use super::day::DayIndex;
use super::error::LogError;
use super::query::{Cursor, HistogramBucket, LogPage, LogQuery};
use super::record::{day_start, LogRecord};
use super::scope::Scope;
use super::LogStore;

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;
/// Length of the first, newest window a day is searched in (see [`LogStore::search`]).
const FIRST_WINDOW_NANOS: i64 = 15 * 60 * 1_000_000_000;

impl LogStore {
    /// Day indexes overlapping `[start, end]`, newest day first: the writable ones and,
    /// with an object store, the sealed ones (fetched into the cache when not there). A
    /// day may have several indexes (sealed, late records after sealing, other processes').
    fn days_between(&self, start: i64, end: i64, scope: Scope) -> Result<Vec<Arc<DayIndex>>, LogError> {
        let mut out = Vec::new();
        for (name, d) in self.days.read().iter() {
            let Some(s) = day_start(name) else { continue };
            if s <= end && s.saturating_add(DAY_NANOS) > start {
                out.push(d.clone());
            }
        }
        if let Some(sealed) = &self.sealed {
            out.extend(sealed.for_search(start, end, &self.fields, scope)?);
        }
        // Stable: the indexes of one day keep their order, so paging is repeatable.
        out.sort_by(|a, b| b.day.cmp(&a.day));
        Ok(out)
    }

    fn parse(&self, day: &DayIndex, text: &str) -> Result<Box<dyn Query>, LogError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "*" {
            return Ok(Box::new(AllQuery));
        }
        let mut parser = QueryParser::for_index(&day.index, vec![self.fields.body]);
        parser.set_conjunction_by_default();
        parser.parse_query(trimmed).map_err(|e| LogError::Query {
            query: text.to_string(),
            message: e.to_string(),
        })
    }

    /// The user's query restricted to the time range (and trace, when given).
    fn full_query(
        &self,
        day: &DayIndex,
        text: &str,
        trace_id: Option<&str>,
        start: i64,
        end: i64,
    ) -> Result<Box<dyn Query>, LogError> {
        Ok(self.bounded(self.parse(day, text)?, trace_id, start, end))
    }

    /// `text_query` restricted to `[start, end]` (nanoseconds) and, if given, one trace.
    fn bounded(
        &self,
        text_query: Box<dyn Query>,
        trace_id: Option<&str>,
        start: i64,
        end: i64,
    ) -> Box<dyn Query> {
        let time = RangeQuery::new(
            Bound::Included(Term::from_field_date(
                self.fields.timestamp,
                DateTime::from_timestamp_nanos(start),
            )),
            Bound::Included(Term::from_field_date(
                self.fields.timestamp,
                DateTime::from_timestamp_nanos(end),
            )),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, text_query), (Occur::Must, Box::new(time))];
        if let Some(id) = trace_id {
            let term = Term::from_field_text(self.fields.trace_id, &id.to_ascii_lowercase());
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    fn load(
        &self,
        searcher: &Searcher,
        day: &DayIndex,
        addr: tantivy::DocAddress,
    ) -> Result<LogRecord, LogError> {
        let doc: TantivyDocument = searcher.doc(addr).map_err(|source| LogError::Tantivy {
            path: day.dir.clone(),
            source,
        })?;
        let text = doc
            .get_first(self.fields.source)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        serde_json::from_str(text).map_err(|e| LogError::Tantivy {
            path: day.dir.clone(),
            source: tantivy::TantivyError::InternalError(format!("stored record is not valid JSON: {e}")),
        })
    }

    /// Records matching `q`, newest first, one page at a time.
    ///
    /// Each day is searched in windows going back from the newest end, the first
    /// [`FIRST_WINDOW_NANOS`] long and each next one four times longer, until the page is
    /// full: a common query (a phrase found all day) costs one short window instead of
    /// ordering every match of the day by time, and a rare one costs about a full scan.
    pub fn search(&self, q: &LogQuery) -> Result<LogPage, LogError> {
        self.search_in(q, Scope::All)
    }

    /// [`search`](Self::search) over the unpublished indexes only (the writable days and
    /// the sealed ones not uploaded yet): what an ingester answers a querier with.
    pub fn search_unpublished(&self, q: &LogQuery) -> Result<LogPage, LogError> {
        self.search_in(q, Scope::Unpublished)
    }

    fn search_in(&self, q: &LogQuery, scope: Scope) -> Result<LogPage, LogError> {
        let limit = q.limit.max(1);
        let mut end = q.end_unix_nano;
        let mut skip = 0u64;
        if let Some(c) = q.cursor {
            end = end.min(c.timestamp_unix_nano);
            skip = c.skip;
        }
        let mut records: Vec<LogRecord> = Vec::new();
        let mut more = false;
        let indexes = self.days_between(q.start_unix_nano, end, scope)?;
        'days: for group in indexes.chunk_by(|a, b| a.day == b.day) {
            let Some(first) = group.first() else { continue };
            let day_lo = day_start(&first.day).unwrap_or(i64::MIN);
            let lo = q.start_unix_nano.max(day_lo);
            let mut win_end = end.min(day_lo.saturating_add(DAY_NANOS - 1));
            let mut span = FIRST_WINDOW_NANOS;
            // Each index's searcher, and the query parsed once per index; each window
            // only adds its time bounds.
            let mut searchers = Vec::with_capacity(group.len());
            for day in group {
                searchers.push((day, day.reader.searcher(), self.parse(day, &q.query)?));
            }
            while win_end >= lo {
                let win_start = win_end.saturating_sub(span - 1).max(lo);
                let want = limit - records.len() + skip as usize + 1;
                // The newest `want` of every index of the day, merged newest first (a
                // stable sort: ties keep index order, so pages are repeatable).
                let mut hits = Vec::new();
                for (i, (day, searcher, text_query)) in searchers.iter().enumerate() {
                    let query =
                        self.bounded(text_query.box_clone(), q.trace_id.as_deref(), win_start, win_end);
                    let top =
                        TopDocs::with_limit(want).order_by_fast_field::<DateTime>("timestamp", Order::Desc);
                    let found = searcher
                        .search(&query, &top)
                        .map_err(|source| LogError::Tantivy {
                            path: day.dir.clone(),
                            source,
                        })?;
                    for (ts, addr) in found {
                        hits.push((ts.map(|t| t.into_timestamp_nanos()).unwrap_or(i64::MIN), i, addr));
                    }
                }
                hits.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t));
                for (t, i, addr) in hits {
                    if skip > 0 && Some(t) == q.cursor.map(|c| c.timestamp_unix_nano) {
                        skip -= 1;
                        continue;
                    }
                    if records.len() == limit {
                        more = true;
                        break 'days;
                    }
                    let Some((day, searcher, _)) = searchers.get(i) else {
                        continue;
                    };
                    records.push(self.load(searcher, day, addr)?);
                }
                // The cursor's timestamp lies in the first window searched; older windows
                // cannot hold it.
                skip = 0;
                if win_start <= lo {
                    break;
                }
                win_end = win_start - 1;
                span = span.saturating_mul(4);
            }
        }
        let next_cursor = if more {
            records.last().map(|last| {
                let t = last.timestamp_unix_nano;
                let mut same = 0u64;
                for r in &records {
                    if r.timestamp_unix_nano == t {
                        same += 1;
                    }
                }
                if let Some(c) = q.cursor {
                    if c.timestamp_unix_nano == t {
                        same += c.skip;
                    }
                }
                Cursor {
                    timestamp_unix_nano: t,
                    skip: same,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(LogPage { records, next_cursor })
    }

    fn aggregate(
        &self,
        day: &DayIndex,
        query: &dyn Query,
        aggs: serde_json::Value,
    ) -> Result<serde_json::Value, LogError> {
        let tantivy_err = |source| LogError::Tantivy {
            path: day.dir.clone(),
            source,
        };
        let aggs: Aggregations = serde_json::from_value(aggs)
            .map_err(|e| tantivy_err(tantivy::TantivyError::InvalidArgument(e.to_string())))?;
        let collector = AggregationCollector::from_aggs(aggs, Default::default());
        let searcher = day.reader.searcher();
        let result = searcher.search(query, &collector).map_err(tantivy_err)?;
        serde_json::to_value(result)
            .map_err(|e| tantivy_err(tantivy::TantivyError::InternalError(e.to_string())))
    }

    /// Record counts per `interval_ms` bucket over `[start, end]` with a breakdown by
    /// severity text; empty buckets are included (at most 10 000 buckets).
    pub fn histogram(&self, q: &LogQuery, interval_ms: i64) -> Result<Vec<HistogramBucket>, LogError> {
        self.histogram_in(q, interval_ms, Scope::All)
    }

    /// [`histogram`](Self::histogram) over the unpublished indexes only.
    pub fn histogram_unpublished(
        &self,
        q: &LogQuery,
        interval_ms: i64,
    ) -> Result<Vec<HistogramBucket>, LogError> {
        self.histogram_in(q, interval_ms, Scope::Unpublished)
    }

    fn histogram_in(
        &self,
        q: &LogQuery,
        interval_ms: i64,
        scope: Scope,
    ) -> Result<Vec<HistogramBucket>, LogError> {
        if interval_ms <= 0 {
            return Err(LogError::BadRequest(format!(
                "invalid interval {interval_ms}ms: must be positive"
            )));
        }
        let start_ms = q.start_unix_nano.div_euclid(1_000_000);
        let end_ms = q.end_unix_nano.div_euclid(1_000_000);
        let first = start_ms.div_euclid(interval_ms) * interval_ms;
        let n = (end_ms - first) / interval_ms + 1;
        if n > 10_000 {
            return Err(LogError::BadRequest(format!(
                "interval {interval_ms}ms gives {n} buckets over the range; at most 10000 are allowed"
            )));
        }
        let mut buckets: BTreeMap<i64, HistogramBucket> = BTreeMap::new();
        for i in 0..n {
            let key = first + i * interval_ms;
            buckets.insert(
                key,
                HistogramBucket {
                    start_ms: key,
                    count: 0,
                    by_severity: BTreeMap::new(),
                },
            );
        }
        let aggs = serde_json::json!({
            "volume": {
                "date_histogram": {"field": "timestamp", "fixed_interval": format!("{interval_ms}ms")},
                "aggs": {"severity": {"terms": {"field": "severity_text", "size": 50, "missing": ""}}}
            }
        });
        for day in self.days_between(q.start_unix_nano, q.end_unix_nano, scope)? {
            let query = self.full_query(
                &day,
                &q.query,
                q.trace_id.as_deref(),
                q.start_unix_nano,
                q.end_unix_nano,
            )?;
            let result = self.aggregate(&day, query.as_ref(), aggs.clone())?;
            let empty = Vec::new();
            let list = result["volume"]["buckets"].as_array().unwrap_or(&empty);
            for b in list {
                let key = b["key"].as_f64().unwrap_or(0.0) as i64;
                let count = b["doc_count"].as_u64().unwrap_or(0);
                if count == 0 {
                    continue;
                }
                let slot = buckets.entry(key).or_insert_with(|| HistogramBucket {
                    start_ms: key,
                    count: 0,
                    by_severity: BTreeMap::new(),
                });
                slot.count += count;
                for s in b["severity"]["buckets"].as_array().unwrap_or(&empty) {
                    let name = s["key"].as_str().unwrap_or_default().to_string();
                    *slot.by_severity.entry(name).or_default() += s["doc_count"].as_u64().unwrap_or(0);
                }
            }
        }
        Ok(buckets.into_values().collect())
    }

    /// The most frequent values of `field` (`service`, `severity_text`, `trace_id`,
    /// `attributes.<key>`, `resource.<key>`) among matching records, with their counts.
    pub fn top_values(&self, q: &LogQuery, field: &str, size: usize) -> Result<Vec<(String, u64)>, LogError> {
        self.top_values_in(q, field, size, Scope::All)
    }

    /// [`top_values`](Self::top_values) over the unpublished indexes only.
    pub fn top_values_unpublished(
        &self,
        q: &LogQuery,
        field: &str,
        size: usize,
    ) -> Result<Vec<(String, u64)>, LogError> {
        self.top_values_in(q, field, size, Scope::Unpublished)
    }

    fn top_values_in(
        &self,
        q: &LogQuery,
        field: &str,
        size: usize,
        scope: Scope,
    ) -> Result<Vec<(String, u64)>, LogError> {
        let allowed = ["service", "severity_text", "trace_id", "span_id", "scope"];
        if !allowed.contains(&field) && !field.starts_with("attributes.") && !field.starts_with("resource.") {
            return Err(LogError::BadRequest(format!(
                "field {field:?} has no values to count: use service, severity_text, trace_id, span_id, scope, attributes.<key> or resource.<key>"
            )));
        }
        let aggs = serde_json::json!({"top": {"terms": {"field": field, "size": size.clamp(1, 1000)}}});
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for day in self.days_between(q.start_unix_nano, q.end_unix_nano, scope)? {
            let query = self.full_query(
                &day,
                &q.query,
                q.trace_id.as_deref(),
                q.start_unix_nano,
                q.end_unix_nano,
            )?;
            let result = self.aggregate(&day, query.as_ref(), aggs.clone())?;
            let empty = Vec::new();
            for b in result["top"]["buckets"].as_array().unwrap_or(&empty) {
                let key = match &b["key"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                *counts.entry(key).or_default() += b["doc_count"].as_u64().unwrap_or(0);
            }
        }
        let mut list: Vec<(String, u64)> = counts.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(size.max(1));
        Ok(list)
    }

    /// Committed records matching `query` indexed after `after_seq`, oldest first, at most
    /// `limit`; returns them with the sequence number to continue from. The first call
    /// passes [`LogStore::tail_start`].
    pub fn tail(&self, query: &str, after_seq: u64, limit: usize) -> Result<(Vec<LogRecord>, u64), LogError> {
        let mut hits: Vec<(u64, LogRecord)> = Vec::new();
        let days: Vec<Arc<DayIndex>> = self.days.read().values().cloned().collect();
        for day in days {
            let seq = RangeQuery::new(
                Bound::Excluded(Term::from_field_u64(self.fields.seq, after_seq)),
                Bound::Included(Term::from_field_u64(self.fields.seq, u64::MAX)),
            );
            let q = BooleanQuery::new(vec![
                (Occur::Must, self.parse(&day, query)?),
                (Occur::Must, Box::new(seq)),
            ]);
            let searcher = day.reader.searcher();
            let top = TopDocs::with_limit(limit.max(1)).order_by_fast_field::<u64>("seq", Order::Asc);
            let found = searcher.search(&q, &top).map_err(|source| LogError::Tantivy {
                path: day.dir.clone(),
                source,
            })?;
            for (s, addr) in found {
                hits.push((s.unwrap_or(0), self.load(&searcher, &day, addr)?));
            }
        }
        hits.sort_by_key(|(s, _)| *s);
        hits.truncate(limit.max(1));
        let mut last = after_seq;
        let mut out = Vec::with_capacity(hits.len());
        for (s, r) in hits {
            last = last.max(s);
            out.push(r);
        }
        Ok((out, last))
    }

    /// The sequence number a new live tail starts after: it streams the records not yet
    /// committed when it starts and everything appended later.
    pub fn tail_start(&self) -> u64 {
        self.committed_seq
            .load(std::sync::atomic::Ordering::SeqCst)
            .saturating_sub(1)
    }
}
