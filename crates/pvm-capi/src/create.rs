//! Creating and destroying VMs.

use std::ffi::c_int;

use pvm_core::{Backend, Blob, Instance, Program, ProgramOptions, Spec, NUM_REGISTERS};

use crate::handle::{ffi, free_handle, register, slice_in, unregister, with_vm, VmHandle};
use crate::{
    pvm_vm_t, PVM_BACKEND_AUTO, PVM_BACKEND_INTERPRETER, PVM_BACKEND_RECOMPILER, PVM_SPEC_0_7_2,
    PVM_SPEC_0_8_0,
};

pub(crate) fn spec_from_c(spec: c_int) -> Result<Spec, String> {
    match spec {
        PVM_SPEC_0_8_0 => Ok(Spec::Gp0_8_0),
        PVM_SPEC_0_7_2 => Ok(Spec::Gp0_7_2),
        other => Err(format!(
            "unknown spec {other} (expected PVM_SPEC_0_8_0 = 0 or PVM_SPEC_0_7_2 = 1)"
        )),
    }
}

pub(crate) fn backend_from_c(backend: c_int) -> Result<Backend, String> {
    match backend {
        PVM_BACKEND_AUTO => Ok(Backend::Auto),
        PVM_BACKEND_INTERPRETER => Ok(Backend::Interpreter),
        PVM_BACKEND_RECOMPILER => Ok(Backend::Recompiler),
        other => Err(format!(
            "unknown backend {other} (expected PVM_BACKEND_AUTO = 0, PVM_BACKEND_INTERPRETER = 1 \
             or PVM_BACKEND_RECOMPILER = 2)"
        )),
    }
}

/// The `PVM_BACKEND_*` constant of a resolved backend.
pub(crate) fn backend_to_c(backend: Backend) -> c_int {
    match backend {
        Backend::Auto => PVM_BACKEND_AUTO,
        Backend::Interpreter => PVM_BACKEND_INTERPRETER,
        Backend::Recompiler => PVM_BACKEND_RECOMPILER,
    }
}

fn options(spec: c_int, backend: c_int) -> Result<ProgramOptions, String> {
    Ok(ProgramOptions {
        spec: spec_from_c(spec)?,
        backend: backend_from_c(backend)?,
    })
}

pub(crate) fn gas_from_c(gas: u64) -> i64 {
    gas.min(i64::MAX as u64) as i64
}

fn new_vm(
    mut inst: Instance,
    gas: u64,
    service_index: u32,
    program_bytes: Vec<u8>,
    args: &[u8],
) -> *mut pvm_vm_t {
    inst.set_gas(gas_from_c(gas));
    // JIP-6 prelude: the arguments of a standard program are an initial write at their address.
    let args_write = match inst.program().standard_layout() {
        Some(l) if !args.is_empty() => Some((l.args_start(), args.to_vec())),
        _ => None,
    };
    register(VmHandle::new(
        inst,
        service_index,
        program_bytes,
        args_write,
    ))
}

/// The largest code length a blob may declare (as `Blob::parse` enforces).
const MAX_CODE_LEN: usize = u32::MAX as usize - 1;

