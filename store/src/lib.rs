//! Didban's storage engine.
//!
//! - [`model`]: labels, samples, matchers — the Prometheus data model.
//! - [`db`]: the metric database (WAL → head → Parquet blocks) that ingest appends to.
//! - [`query`]: the read trait every query engine uses.
//! - [`promql`]: the PromQL evaluator.

pub mod block;
pub mod db;
pub mod duration;
mod head;
pub mod model;
mod postings;
pub mod promql;
pub mod query;
mod wal;

pub use db::{
    AppendError, AppendReport, Db, DbOptions, DbStats, FsyncMode, OpenError, RejectReason, SeriesLimits,
};
pub use model::{Label, LabelMatcher, Labels, MatchOp, Sample, SeriesSamples};
pub use query::{Queryable, ReadError};
