//! JIP-7 ("PVM Ecalli Trace") host-call recording through the C accessors, the log text and
//! replay. The `pvm_*jip7*` functions are the API; the `pvm_*jip6*` ones are their earlier names,
//! kept as aliases for one release.
//!
//! While recording is on, every host call the VM stops at opens a [`pvm_core::jip7::OpenCall`]. What the host
//! does through the C API until the VM runs again is appended to it: checked memory reads and
//! writes (`pvm_read_ram_*` / `pvm_write_ram_*`), `pvm_set_register`, `pvm_set_gas`, and the
//! effects of `pvm_handle_builtin_host_call` (recorded by pvm-core's recording
//! [`HostCallContext`](pvm_core::HostCallContext)). The call is closed — turned into a log entry
//! with [`CallRecorder::finish`] — when the callback continues, when the host call ends the run,
//! or, for a VM that stopped at the `ecalli` (no callback, or `PVM_HOST_TERMINATE`), when it runs
//! again. The accessors' effects are kept as a list of operations rather than in a
//! `CallRecorder` so that `pvm_jip7_log` can render a host call that is still open. Page-map
//! changes (`x-pages`) come from `OpenCall`'s snapshot of the page map at the `ecalli`, and the
//! effects of built-in host calls are marked `x-builtin <name>`.

use std::ffi::{c_char, c_int};

use pvm_core::inner::HostCallIds;
use pvm_core::jip7::{self, CallRecorder, HostCallEntry, Jip7Error, Jip7Log, OpenCall};
use pvm_core::{Exit, Instance};

use crate::create::spec_from_c;
use crate::handle::{ffi, slice_in, slice_out, with_vm, VmHandle};
use crate::pvm_vm_t;

/// A JIP-7 log under construction.
#[derive(Debug)]
pub struct Recording {
    /// The closed entries, the prelude and the termination.
    pub log: Jip7Log,
    /// The host call the VM is in or stopped at, if any.
    pub pending: Option<OpenCall>,
}

/// Runs `f` on the VM's recording and instance if JIP-7 recording is on (the common prologue of
/// the run-loop hooks below).
fn with_recording(h: &VmHandle, f: impl FnOnce(&mut Recording, &Instance)) -> Result<(), String> {
    if !h.jip6_on.get() {
        return Ok(());
    }
    let inst = h.inst()?;
    let mut slot = recording(h)?;
    if let Some(r) = slot.as_mut() {
        f(r, &inst);
    }
    Ok(())
}

impl Recording {
    /// Turns the open host call, if any, into a log entry.
    fn close_pending(&mut self, inst: &Instance) {
        if let Some(p) = self.pending.take() {
            self.log.entries.push(p.entry(inst));
        }
    }
}

fn new_log(h: &VmHandle) -> Jip7Log {
    Jip7Log {
        context: vec![format!(
            "implementation libpvm {} (C API)",
            env!("CARGO_PKG_VERSION")
        )],
        program: h.program_bytes.clone(),
        initial_writes: h.args_write.borrow().iter().cloned().collect(),
        ..Jip7Log::default()
    }
}

fn recording(h: &VmHandle) -> Result<std::cell::RefMut<'_, Option<Recording>>, String> {
    h.jip6
        .try_borrow_mut()
        .map_err(|_| "internal error: the JIP-7 log is busy".to_string())
}

/// Appends an accessor's effect to the open host call, if recording.
pub fn record(h: &VmHandle, effect: impl FnOnce(&mut CallRecorder)) {
    if !h.jip6_on.get() {
        return;
    }
    if let Ok(mut slot) = h.jip6.try_borrow_mut() {
        if let Some(Recording {
            pending: Some(p), ..
        }) = slot.as_mut()
        {
            effect(p.effects());
        }
    }
}

/// Whether a host call is open for recording (the builtin handler then records through a
/// `CallRecorder` and hands the effects over with [`record_entry`]).
pub fn is_recording_call(h: &VmHandle) -> bool {
    h.jip6_on.get()
        && h.jip6
            .try_borrow()
            .is_ok_and(|r| r.as_ref().is_some_and(|r| r.pending.is_some()))
}

