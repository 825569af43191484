//! JIP-7 "PVM Ecalli Trace" logs (called JIP-6 in earlier releases): recording a run's host
//! calls through the JavaScript accessors, `vm.jip7Log()`, and `replayJip7`. The earlier names
//! `{ jip6: true }`, `vm.jip6Log()` and `replayJip6` remain as aliases for one release.
//!
//! A run with `{ jip7: true }` records. Each host call it stops at opens a [`pvm_core::jip7::OpenCall`] with
//! the state at the `ecalli`; what the host then does through the VM's accessors until the host
//! call completes is appended to it — checked `readMemory` / `writeMemory`, `setRegister`,
//! `registers = …`, `gas = …` — and so are the effects of built-in host calls (recorded by
//! pvm-core's recording `HostCallContext`). Register writes through the zero-copy `registers`
//! array cannot be intercepted; [`CallRecorder::finish`] catches them (and any other register or
//! gas change) by comparing the state before and after the call. The call is closed — turned into
//! a log entry — when the handler returns, or, for a VM that stopped at the `ecalli` (no
//! handler, or the handler threw), when the next recorded run starts. `OpenCall::entry` renders a
//! host call that is still open for `jip7Log()`; it also adds the page-map changes (`x-pages`)
//! since the `ecalli`. Built-in host calls are marked `x-builtin <name>`.
//!
//! One log covers one invocation: a recorded run continues the current log if the previous run
//! was recorded too and stopped at a host call (status `'host'`); otherwise it starts a new one.
//! An unrecorded run or step ends the recording (the log stays readable).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use pvm_core::inner::HostCallIds;
use pvm_core::jip7::{self, CallRecorder, HostCallEntry, Jip7Error, Jip7Log, OpenCall};
use pvm_core::{Exit, Spec};

use crate::error::{Code, Fail, Res};
use crate::js::{self, RawEnv, Val};
use crate::vm::Pvm;

/// A JIP-7 log under construction.
#[derive(Debug)]
pub(crate) struct Recording {
    log: Jip7Log,
    pending: Option<OpenCall>,
}

fn busy() -> Fail {
    Fail::new(Code::Internal, "the JIP-7 log is in use")
}

impl Pvm {
    fn new_log(&self) -> Jip7Log {
        Jip7Log {
            context: vec![format!(
                "implementation libpvm {} (Node.js API)",
                env!("CARGO_PKG_VERSION")
            )],
            program: self.program_bytes.to_vec(),
            initial_writes: self.args_write.borrow().iter().cloned().collect(),
            ..Jip7Log::default()
        }
    }

    /// Closes the open host call of `r` (if any) with the instance's current state.
    fn close_pending(&self, r: &mut Recording) -> Res<()> {
        if let Some(p) = r.pending.take() {
            let e = self.with(|inst| p.entry(inst))?;
            r.log.entries.push(e);
        }
        self.recording_call.set(false);
        Ok(())
    }

    /// A run (`record`) or an unrecorded run or step (`!record`) starts.
    pub(crate) fn jip6_begin_run(&self, record: bool) -> Res<()> {
        if !record && !self.jip6_active.get() {
            return Ok(());
        }
        let mut slot = self.jip6.try_borrow_mut().map_err(|_| busy())?;
        match slot.as_mut() {
            // Continue the log: close the host call the VM stopped at.
            Some(r) if self.jip6_active.get() => {
                self.close_pending(r)?;
                r.log.end = None;
            }
            _ if record => {
                *slot = Some(Recording {
                    log: self.new_log(),
                    pending: None,
                });
            }
            _ => {}
        }
        if !record {
            self.jip6_active.set(false);
            return Ok(());
        }
        self.jip6_active.set(true);
        if let Some(r) = slot.as_mut() {
            // The start state, and the pages and memory the host set up before the first run.
            self.with(|inst| jip7::record_prelude(&mut r.log, inst))?;
        }
        Ok(())
    }

    /// The run stopped at host call `id`: opens its record with the state at the `ecalli`.
    pub(crate) fn jip6_open_call(&self, id: u32) -> Res<()> {
        if !self.jip6_active.get() {
            return Ok(());
        }
        let mut slot = self.jip6.try_borrow_mut().map_err(|_| busy())?;
        if let Some(r) = slot.as_mut() {
            self.close_pending(r)?;
            r.pending = Some(self.with(|inst| OpenCall::new(id, inst))?);
            self.recording_call.set(true);
        }
        Ok(())
    }

    /// The host call is complete (continued, or it ends the run): closes its record.
    pub(crate) fn jip6_close_call(&self) -> Res<()> {
        if !self.jip6_active.get() {
            return Ok(());
        }
        let mut slot = self.jip6.try_borrow_mut().map_err(|_| busy())?;
        if let Some(r) = slot.as_mut() {
            self.close_pending(r)?;
        }
        Ok(())
    }

