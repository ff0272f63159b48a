//! Helpers shared by the integration tests: an OTLP receiver, the agent's helper scripts, log
//! capture (the servers themselves come from `didban_testkit`).
#![allow(dead_code)]

pub mod celery;
pub mod logs;
pub mod otlp;
pub mod scripts;
