//! The PVM-level host calls (`gas`, `grow_heap`, `machine`, `peek`, `poke`, `pages`, `invoke`,
//! `expunge`; GP B.5–B.6) performed by pvm-core's `InnerPvms`, so that a JavaScript host only
//! writes the chain-state host calls.
//!
//! Two owners of inner machines:
//! - every VM owns one set (created on its first built-in host call, dropped with the VM), used
//!   by `vm.handleBuiltin(id)` and by runs with `builtins` on;
//! - an `InnerPvms` object owns its own set, for as long as the object lives, and performs host
//!   calls on whichever VM it is given (`inner.handle(id, vm)`).
//!
//! Soundness: a host call borrows the inner machines (a `RefCell`) and the VM's instance (inside
//! `Pvm::with`) only while pvm-core performs it; no JavaScript runs meanwhile. The standalone
//! object's `RefCell` refuses the impossible nested use with an `INTERNAL` error rather than
//! aliasing.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use pvm_core::inner::{HostCallIds, InnerPvms as CoreInnerPvms};
use pvm_core::jip7::{state_of, CallRecorder};
use pvm_core::{HostCallContext, HostOutcome, Spec};

use crate::error::{guard, Code, Fail, Res};
use crate::js::{self, RawEnv, Val};
use crate::vm::{Callback, Pvm, State};

/// The host-call ids of the built-in (PVM-level) host calls of one spec version.
#[napi(object, object_from_js = false)]
pub struct BuiltinHostCallIds {
    /// `gas` (0).
    pub gas: u32,
    /// `grow_heap` (GP 0.8.0: 1; absent in GP 0.7.2, which has the `sbrk` instruction instead).
    pub grow_heap: Option<u32>,
    /// `machine`.
    pub machine: u32,
    /// `peek`.
    pub peek: u32,
    /// `poke`.
    pub poke: u32,
    /// `pages`.
    pub pages: u32,
    /// `invoke`.
    pub invoke: u32,
    /// `expunge`.
    pub expunge: u32,
}

impl From<HostCallIds> for BuiltinHostCallIds {
    fn from(i: HostCallIds) -> Self {
        BuiltinHostCallIds {
            gas: i.gas,
            grow_heap: i.grow_heap,
            machine: i.machine,
            peek: i.peek,
            poke: i.poke,
            pages: i.pages,
            invoke: i.invoke,
            expunge: i.expunge,
        }
    }
}

fn parse_spec(env: RawEnv, v: Option<Val>, what: &str) -> Res<Spec> {
    let Some(v) = v.filter(|v| !js::is_nullish(env, *v)) else {
        return Ok(Spec::default());
    };
    let mut buf = [0u8; 16];
    let s = js::to_short_string(env, v, &mut buf, what)?;
    Spec::parse(s).ok_or_else(|| {
        Fail::new(
            Code::InvalidArgument,
            format!("{what} must be '0.8.0' or '0.7.2', got '{s}'"),
        )
    })
}

/// The ids of the built-in host calls of `spec` (default `'0.8.0'`): the ids `handleBuiltin`,
/// `InnerPvms.handle` and `builtins: true` answer; every other id reaches the host-call handler.
#[napi(ts_args_type = "spec?: SpecVersion | null")]
// napi-derive exports free functions only outside `cfg(test)`, so the test build (clippy
// --all-targets) sees no caller.
#[cfg_attr(test, allow(dead_code))]
pub fn builtin_host_call_ids(env: &Env, spec: Option<Unknown>) -> Result<BuiltinHostCallIds> {
    let env = env.raw();
    guard(env, || {
        parse_spec(env, spec.map(|s| s.raw()), "spec").map(|s| HostCallIds::of(s).into())
    })
}

fn outcome_value(env: RawEnv, outcome: Option<HostOutcome>) -> Res<Val> {
    Ok(match outcome {
        None => js::undefined(env),
        Some(HostOutcome::Continue) => js::string(env, "continue")?,
        Some(HostOutcome::Panic) => js::string(env, "panic")?,
        Some(HostOutcome::OutOfGas) => js::string(env, "oog")?,
        // pvm-core's PVM-level host calls never halt.
        Some(HostOutcome::Halt) => js::string(env, "halt")?,
    })
}

fn busy() -> Fail {
    Fail::new(
        Code::Internal,
        "the inner machines are already in use by another host call",
    )
}

impl Pvm {
    /// Performs built-in host call `id` with `inner` on the VM (stopped at an `ecalli`, instance
    /// not borrowed), recording its effects into an open JIP-6 host call. `None` if `id` is not a
    /// built-in one.
    pub(crate) fn perform_builtin(
        &self,
        inner: &mut CoreInnerPvms,
        id: u32,
    ) -> Res<Option<HostOutcome>> {
        let recording = self.recording_call.get();
        let (outcome, entry) = self.with(|inst| {
            if !recording {
                return (inner.handle(id, &mut HostCallContext::new(inst)), None);
            }
            let before = state_of(inst);
            let mut rec = CallRecorder::default();
            let outcome = inner.handle(id, &mut HostCallContext::with_recorder(inst, &mut rec));
            let entry = outcome.map(|_| rec.finish(id, before, inst));
            (outcome, entry)
        })?;
        if let Some(e) = entry {
            self.jip6_record_entry(e);
        }
        Ok(outcome)
    }

