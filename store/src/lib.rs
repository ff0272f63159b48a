//! Didban's storage engine.
//!
//! - [`model`]: labels, samples, matchers — the Prometheus data model.
//! - [`db`]: the metric database (WAL → head → Parquet blocks) that ingest appends to.
//! - [`query`]: the read trait every query engine uses.
//! - [`promql`]: the PromQL evaluator.
//! - [`logs`]: the log store (WAL → one Tantivy index per day).
//! - [`traces`]: the span store (WAL → span head → Parquet span blocks).

pub mod block;
pub mod db;
pub mod duration;
mod head;
pub mod logs;
pub mod model;
mod postings;
pub mod promql;
pub mod query;
pub mod traces;
mod wal;

pub use db::{
    AppendError, AppendReport, Db, DbOptions, DbStats, FsyncMode, OpenError, RejectReason, SeriesLimits,
};
pub use model::{Label, LabelMatcher, Labels, MatchOp, Sample, SeriesSamples};
pub use query::{Queryable, ReadError};
