#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pvm_fuzz::run_step_clone(data));