/// Appends the effects of a built-in host call (an entry built by `CallRecorder::finish`),
/// marked with the built-in's name (`x-builtin`).
pub fn record_entry(h: &VmHandle, mut e: HostCallEntry) {
    if e.builtin.is_none() {
        if let Ok(inst) = h.inst() {
            let ids = HostCallIds::of(inst.program().spec());
            e.builtin = jip7::builtin_name(ids, e.index).map(str::to_string);
        }
    }
    record(h, |r| r.merge(&e));
}

/// `pvm_invoke` starts a new invocation with new arguments: a recording starts a new log whose
/// prelude holds them.
pub fn on_invoke(h: &VmHandle) -> Result<(), String> {
    if !h.jip6_on.get() {
        return Ok(());
    }
    let mut slot = recording(h)?;
    if let Some(r) = slot.as_mut() {
        *r = Recording {
            log: new_log(h),
            pending: None,
        };
    }
    Ok(())
}

/// `pvm_execute` starts a new run (not a continuation): a log that already holds something
/// starts over (one log per invocation).
pub fn on_restart(h: &VmHandle) -> Result<(), String> {
    if !h.jip6_on.get() {
        return Ok(());
    }
    let mut slot = recording(h)?;
    if let Some(r) = slot.as_mut() {
        if r.log.start.is_some() || !r.log.entries.is_empty() || r.log.end.is_some() {
            *r = Recording {
                log: new_log(h),
                pending: None,
            };
        }
    }
    Ok(())
}

/// A run starts: closes the host call the VM was stopped at, logs the start state if this is
/// the log's first run, and forgets an earlier termination (the run continues).
pub fn on_run_start(h: &VmHandle) -> Result<(), String> {
    with_recording(h, |r, inst| {
        r.close_pending(inst);
        // The start state, and the pages and memory the host set up before the first run.
        jip7::record_prelude(&mut r.log, inst);
        r.log.end = None;
    })
}

/// The run stopped at host call `id`: opens its record with the state at the `ecalli`.
pub fn open_call(h: &VmHandle, id: u32) -> Result<(), String> {
    with_recording(h, |r, inst| {
        r.close_pending(inst);
        r.pending = Some(OpenCall::new(id, inst));
    })
}

/// The host call is over (continued, or it ended the run): closes its record.
pub fn close_call(h: &VmHandle) -> Result<(), String> {
    with_recording(h, |r, inst| r.close_pending(inst))
}

/// The run ended with a final exit (halt, panic, out-of-gas, page fault): logs the termination.
pub fn on_exit(h: &VmHandle, exit: Exit) -> Result<(), String> {
    with_recording(h, |r, inst| {
        r.close_pending(inst);
        r.log.end = jip7::termination_of(exit, inst);
    })
}

/// Copies `text` plus a NUL into `buf` if it fits (else an empty string if `len > 0`) and
/// returns `text.len()`.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `len` bytes.
pub unsafe fn copy_out_whole(text: &str, buf: *mut c_char, len: usize) -> Result<usize, String> {
    if buf.is_null() || len == 0 {
        return Ok(text.len());
    }
    // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
    let out = unsafe { slice_out(buf as *mut u8, len, "buf") }?;
    if text.len() < len {
        out[..text.len()].copy_from_slice(text.as_bytes());
        out[text.len()] = 0;
    } else {
        out[0] = 0;
    }
    Ok(text.len())
}

/// Copies as much of `text` as fits plus a NUL into `buf` (truncating, like snprintf).
///
/// # Safety
/// `buf` must be NULL or valid for writes of `len` bytes.
unsafe fn copy_out_truncated(text: &str, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
    if let Ok(out) = unsafe { slice_out(buf as *mut u8, len, "report") } {
        let n = text.len().min(len - 1);
        out[..n].copy_from_slice(&text.as_bytes()[..n]);
        out[n] = 0;
    }
}

/// Starts (non-zero: a new, empty log) or stops JIP-7 recording of the VM's host calls. Stopping
/// closes an open host call and keeps the log for `pvm_jip7_log`.
///
/// # Safety
/// `vm` must be NULL or a pointer returned by a `pvm_create*` function.
#[no_mangle]
pub unsafe extern "C" fn pvm_set_jip7_recording(vm: *mut pvm_vm_t, on: c_int) {
    ffi((), || {
        with_vm(vm, |h| {
            if on != 0 {
                *recording(h)? = Some(Recording {
                    log: new_log(h),
                    pending: None,
                });
                h.jip6_on.set(true);
            } else {
                close_call(h)?;
                h.jip6_on.set(false);
            }
            Ok(())
        })
    })
}

