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
