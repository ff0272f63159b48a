#![no_main]
//! Fuzz target `log_record`: see `didban_fuzz::log_record`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::log_record(data));
