//! Helpers shared by the integration tests: an OTLP receiver and real servers.
#![allow(dead_code)]

pub mod otlp;
pub mod servers;
