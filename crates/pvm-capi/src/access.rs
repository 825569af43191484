//! State access: registers, gas, pc, flags, memory and the various getters. None of these run
//! the VM, so all of them may be called from inside a host callback.

use std::ffi::c_int;

use pvm_core::{Access, MemoryError, NUM_REGISTERS};

use crate::create::gas_from_c;
use crate::handle::{ffi, set_last_error, slice_in, slice_out, with_vm, VmHandle, STATE_READY};
use crate::jip6;
use crate::{
    pvm_host_callback_t, pvm_vm_t, PVM_ACCESS_NONE, PVM_ACCESS_READ, PVM_ACCESS_WRITE,
    PVM_MEM_ERROR, PVM_MEM_OK, PVM_MEM_OOB, PVM_OOB, PVM_SPEC_0_7_2, PVM_SPEC_0_8_0,
};

// ---- callback and flags ----

/// Installs (or, with NULL, removes) the host callback.
///
/// # Safety
/// `vm` as for every function; `cb` must be NULL or a function safe to call as
/// `cb(vm, func_id)` on the thread that runs the VM.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_host_callback(vm: *mut pvm_vm_t, cb: pvm_host_callback_t) {
    ffi((), || {
        with_vm(vm, |h| {
            h.callback.set(cb);
            Ok(())
        })
    })
}

/// Enables (non-zero) or disables one stderr line per exit and host call.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_logging(vm: *mut pvm_vm_t, enabled: c_int) {
    ffi((), || {
        with_vm(vm, |h| {
            h.logging.set(enabled != 0);
            Ok(())
        })
    })
}

/// Enables (non-zero) or disables tracing: runs then execute one instruction at a time and send
/// one trace line per instruction to the trace sink. Enabling restarts the step numbering.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_tracing(vm: *mut pvm_vm_t, enabled: c_int) {
    ffi((), || {
        with_vm(vm, |h| {
            if enabled != 0 && !h.tracing.get() {
                h.trace_step.set(0);
            }
            h.tracing.set(enabled != 0);
            Ok(())
        })
    })
}

/// The tracing flag (0/1).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_tracing(vm: *mut pvm_vm_t) -> c_int {
    ffi(0, || with_vm(vm, |h| Ok(h.tracing.get() as c_int)))
}

/// The stored logging flag (0/1).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_logging(vm: *mut pvm_vm_t) -> c_int {
    ffi(0, || with_vm(vm, |h| Ok(h.logging.get() as c_int)))
}

// ---- status ----

/// Remaining gas (0 if negative).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_gas(vm: *mut pvm_vm_t) -> u64 {
    ffi(0, || with_vm(vm, |h| Ok(h.inst()?.gas().max(0) as u64)))
}

/// Sets the remaining gas (values above 2^63 − 1 saturate).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_gas(vm: *mut pvm_vm_t, gas: u64) {
    ffi((), || {
        with_vm(vm, |h| {
            h.inst_mut()?.set_gas(gas_from_c(gas));
            jip6::record(h, |r| r.record_set_gas());
            Ok(())
        })
    })
}

/// The machine state of the last exit (`PVM_HALT` … `PVM_OOG`; `PVM_READY` = 5 if new, stepped
/// or repositioned).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_machine_state(vm: *mut pvm_vm_t) -> u8 {
    ffi(STATE_READY, || with_vm(vm, |h| Ok(h.state.get())))
}

/// The `pvm_result_t` of the last execute/resume/step that ran (-1 before the first).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_result_code(vm: *mut pvm_vm_t) -> c_int {
    ffi(-1, || with_vm(vm, |h| Ok(h.result.get())))
}

/// 1 if the last run ended in halt, panic or out-of-gas, else 0.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_is_terminated(vm: *mut pvm_vm_t) -> c_int {
    ffi(0, || {
        with_vm(vm, |h| {
            Ok(matches!(
                h.state.get(),
                crate::PVM_HALT | crate::PVM_PANIC | crate::PVM_OOG
            ) as c_int)
        })
    })
}

/// The instruction counter: after a host call, the `ecalli`'s pc; after a fault, the faulting
/// instruction's; after out-of-gas, the block's first instruction.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_pc(vm: *mut pvm_vm_t) -> u32 {
    ffi(0, || with_vm(vm, |h| Ok(h.inst()?.pc())))
}

