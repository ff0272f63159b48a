#![no_main]
//! Fuzz target `otlp_traces_protobuf`: see `didban_fuzz::otlp_traces_protobuf`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::otlp_traces_protobuf(data));
