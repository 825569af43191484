//! Tracing: `pvm_hash`, `pvm_dump_state`, the trace sink and the traced (single-step) engine
//! used by the run loop when tracing is on. Line formats are pvm-core's
//! ([`pvm_core::trace::trace_line`]) and the CLI's (`ECALLI …`, `EXIT …`), so traces from the C
//! API, `pvm trace` and other implementations can be compared with `pvm trace-diff`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::io::Write;

use pvm_core::trace::{self, dump_state, dump_state_len, pvm_hash as core_hash, trace_line};
use pvm_core::{Exit, Instance};

use crate::handle::{ffi, pvm_trace_sink_t, slice_out, with_vm, VmHandle};
use crate::jip6::copy_out_whole;
use crate::pvm_vm_t;

/// Sends one line to the VM's sink (stderr if none). The instance must not be borrowed: the sink
/// is C code that may call the API on this VM. Fails if the sink destroyed the VM.
pub fn emit(h: &VmHandle, line: &str) -> Result<(), String> {
    match h.trace_sink.get() {
        None => {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        Some(sink) => {
            // Trace lines are built from numbers and instruction names: never a NUL inside.
            let c = CString::new(line).map_err(|e| e.to_string())?;
            // SAFETY: `sink` was installed with `pvm_set_trace_sink`, whose contract is that it
            // may be called with (user, line) on this thread; `c` outlives the call. No borrow of
            // the instance is alive (see the callers), so re-entrant API calls are sound.
            crate::panic::outside(|| unsafe { sink(h.trace_user.get(), c.as_ptr()) });
            if h.destroy_pending.get() {
                return Err(
                    "the VM was destroyed inside its own trace sink; it is freed now".into(),
                );
            }
        }
    }
    Ok(())
}

fn name_at(inst: &Instance, pc: u32) -> &'static str {
    inst.program()
        .instruction_at(pc)
        .opcode
        .map(|o| o.name())
        .unwrap_or("invalid")
}

fn hash_due(h: &VmHandle, step: u64) -> bool {
    let every = h.trace_hash_interval.get();
    every > 0 && step.is_multiple_of(every)
}

/// Executes instructions one at a time, emitting a trace line for each one that does not end the
/// run (as `pvm trace` does): until an exit, or one instruction if `single`.
pub fn traced_run(h: &VmHandle, single: bool) -> Result<Option<Exit>, String> {
    loop {
        let (line, exit) = {
            let mut inst = h.inst_mut()?;
            let pc = inst.next_pc();
            let name = name_at(&inst, pc);
            let exit = inst.step();
            let step = h.trace_step.get() + 1;
            h.trace_step.set(step);
            let line = matches!(exit, None | Some(Exit::HostCall(_))).then(|| {
                let hash = hash_due(h, step).then(|| core_hash(&inst));
                trace_line(step, pc, name, inst.gas(), hash.as_ref(), inst.registers())
            });
            (line, exit)
        };
        if let Some(line) = line {
            emit(h, &line)?;
        }
        if exit.is_some() || single {
            return Ok(exit);
        }
    }
}

/// The line after a host call that continues: `ECALLI id g=gas [pvmHash=0x…]`.
pub fn ecalli_line(h: &VmHandle, id: u32) -> Result<(), String> {
    let line = {
        let inst = h.inst()?;
        let hash = (h.trace_hash_interval.get() > 0).then(|| core_hash(&inst));
        trace::ecalli_line(id, inst.gas(), hash.as_ref())
    };
    emit(h, &line)
}

/// The line when a traced run returns: `EXIT halt|panic|oog|fault=0x…|host=id pc= g= pvmHash=
/// steps=`.
pub fn exit_line(h: &VmHandle, exit: Exit) -> Result<(), String> {
    let line = {
        let inst = h.inst()?;
        trace::exit_line(
            exit,
            inst.pc(),
            inst.gas(),
            &core_hash(&inst),
            h.trace_step.get(),
        )
    };
    emit(h, &line)
}

/// Installs the trace sink (NULL: trace lines go to stderr). `user` is passed back unchanged.
///
/// # Safety
/// `vm` as for every function; `sink` must be NULL or safe to call as `sink(user, line)` on the
/// thread that runs the VM.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_trace_sink(
    vm: *mut pvm_vm_t,
    sink: pvm_trace_sink_t,
    user: *mut c_void,
) {
    ffi((), || {
        with_vm(vm, |h| {
            h.trace_sink.set(sink);
            h.trace_user.set(user);
            Ok(())
        })
    })
}

/// Includes `pvmHash=0x…` in every `n`-th trace line (0: never, the default).
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_trace_hash_interval(vm: *mut pvm_vm_t, n: u64) {
    ffi((), || {
        with_vm(vm, |h| {
            h.trace_hash_interval.set(n);
            Ok(())
        })
    })
}

/// Writes the PVM hash v1 (blake2b-256 of registers, gas and the readable non-zero pages) of the
/// current state into `out[32]`. 0 on success, -1 on error.
///
/// # Safety
/// `out` must be NULL or valid for writes of 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_hash(vm: *mut pvm_vm_t, out: *mut u8) -> c_int {
    ffi(-1, || {
        with_vm(vm, |h| {
            if out.is_null() {
                return Err("out is NULL".into());
            }
            // SAFETY: the caller guarantees `out` holds 32 bytes.
            let out = unsafe { slice_out(out, 32, "out") }?;
            out.copy_from_slice(&core_hash(&**h.inst()?));
            Ok(0)
        })
    })
}

/// Writes the state dump (the hash preimage as text) with a NUL into `buf` if it fits and returns
/// its length excluding the NUL (if it does not fit, `buf` gets an empty string). 0 on error.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_dump_state(vm: *mut pvm_vm_t, buf: *mut c_char, len: usize) -> usize {
    ffi(0, || {
        with_vm(vm, |h| {
            let inst = h.inst()?;
            let inst: &Instance = &inst;
            // The length query and a too-small buffer compute the length without the text.
            let n = dump_state_len(inst);
            if buf.is_null() || len == 0 || n >= len {
                if !buf.is_null() && len > 0 {
                    // SAFETY: the caller guarantees `buf` is valid for `len` >= 1 bytes.
                    unsafe { slice_out(buf as *mut u8, 1, "buf") }?[0] = 0;
                }
                return Ok(n);
            }
            let text = dump_state(inst);
            // SAFETY: forwarded caller guarantee on `buf`.
            unsafe { copy_out_whole(&text, buf, len) }
        })
    })
}
