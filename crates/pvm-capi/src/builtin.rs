//! The PVM-level host calls (`gas`, `grow_heap`, `machine`, `peek`, `poke`, `pages`, `invoke`,
//! `expunge`) performed by pvm-core's [`InnerPvms`], one per VM handle.
//!
//! `is_child` decides who may perform them: a VM run as a non-child (`pvm_execute(vm, pc, 0)`)
//! is a top-level (refine-style) invocation that owns a set of inner machines; a VM run as a
//! child (`is_child != 0`) is itself an inner PVM driven by its parent, and GP gives inner PVMs no
//! host calls of their own — every `ecalli` of an inner invocation returns HOST to the parent —
//! so for a child these calls are never performed: `pvm_handle_builtin_host_call` answers
//! `PVM_BUILTIN_NOT_HANDLED` and automatic handling is off.

use std::ffi::c_int;

use pvm_core::inner::InnerPvms;
use pvm_core::jip7::{state_of, CallRecorder};
use pvm_core::{HostCallContext, HostOutcome};

use crate::handle::{ffi, with_vm, VmHandle};
use crate::{jip6, pvm_vm_t};

/// The id is not a PVM-level host call of the VM's spec (or the VM is a child): handle it
/// yourself.
pub const PVM_BUILTIN_NOT_HANDLED: c_int = 0;
/// Performed; the callback should return `PVM_HOST_CONTINUE`.
pub const PVM_BUILTIN_CONTINUE: c_int = 1;
/// Performed and the host call panics (GP: e.g. an inaccessible argument area); the callback
/// should return `PVM_HOST_ERROR`.
pub const PVM_BUILTIN_PANIC: c_int = 2;
/// Performed and the host call ran out of gas; the callback should return `PVM_HOST_OOG`.
pub const PVM_BUILTIN_OOG: c_int = 3;
/// Not inside this VM's host callback, already performed, or an invalid handle.
pub const PVM_BUILTIN_ERROR: c_int = -1;

/// Performs PVM-level host call `id` on the VM (stopped at an `ecalli`, instance not borrowed)
/// with its `InnerPvms`, recording the effects if a JIP-6 host call is open. `None` if `id` is
/// not one of them.
pub fn perform(h: &VmHandle, id: u32) -> Result<Option<HostOutcome>, String> {
    let mut inst = h.inst_mut()?;
    let mut slot = h
        .inner
        .try_borrow_mut()
        .map_err(|_| "internal error: the inner PVMs are busy".to_string())?;
    let inner = slot.get_or_insert_with(|| InnerPvms::new(inst.program().spec()));
    if !jip6::is_recording_call(h) {
        return Ok(inner.handle(id, &mut HostCallContext::new(&mut inst)));
    }
    let before = state_of(&inst);
    let mut rec = CallRecorder::default();
    let outcome = inner.handle(id, &mut HostCallContext::with_recorder(&mut inst, &mut rec));
    if outcome.is_some() {
        jip6::record_entry(h, rec.finish(id, before, &inst));
    }
    Ok(outcome)
}

/// Maps an `InnerPvms` outcome to a `PVM_BUILTIN_*` code.
pub fn code_of(outcome: HostOutcome) -> Result<c_int, String> {
    match outcome {
        HostOutcome::Continue => Ok(PVM_BUILTIN_CONTINUE),
        HostOutcome::Panic => Ok(PVM_BUILTIN_PANIC),
        HostOutcome::OutOfGas => Ok(PVM_BUILTIN_OOG),
        HostOutcome::Halt => Err("internal error: a PVM-level host call halted".into()),
    }
}

/// Performs host call `id` if it is one of the PVM-level host calls of the VM's spec (GP 0.8.0:
/// 0 gas, 1 grow_heap, 9 machine … 14 expunge; GP 0.7.2: 0 gas, 8 machine … 13 expunge). Only
/// inside the VM's own host callback. Returns a `PVM_BUILTIN_*` code.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_handle_builtin_host_call(vm: *mut pvm_vm_t, id: c_int) -> c_int {
    ffi(PVM_BUILTIN_ERROR, || {
        with_vm(vm, |h| {
            if !h.in_callback.get() {
                return Err(
                    "pvm_handle_builtin_host_call: only allowed inside the VM's own host \
                     callback (the VM must be stopped at an ecalli inside pvm_execute, \
                     pvm_resume or pvm_step)"
                        .into(),
                );
            }
            if h.is_child.get() {
                return Ok(PVM_BUILTIN_NOT_HANDLED);
            }
            if h.builtin_done.get() {
                return Err(
                    "pvm_handle_builtin_host_call: this host call has already been \
                            performed"
                        .into(),
                );
            }
            match perform(h, id as u32)? {
                None => Ok(PVM_BUILTIN_NOT_HANDLED),
                Some(outcome) => {
                    h.builtin_done.set(true);
                    code_of(outcome)
                }
            }
        })
    })
}

/// Enables (non-zero) or disables automatic handling of the PVM-level host calls: when enabled
/// and the VM runs as a non-child, `pvm_execute`/`pvm_resume`/`pvm_step` perform them without
/// calling the host callback. Off by default.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_builtin_host_calls(vm: *mut pvm_vm_t, enabled: c_int) {
    ffi((), || {
        with_vm(vm, |h| {
            h.builtin_host_calls.set(enabled != 0);
            Ok(())
        })
    })
}

/// The automatic-handling flag (0/1).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_get_builtin_host_calls(vm: *mut pvm_vm_t) -> c_int {
    ffi(0, || {
        with_vm(vm, |h| Ok(h.builtin_host_calls.get() as c_int))
    })
}

/// The number of live inner machines of the VM (created by `machine`, removed by `expunge`);
/// -1 on error.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_inner_machine_count(vm: *mut pvm_vm_t) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            let slot = h
                .inner
                .try_borrow()
                .map_err(|_| "internal error: the inner PVMs are busy".to_string())?;
            Ok(slot.as_ref().map_or(0, |i| i.len()) as c_int)
        })
    })
}
