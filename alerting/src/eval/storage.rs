//! Where rules read series from and write their output to: the live [`Db`], or an
//! in-memory store for tests.

use std::future::Future;
use std::pin::Pin;

use didban_store::promql::MemStorage;
use didban_store::{Db, LabelMatcher, Labels, Queryable, ReadError, SeriesSamples};
use parking_lot::RwLock;

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Storage the rule engine queries and appends to. Appends must be visible to queries as
/// soon as they return, so a later rule of a group sees an earlier rule's output.
pub trait RuleStorage: Send + Sync + 'static {
    /// The storage as something PromQL can query.
    fn queryable(&self) -> &dyn Queryable;
    /// Stores samples (rule output, `ALERTS`, stale markers). Samples the storage refuses
    /// individually (out of order, duplicates) are not an error; only a failed write is.
    fn append(&self, batch: Vec<SeriesSamples>) -> BoxFuture<'_, Result<(), String>>;
}

impl RuleStorage for Db {
    fn queryable(&self) -> &dyn Queryable {
        self
    }

    fn append(&self, batch: Vec<SeriesSamples>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let report = Db::append(self, batch).await.map_err(|e| e.to_string())?;
            if let Some(first) = &report.first_error {
                tracing::debug!(rejected = report.rejected_total(), first = %first, "rule output partly refused");
            }
            Ok(())
        })
    }
}

/// Counts log records, for log rules. The server implements it over the log store; without
/// one, log rules fail with a clear error and the other rules keep working.
pub trait LogSource: Send + Sync + 'static {
    /// Records matching `query` with timestamps in `[start_ms, end_ms]`.
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String>;
}

/// An in-memory [`RuleStorage`] for tests and `promqltest`-style rule tests.
#[derive(Debug, Default)]
pub struct MemRuleStorage {
    inner: RwLock<MemStorage>,
}

impl MemRuleStorage {
    /// Wraps existing series.
    pub fn new(storage: MemStorage) -> Self {
        MemRuleStorage {
            inner: RwLock::new(storage),
        }
    }

    /// Adds series (e.g. from promqltest `load` notation) after creation.
    pub fn with(&self, f: impl FnOnce(&mut MemStorage)) {
        f(&mut self.inner.write());
    }
}

impl Queryable for MemRuleStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        self.inner.read().select(matchers, start_ms, end_ms)
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, ReadError> {
        self.inner.read().series(matchers, start_ms, end_ms)
    }
}

impl RuleStorage for MemRuleStorage {
    fn queryable(&self) -> &dyn Queryable {
        self
    }

    fn append(&self, batch: Vec<SeriesSamples>) -> BoxFuture<'_, Result<(), String>> {
        let mut inner = self.inner.write();
        for s in batch {
            for sample in s.samples {
                inner.add(&s.labels, sample);
            }
        }
        Box::pin(async { Ok(()) })
    }
}

impl LogSource for didban_store::logs::LogStore {
    /// One histogram bucket spanning the window (at most two after alignment), summed.
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String> {
        let q = didban_store::logs::LogQuery {
            query: query.to_string(),
            trace_id: None,
            start_unix_nano: start_ms.saturating_mul(1_000_000),
            end_unix_nano: end_ms.saturating_mul(1_000_000).saturating_add(999_999),
            limit: 0,
            cursor: None,
        };
        let interval = end_ms.saturating_sub(start_ms).saturating_add(1).max(1);
        let buckets = self.histogram(&q, interval).map_err(|e| e.to_string())?;
        let mut n = 0u64;
        for b in buckets {
            n += b.count;
        }
        Ok(n)
    }
}

/// Log records in memory, for rule unit tests (`input_logs`). Matching approximates the log
/// store's query syntax: every word and every `"quoted phrase"` of the query must occur in
/// the record, ignoring case; `*` or an empty query matches everything.
#[derive(Debug, Default)]
pub struct MemLogSource {
    records: Vec<(i64, String)>,
}

impl MemLogSource {
    /// Records as `(timestamp ms, text)`.
    pub fn new(records: Vec<(i64, String)>) -> Self {
        MemLogSource { records }
    }
}

/// The words and quoted phrases of a query, lower-cased.
fn query_terms(query: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('"') {
            let (phrase, tail) = after.split_once('"').unwrap_or((after, ""));
            terms.push(phrase.to_lowercase());
            rest = tail.trim_start();
        } else {
            let end = rest.find([' ', '"']).unwrap_or(rest.len());
            let word = rest.get(..end).unwrap_or("");
            if word != "AND" && word != "*" && !word.is_empty() {
                terms.push(word.to_lowercase());
            }
            rest = rest.get(end..).unwrap_or("").trim_start();
        }
    }
    terms
}

impl LogSource for MemLogSource {
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String> {
        let terms = query_terms(query);
        let mut n = 0u64;
        for (t, text) in &self.records {
            if *t < start_ms || *t > end_ms {
                continue;
            }
            let lower = text.to_lowercase();
            if terms.iter().all(|term| lower.contains(term.as_str())) {
                n += 1;
            }
        }
        Ok(n)
    }
}