/// `pvm_create` with a spec (extension `pvm_create_ex`).
///
/// # Safety
/// Each pointer must be NULL or valid for reads of its length in elements (`initial_regs`: 13).
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub unsafe extern "C" fn pvm_create_ex(
    service_index: u32,
    code: *const u8,
    code_len: usize,
    initial_regs: *const u64,
    bitmask: *const u8,
    bitmask_len: usize,
    jump_table: *const u32,
    jump_table_len: usize,
    initial_gas: u64,
    spec: c_int,
) -> *mut pvm_vm_t {
    ffi(std::ptr::null_mut(), || {
        let spec = spec_from_c(spec)?;
        if code.is_null() {
            return Err("code is NULL".into());
        }
        if bitmask.is_null() {
            return Err("bitmask is NULL".into());
        }
        if code_len > MAX_CODE_LEN {
            return Err(format!("code_len {code_len} is too large"));
        }
        // SAFETY: the caller guarantees each non-NULL pointer is valid for its length.
        let code = unsafe { slice_in(code, code_len, "code") }?;
        // SAFETY: as above.
        let bitmask = unsafe { slice_in(bitmask, bitmask_len, "bitmask") }?;
        // SAFETY: as above.
        let jump_table = unsafe { slice_in(jump_table, jump_table_len, "jump_table") }?;
        let regs = if initial_regs.is_null() {
            None
        } else {
            // SAFETY: the caller guarantees a non-NULL `initial_regs` points to 13 registers.
            Some(unsafe { slice_in(initial_regs, NUM_REGISTERS, "initial_regs") }?)
        };
        let blob = Blob::from_parts(code, bitmask, jump_table).map_err(|e| e.to_string())?;
        let bytes = blob.encode();
        let program =
            Program::from_blob(blob, ProgramOptions::new(spec)).map_err(|e| e.to_string())?;
        let mut inst = program.instantiate(&[]).map_err(|e| e.to_string())?;
        if let Some(regs) = regs {
            inst.registers_mut().copy_from_slice(regs);
        }
        Ok(new_vm(inst, initial_gas, service_index, bytes, &[]))
    })
}

/// Creates a VM from instruction bytes, bitmask and jump table (GP 0.8.0). See `pvm.h`.
///
/// # Safety
/// As [`pvm_create_ex`].
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub unsafe extern "C" fn pvm_create(
    service_index: u32,
    code: *const u8,
    code_len: usize,
    initial_regs: *const u64,
    bitmask: *const u8,
    bitmask_len: usize,
    jump_table: *const u32,
    jump_table_len: usize,
    initial_gas: u64,
) -> *mut pvm_vm_t {
    // SAFETY: same contract, forwarded.
    unsafe {
        pvm_create_ex(
            service_index,
            code,
            code_len,
            initial_regs,
            bitmask,
            bitmask_len,
            jump_table,
            jump_table_len,
            initial_gas,
            PVM_SPEC_0_8_0,
        )
    }
}

/// Creates a VM from a generic program blob `E(|j|) E1(z) E(|c|) j c k` (GP A.1).
///
/// # Safety
/// `bytes` must be NULL or valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_create_from_blob(
    bytes: *const u8,
    len: usize,
    spec: c_int,
    initial_gas: u64,
) -> *mut pvm_vm_t {
    // SAFETY: same contract, forwarded.
    unsafe { pvm_create_from_blob_ex(bytes, len, spec, initial_gas, PVM_BACKEND_AUTO) }
}

/// `pvm_create_from_blob` on a chosen backend (`PVM_BACKEND_*`).
///
/// # Safety
/// `bytes` must be NULL or valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_create_from_blob_ex(
    bytes: *const u8,
    len: usize,
    spec: c_int,
    initial_gas: u64,
    backend: c_int,
) -> *mut pvm_vm_t {
    ffi(std::ptr::null_mut(), || {
        let opts = options(spec, backend)?;
        if bytes.is_null() {
            return Err("blob is NULL".into());
        }
        // SAFETY: the caller guarantees validity for `len` bytes.
        let bytes = unsafe { slice_in(bytes, len, "blob") }?;
        let program = Program::from_code(bytes, opts).map_err(|e| e.to_string())?;
        let inst = program.instantiate(&[]).map_err(|e| e.to_string())?;
        Ok(new_vm(inst, initial_gas, 0, bytes.to_vec(), &[]))
    })
}

/// Creates a VM from a GP A.7 standard program (optionally preceded by the JAM service-blob
/// metadata `E(|m|) m`), laid out with argument data `args`.
///
/// # Safety
/// `bytes` and `args` must each be NULL or valid for reads of their length.
#[no_mangle]
pub unsafe extern "C" fn pvm_create_standard(
    bytes: *const u8,
    len: usize,
    has_metadata: c_int,
    args: *const u8,
    args_len: usize,
    spec: c_int,
    initial_gas: u64,
) -> *mut pvm_vm_t {
    // SAFETY: same contract, forwarded.
    unsafe {
        pvm_create_standard_ex(
            bytes,
            len,
            has_metadata,
            args,
            args_len,
            spec,
            initial_gas,
            PVM_BACKEND_AUTO,
        )
    }
}

