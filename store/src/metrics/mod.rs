//! The metric store: samples go to the WAL (`<data_dir>/wal/metrics`), into the in-memory
//! head, and are cut into immutable Parquet blocks (`<data_dir>/metrics/blocks`).
//!
//! - [`db`]: the [`Db`](db::Db) the server holds: append, read, maintain (cut, compact,
//!   retention), close.
//! - [`block`]: the metric block format: writing, reading, compaction.
//! - `chunk`: the compressed (XOR) chunks the head keeps samples in.
//! - [`exemplars`]: exemplars (trace pointers of samples) in a bounded buffer with its own
//!   log, apart from the samples.
//! - `head`: series and samples in memory, and the rules an append is checked against.
//! - `append`: the vocabulary of an append — [`SeriesLimits`](db::SeriesLimits),
//!   [`RejectReason`](db::RejectReason), [`AppendReport`](db::AppendReport).
//! - `record`: the metric WAL record (series definitions, samples by series ref).
//! - `histogram_codec`: the byte form of one native histogram (WAL and head chunks).
//! - `varint`: the varint and float primitives of those byte forms.
//! - `postings`: the label index the head and every block use to find series.

mod append;
pub mod block;
mod chunk;
pub mod db;
pub(crate) mod decimal;
pub mod exchange;
pub mod exemplars;
mod head;
mod histogram_codec;
mod postings;
mod record;
mod varint;
