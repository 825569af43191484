#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pvm_fuzz::polkavm_diff::polkavm_diff(data));
