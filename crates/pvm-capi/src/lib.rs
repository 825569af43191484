//! # libpvm C ABI
//!
//! `libpvm.so` / `libpvm.a` with the hand-maintained header `include/pvm.h`: the API of the
//! community proposal "PVM FFI-able library for JAM Implementers" plus `pvm_`-prefixed extensions,
//! on top of [`pvm_core`]. `docs/C-API.md` documents semantics, thread-safety and the differences
//! from the proposal; the header is the reference for each function.
//!
//! Every entry point:
//! - validates its `pvm_vm_t*` against a process-wide registry of live handles (NULL, destroyed
//!   and foreign pointers become errors, see [`handle::with_vm`]);
//! - catches Rust panics so none unwinds into C, without printing them ([`handle::ffi`],
//!   [`panic`]);
//! - reports failures through its return value plus a thread-local message (`pvm_last_error`).
//!
//! The Rust functions are usable directly from Rust too (the crate is also an rlib), with the same
//! contracts as in C.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod access;
pub mod builtin;
pub mod create;
pub mod handle;
pub mod jip7;
/// The earlier name of [`jip7`], for the other modules.
pub(crate) use jip7 as jip6;
pub mod names;
pub mod panic;
pub mod run;
pub mod trace;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backend;
#[cfg(test)]
mod tests_ext;
#[cfg(test)]
mod tests_interrupt;
#[cfg(test)]
mod tests_robust;

use std::ffi::c_int;

pub use access::*;
pub use builtin::*;
pub use create::*;
pub use handle::{pvm_host_callback_t, pvm_trace_sink_t, pvm_vm_t};
pub use jip7::{
    pvm_jip6_log, pvm_jip6_replay, pvm_jip7_log, pvm_jip7_replay, pvm_jip7_replay_ex,
    pvm_set_jip6_recording, pvm_set_jip7_recording,
};
pub use names::*;
pub use run::*;
pub use trace::*;

/// Number of registers (`REG_SIZE`).
pub const PVM_REG_SIZE: usize = 13;
/// Z_P: page size.
pub const PVM_Z_P: u32 = 1 << 12;
/// Z_A: dynamic jump alignment.
pub const PVM_Z_A: u32 = 2;
/// Z_Q (as given by the proposal): 2^16.
pub const PVM_Z_Q: u32 = 1 << 16;
/// Z_I: maximum argument size.
pub const PVM_Z_I: u32 = 1 << 24;
/// Z_Z: standard-program zone size.
pub const PVM_Z_Z: u32 = 1 << 16;

/// Host result code NONE (2^64 − 1), GP B.1.
pub const PVM_NONE: u64 = u64::MAX;
/// Host result code WHAT (2^64 − 2).
pub const PVM_WHAT: u64 = u64::MAX - 1;
/// Host result code OOB (2^64 − 3): also the failure value of the memory write functions.
pub const PVM_OOB: u64 = u64::MAX - 2;
/// Host result code WHO (2^64 − 4).
pub const PVM_WHO: u64 = u64::MAX - 3;
/// Host result code FULL (2^64 − 5).
pub const PVM_FULL: u64 = u64::MAX - 4;
/// Host result code CORE (2^64 − 6).
pub const PVM_CORE: u64 = u64::MAX - 5;
/// Host result code CASH (2^64 − 7).
pub const PVM_CASH: u64 = u64::MAX - 6;
/// Host result code LOW (2^64 − 8).
pub const PVM_LOW: u64 = u64::MAX - 7;
/// Host result code HUH (2^64 − 9).
pub const PVM_HUH: u64 = u64::MAX - 8;

/// Machine state: halted.
pub const PVM_HALT: u8 = 0;
/// Machine state: panicked.
pub const PVM_PANIC: u8 = 1;
/// Machine state: stopped at a page fault.
pub const PVM_FAULT: u8 = 2;
/// Machine state: stopped at a host call.
pub const PVM_HOST: u8 = 3;
/// Machine state: out of gas.
pub const PVM_OOG: u8 = 4;
/// Machine state (extension): not stopped at an exit (new, stepped, or pc set).
pub const PVM_READY: u8 = handle::STATE_READY;

/// `pvm_result_t` as the C ABI passes it.
#[allow(non_camel_case_types)]
pub type pvm_result_t = c_int;
/// The run halted.
pub const PVM_RESULT_OK: pvm_result_t = 0;
/// Out of gas.
pub const PVM_RESULT_OOG: pvm_result_t = 1;
/// Panic (trap, invalid jump, access below 2^16, host callback error).
pub const PVM_RESULT_PANIC: pvm_result_t = 2;
/// Stopped at a host call (no callback, or the callback returned TERMINATE).
pub const PVM_RESULT_HOST_CALL: pvm_result_t = 3;
/// API misuse or invalid input (see `pvm_last_error`); the VM state is unchanged.
pub const PVM_RESULT_ERROR: pvm_result_t = 4;
/// Page fault (address: `pvm_get_fault_address`).
pub const PVM_RESULT_FAULT: pvm_result_t = 5;
/// Extension, `pvm_step` only: one instruction executed, the machine can continue.
pub const PVM_RESULT_STEPPED: pvm_result_t = 6;
/// `pvm_interrupt` stopped the run at a block start (extension).
pub const PVM_RESULT_INTERRUPTED: pvm_result_t = 7;

/// `pvm_host_result_t` as the C ABI passes it.
#[allow(non_camel_case_types)]
pub type pvm_host_result_t = c_int;
/// Continue at the instruction after the `ecalli`.
pub const PVM_HOST_CONTINUE: pvm_host_result_t = 0;
/// Stop the run with `PVM_RESULT_HOST_CALL`, pc at the `ecalli` (resumable).
pub const PVM_HOST_TERMINATE: pvm_host_result_t = 1;
/// The host call failed: the run ends with `PVM_RESULT_PANIC`.
pub const PVM_HOST_ERROR: pvm_host_result_t = 2;
/// Extension: the host call ran out of gas: the run ends with `PVM_RESULT_OOG`.
pub const PVM_HOST_OOG: pvm_host_result_t = 3;

/// GP 0.8.0 rules (default).
pub const PVM_SPEC_0_8_0: c_int = 0;
/// GP 0.7.2 rules.
pub const PVM_SPEC_0_7_2: c_int = 1;

/// Backend: the recompiler where supported, else the interpreter; `LIBPVM_BACKEND` overrides it.
pub const PVM_BACKEND_AUTO: c_int = 0;
/// Backend: the pre-decoded interpreter (every platform).
pub const PVM_BACKEND_INTERPRETER: c_int = 1;
/// Backend: the x86-64 recompiler (an error where it is not supported).
pub const PVM_BACKEND_RECOMPILER: c_int = 2;

/// Page access: inaccessible (contents kept).
pub const PVM_ACCESS_NONE: c_int = 0;
/// Page access: read-only.
pub const PVM_ACCESS_READ: c_int = 1;
/// Page access: read-write.
pub const PVM_ACCESS_WRITE: c_int = 2;

/// `*error_code` of the read functions: success.
pub const PVM_MEM_OK: c_int = 0;
/// `*error_code`: the memory is not accessible (the host call should answer OOB).
pub const PVM_MEM_OOB: c_int = 1;
/// `*error_code`: invalid handle or arguments (see `pvm_last_error`).
pub const PVM_MEM_ERROR: c_int = 2;