/// Sets the pc, cancels a pending "continue after the host call", clears the gas-charged flag
/// (the block at `pc` will be charged) and sets the machine state to `PVM_READY`.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_pc(vm: *mut pvm_vm_t, pc: u32) {
    ffi((), || {
        with_vm(vm, |h| {
            let mut inst = h.inst_mut()?;
            inst.set_pc(pc);
            inst.set_gas_charged(false);
            h.state.set(STATE_READY);
            Ok(())
        })
    })
}

/// The gas-charged flag χ (GP 0.8.0 A.4): 1 if the current block has been paid for.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_gas_charged(vm: *mut pvm_vm_t) -> c_int {
    ffi(0, || with_vm(vm, |h| Ok(h.inst()?.gas_charged() as c_int)))
}

/// Sets χ.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_gas_charged(vm: *mut pvm_vm_t, charged: c_int) {
    ffi((), || {
        with_vm(vm, |h| {
            h.inst_mut()?.set_gas_charged(charged != 0);
            Ok(())
        })
    })
}

/// The number of instructions executed since creation (or the last
/// `pvm_set_instruction_count`); see `Instance::instruction_count` (0 on error).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_instruction_count(vm: *mut pvm_vm_t) -> u64 {
    ffi(0, || with_vm(vm, |h| Ok(h.inst()?.instruction_count())))
}

/// Sets the executed-instruction count.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_instruction_count(vm: *mut pvm_vm_t, count: u64) {
    ffi((), || {
        with_vm(vm, |h| {
            h.inst_mut()?.set_instruction_count(count);
            Ok(())
        })
    })
}

/// Page address of the last page fault.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_fault_address(vm: *mut pvm_vm_t) -> u32 {
    ffi(0, || with_vm(vm, |h| Ok(h.fault_address.get())))
}

/// Id (the `ecalli` immediate) of the last host call reached.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_host_call_id(vm: *mut pvm_vm_t) -> u32 {
    ffi(0, || with_vm(vm, |h| Ok(h.host_call_id.get())))
}

/// The spec of the VM's program (`PVM_SPEC_0_8_0` / `PVM_SPEC_0_7_2`; -1 on error).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_spec(vm: *mut pvm_vm_t) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            Ok(match h.spec()? {
                pvm_core::Spec::Gp0_8_0 => PVM_SPEC_0_8_0,
                pvm_core::Spec::Gp0_7_2 => PVM_SPEC_0_7_2,
            })
        })
    })
}

/// `service_index` given to `pvm_create` (0 for the other constructors).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_service_index(vm: *mut pvm_vm_t) -> u32 {
    ffi(0, || with_vm(vm, |h| Ok(h.service_index)))
}

/// `is_child` of the last `pvm_execute` (0/1).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_is_child(vm: *mut pvm_vm_t) -> c_int {
    ffi(0, || with_vm(vm, |h| Ok(h.is_child.get() as c_int)))
}

// ---- registers ----

fn reg_index(index: c_int) -> Result<usize, String> {
    usize::try_from(index)
        .ok()
        .filter(|i| *i < NUM_REGISTERS)
        .ok_or_else(|| format!("register index {index} is out of range (0..12)"))
}

/// Sets register `index` (0..12); out-of-range indices are ignored (error in `pvm_last_error`).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_register(vm: *mut pvm_vm_t, index: c_int, value: u64) {
    ffi((), || {
        with_vm(vm, |h| {
            let i = reg_index(index)?;
            h.inst_mut()?.registers_mut()[i] = value;
            jip6::record(h, |r| r.record_set_reg(i));
            Ok(())
        })
    })
}

/// Register `index` (0..12); 0 for an out-of-range index (error in `pvm_last_error`).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_register(vm: *mut pvm_vm_t, index: c_int) -> u64 {
    ffi(0, || {
        with_vm(vm, |h| {
            let i = reg_index(index)?;
            Ok(h.inst()?.registers()[i])
        })
    })
}

/// Pointer to the VM's 13 registers (read-only view; NULL on error). The address is fixed for
/// the VM's lifetime and reflects `pvm_set_register`; values are updated by runs. Valid until the
/// VM is destroyed; documented as valid until the next call that runs the VM.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_registers(vm: *mut pvm_vm_t) -> *const u64 {
    ffi(std::ptr::null(), || {
        with_vm(vm, |h| {
            // The array lives inside the boxed Instance, which never moves.
            Ok(h.inst_mut()?.registers_mut().as_mut_ptr() as *const u64)
        })
    })
}

