//! Helpers shared by the integration tests: an OTLP receiver, real servers, log capture.
#![allow(dead_code)]

pub mod logs;
pub mod otlp;
pub mod servers;
