#![no_main]
//! Fuzz target `exposition`: see `didban_fuzz::exposition`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::exposition(data));
