#![no_main]
//! Fuzz target `promql`: see `didban_fuzz::promql`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::promql(data));
