//! Running: `pvm_execute`, `pvm_resume`, `pvm_step` and the host-callback loop.
//!
//! The loop never holds a borrow of the instance while the callback runs: each engine call
//! (`Instance::run` / `Instance::step`) happens inside a short `RefCell` borrow that ends before
//! the callback is invoked, and the handle itself is only ever used as `&VmHandle`. A callback may
//! therefore call any API function through the same `pvm_vm_t*`; running the same VM again is
//! refused with `PVM_RESULT_ERROR` (the `running` flag), and `pvm_destroy` is deferred.

use std::ffi::c_int;
use std::io::Write;

use pvm_core::Exit;

use crate::handle::{ffi, free_handle, with_vm, VmHandle, STATE_READY};
use crate::{builtin, jip6, trace};
use crate::{
    pvm_result_t, pvm_vm_t, PVM_FAULT, PVM_HALT, PVM_HOST, PVM_HOST_CONTINUE, PVM_HOST_ERROR,
    PVM_HOST_OOG, PVM_HOST_TERMINATE, PVM_OOG, PVM_PANIC, PVM_RESULT_ERROR, PVM_RESULT_FAULT,
    PVM_RESULT_HOST_CALL, PVM_RESULT_INTERRUPTED, PVM_RESULT_OK, PVM_RESULT_OOG, PVM_RESULT_PANIC,
    PVM_RESULT_STEPPED,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Step,
}

/// Sets `running` for the duration of a run and clears it even if the run unwinds.
struct RunningGuard<'a>(&'a VmHandle);

impl<'a> RunningGuard<'a> {
    fn enter(h: &'a VmHandle) -> Result<Self, String> {
        if h.running.get() {
            return Err(
                "the VM is already running: pvm_execute/pvm_resume/pvm_step cannot be \
                        called on a VM from inside its own host callback"
                    .into(),
            );
        }
        h.running.set(true);
        Ok(RunningGuard(h))
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.set(false);
    }
}

fn log(h: &VmHandle, msg: std::fmt::Arguments<'_>) {
    if h.logging.get() {
        let _ = writeln!(
            std::io::stderr(),
            "[libpvm {:p}] {msg}",
            h as *const VmHandle
        );
    }
}

fn finish(h: &VmHandle, result: pvm_result_t, state: u8) -> pvm_result_t {
    h.result.set(result);
    h.state.set(state);
    if h.logging.get() {
        let (pc, gas) = h
            .inst()
            .map(|i| (i.pc(), i.gas()))
            .unwrap_or((u32::MAX, -1));
        log(
            h,
            format_args!(
                "exit {} at pc {pc}, gas {gas}",
                match state {
                    PVM_HALT => "halt",
                    PVM_PANIC => "panic",
                    PVM_FAULT => "fault",
                    PVM_HOST => "host",
                    PVM_OOG => "oog",
                    _ => "stepped",
                }
            ),
        );
    }
    result
}

/// Cancels the "continue after the ecalli" of a host-call exit: the pc stays at the `ecalli` and
/// the gas-charged flag is kept, so a later resume re-executes the host call.
fn stay_at_ecalli(h: &VmHandle) -> Result<(), String> {
    let mut inst = h.inst_mut()?;
    let pc = inst.pc();
    let charged = inst.gas_charged();
    inst.set_pc(pc);
    inst.set_gas_charged(charged);
    Ok(())
}

/// Ends a run with `exit` (not a completed step): the trace's `EXIT` line, the JIP-6
/// termination (final exits only), then the result and state.
fn conclude(
    h: &VmHandle,
    exit: Exit,
    result: pvm_result_t,
    state: u8,
) -> Result<pvm_result_t, String> {
    if !matches!(exit, Exit::HostCall(_)) {
        jip6::on_exit(h, exit)?;
    }
    if h.tracing.get() {
        trace::exit_line(h, exit)?;
    }
    Ok(finish(h, result, state))
}

/// Clears `in_callback` even if the callback unwinds (it cannot unwind through `extern "C"`,
/// but the flag must never stay set).
struct CallbackGuard<'a>(&'a VmHandle);

impl Drop for CallbackGuard<'_> {
    fn drop(&mut self) {
        self.0.in_callback.set(false);
    }
}

