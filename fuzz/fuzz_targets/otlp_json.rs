#![no_main]
//! Fuzz target `otlp_json`: see `didban_fuzz::otlp_json`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::otlp_json(data));