    /// The run ended with a final exit (halt, panic, out-of-gas, page fault): logs the
    /// termination; the next recorded run starts a new log.
    pub(crate) fn jip6_on_exit(&self, exit: Exit) -> Res<()> {
        if !self.jip6_active.get() {
            return Ok(());
        }
        let mut slot = self.jip6.try_borrow_mut().map_err(|_| busy())?;
        if let Some(r) = slot.as_mut() {
            self.close_pending(r)?;
            r.log.end = self.with(|inst| jip7::termination_of(exit, inst))?;
        }
        self.jip6_active.set(false);
        Ok(())
    }

    /// Appends an accessor's effect to the open host call, if one is being recorded.
    pub(crate) fn jip6_record(&self, effect: impl FnOnce(&mut CallRecorder)) {
        if !self.recording_call.get() {
            return;
        }
        if let Ok(mut slot) = self.jip6.try_borrow_mut() {
            if let Some(Recording {
                pending: Some(p), ..
            }) = slot.as_mut()
            {
                effect(p.effects());
            }
        }
    }

    /// Appends the effects of a built-in host call (an entry built by `CallRecorder::finish`),
    /// marked with the built-in's name (`x-builtin`).
    pub(crate) fn jip6_record_entry(&self, mut e: HostCallEntry) {
        if e.builtin.is_none() {
            if let Ok(ids) = self.with(|inst| HostCallIds::of(inst.program().spec())) {
                e.builtin = jip7::builtin_name(ids, e.index).map(str::to_string);
            }
        }
        self.jip6_record(|r| r.merge(&e));
    }

    /// The log as text, with a host call that is still open rendered as it stands.
    pub(crate) fn jip6_text(&self) -> Res<String> {
        let slot = self.jip6.try_borrow().map_err(|_| busy())?;
        let r = slot.as_ref().ok_or_else(|| {
            Fail::new(
                Code::InvalidState,
                "no JIP-7 log: record one with vm.run(hostCall, { jip7: true })",
            )
        })?;
        match &r.pending {
            None => Ok(r.log.to_text()),
            Some(p) => {
                let mut log = r.log.clone();
                log.entries.push(self.with(|inst| p.entry(inst))?);
                Ok(log.to_text())
            }
        }
    }
}

/// Options of `replayJip7`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct ReplayOptions {
    /// Gray Paper version of the logged program (default `'0.8.0'`).
    #[napi(ts_type = "SpecVersion")]
    pub spec: Option<String>,
    /// Check every `ecalli` line (index, pc, gas, registers), every logged memory read, every
    /// `x-builtin` host call (re-executed with libpvm's built-ins) and the termination against
    /// the replay (default true); the first difference throws `DIVERGENCE`.
    pub verify: Option<bool>,
    /// Initial gas if the log has no `start` line (default 10^9, a bound so that a looping
    /// program stops; at most 2^63 − 1).
    #[napi(ts_type = "bigint | number")]
    pub gas: Option<i64>,
}

/// The result of `replayJip7`.
#[napi(object, js_name = "ReplayResult", object_from_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct ReplayResultDecl {
    /// Host calls answered from the log.
    pub host_calls: u32,
    /// How the replay ended (`'host'`: without `verify`, at a host call past the log's end).
    #[napi(ts_type = "ExitStatus")]
    pub status: String,
    /// The final pc.
    pub pc: u32,
    /// The final gas (negative values shown as 0, as in the log's termination line).
    #[napi(ts_type = "bigint")]
    pub gas: i64,
    /// The final registers.
    #[napi(ts_type = "BigUint64Array")]
    pub registers: Vec<i64>,
    /// The faulting page's address (status `'fault'`).
    pub fault_address: Option<u32>,
    /// The `ecalli` immediate (status `'host'`).
    pub host_call_id: Option<u32>,
}

#[cfg_attr(test, allow(dead_code))]
fn jip7_fail(e: Jip7Error) -> Fail {
    match e {
        Jip7Error::Parse { line, .. } => {
            Fail::new(Code::InvalidArgument, format!("JIP-7 log: {e}")).with(c"line", line as f64)
        }
        Jip7Error::Program(_) => Fail::new(Code::InvalidProgram, e.to_string()),
        Jip7Error::Divergence { .. } => Fail::new(Code::Divergence, e.to_string()),
    }
}

#[napi]
impl Pvm {
    /// The JIP-7 log of the last run(s) made with `{ jip7: true }` (text, one record per line):
    /// `comment` lines, the prelude (`program`, the arguments as a `memwrite`, `start`), every
    /// host call with what the host read and wrote (plus libpvm's `x-builtin` and `x-pages`
    /// extension records), and the termination. A host call the VM is still stopped at is
    /// included as it stands. Throws `INVALID_STATE` if no run was recorded. (`jip6Log()` is the
    /// earlier name.)
    #[napi]
    pub fn jip7_log(&self, env: &Env) -> Result<String> {
        // One implementation (guarded, and readable after `free()`): see `jip6_log` in vm.rs.
        self.jip6_log(env)
    }
}