/// The run loop shared by execute, resume and step. `vm` is the pointer handed to the callback.
///
/// With tracing off each engine call is `Instance::run` (or `step` for `pvm_step`); with tracing
/// on the loop steps one instruction at a time and emits trace lines.
fn drive(h: &VmHandle, vm: *mut pvm_vm_t, mode: Mode) -> Result<pvm_result_t, String> {
    let _running = RunningGuard::enter(h)?;
    jip6::on_run_start(h)?;
    let tracing = h.tracing.get();
    loop {
        let exit = if tracing {
            trace::traced_run(h, mode == Mode::Step)?
        } else {
            // The only borrow of the instance during a run; it ends with this block.
            let mut inst = h.inst_mut()?;
            match mode {
                Mode::Run => Some(inst.run()),
                Mode::Step => inst.step(),
            }
        };
        let Some(exit) = exit else {
            return Ok(finish(h, PVM_RESULT_STEPPED, STATE_READY));
        };
        let id = match exit {
            Exit::Halt => return conclude(h, exit, PVM_RESULT_OK, PVM_HALT),
            Exit::Panic => return conclude(h, exit, PVM_RESULT_PANIC, PVM_PANIC),
            Exit::OutOfGas => return conclude(h, exit, PVM_RESULT_OOG, PVM_OOG),
            Exit::PageFault(addr) => {
                h.fault_address.set(addr);
                return conclude(h, exit, PVM_RESULT_FAULT, PVM_FAULT);
            }
            Exit::HostCall(id) => id,
            Exit::Interrupted => return Ok(finish(h, PVM_RESULT_INTERRUPTED, STATE_READY)),
        };
        h.host_call_id.set(id);
        // While the host call is handled the VM is "inside a host call": state HOST, pc at the
        // ecalli.
        h.state.set(PVM_HOST);
        h.builtin_done.set(false);
        jip6::open_call(h, id)?;
        let builtin = if h.builtin_host_calls.get() && !h.is_child.get() {
            builtin::perform(h, id)?
        } else {
            None
        };
        let answer = match builtin {
            Some(outcome) => {
                log(h, format_args!("host call {id} (built in)"));
                match builtin::code_of(outcome)? {
                    builtin::PVM_BUILTIN_CONTINUE => PVM_HOST_CONTINUE,
                    builtin::PVM_BUILTIN_OOG => PVM_HOST_OOG,
                    _ => PVM_HOST_ERROR,
                }
            }
            None => {
                let Some(callback) = h.callback.get() else {
                    // The host call stays open (JIP-6) until the VM runs again.
                    return conclude(h, exit, PVM_RESULT_HOST_CALL, PVM_HOST);
                };
                log(h, format_args!("host call {id}"));
                h.in_callback.set(true);
                let guard = CallbackGuard(h);
                // SAFETY: `callback` is a C function pointer installed with
                // `pvm_set_host_callback`, whose contract is that it may be called with
                // (vm, func_id) on this thread. No borrow of the instance is alive here (engine
                // calls borrow it only inside their own blocks), and `h` is a shared reference
                // whose state is only changed through Cell/RefCell, so the callback's re-entrant
                // API calls through `vm` cannot alias a live `&mut`. `pvm_destroy` inside the
                // callback only sets `destroy_pending` (the handle is not freed while `running`).
                let answer = crate::panic::outside(|| unsafe { callback(vm, id as c_int) });
                drop(guard);
                if h.destroy_pending.get() {
                    return Err(
                        "the VM was destroyed inside its own host callback; it is freed now".into(),
                    );
                }
                answer
            }
        };
        match answer {
            PVM_HOST_CONTINUE => {
                jip6::close_call(h)?;
                if tracing {
                    trace::ecalli_line(h, id)?;
                }
                if mode == Mode::Step {
                    // Complete the step: move to the instruction after the ecalli now.
                    let mut inst = h.inst_mut()?;
                    let next = inst.next_pc();
                    let charged = inst.gas_charged();
                    inst.set_pc(next);
                    inst.set_gas_charged(charged);
                    drop(inst);
                    return Ok(finish(h, PVM_RESULT_STEPPED, STATE_READY));
                }
            }
            // The host call stays open (JIP-6) until the VM runs again.
            PVM_HOST_TERMINATE => return conclude(h, exit, PVM_RESULT_HOST_CALL, PVM_HOST),
            PVM_HOST_OOG => {
                stay_at_ecalli(h)?;
                return conclude(h, Exit::OutOfGas, PVM_RESULT_OOG, PVM_OOG);
            }
            other => {
                if other != PVM_HOST_ERROR {
                    crate::handle::set_last_error(format!(
                        "host callback returned {other}, which is not a pvm_host_result_t; \
                         treated as PVM_HOST_ERROR"
                    ));
                }
                stay_at_ecalli(h)?;
                return conclude(h, Exit::Panic, PVM_RESULT_PANIC, PVM_PANIC);
            }
        }
    }
}

/// Runs `f` (which may run the VM) and frees the handle afterwards if it was destroyed from
/// inside its own callback during that run.
fn run_entry(
    vm: *mut pvm_vm_t,
    f: impl FnOnce(&VmHandle) -> Result<pvm_result_t, String>,
) -> pvm_result_t {
    let mut free_now = false;
    let r = ffi(PVM_RESULT_ERROR, || {
        with_vm(vm, |h| {
            let r = f(h);
            // Only the run that owns `running` can see a pending destroy here: a refused nested
            // call never reaches this point with `destroy_pending` set before it was validated.
            free_now = h.destroy_pending.get() && !h.running.get();
            r
        })
    });
    if free_now {
        // SAFETY: `pvm_destroy` set `destroy_pending` and unregistered `vm` while this run was
        // active; the run has ended and `with_vm`'s reference is gone, so this is the single,
        // final use of the handle.
        unsafe { free_handle(vm) };
    }
    r
}