/// Copies all 13 registers into `out` (extension; `out` must hold 13 values). 0 or -1.
///
/// # Safety
/// `out` must be NULL or valid for writes of 13 `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_registers_copy(vm: *mut pvm_vm_t, out: *mut u64) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            if out.is_null() {
                return Err("out is NULL".into());
            }
            // SAFETY: the caller guarantees `out` holds 13 values.
            let out = unsafe { slice_out(out, NUM_REGISTERS, "out") }?;
            out.copy_from_slice(h.inst()?.registers());
            Ok(0)
        })
    })
}

/// Sets the heap end used by GP 0.7.2 `sbrk`.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_heap_pointer(vm: *mut pvm_vm_t, addr: u32) {
    ffi((), || {
        with_vm(vm, |h| {
            h.inst_mut()?.set_heap_top(addr);
            Ok(())
        })
    })
}

/// The heap end used by GP 0.7.2 `sbrk` (extension).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_heap_pointer(vm: *mut pvm_vm_t) -> u32 {
    ffi(0, || with_vm(vm, |h| Ok(h.inst()?.heap_top())))
}

// ---- memory: page access ----

fn access_from_c(access: c_int) -> Result<Access, String> {
    match access {
        PVM_ACCESS_NONE => Ok(Access::None),
        PVM_ACCESS_READ => Ok(Access::Read),
        PVM_ACCESS_WRITE => Ok(Access::Write),
        other => Err(format!(
            "unknown access {other} (expected PVM_ACCESS_NONE, _READ or _WRITE)"
        )),
    }
}

/// The range rule of every C function that takes an address range: `[addr, addr + len)` must end
/// at or below 2^32 (GP memory addresses are 32-bit). A range past 2^32 is an argument error, as
/// in the Node API, and is never wrapped around to address 0. (Only the guest's own loads and
/// stores are defined modulo 2^32 by the GP, and those never cross 2^32 into accessible memory.)
pub(crate) fn check_range(what: &str, addr: u32, len: u64) -> Result<(), String> {
    match (addr as u64).checked_add(len) {
        Some(end) if end <= 1 << 32 => Ok(()),
        _ => Err(format!(
            "{what}: range at {addr:#x} of length {len} runs past the end of the 32-bit address \
             space (2^32)"
        )),
    }
}

fn map(h: &VmHandle, addr: u64, len: u64, access: Access) -> Result<(), String> {
    h.inst_mut()?
        .memory_mut()
        .map_range(addr, len, access)
        .map_err(|e| e.to_string())
}

/// Maps (or re-protects) the pages covering [addr, addr + len) with `access`; contents of pages
/// that already have storage are kept, new pages are zero. 0 on success, -1 on error.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_map_pages(
    vm: *mut pvm_vm_t,
    addr: u32,
    len: u64,
    access: c_int,
) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            check_range("pvm_map_pages", addr, len)?;
            map(h, addr as u64, len, access_from_c(access)?)?;
            Ok(0)
        })
    })
}

/// Removes the pages covering [addr, addr + len) and frees their storage. 0 or -1.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_unmap_pages(vm: *mut pvm_vm_t, addr: u32, len: u64) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            check_range("pvm_unmap_pages", addr, len)?;
            let mut inst = h.inst_mut()?;
            let mem = inst.memory_mut();
            // Memory::unmap takes a 32-bit length: split a full 2^32 range (addr 0) in two.
            let first = len.min(u32::MAX as u64);
            mem.unmap(addr, first as u32).map_err(|e| e.to_string())?;
            if len > first {
                mem.unmap(addr + first as u32, (len - first) as u32)
                    .map_err(|e| e.to_string())?;
            }
            Ok(0)
        })
    })
}

/// Limits the guest memory of `vm`: at most `pages` 4 KiB pages with storage of their own
/// (`UINT64_MAX`: no limit, the default). See `pvm_core::Memory::set_page_limit`: a guest store
/// that would need storage beyond the limit ends the run with `PVM_RESULT_FAULT` at that page
/// (resumable: raise the limit and `pvm_resume` re-executes the store), host writes fail. Clears
/// `pvm_memory_limit_reached`. 0, or -1 for an invalid handle.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_memory_limit(vm: *mut pvm_vm_t, pages: u64) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            let limit = (pages != u64::MAX).then_some(pages);
            h.inst_mut()?.memory_mut().set_page_limit(limit);
            Ok(0)
        })
    })
}

