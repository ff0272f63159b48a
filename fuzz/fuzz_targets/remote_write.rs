#![no_main]
//! Fuzz target `remote_write`: see `didban_fuzz::remote_write`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::remote_write(data));