/// `pvm_create_standard` on a chosen backend (`PVM_BACKEND_*`).
///
/// # Safety
/// `bytes` and `args` must each be NULL or valid for reads of their length.
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub unsafe extern "C" fn pvm_create_standard_ex(
    bytes: *const u8,
    len: usize,
    has_metadata: c_int,
    args: *const u8,
    args_len: usize,
    spec: c_int,
    initial_gas: u64,
    backend: c_int,
) -> *mut pvm_vm_t {
    ffi(std::ptr::null_mut(), || {
        let opts = options(spec, backend)?;
        if bytes.is_null() {
            return Err("program is NULL".into());
        }
        // SAFETY: the caller guarantees validity for `len` bytes.
        let bytes = unsafe { slice_in(bytes, len, "program") }?;
        // SAFETY: the caller guarantees validity for `args_len` bytes.
        let args = unsafe { slice_in(args, args_len, "args") }?;
        let program =
            Program::from_standard(bytes, has_metadata != 0, opts).map_err(|e| e.to_string())?;
        let inst = program.instantiate(args).map_err(|e| e.to_string())?;
        Ok(new_vm(inst, initial_gas, 0, bytes.to_vec(), args))
    })
}

/// Whether the recompiler backend can run on this machine: 1 or 0.
#[no_mangle]
pub extern "C" fn pvm_recompiler_supported() -> c_int {
    Backend::recompiler_supported() as c_int
}

/// The backend that runs `vm`'s program: `PVM_BACKEND_INTERPRETER` or `PVM_BACKEND_RECOMPILER`
/// (never AUTO), -1 on error.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_backend(vm: *mut pvm_vm_t) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| Ok(backend_to_c(h.inst()?.program().backend())))
    })
}

/// Copies the metadata m of a JAM service blob (`pvm_create_standard` with `has_metadata`) into
/// `buf` (at most `len` bytes; `buf` may be NULL to ask for the length) and returns its full
/// length; 0 without metadata or on error (see `pvm_last_error`).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function; `buf` must be NULL or
/// valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_metadata(vm: *mut pvm_vm_t, buf: *mut u8, len: usize) -> usize {
    ffi(0, || {
        with_vm(vm, |h| {
            let inst = h.inst()?;
            let Some(m) = inst.program().metadata() else {
                return Ok(0);
            };
            if !buf.is_null() {
                let n = m.len().min(len);
                // SAFETY: the caller guarantees `buf` is valid for `len` >= n bytes.
                let dst = unsafe { crate::handle::slice_out(buf, n, "buf") }?;
                dst.copy_from_slice(&m[..n]);
            }
            Ok(m.len())
        })
    })
}

/// Destroys a VM. NULL is ignored; a pointer that is not live (e.g. a second destroy) is reported
/// through `pvm_last_error` and otherwise ignored. Called from inside the VM's own host callback,
/// the VM is invalidated at once and freed when the run returns (which returns ERROR).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function (checked against the
/// registry; stale pointers are detected unless the address was reused by a newer VM).
#[no_mangle]
pub unsafe extern "C" fn pvm_destroy(vm: *mut pvm_vm_t) {
    ffi((), || {
        if vm.is_null() {
            return Ok(());
        }
        let running = with_vm(vm, |h| {
            let running = h.running.get();
            if running {
                h.destroy_pending.set(true);
            }
            Ok(running)
        })?;
        if !unregister(vm) {
            return Err("pvm_destroy: the VM was destroyed concurrently".into());
        }
        if !running {
            // SAFETY: `vm` was live (validated by `with_vm`) and has just been unregistered, so
            // this is the only free; it is not running, so no `&VmHandle` exists anywhere.
            unsafe { free_handle(vm) };
        }
        Ok(())
    })
}
