#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pvm_fuzz::trace_diff(data));