/// Runs from `entry_point` until halt, panic, out-of-gas, page fault or an unhandled host call.
/// If `entry_point` is the VM's current resume point and the VM has not halted or panicked, the
/// run continues without resetting anything (like `pvm_resume`); otherwise it starts at
/// `entry_point` with the gas-charged flag cleared.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function; the host callback, if
/// any, must be safe to call.
#[no_mangle]
pub unsafe extern "C" fn pvm_execute(
    vm: *mut pvm_vm_t,
    entry_point: u32,
    is_child: u32,
) -> pvm_result_t {
    run_entry(vm, |h| {
        if h.running.get() {
            return drive(h, vm, Mode::Run); // refused by the guard, state untouched
        }
        h.is_child.set(is_child != 0);
        let restart = {
            let mut inst = h.inst_mut()?;
            let terminated = matches!(h.state.get(), PVM_HALT | PVM_PANIC);
            let restart = terminated || inst.next_pc() != entry_point;
            if restart {
                inst.set_pc(entry_point);
                inst.set_gas_charged(false);
            }
            restart
        };
        if restart {
            // A new invocation: a new JIP-6 log and trace step numbers from 1.
            jip6::on_restart(h)?;
            h.trace_step.set(0);
        }
        drive(h, vm, Mode::Run)
    })
}

/// A new invocation of a standard program (`Instance::invoke`, GP A.7/A.8): sets r0 = the halt
/// address, r1 = the stack top, r7/r8 = the argument address and length (the other registers 0),
/// maps and writes `args` into the argument area, sets pc and gas, clears the gas-charged flag
/// and runs as `pvm_execute(vm, pc, 0)` does (host callback, built-ins, tracing, a new JIP-7 log).
///
/// # Safety
/// As [`pvm_execute`]; `args` must be NULL or valid for reads of `args_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_invoke(
    vm: *mut pvm_vm_t,
    pc: u32,
    args: *const u8,
    args_len: usize,
    gas: u64,
) -> pvm_result_t {
    run_entry(vm, |h| {
        if h.running.get() {
            return Err("pvm_invoke: the VM is running (called from its own host callback)".into());
        }
        // SAFETY: the caller guarantees validity for `args_len` bytes.
        let args = unsafe { crate::handle::slice_in(args, args_len, "args") }?;
        let start = {
            let mut inst = h.inst_mut()?;
            inst.prepare_invoke(pc, args, crate::create::gas_from_c(gas))
                .map_err(|e| format!("pvm_invoke: {e}"))?;
            inst.program().standard_layout().map(|l| l.args_start())
        };
        h.is_child.set(false);
        h.state.set(STATE_READY);
        // A new Ψ_M invocation starts with an empty refine context (no inner machines).
        if let Ok(mut inner) = h.inner.try_borrow_mut() {
            *inner = None;
        }
        *h.args_write.borrow_mut() = start
            .filter(|_| !args.is_empty())
            .map(|a| (a, args.to_vec()));
        jip6::on_invoke(h)?;
        h.trace_step.set(0);
        drive(h, vm, Mode::Run)
    })
}

/// Continues a VM stopped at a host call (after the `ecalli`), a page fault or out-of-gas (the
/// same instruction / block again), or positioned with `pvm_set_pc`, without resetting anything.
/// Refused (ERROR) after a halt or panic.
///
/// # Safety
/// As [`pvm_execute`].
#[no_mangle]
pub unsafe extern "C" fn pvm_resume(vm: *mut pvm_vm_t) -> pvm_result_t {
    run_entry(vm, |h| {
        if !h.running.get() && matches!(h.state.get(), PVM_HALT | PVM_PANIC) {
            return Err(
                "pvm_resume: the program has terminated (halt or panic); use \
                        pvm_execute or pvm_set_pc to start again"
                    .into(),
            );
        }
        drive(h, vm, Mode::Run)
    })
}

/// Executes one instruction (an `ecalli` includes its host callback). Returns
/// `PVM_RESULT_STEPPED` if the machine can continue, otherwise the exit like `pvm_execute`.
///
/// # Safety
/// As [`pvm_execute`].
#[no_mangle]
pub unsafe extern "C" fn pvm_step(vm: *mut pvm_vm_t) -> pvm_result_t {
    run_entry(vm, |h| {
        if !h.running.get() && matches!(h.state.get(), PVM_HALT | PVM_PANIC) {
            return Err("pvm_step: the program has terminated (halt or panic); use \
                        pvm_execute or pvm_set_pc to start again"
                .into());
        }
        drive(h, vm, Mode::Step)
    })
}

/// Asks a running VM to stop, from any thread: its run returns `PVM_RESULT_INTERRUPTED` at the
/// next basic-block boundary (or its next run does). 0 on success, -1 if `vm` is not a live VM.
///
/// # Safety
/// `vm` may be any pointer value: it is only compared against the registry of live VMs, and
/// dereferenced only if it is one.
#[no_mangle]
pub unsafe extern "C" fn pvm_interrupt(vm: *mut pvm_vm_t) -> c_int {
    ffi(-1, || {
        if crate::handle::interrupt(vm) {
            Ok(0)
        } else {
            Err(format!("{vm:p} is not a live pvm_vm_t"))
        }
    })
}
