//! The PromQL evaluator: Prometheus 3.x semantics (2.x on request) over any [`Queryable`].
//!
//! Parsing is done by the `promql-parser` crate; evaluation is ours. Every expression node is
//! evaluated once over the whole step grid of the query (an instant query is a grid of one
//! step), and every selector reads storage once for the whole grid. See `docs/promql.md` for
//! what is supported and how it differs from Prometheus.
//!
//! [`Queryable`]: crate::query::Queryable

#![warn(missing_docs)]

mod aggregate;
mod annotations;
mod binary;
mod budget;
mod compat;
mod control;
mod depth;
mod downsampled;
mod engine;
mod error;
mod functions;
mod limit;
mod limiter;
mod memstorage;
mod parse;
mod plan;
pub mod promqltest;
mod result;
mod selector;
mod selectors;
mod value;

pub use annotations::Annotations;
pub use budget::SampleBudget;
pub use compat::{PromqlCompat, UnknownCompat};
pub use control::QueryControl;
pub use depth::{check_depth, nesting_depth, DEFAULT_MAX_DEPTH};
pub use engine::{Engine, EngineOptions};
pub use error::PromqlError;
pub use limiter::{AdmitError, Lane, LimiterStats, Observer, Permit, QueryLimiter};
pub use memstorage::MemStorage;
pub use parse::parse_matchers;
pub use result::{InstantSample, QueryResult, QueryStats, Value};
pub use selectors::extract_selectors;
