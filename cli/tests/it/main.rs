//! Tests of the real `didban` binary as a user runs it: serve, demo, rule tools, sign-in,
//! the browser, crashes and restarts. One test binary for the crate (each `tests/*.rs`
//! would link the whole stack again).
#![allow(clippy::unwrap_used)]

mod agent_logs;
mod alerting_cli;
mod alerting_e2e;
mod alerting_ha;
mod auth_support;
mod cluster_exemplars;
mod cluster_ingest_log;
mod cluster_roles;
mod cluster_spans_logs;
mod crash_writers;
mod demo;
mod diskfull;
mod fleet_targets;
mod host_metrics;
mod host_owner;
mod ingest_log;
mod kill9_loop;
mod lifecycle;
mod notify_receivers;
mod process;
mod prom_api;
mod prometheus_remote_write;
mod scenarios;
mod sign_in_burst;
mod tls;
mod traces_logs_crash;
mod traces_logs_ingest;
mod traces_logs_python;
mod ui_auth;
mod ui_browser;
