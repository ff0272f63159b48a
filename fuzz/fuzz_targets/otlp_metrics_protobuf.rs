#![no_main]
//! Fuzz target `otlp_metrics_protobuf`: see `didban_fuzz::otlp_metrics_protobuf`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::otlp_metrics_protobuf(data));