/// The earlier name of [`pvm_set_jip7_recording`].
///
/// # Safety
/// As for [`pvm_set_jip7_recording`].
#[no_mangle]
pub unsafe extern "C" fn pvm_set_jip6_recording(vm: *mut pvm_vm_t, on: c_int) {
    // SAFETY: forwarded caller guarantee.
    unsafe { pvm_set_jip7_recording(vm, on) }
}

/// The JIP-7 log as text: copied with a NUL into `buf` if it fits, and its length (excluding
/// the NUL) returned. 0 (and `pvm_last_error`) if nothing has been recorded.
///
/// # Safety
/// `vm` as for every function; `buf` must be NULL or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_jip7_log(vm: *mut pvm_vm_t, buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        log_text(
            vm,
            buf,
            len,
            "pvm_jip7_log: no JIP-7 log (enable it with pvm_set_jip7_recording)",
        )
    }
}

/// `pvm_jip7_log` and its alias, which differ only in the message when nothing was recorded.
///
/// # Safety
/// As for [`pvm_jip7_log`].
unsafe fn log_text(vm: *mut pvm_vm_t, buf: *mut c_char, len: usize, none: &str) -> usize {
    ffi(0, || {
        with_vm(vm, |h| {
            let text = {
                let slot = h
                    .jip6
                    .try_borrow()
                    .map_err(|_| "internal error: the JIP-7 log is busy".to_string())?;
                let r = slot.as_ref().ok_or_else(|| none.to_string())?;
                match &r.pending {
                    None => r.log.to_text(),
                    Some(p) => {
                        let mut log = r.log.clone();
                        log.entries.push(p.entry(&**h.inst()?));
                        log.to_text()
                    }
                }
            };
            // SAFETY: forwarded caller guarantee on `buf`.
            unsafe { copy_out_whole(&text, buf, len) }
        })
    })
}

/// The earlier name of [`pvm_jip7_log`].
///
/// # Safety
/// As for [`pvm_jip7_log`].
#[no_mangle]
pub unsafe extern "C" fn pvm_jip6_log(vm: *mut pvm_vm_t, buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        log_text(vm, buf, len, "pvm_jip6_log: no JIP-6 log (enable it with pvm_set_jip6_recording; now called JIP-7: pvm_jip7_log)")
    }
}

