//! The collector's receivers and APIs in-process over real sockets and real stores. One test
//! binary for the crate.
#![allow(clippy::unwrap_used)]

mod fuzz_regressions;
mod ingest_otlp_grpc;
mod ingest_otlp_http;
mod ingest_python_client;
mod ingest_remote_write;
mod ingest_server;
mod ingest_support;
