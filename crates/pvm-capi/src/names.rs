//! Names, version and errors: functions that need no VM.

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::OnceLock;

use pvm_core::isa::opcode_name;
use pvm_core::Spec;

use crate::create::spec_from_c;
use crate::handle::{clear_last_error, ffi, last_error_ptr};
use crate::PVM_SPEC_0_8_0;

const UNKNOWN: &CStr = c"unknown";

const REG_NAMES: [&CStr; 13] = [
    c"ra", c"sp", c"t0", c"t1", c"t2", c"s0", c"s1", c"a0", c"a1", c"a2", c"a3", c"a4", c"a5",
];

/// The ABI name of register `index` (`ra`, `sp`, `t0` … `a5`), or "unknown". Static string.
#[no_mangle]
pub extern "C" fn reg_name(index: c_int) -> *const c_char {
    usize::try_from(index)
        .ok()
        .and_then(|i| REG_NAMES.get(i))
        .unwrap_or(&UNKNOWN)
        .as_ptr()
}

/// Same as [`reg_name`] (prefixed alias).
#[no_mangle]
pub extern "C" fn pvm_reg_name(index: c_int) -> *const c_char {
    reg_name(index)
}

fn opcode_table(spec: Spec) -> &'static [CString] {
    static T080: OnceLock<Vec<CString>> = OnceLock::new();
    static T072: OnceLock<Vec<CString>> = OnceLock::new();
    let cell = match spec {
        Spec::Gp0_8_0 => &T080,
        Spec::Gp0_7_2 => &T072,
    };
    cell.get_or_init(|| {
        (0..=255u8)
            .map(|b| CString::new(opcode_name(b, spec).unwrap_or("unknown")).unwrap_or_default())
            .collect()
    })
}

/// The GP 0.8.0 name of an opcode byte (e.g. `add_64`), or "unknown". Static string.
#[no_mangle]
pub extern "C" fn get_opcode_name(opcode: u8) -> *const c_char {
    pvm_opcode_name(opcode, PVM_SPEC_0_8_0)
}

/// The name of an opcode byte under `spec`, or "unknown" (also for an unknown spec).
#[no_mangle]
pub extern "C" fn pvm_opcode_name(opcode: u8, spec: c_int) -> *const c_char {
    ffi(UNKNOWN.as_ptr(), || {
        let spec = spec_from_c(spec)?;
        Ok(opcode_table(spec)[opcode as usize].as_ptr())
    })
}

/// The library version, e.g. "0.1.0". Static string.
#[no_mangle]
pub extern "C" fn pvm_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr() as *const c_char
}

/// The calling thread's last error message, or NULL if none. Valid until the next failing call
/// (or `pvm_clear_error`) on this thread.
#[no_mangle]
pub extern "C" fn pvm_last_error() -> *const c_char {
    last_error_ptr()
}

/// Forgets the calling thread's last error message (`pvm_last_error` returns NULL afterwards).
#[no_mangle]
pub extern "C" fn pvm_clear_error() {
    clear_last_error()
}