/// The limit of `pvm_set_memory_limit` in pages (`UINT64_MAX`: none, also for an invalid handle).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_memory_limit(vm: *mut pvm_vm_t) -> u64 {
    ffi(u64::MAX, || {
        with_vm(vm, |h| {
            Ok(h.inst()?.memory().page_limit().unwrap_or(u64::MAX))
        })
    })
}

/// 1 if a write was refused because of the memory limit since it was last set (a
/// `PVM_RESULT_FAULT` is then the limit's, not a GP page fault), 0 if not, -1 on error.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_memory_limit_reached(vm: *mut pvm_vm_t) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| Ok(h.inst()?.memory().page_limit_reached() as c_int))
    })
}

/// The access of the page holding `addr` (`PVM_ACCESS_*`; -1 on error).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_page_access(vm: *mut pvm_vm_t, addr: u32) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            Ok(match h.inst()?.memory().access(addr) {
                Access::None => PVM_ACCESS_NONE,
                Access::Read => PVM_ACCESS_READ,
                Access::Write => PVM_ACCESS_WRITE,
            })
        })
    })
}

/// Maps the proposal's four regions: rw, output and stack writable, ro read-only. Ends are
/// exclusive; empty ranges (end <= start) are skipped; ranges are mapped in the order ro, rw,
/// output, stack (page-granular; on a shared page the later one wins). Errors (e.g. a range below
/// 0x10000) skip that range and are reported through `pvm_last_error`.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub unsafe extern "C" fn pvm_set_memory_bounds(
    vm: *mut pvm_vm_t,
    rw_addr: u32,
    rw_end: u32,
    ro_addr: u32,
    ro_end: u32,
    output_addr: u32,
    output_end: u32,
    stack_addr: u32,
    stack_end: u32,
) {
    ffi((), || {
        with_vm(vm, |h| {
            let mut errors = Vec::new();
            for (name, start, end, access) in [
                ("ro", ro_addr, ro_end, Access::Read),
                ("rw", rw_addr, rw_end, Access::Write),
                ("output", output_addr, output_end, Access::Write),
                ("stack", stack_addr, stack_end, Access::Write),
            ] {
                if end <= start {
                    continue;
                }
                if let Err(e) = map(h, start as u64, (end - start) as u64, access) {
                    errors.push(format!("{name} range [{start:#x}, {end:#x}): {e}"));
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(format!("pvm_set_memory_bounds: {}", errors.join("; ")))
            }
        })
    })
}

// ---- memory: reads and writes ----

fn mem_err(e: MemoryError) -> String {
    e.to_string()
}

/// Checks that a host access of `len` bytes at `addr` lies inside the 32-bit address space
/// ([`check_range`]): a range past 2^32 is an argument error (`PVM_MEM_ERROR` for the reads; the
/// writes return `PVM_OOB` for every failure), never wrapped around to address 0.
fn check_access_len(addr: u32, len: usize) -> Result<(), String> {
    check_range("memory access", addr, len as u64)
}

enum MemFail {
    /// Inaccessible memory (OOB).
    Oob(String),
    /// Invalid handle or arguments (the message is already recorded).
    Invalid,
}

fn write_checked(vm: *mut pvm_vm_t, addr: u32, data: &[u8], unchecked: bool) -> u64 {
    ffi(PVM_OOB, || {
        with_vm(vm, |h| {
            check_access_len(addr, data.len())?;
            let mut inst = h.inst_mut()?;
            let mem = inst.memory_mut();
            let r = if unchecked {
                mem.write_unchecked(addr, data)
            } else {
                mem.write(addr, data)
            };
            r.map_err(mem_err)?;
            if !unchecked {
                jip6::record(h, |r| r.record_write(addr, data));
            }
            Ok(0)
        })
    })
}

fn read_into(vm: *mut pvm_vm_t, addr: u32, buf: &mut [u8], unchecked: bool) -> Result<(), MemFail> {
    let mut fail = None;
    let ok = ffi(false, || {
        with_vm(vm, |h| {
            check_access_len(addr, buf.len())?;
            let inst = h.inst()?;
            let r = if unchecked {
                inst.memory().read_unchecked(addr, buf)
            } else {
                inst.memory().read(addr, buf)
            };
            match r {
                Err(e) => fail = Some(MemFail::Oob(mem_err(e))),
                Ok(()) if !unchecked => jip6::record(h, |r| r.record_read(addr, buf)),
                Ok(()) => {}
            }
            Ok(true)
        })
    });
    match fail {
        Some(f) => Err(f),
        None if ok => Ok(()),
        // `ffi` has already recorded the message.
        None => Err(MemFail::Invalid),
    }
}

/// Stores a code in `*error_code` if the pointer is not NULL.
///
/// # Safety
/// `error_code` must be NULL or valid for a write of one `int`.
unsafe fn set_code(error_code: *mut c_int, code: c_int) {
    if !error_code.is_null() && error_code.is_aligned() {
        // SAFETY: non-NULL and aligned; the caller guarantees it is writable.
        unsafe { error_code.write(code) };
    }
}

/// # Safety
/// `error_code` must be NULL or valid for a write of one `int`.
unsafe fn read_n<const N: usize>(vm: *mut pvm_vm_t, addr: u32, error_code: *mut c_int) -> [u8; N] {
    let mut buf = [0u8; N];
    let code = match read_into(vm, addr, &mut buf, false) {
        Ok(()) => PVM_MEM_OK,
        Err(MemFail::Oob(msg)) => {
            set_last_error(msg);
            buf = [0; N];
            PVM_MEM_OOB
        }
        Err(MemFail::Invalid) => {
            buf = [0; N];
            PVM_MEM_ERROR
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { set_code(error_code, code) };
    buf
}

macro_rules! typed_access {
    ($read:ident, $write:ident, $t:ty, $n:literal) => {
        /// Reads a little-endian value as the guest would (must be readable). On failure returns 0
        /// and sets `*error_code` (if not NULL) to `PVM_MEM_OOB` or `PVM_MEM_ERROR`; on success 0.
        ///
        /// # Safety
        /// `vm` as for every function; `error_code` must be NULL or writable.
        #[no_mangle]
        pub unsafe extern "C" fn $read(vm: *mut pvm_vm_t, addr: u32, error_code: *mut c_int) -> $t {
            // SAFETY: forwarded caller guarantee on `error_code`.
            <$t>::from_le_bytes(unsafe { read_n::<$n>(vm, addr, error_code) })
        }

        /// Writes a little-endian value as the guest would (must be writable): 0 or `PVM_OOB`.
        ///
        /// # Safety
        /// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
        #[no_mangle]
        pub unsafe extern "C" fn $write(vm: *mut pvm_vm_t, addr: u32, value: $t) -> u64 {
            write_checked(vm, addr, &value.to_le_bytes(), false)
        }
    };
}

typed_access!(pvm_read_ram_bytes_8, pvm_write_ram_bytes_8, u8, 1);
typed_access!(pvm_read_ram_bytes_16, pvm_write_ram_bytes_16, u16, 2);
typed_access!(pvm_read_ram_bytes_32, pvm_write_ram_bytes_32, u32, 4);
typed_access!(pvm_read_ram_bytes_64, pvm_write_ram_bytes_64, u64, 8);

/// # Safety
/// `out` valid for `len` bytes (or NULL with len 0); `error_code` NULL or writable.
unsafe fn read_bytes_impl(
    vm: *mut pvm_vm_t,
    addr: u32,
    out: *mut u8,
    len: usize,
    error_code: *mut c_int,
    unchecked: bool,
) -> u64 {
    // SAFETY: the caller guarantees `out` is valid for `len` bytes.
    let buf = match unsafe { slice_out(out, len, "out") } {
        Ok(b) => b,
        Err(e) => {
            set_last_error(e);
            // SAFETY: forwarded caller guarantee.
            unsafe { set_code(error_code, PVM_MEM_ERROR) };
            return PVM_OOB;
        }
    };
    let (code, r) = match read_into(vm, addr, buf, unchecked) {
        Ok(()) => (PVM_MEM_OK, 0),
        Err(MemFail::Oob(msg)) => {
            set_last_error(msg);
            (PVM_MEM_OOB, PVM_OOB)
        }
        Err(MemFail::Invalid) => (PVM_MEM_ERROR, PVM_OOB),
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { set_code(error_code, code) };
    r
}

/// Reads `len` bytes as the guest would (all must be readable) into `out`. Returns 0 or
/// `PVM_OOB` (then `out` is unspecified) and sets `*error_code` like the typed reads.
///
/// # Safety
/// `out` must be valid for writes of `len` bytes (may be NULL if `len` is 0); `error_code` must be
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pvm_read_ram_bytes(
    vm: *mut pvm_vm_t,
    addr: u32,
    out: *mut u8,
    len: usize,
    error_code: *mut c_int,
) -> u64 {
    // SAFETY: forwarded caller guarantees.
    unsafe { read_bytes_impl(vm, addr, out, len, error_code, false) }
}

/// Writes `len` bytes as the guest would (all must be writable): 0 or `PVM_OOB` (then nothing is
/// written).
///
/// # Safety
/// `data` must be valid for reads of `len` bytes (may be NULL if `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn pvm_write_ram_bytes(
    vm: *mut pvm_vm_t,
    addr: u32,
    data: *const u8,
    len: usize,
) -> u64 {
    // SAFETY: the caller guarantees `data` is valid for `len` bytes.
    match unsafe { slice_in(data, len, "data") } {
        Ok(d) => write_checked(vm, addr, d, false),
        Err(e) => {
            set_last_error(e);
            PVM_OOB
        }
    }
}

/// Reads ignoring access protection (every byte must lie in a page with storage): 0 or `PVM_OOB`.
///
/// # Safety
/// As [`pvm_read_ram_bytes`].
#[no_mangle]
pub unsafe extern "C" fn pvm_read_ram_unchecked(
    vm: *mut pvm_vm_t,
    addr: u32,
    out: *mut u8,
    len: usize,
) -> u64 {
    // SAFETY: forwarded caller guarantees.
    unsafe { read_bytes_impl(vm, addr, out, len, std::ptr::null_mut(), true) }
}

/// Writes ignoring write protection, for initialising memory (every byte must lie in a page with
/// storage, e.g. mapped read-only): 0 or `PVM_OOB`.
///
/// # Safety
/// As [`pvm_write_ram_bytes`].
#[no_mangle]
pub unsafe extern "C" fn pvm_write_ram_unchecked(
    vm: *mut pvm_vm_t,
    addr: u32,
    data: *const u8,
    len: usize,
) -> u64 {
    // SAFETY: the caller guarantees `data` is valid for `len` bytes.
    match unsafe { slice_in(data, len, "data") } {
        Ok(d) => write_checked(vm, addr, d, true),
        Err(e) => {
            set_last_error(e);
            PVM_OOB
        }
    }
}

// ---- program information ----

/// GP Ψ_M's output after a halt: μ[φ7 .. φ7+φ8] if readable, else empty. Copies up to `cap`
/// bytes into `out` and returns the full length (0 if the VM has not halted).
///
/// # Safety
/// `out` must be valid for writes of `cap` bytes (may be NULL if `cap` is 0).
#[no_mangle]
pub unsafe extern "C" fn pvm_output(vm: *mut pvm_vm_t, out: *mut u8, cap: usize) -> usize {
    ffi(0, || {
        with_vm(vm, |h| {
            if h.state.get() != crate::PVM_HALT {
                return Ok(0);
            }
            // The length query (cap 0) and a short buffer cost nothing in proportion to the
            // output: only the bytes copied are read.
            let inst = h.inst()?;
            let len = inst.output_len().unwrap_or(0);
            let n = len.min(cap as u64) as usize;
            // SAFETY: the caller guarantees `out` is valid for `cap` >= n bytes.
            let dst = unsafe { slice_out(out, n, "out") }?;
            inst.output_into(dst);
            Ok(len as usize)
        })
    })
}

/// The gas cost of each basic block (GP 0.8.0 A.9; GP 0.7.2: instruction count), sorted by pc.
/// Fills up to `cap` entries of `pcs` and `costs` (either may be NULL) and returns the total count.
///
/// # Safety
/// `pcs` and `costs` must each be NULL or valid for writes of `cap` values.
#[no_mangle]
pub unsafe extern "C" fn pvm_block_gas_costs(
    vm: *mut pvm_vm_t,
    pcs: *mut u32,
    costs: *mut u32,
    cap: usize,
) -> usize {
    ffi(0, || {
        with_vm(vm, |h| {
            let inst = h.inst()?;
            let blocks = inst.program().block_gas_costs();
            let n = blocks.len().min(cap);
            if !pcs.is_null() {
                // SAFETY: the caller guarantees `pcs` holds `cap` >= n values.
                let pcs = unsafe { slice_out(pcs, n, "pcs") }?;
                for (d, b) in pcs.iter_mut().zip(&blocks) {
                    *d = b.pc;
                }
            }
            if !costs.is_null() {
                // SAFETY: the caller guarantees `costs` holds `cap` >= n values.
                let costs = unsafe { slice_out(costs, n, "costs") }?;
                for (d, b) in costs.iter_mut().zip(&blocks) {
                    *d = b.cost;
                }
            }
            Ok(blocks.len())
        })
    })
}