    /// [`Pvm::perform_builtin`] with the VM's own inner machines.
    pub(crate) fn perform_own_builtin(&self, id: u32) -> Res<Option<HostOutcome>> {
        let spec = self.with(|i| i.program().spec())?;
        let mut slot = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let inner = slot.get_or_insert_with(|| CoreInnerPvms::new(spec));
        self.perform_builtin(inner, id)
    }

    /// `vm.handleBuiltin(id)` / `inner.handle(id, vm)`: checks that the VM is stopped at an
    /// `ecalli` whose built-in host call was not performed yet, performs it with `external` (or
    /// the VM's own inner machines), and outside the handler ends the run on panic / OOG.
    pub(crate) fn handle_builtin_js(
        &self,
        env: RawEnv,
        id: u32,
        external: Option<&RefCell<CoreInnerPvms>>,
    ) -> Res<Val> {
        self.with(|_| ())?;
        let not_now = |why: &str| {
            Fail::new(
                Code::InvalidState,
                format!(
                    "built-in host call {id}: {why}; a built-in host call is performed only while \
                     the VM is stopped at an ecalli (inside its host-call handler, or after run() \
                     or step() stopped with status 'host'), once per ecalli"
                ),
            )
        };
        if self.callback.get() == Callback::Trace {
            return Err(not_now("called from the VM's trace sink"));
        }
        if self.host_call_open.get().is_none() {
            return Err(not_now("the VM is not stopped at an ecalli"));
        }
        if self.builtin_done.get() {
            return Err(not_now("already performed for this ecalli"));
        }
        let outcome = match external {
            None => self.perform_own_builtin(id)?,
            Some(cell) => {
                let mut inner = cell.try_borrow_mut().map_err(|_| busy())?;
                self.perform_builtin(&mut inner, id)?
            }
        };
        if let Some(o) = outcome {
            self.builtin_done.set(true);
            if self.callback.get() != Callback::Handler {
                // No handler will return the outcome: a panic or OOG ends the run now, as it
                // would inside a run (the pc stays at the ecalli).
                if let Some(end) = self.with(|i| i.finish_host_call(o))? {
                    self.state.set(State::Exited(end));
                    self.host_call_open.set(None);
                    self.jip6_on_exit(end)?;
                }
            }
        }
        outcome_value(env, outcome)
    }
}

/// A set of inner PVMs (GP 𝕀, the refine context's machines) and the handler of the PVM-level
/// host calls, independent of any VM: the machines live as long as this object. Each VM also has
/// a set of its own (`vm.handleBuiltin`, `builtins: true`); use this class to control the
/// machines' lifetime yourself.
#[napi]
pub struct InnerPvms {
    inner: RefCell<CoreInnerPvms>,
    spec: Spec,
}

#[napi]
impl InnerPvms {
    /// No machines yet; host-call numbering and rules of `spec` (default `'0.8.0'`).
    #[napi(constructor, ts_args_type = "spec?: SpecVersion | null")]
    pub fn new(env: &Env, spec: Option<Unknown>) -> Result<Self> {
        let env = env.raw();
        guard(env, || {
            let spec = parse_spec(env, spec.map(|s| s.raw()), "spec")?;
            Ok(InnerPvms {
                inner: RefCell::new(CoreInnerPvms::new(spec)),
                spec,
            })
        })
    }

    /// Performs host call `id` on `vm` if it is one of the PVM-level host calls (see
    /// `builtinHostCallIds`), with this object's machines: `undefined` if it is not, else the
    /// outcome for the handler to return. Same rules as `vm.handleBuiltin`; `vm` must run a
    /// program of the same spec (else `INVALID_ARGUMENT`).
    #[napi(ts_args_type = "id: number, vm: Pvm", ts_return_type = "BuiltinResult")]
    pub fn handle(&self, env: &Env, id: Unknown, vm: Either<&Pvm, Unknown>) -> Result<Val> {
        let env = env.raw();
        guard(env, || {
            let id = js::to_u32(env, id.raw(), "id")?;
            // napi-rs converts (and borrow-tracks) a `Pvm`; anything else is ours to report.
            let vm = match vm {
                Either::A(vm) => vm,
                Either::B(other) => {
                    return Err(Fail::new(
                        Code::InvalidArgument,
                        format!(
                            "vm must be a Pvm (made by program.instantiate), got {}",
                            js::describe(env, other.raw())
                        ),
                    ))
                }
            };
            let spec = vm.with(|i| i.program().spec())?;
            if spec != self.spec {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    format!(
                        "these inner PVMs follow GP {}, the VM's program GP {}",
                        self.spec.as_str(),
                        spec.as_str()
                    ),
                ));
            }
            let r = vm.handle_builtin_js(env, id, Some(&self.inner));
            vm.account();
            r
        })
    }

    /// The number of live inner machines.
    #[napi(getter)]
    pub fn machine_count(&self, env: &Env) -> Result<u32> {
        guard(env.raw(), || {
            Ok(self.inner.try_borrow().map_or(0, |i| i.len() as u32))
        })
    }

    /// The Gray Paper version these machines follow.
    #[napi(getter, ts_return_type = "'0.8.0' | '0.7.2'")]
    pub fn spec(&self, env: &Env) -> Result<&'static str> {
        guard(env.raw(), || Ok(self.spec.as_str()))
    }

    /// The host-call ids `handle` answers.
    #[napi(getter)]
    pub fn ids(&self, env: &Env) -> Result<BuiltinHostCallIds> {
        guard(env.raw(), || Ok(HostCallIds::of(self.spec).into()))
    }
}
