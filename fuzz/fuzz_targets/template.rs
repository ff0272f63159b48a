#![no_main]
//! Fuzz target `template`: see `didban_fuzz::template`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::template(data));
