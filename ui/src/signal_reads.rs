//! What the trace and log pages read through: the process's own stores on one node, or
//! on a querier the bucket plus every live ingester's unpublished spans and records (the
//! collector's `cluster::trace_read` and `cluster::log_read` implement these traits); and
//! the home page's figures, of this process or of the whole cluster (`cluster::figures`).

use std::collections::BTreeMap;
use std::sync::Arc;

use didban_store::logs::{HistogramBucket, LogError, LogPage, LogQuery, LogStore};
use didban_store::traces::{Dependency, Operation, Span, TraceQuery, TraceStore};
use didban_store::Db;
use didban_store::{ExemplarStore, LabelMatcher, SeriesExemplars};

/// Why a read failed, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailure {
    /// The request's fault (a query that does not parse): 400, not 500.
    pub bad_request: bool,
    /// What went wrong, naming the failing part (an ingester, a file).
    pub message: String,
    /// Something the cluster could not answer right now (an ingester that did not
    /// answer): 503.
    pub unavailable: bool,
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ReadFailure {
    /// A failure of the process's own stores or files (500).
    pub fn internal(message: impl Into<String>) -> ReadFailure {
        ReadFailure {
            bad_request: false,
            message: message.into(),
            unavailable: false,
        }
    }
}

impl From<LogError> for ReadFailure {
    fn from(e: LogError) -> ReadFailure {
        let bad_request = matches!(e, LogError::Query { .. } | LogError::BadRequest(_));
        ReadFailure {
            bad_request,
            message: e.to_string(),
            unavailable: false,
        }
    }
}

/// The trace reads of the pages (blocking: call from a blocking thread).
pub trait TraceReads: Send + Sync {
    /// Every span of a trace, sorted by start, each once.
    fn trace(&self, trace_id: &str) -> Result<Vec<Span>, ReadFailure>;
    /// Traces with a span matching `q`, newest first, at most `q.limit`, whole.
    fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Vec<Span>>, ReadFailure>;
    /// Services with their operations.
    fn services(&self) -> Result<BTreeMap<String, Vec<Operation>>, ReadFailure>;
    /// Calls between services over the spans started in `[start, end]` (nanoseconds).
    fn dependencies(&self, start: i64, end: i64) -> Result<Vec<Dependency>, ReadFailure>;
}

/// The log reads of the pages (blocking: call from a blocking thread).
pub trait LogReads: Send + Sync {
    /// Records matching `q`, newest first, one page at a time.
    fn search(&self, q: &LogQuery) -> Result<LogPage, ReadFailure>;
    /// Record counts per `interval_ms` bucket by severity.
    fn histogram(&self, q: &LogQuery, interval_ms: i64) -> Result<Vec<HistogramBucket>, ReadFailure>;
    /// The `size` most frequent values of `field`.
    fn top_values(&self, q: &LogQuery, field: &str, size: usize) -> Result<Vec<(String, u64)>, ReadFailure>;
}

impl TraceReads for TraceStore {
    fn trace(&self, trace_id: &str) -> Result<Vec<Span>, ReadFailure> {
        TraceStore::trace(self, trace_id).map_err(|e| ReadFailure::internal(e.to_string()))
    }

    fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Vec<Span>>, ReadFailure> {
        TraceStore::find_traces(self, q).map_err(|e| ReadFailure::internal(e.to_string()))
    }

    fn services(&self) -> Result<BTreeMap<String, Vec<Operation>>, ReadFailure> {
        Ok(TraceStore::services(self))
    }

    fn dependencies(&self, start: i64, end: i64) -> Result<Vec<Dependency>, ReadFailure> {
        TraceStore::dependencies(self, start, end).map_err(|e| ReadFailure::internal(e.to_string()))
    }
}

impl LogReads for LogStore {
    fn search(&self, q: &LogQuery) -> Result<LogPage, ReadFailure> {
        Ok(LogStore::search(self, q)?)
    }

    fn histogram(&self, q: &LogQuery, interval_ms: i64) -> Result<Vec<HistogramBucket>, ReadFailure> {
        Ok(LogStore::histogram(self, q, interval_ms)?)
    }

    fn top_values(&self, q: &LogQuery, field: &str, size: usize) -> Result<Vec<(String, u64)>, ReadFailure> {
        Ok(LogStore::top_values(self, q, field, size)?)
    }
}

/// What the home page shows: totals over everything this process reads (on a querier,
/// every live ingester's heads and the published blocks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Series in the metric heads (on a querier summed over the ingesters, so a series
    /// two ingesters received counts twice).
    pub active_series: u64,
    /// Spans stored: in the span heads and in the span blocks.
    pub spans: u64,
    /// Searchable log records of the day indexes not sealed yet.
    pub log_records: u64,
    /// Sealed log day indexes (in the bucket): their records are searchable but not
    /// counted in `log_records` (counting them would mean opening each).
    pub sealed_log_days: u64,
    /// On a querier: how the ingesters answered; `None` for a process on its own.
    pub ingesters: Option<Asked>,
}

/// How the ingesters answered a querier's ask for their figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked {
    /// Ingesters whose figures are in the totals.
    pub answered: u64,
    /// The ingesters that did not answer, each as `ingester <id> at <address>: <why>`:
    /// their figures are missing from the totals.
    pub silent: Vec<String>,
}

/// The home page's figures (blocking: call from a blocking thread; must stay cheap — a
/// small ask per ingester at most, never a query).
pub trait FigureReads: Send + Sync {
    /// The figures now.
    fn figures(&self) -> Figures;
}

/// The figures of this process's own stores.
#[derive(Clone)]
pub struct LocalFigures {
    /// Metric database.
    pub db: Arc<Db>,
    /// Span store.
    pub traces: Arc<TraceStore>,
    /// Log store.
    pub logs: Arc<LogStore>,
}

impl FigureReads for LocalFigures {
    fn figures(&self) -> Figures {
        let traces = self.traces.stats();
        let logs = self.logs.stats();
        Figures {
            active_series: self.db.stats().head_series,
            spans: traces.head_spans + traces.block_spans,
            log_records: logs.committed_records,
            sealed_log_days: logs.sealed_days,
            ingesters: None,
        }
    }
}

/// The HTTP status a page answers a failed read with: 400 for the request's fault, 503
/// when part of the cluster did not answer, else 500.
pub fn failure_status(e: &ReadFailure) -> axum::http::StatusCode {
    if e.bad_request {
        axum::http::StatusCode::BAD_REQUEST
    } else if e.unavailable {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// The exemplar reads of the charts (blocking: call from a blocking thread): this process's
/// exemplar store, or on a querier every live ingester's too (an exemplar is stored only by
/// the ingester that received its sample).
pub trait ExemplarReads: Send + Sync {
    /// The exemplars of the series matching any of `sets` in `[start_ms, end_ms]`: one entry
    /// per series, sorted by labels, each exemplar once, oldest first.
    fn select(
        &self,
        sets: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>, ReadFailure>;
}

impl ExemplarReads for ExemplarStore {
    fn select(
        &self,
        sets: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>, ReadFailure> {
        Ok(ExemplarStore::select(self, sets, start_ms, end_ms))
    }
}
