#![no_main]
//! Fuzz target `statsd`: see `didban_fuzz::statsd`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| didban_fuzz::statsd(data));
