#![no_main]
//! Fuzz target `otlp_logs_protobuf`: see `didban_fuzz::otlp_logs_protobuf`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::otlp_logs_protobuf(data));
