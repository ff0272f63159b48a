//! OTLP spans → stored spans, and the metrics derived from them.
//!
//! - [`map`]: spans with their resource and scope, ids checked;
//! - [`span_metrics`]: RED metrics (calls, errors, duration) per service and operation;
//! - [`faas`]: serverless invocations, cold starts and estimated cost.

pub mod faas;
pub mod map;
pub mod span_metrics;
