//! OTLP metrics → Prometheus series: the mapping rules and what they need.
//!
//! - [`map`]: the mapping of a decoded request (gauges, sums, histograms, summaries), with
//!   [`names`] (metric and label names, unit suffixes), [`buckets`] (bucket math),
//!   [`histograms`] (histogram-shaped points), [`delta`] (delta → cumulative);
//! - [`wire`]: the borrowing protobuf decoder fused with the mapping (the hot path);
//! - [`label_cache`]: series labels kept across requests;
//! - [`validate`]: per-series label rules and limits (shared with remote_write).

pub mod buckets;
pub mod delta;
mod histograms;
mod label_cache;
pub mod map;
pub mod names;
#[cfg(test)]
mod tests;
pub mod validate;
pub mod wire;
