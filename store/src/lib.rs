//! Didban's storage engine.
//!
//! - [`model`]: labels, samples, matchers — the Prometheus data model.
//! - [`db`]: the metric database (WAL → head → Parquet blocks) that ingest appends to.
//! - [`query`]: the read trait every query engine uses.
//! - [`promql`]: the PromQL evaluator.

pub mod db;
pub mod model;
pub mod promql;
pub mod query;

pub use db::{AppendError, AppendReport, Db, DbOptions, DbStats, FsyncMode, RejectReason, SeriesLimits};
pub use model::{Label, LabelMatcher, Labels, MatchOp, Sample, SeriesSamples};
pub use query::{Queryable, ReadError};
