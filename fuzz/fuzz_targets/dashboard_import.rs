#![no_main]
//! Fuzz target `dashboard_import`: see `didban_fuzz::dashboard_import`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::dashboard_import(data));
