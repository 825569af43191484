//! Traced runs: `vm.run(hostCall, { trace })` executes one instruction at a time and hands the
//! trace sink one line per instruction, in the formats of `pvm trace` (crates/pvm-cli) and the C
//! API's trace sink, so that traces from every front end and other implementations can be
//! compared line by line (`pvm trace-diff`):
//!
//! - per instruction that does not end the run: [`pvm_core::trace::trace_line`]
//!   (`STEP: PC pc NAME g=gas [pvmHash=0x…] reg="[r0 … r12]"`), the hash every N-th step;
//! - after a host call that continues: `ECALLI id g=gas [pvmHash=0x…]`;
//! - when the run returns: `EXIT halt|panic|oog|fault=0x…|host=id pc= g= pvmHash=0x… steps=`.
//!
//! The instance is borrowed for one instruction at a time; the sink is called between
//! instructions with no borrow held (like the host-call handler), in its own handle scope.

use std::ptr;

use napi::sys;
use pvm_core::trace::{self, pvm_hash, trace_line};
use pvm_core::{Exit, Instance};

use crate::error::Res;
use crate::js::{self, RawEnv, Val};
use crate::vm::{Callback, Pvm, State};

fn name_at(inst: &Instance, pc: u32) -> &'static str {
    inst.program()
        .instruction_at(pc)
        .opcode
        .map(|o| o.name())
        .unwrap_or("invalid")
}

impl Pvm {
    /// Steps until an exit, sending a trace line for every instruction that does not end the run
    /// (an `ecalli` does not: its line comes before the host call).
    pub(crate) fn traced_run(&self, env: RawEnv, this: Val, sink: Val, every: u64) -> Res<Exit> {
        loop {
            let (line, exit) = self.with(|inst| {
                let pc = inst.next_pc();
                let name = name_at(inst, pc);
                let exit = inst.step();
                let step = self.trace_steps.get() + 1;
                self.trace_steps.set(step);
                let line = matches!(exit, None | Some(Exit::HostCall(_))).then(|| {
                    let hash = (every > 0 && step.is_multiple_of(every)).then(|| pvm_hash(inst));
                    trace_line(step, pc, name, inst.gas(), hash.as_ref(), inst.registers())
                });
                (line, exit)
            })?;
            // Keep `vm.status` true to the VM while the sink runs (and if it throws).
            self.state.set(match exit {
                Some(e) => State::Exited(e),
                None => State::Running,
            });
            if let Some(line) = line {
                self.emit(env, this, sink, &line)?;
            }
            if let Some(e) = exit {
                return Ok(e);
            }
        }
    }

    /// The line after a host call that continues.
    pub(crate) fn ecalli_line(&self, id: u32, every: u64) -> Res<String> {
        self.with(|inst| {
            let hash = (every > 0).then(|| pvm_hash(inst));
            trace::ecalli_line(id, inst.gas(), hash.as_ref())
        })
    }

    /// The line when a traced run returns.
    pub(crate) fn exit_line(&self, exit: Exit) -> Res<String> {
        let steps = self.trace_steps.get();
        self.with(|inst| trace::exit_line(exit, inst.pc(), inst.gas(), &pvm_hash(inst), steps))
    }

    /// Calls the trace sink with one line (`this` = the VM), in its own handle scope.
    pub(crate) fn emit(&self, env: RawEnv, this: Val, sink: Val, line: &str) -> Res<()> {
        let mut scope = ptr::null_mut();
        // SAFETY: scopes are opened and closed in pairs on this thread.
        js::check(
            env,
            unsafe { sys::napi_open_handle_scope(env, &mut scope) },
            "open scope",
        )?;
        self.callback.set(Callback::Trace);
        let result = js::string(env, line)
            .and_then(|s| js::call(env, this, sink, &[s], "calling the trace sink"));
        self.callback.set(Callback::None);
        // SAFETY: closes the scope opened above; nothing created in it is used afterwards.
        unsafe { sys::napi_close_handle_scope(env, scope) };
        result.map(|_| ())
    }
}