/// Re-executes a JIP-7 log statelessly (pvm-core's `jip7::replay_with`, as `pvm replay` does):
/// loads the logged program (service blob, standard program or code blob), applies the prelude,
/// runs, and answers each `ecalli` with the logged writes, page-map changes, register and gas
/// changes. With `verify` (default true) every `ecalli` line, logged memory read, `x-builtin`
/// call and the termination must match, else it throws `PvmError` `DIVERGENCE` whose message
/// names the first difference. A malformed log throws `INVALID_ARGUMENT` (`line`), an
/// unloadable program `INVALID_PROGRAM`. A log without a `start` line runs with `gas` (default
/// 10^9).
#[napi(
    js_name = "replayJip7",
    ts_args_type = "log: string | Uint8Array, options?: ReplayOptions | null",
    ts_return_type = "ReplayResult"
)]
// napi-derive exports free functions only outside `cfg(test)`, so the test build (clippy
// --all-targets) sees no caller.
#[cfg_attr(test, allow(dead_code))]
pub fn replay_jip7(env: &Env, log: Unknown, options: Option<Unknown>) -> Result<Val> {
    let env = env.raw();
    crate::error::guard(env, || {
        replay_impl(env, log.raw(), options.map(|o| o.raw()))
    })
}

/// The earlier name of `replayJip7` (same arguments and result), kept for one release.
#[napi(
    js_name = "replayJip6",
    ts_args_type = "log: string | Uint8Array, options?: ReplayOptions | null",
    ts_return_type = "ReplayResult"
)]
#[cfg_attr(test, allow(dead_code))]
pub fn replay_jip6(env: &Env, log: Unknown, options: Option<Unknown>) -> Result<Val> {
    let env = env.raw();
    crate::error::guard(env, || {
        replay_impl(env, log.raw(), options.map(|o| o.raw()))
    })
}

#[cfg_attr(test, allow(dead_code))]
fn replay_impl(env: RawEnv, log: Val, options: Option<Val>) -> Res<Val> {
    let mut opts = jip7::ReplayOptions::default();
    if let Some(o) = options.filter(|o| !js::is_nullish(env, *o)) {
        if js::type_of(env, o) != napi::sys::ValueType::napi_object {
            return Err(Fail::new(
                Code::InvalidArgument,
                format!("options must be an object, got {}", js::describe(env, o)),
            ));
        }
        if let Some(v) = js::get(env, o, c"spec")? {
            let mut buf = [0u8; 16];
            let s = js::to_short_string(env, v, &mut buf, "options.spec")?;
            opts.spec = Spec::parse(s).ok_or_else(|| {
                Fail::new(
                    Code::InvalidArgument,
                    format!("options.spec must be '0.8.0' or '0.7.2', got '{s}'"),
                )
            })?;
        }
        if let Some(v) = js::get(env, o, c"verify")? {
            opts.verify = js::to_bool(env, v, "options.verify")?;
            opts.verify_end = opts.verify;
        }
        if let Some(v) = js::get(env, o, c"gas")? {
            let g = js::to_i64(env, v, "options.gas")?;
            if g < 0 {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    format!("options.gas must not be negative, got {g}"),
                ));
            }
            opts.gas = Some(g);
        }
    }
    // Last: nothing runs JavaScript while the bytes of a Uint8Array are borrowed.
    let parsed = if js::type_of(env, log) == napi::sys::ValueType::napi_string {
        Jip7Log::parse(&js::to_string(env, log, "log")?)
    } else {
        Jip7Log::parse_bytes(js::to_bytes(env, log, "log")?)
    }
    .map_err(jip7_fail)?;
    let r = jip7::replay_with(&parsed, &opts).map_err(jip7_fail)?;
    if let Some(d) = r.divergences.into_iter().next() {
        return Err(jip7_fail(d.into()));
    }
    let obj = js::object(env)?;
    js::set(
        env,
        obj,
        c"hostCalls",
        js::uint32(env, r.host_calls as u32)?,
    )?;
    js::set(env, obj, c"status", js::string(env, r.exit.name())?)?;
    js::set(env, obj, c"pc", js::uint32(env, r.end.pc)?)?;
    js::set(env, obj, c"gas", js::bigint_u64(env, r.end.gas)?)?;
    js::set(
        env,
        obj,
        c"registers",
        js::biguint64_array_copy(env, &r.end.regs)?,
    )?;
    match r.exit {
        Exit::PageFault(a) => js::set(env, obj, c"faultAddress", js::uint32(env, a)?)?,
        Exit::HostCall(id) => js::set(env, obj, c"hostCallId", js::uint32(env, id)?)?,
        _ => {}
    }
    Ok(obj)
}
