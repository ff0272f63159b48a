//! Didban's storage engine.
//!
//! - [`model`]: labels, samples, matchers — the Prometheus data model.
//! - [`metrics`]: the metric database (WAL → head → Parquet blocks) that ingest appends to.
//! - [`traces`]: the span store (WAL → span head → Parquet span blocks).
//! - [`logs`]: the log store (WAL → one Tantivy index per day).
//! - `storage`: what those three share — the WAL, the block-directory lifecycle,
//!   [`FsyncMode`] and the error types [`AppendError`], [`OpenError`], [`BlockError`]
//!   (re-exported here).
//! - [`query`]: the read trait every query engine uses.
//! - [`promql`]: the PromQL evaluator.
//! - [`cardinality`]: series counts per metric, label and label pair (`/api/v1/status/tsdb`).
//! - [`window`]: downsampled data — the per-window aggregates of a series and their folding.
//! - `cores`: how many threads one read or query may use.

pub mod cardinality;
mod cores;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod promql;
pub mod query;
mod storage;
pub mod traces;
pub mod window;

/// The metric modules under the paths they had before the `metrics/` folder, so
/// `didban_store::db::…` and `didban_store::block::…` keep working.
pub use metrics::{block, db};

pub use metrics::db::{AppendReport, Db, DbOptions, DbStats, RejectReason, SeriesHint, SeriesLimits};
pub use metrics::exemplars::{
    Exemplar, ExemplarOptions, ExemplarRefusal, ExemplarReport, ExemplarStats, ExemplarStore, SeriesExemplar,
    SeriesExemplars,
};
pub use model::{
    FloatHistogram, HistogramSample, Label, LabelMatcher, Labels, MatchOp, Sample, SeriesSamples,
};
pub use query::{merge_series, PlannedRead, Queryable, ReadError, ReadStats, WindowsRead};
pub use storage::{
    disk_space, AppendError, AppliedPositions, BlockError, BlockStorage, DiskSpace, FsyncMode, LogPosition,
    MetastoreConfig, ObjectCacheStats, OpenError, S3Config, WalFaultOp, WalHealth,
};