/// Replays a JIP-7 log: 0 if it replays (and, with `verify`, matches every `ecalli` line, every
/// logged memory read, every re-executed built-in and the termination), 1 on a divergence, -1 on
/// malformed input (the message names the line). `gas` is the initial gas when the log has no
/// `start` line (0: `DEFAULT_REPLAY_GAS`, 10^9; at most 2^63 − 1). `report` gets a one-line
/// summary.
///
/// # Safety
/// `log` must be NULL or valid for reads of `len` bytes; `report` must be NULL or valid for
/// writes of `report_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pvm_jip7_replay_ex(
    log: *const c_char,
    len: usize,
    spec: c_int,
    verify: c_int,
    gas: u64,
    report: *mut c_char,
    report_len: usize,
) -> c_int {
    let mut message = String::new();
    let code = ffi(-1, || {
        let spec = spec_from_c(spec)?;
        if log.is_null() {
            return Err("log is NULL".into());
        }
        let gas = match gas {
            0 => None,
            g => Some(i64::try_from(g).map_err(|_| format!("gas {g} is above 2^63 - 1"))?),
        };
        // SAFETY: the caller guarantees `log` is valid for `len` bytes.
        let bytes = unsafe { slice_in(log as *const u8, len, "log") }?;
        let parsed = Jip7Log::parse_bytes(bytes).map_err(|e| format!("JIP-7 log: {e}"))?;
        let opts = jip7::ReplayOptions {
            spec,
            gas,
            verify: verify != 0,
            verify_end: verify != 0,
            ..jip7::ReplayOptions::default()
        };
        match jip7::replay_with(&parsed, &opts) {
            Ok(r) if r.divergences.is_empty() => {
                message = format!(
                    "ok: {} host calls replayed, exit {} at pc {}, gas {}",
                    r.host_calls,
                    r.exit.name(),
                    r.end.pc,
                    r.end.gas
                );
                Ok(0)
            }
            Ok(r) => {
                message = r.divergences[0].to_string();
                Ok(1)
            }
            Err(e @ Jip7Error::Divergence { .. }) => {
                message = e.to_string();
                Ok(1)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    if code == -1 {
        let e = crate::handle::last_error_ptr();
        if !e.is_null() {
            // SAFETY: the library's last-error string is NUL-terminated and valid until the next
            // failing call on this thread; it is copied at once.
            message = unsafe { std::ffi::CStr::from_ptr(e) }
                .to_string_lossy()
                .into_owned();
        }
    }
    // SAFETY: forwarded caller guarantee on `report`.
    unsafe { copy_out_truncated(&message, report, report_len) };
    code
}

/// [`pvm_jip7_replay_ex`] with the default gas bound for a log without a `start` line.
///
/// # Safety
/// As for [`pvm_jip7_replay_ex`].
#[no_mangle]
pub unsafe extern "C" fn pvm_jip7_replay(
    log: *const c_char,
    len: usize,
    spec: c_int,
    verify: c_int,
    report: *mut c_char,
    report_len: usize,
) -> c_int {
    // SAFETY: forwarded caller guarantees.
    unsafe { pvm_jip7_replay_ex(log, len, spec, verify, 0, report, report_len) }
}

/// The earlier name of [`pvm_jip7_replay`] (a log without a `start` line now replays with the
/// default gas bound, not 2^63 − 1).
///
/// # Safety
/// As for [`pvm_jip7_replay_ex`].
#[no_mangle]
pub unsafe extern "C" fn pvm_jip6_replay(
    log: *const c_char,
    len: usize,
    spec: c_int,
    verify: c_int,
    report: *mut c_char,
    report_len: usize,
) -> c_int {
    // SAFETY: forwarded caller guarantees.
    unsafe { pvm_jip7_replay_ex(log, len, spec, verify, 0, report, report_len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::null;

    fn replay_ex(log: &[u8], gas: u64) -> (c_int, String) {
        let mut report = [0 as c_char; 256];
        // SAFETY: `log` and `report` are live buffers of the given lengths.
        let code = unsafe {
            pvm_jip7_replay_ex(
                log.as_ptr() as *const c_char,
                log.len(),
                0,
                1,
                gas,
                report.as_mut_ptr(),
                report.len(),
            )
        };
        // SAFETY: the report is NUL-terminated by pvm_jip7_replay_ex.
        let text = unsafe { std::ffi::CStr::from_ptr(report.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        (code, text)
    }

    #[test]
    fn multibyte_hex_is_a_parse_error_not_an_internal_error() {
        // Issue #12 F1: `program 0xaé0`.
        let (code, report) = replay_ex(b"program 0xa\xc3\xa90\n", 0);
        assert_eq!(code, -1);
        assert!(
            report.contains("line 1") && !report.contains("internal"),
            "{report}"
        );
        let (code, report) = replay_ex(b"program 0x00\n\xff", 0);
        assert_eq!(code, -1);
        assert!(
            report.contains("line 2") && report.contains("UTF-8"),
            "{report}"
        );
    }

    #[test]
    fn replay_ex_bounds_the_gas_of_a_log_without_start() {
        // Issue #12 F5: a loop and no `start` line.
        let (code, report) = replay_ex(b"program 0x000005280000000001", 1000);
        assert_eq!(code, 0, "{report}");
        assert!(report.contains("exit oog"), "{report}");
        let (code, report) = replay_ex(b"program 0x000005280000000001", u64::MAX);
        assert_eq!(code, -1);
        assert!(report.contains("2^63"), "{report}");
        // SAFETY: a NULL log is rejected; a NULL report is allowed.
        let code = unsafe { pvm_jip7_replay(null(), 3, 0, 1, std::ptr::null_mut(), 0) };
        assert_eq!(code, -1);
        if cfg!(debug_assertions) {
            return; // the default bound (10^9 gas) takes a moment in optimised builds only
        }
        let log = b"program 0x000005280000000001";
        // SAFETY: `log` is a live buffer.
        let code = unsafe {
            pvm_jip6_replay(
                log.as_ptr() as *const c_char,
                log.len(),
                0,
                1,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(code, 0, "the old name replays with the default bound");
    }
}
