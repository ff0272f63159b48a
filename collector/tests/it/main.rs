//! The collector's receivers and APIs in-process over real sockets and real stores. One test
//! binary for the crate.
#![allow(clippy::unwrap_used)]

mod agent_delivery;
mod exemplars;
mod faults;
mod fuzz_regressions;
mod grpc_status;
mod histogram_figures;
mod ingest_otlp_grpc;
mod ingest_otlp_http;
mod ingest_python_client;
mod ingest_remote_write;
mod ingest_server;
mod ingest_support;
mod native_histograms;
mod object_storage;
mod origin;
mod overload;
mod prom_status;
mod query_limits;
mod query_semantics;
mod real_server;
mod span_latency;
mod span_metrics_figures;
mod time_sanity;
mod tls;
mod ui_native;
