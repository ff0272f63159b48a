#![no_main]
//! Fuzz target `rule_file`: see `didban_fuzz::rule_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::rule_file(data));
