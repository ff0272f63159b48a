//! Native histograms, the Prometheus data type that stores a whole distribution in one sample:
//! a count, a sum, a zero bucket and sparse exponential buckets (schema −4…8), or buckets with
//! custom bounds (schema −53, "NHCB"). The model follows the Prometheus native histogram
//! specification; PromQL works on [`FloatHistogram`], the integer form ([`Histogram`], what
//! instrumented code and the wire formats produce) converts to it losslessly.
//!
//! Buckets are kept as Prometheus keeps them: spans of consecutive bucket indexes (the first
//! span's offset is the index of its first bucket, later offsets are the gap after the previous
//! span) and one absolute count per bucket. Operations go through [`buckets`] for bounds and
//! [`ops`] for arithmetic and counter-reset detection.

mod buckets;
mod ops;
#[cfg(test)]
mod tests;
mod types;

pub use buckets::{bucket_bound, coarser_index, Bucket, BucketSide};
pub use ops::HistogramOpError;
pub use types::{
    CounterResetHint, FloatHistogram, Histogram, HistogramError, Span, CUSTOM_BUCKETS_SCHEMA,
    MAX_EXPONENTIAL_SCHEMA, MIN_EXPONENTIAL_SCHEMA,
};
