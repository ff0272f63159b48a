//! The PromQL evaluator: Prometheus 2.x semantics over any [`Queryable`].
//!
//! Parsing is done by the `promql-parser` crate; evaluation is ours. Every expression node is
//! evaluated once over the whole step grid of the query (an instant query is a grid of one
//! step), and every selector reads storage once for the whole grid. See `docs/promql.md` for
//! what is supported and how it differs from Prometheus.
//!
//! [`Queryable`]: crate::query::Queryable

#![warn(missing_docs)]

mod aggregate;
mod binary;
mod engine;
mod error;
mod functions;
mod memstorage;
mod parse;
pub mod promqltest;
mod result;
mod selector;
mod value;

pub use engine::{Engine, EngineOptions};
pub use error::PromqlError;
pub use memstorage::MemStorage;
pub use parse::parse_matchers;
pub use result::{InstantSample, QueryResult, QueryStats, Value};
