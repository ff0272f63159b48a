//! OTLP log records → stored log records.

pub mod map;
