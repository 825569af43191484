//! `Pvm`: one running instance.
//!
//! Soundness of re-entrancy. `run(hostCall)` calls JavaScript on every `ecalli`, and that
//! JavaScript calls methods of the same `Pvm` (registers, gas, memory). So:
//! - every method takes `&self` (napi-rs hands out shared borrows, which may nest), and the
//!   instance lives in an `UnsafeCell` that is only ever borrowed mutably inside [`Pvm::with`],
//!   whose closures never call JavaScript; the run loop drives `Instance::run` in such a short
//!   borrow, releases it, calls the handler, and repeats;
//! - `run`, `step` and `free` refuse to start while the handler runs (`REENTRANT_CALL`).
//!
//! The same holds for the other state a run touches: the VM's inner machines
//! ([`crate::builtin`]), its JIP-6 recording ([`crate::jip6`]) and trace sink calls
//! ([`crate::trace`]) are each borrowed only inside Rust code that calls no JavaScript.
//!
//! Zero-copy views. The instance is boxed, so its register array and its 4 KiB pages (each boxed
//! by pvm-core, `Memory::page_ptr`) do not move. `registers` is one external `BigUint64Array`
//! over the register array and `memory(address, length)` a Buffer over one external ArrayBuffer
//! per page; both are created once and cached, so no two external buffers ever cover the same
//! bytes. Views of a page are detached when the page is unmapped or made inaccessible, and all
//! views when the VM is freed. Each external buffer's finalizer holds an `Rc` of the instance, so
//! if the `Pvm` object is garbage-collected while a view is still reachable, the memory behind
//! the view stays alive until the view itself is collected.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::BTreeMap;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use pvm_core::inner::InnerPvms;
use pvm_core::{Access, Exit, HostOutcome, Instance, MemoryError, NUM_REGISTERS, PAGE_SIZE};

use crate::error::{guard, Code, Fail, Res};
use crate::jip6::Recording;
use crate::js::{self, RawEnv, Val};

/// Why a run or step stopped (`Exit.status`, `vm.status`).
#[napi(string_enum = "lowercase")]
pub enum Status {
    /// Regular halt (a dynamic jump to 2^32 − 2^16), or a host call that returned `'halt'`.
    Halt,
    /// Panic (trap, invalid jump or instruction, access below 2^16), or a host call that returned
    /// `'panic'`.
    Panic,
    /// Out of gas, or a host call that returned `'oog'`.
    Oog,
    /// Page fault; `faultAddress` is the page address.
    Fault,
    /// `ecalli` without a host-call handler; `hostCallId` is its immediate. The next `run()`
    /// continues after the `ecalli`.
    Host,
    /// Not stopped: a fresh VM, or `step()` executed its instructions without an exit.
    Running,
    /// `vm.interrupt()` or `interruptVm(token)` stopped the run at the start of a basic block
    /// (nothing of it charged), or the VM's worker is being terminated. Not a GP exit: the next
    /// `run()` continues exactly where this one stopped.
    Interrupted,
}

/// The result of `run()` and `step()`.
#[napi(object, js_name = "Exit", object_from_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct ExitDecl {
    /// Why the VM stopped.
    #[napi(ts_type = "ExitStatus")]
    pub status: String,
    /// The pc: of the exiting instruction (halt, panic, fault, host), of the block that could not
    /// be paid for (oog), or of the next instruction (running).
    pub pc: u32,
    /// Remaining gas ϱ.
    #[napi(ts_type = "bigint")]
    pub gas: i64,
    /// The `ecalli` immediate (status `'host'`).
    pub host_call_id: Option<u32>,
    /// The faulting page's address (status `'fault'`).
    pub fault_address: Option<u32>,
}

/// Options of `run`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct RunOptions {
    /// Trace this run: execute one instruction at a time and call `trace(line)` with one line
    /// per instruction in `pvm trace`'s format (`STEP: PC pc NAME g=gas [pvmHash=0x…] reg="[…]"`),
    /// `ECALLI id g=gas [pvmHash=0x…]` after every host call that continues, and a final
    /// `EXIT status pc= g= pvmHash=0x… steps=` line. Much slower than an untraced run.
    #[napi(ts_type = "TraceSink")]
    pub trace: Option<String>,
    /// Include `pvmHash=0x…` in every N-th instruction line (and in the `ECALLI` lines) of the
    /// trace; 0 (default): never. `pvm trace` hashes every line (its `--hash-every` is 1).
    pub trace_hash_every: Option<u32>,
    /// Record the run's host calls as a JIP-7 log (`vm.jip7Log()`).
    pub jip7: Option<bool>,
    /// The earlier name of `jip7` (`jip7` wins if both are given).
    pub jip6: Option<bool>,
    /// Answer the PVM-level host calls inside libpvm for this run (default: `vm.builtins`).
    pub builtins: Option<bool>,
}

/// The parsed options of one `run`.
pub(crate) struct RunOpts {
    /// The trace sink, if tracing.
    pub trace: Option<Val>,
    pub hash_every: u64,
    pub jip6: bool,
    pub builtins: Option<bool>,
}

impl RunOpts {
    fn parse(env: RawEnv, options: Option<Val>) -> Res<RunOpts> {
        let mut o = RunOpts {
            trace: None,
            hash_every: 0,
            jip6: false,
            builtins: None,
        };
        let Some(opts) = options.filter(|v| !js::is_nullish(env, *v)) else {
            return Ok(o);
        };
        if js::type_of(env, opts) != sys::ValueType::napi_object {
            return Err(Fail::new(
                Code::InvalidArgument,
                format!("options must be an object, got {}", js::describe(env, opts)),
            ));
        }
        if let Some(t) = js::get(env, opts, c"trace")? {
            if !js::is_function(env, t) {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    format!(
                        "options.trace must be a function, got {}",
                        js::describe(env, t)
                    ),
                ));
            }
            o.trace = Some(t);
        }
        if let Some(v) = js::get(env, opts, c"traceHashEvery")? {
            o.hash_every = js::to_u64(env, v, "options.traceHashEvery")?;
        }
        if let Some(v) = js::get(env, opts, c"jip6")? {
            o.jip6 = js::to_bool(env, v, "options.jip6")?;
        }
        if let Some(v) = js::get(env, opts, c"jip7")? {
            o.jip6 = js::to_bool(env, v, "options.jip7")?;
        }
        if let Some(v) = js::get(env, opts, c"builtins")? {
            o.builtins = Some(js::to_bool(env, v, "options.builtins")?);
        }
        Ok(o)
    }
}

/// Options of `readMemory` and `writeMemory`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct MemoryOptions {
    /// Ignore page access: reads need mapped pages (any access), writes also go to read-only and
    /// inaccessible-but-mapped pages (initialising memory, as a loader does).
    pub unchecked: Option<bool>,
}

/// One page with storage.
#[napi(object, js_name = "PageInfo", object_from_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct PageInfoDecl {
    /// The page's first address (a multiple of 4096).
    pub address: u32,
    /// Its access.
    #[napi(ts_type = "PageAccess")]
    pub access: String,
}

/// The instance, shared with the finalizers of the external buffers that view it.
///
/// It also tells V8 how much native memory it holds (`napi_adjust_external_memory`): a VM's
/// JavaScript object is tiny, so without this V8 sees no reason to collect unfreed VMs, and
/// thousands of them (each with megabytes of guest pages) pile up until the process runs out of
/// memory. The amount is an estimate, [`native_size`], re-measured whenever an operation may
/// have changed it (creation, `run`, `step`, memory writes and views, page maps, built-in host
/// calls) and given back when the instance is freed or dropped.
struct Core {
    inst: UnsafeCell<Option<Box<Instance>>>,
    env: RawEnv,
    /// Bytes currently reported to V8 for this instance.
    reported: Cell<i64>,
}

/// The fixed native cost of one instance (the `Instance`, its page table's touched parts and the
/// binding's state), measured at roughly 6–22 KiB in RSS per VM; rounded up.
const INSTANCE_BASE_BYTES: i64 = 32 << 10;

/// Estimated native bytes held by `inst` and the inner machines — the fixed cost plus 4 KiB per
/// page with storage of its own (pages that were never written take none) — and the number of
/// mapped pages that measuring it visited (its cost).
fn native_size(inst: &Instance, inner: Option<&InnerPvms>) -> (i64, u64) {
    let count = |m: &pvm_core::Memory| (m.backed_pages() as i64, m.pages().count() as u64);
    let (mut pages, mut visited) = count(inst.memory());
    let mut machines = 0;
    if let Some(inner) = inner.filter(|i| !i.is_empty()) {
        // Machine ids are small (at most a few dozen machines live at once).
        let mut n = 0u64;
        while machines < inner.len() && n < 1 << 16 {
            if let Some(m) = inner.machine(n) {
                let (p, v) = count(m.memory());
                pages += p;
                visited += v;
                machines += 1;
            }
            n += 1;
        }
    }
    let bytes = INSTANCE_BASE_BYTES * (1 + machines as i64) + pages * PAGE_SIZE as i64;
    (bytes, visited)
}

/// Operations that move at least this many bytes re-measure at once (see [`Pvm::account`]).
const ACCOUNT_NOW_BYTES: u64 = 1 << 20;

impl Core {
    /// Tells V8 that this instance now holds `bytes` of native memory.
    fn report(&self, bytes: i64) {
        let delta = bytes - self.reported.get();
        if delta == 0 {
            return;
        }
        let mut total = 0i64;
        // SAFETY: `env` is the env the instance was created in; this runs on its thread (a
        // method call or a finalizer). The call only updates V8's external-memory counter.
        let status = unsafe { sys::napi_adjust_external_memory(self.env, delta, &mut total) };
        if status == sys::Status::napi_ok {
            self.reported.set(bytes);
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // The last holder (the `Pvm` or a view's finalizer) is gone: so is the memory.
        self.report(0);
    }
}

#[derive(Clone, Copy)]
pub(crate) enum State {
    /// Fresh, or stepped without an exit.
    Running,
    Exited(Exit),
}

#[derive(Default)]
struct Views {
    /// The `BigUint64Array` over the registers.
    registers: Option<sys::napi_ref>,
    /// Page index → external ArrayBuffer over that page.
    pages: BTreeMap<u32, sys::napi_ref>,
}

/// Which JavaScript callback of this VM is running.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Callback {
    None,
    /// The host-call handler of `run`.
    Handler,
    /// The trace sink of a traced `run`.
    Trace,
}

/// A PVM instance: registers, pc, gas and memory. Made by `Program.instantiate`.
#[napi]
pub struct Pvm {
    core: Rc<Core>,
    env: RawEnv,
    pub(crate) callback: Cell<Callback>,
    pub(crate) state: Cell<State>,
    views: RefCell<Views>,
    /// Set when the runtime refuses external buffers: views are then copies.
    copies_only: Cell<bool>,
    /// The id of the `ecalli` the VM is stopped at while that host call is not complete (inside
    /// the handler, or after a run stopped with status 'host'); built-in host calls need it.
    pub(crate) host_call_open: Cell<Option<u32>>,
    /// A built-in host call was performed for the open `ecalli`.
    pub(crate) builtin_done: Cell<bool>,
    /// `vm.builtins`: runs answer the PVM-level host calls themselves.
    builtins: Cell<bool>,
    /// The VM's inner machines (created on the first built-in host call).
    pub(crate) inner: RefCell<Option<InnerPvms>>,
    /// Instructions executed by traced runs (the trace's step numbers).
    pub(crate) trace_steps: Cell<u64>,
    /// The bytes of the program (JIP-6 `program` line).
    pub(crate) program_bytes: Rc<[u8]>,
    /// The arguments of a standard program at their address (JIP-6 prelude).
    /// `vm.invoke` replaces it with the new invocation's arguments.
    pub(crate) args_write: RefCell<Option<(u32, Vec<u8>)>>,
    /// The JIP-6 log, if a run recorded one.
    pub(crate) jip6: RefCell<Option<Recording>>,
    /// Operations left before the native memory is re-measured ([`Pvm::account`]).
    account_budget: Cell<u32>,
    /// Re-measure at the next [`Pvm::account`] whatever the budget says.
    account_now: Cell<bool>,
    /// Runs are being recorded (a recorded run is in progress or stopped at a host call).
    pub(crate) jip6_active: Cell<bool>,
    /// The VM's entry in the interrupt registry ([`crate::interrupt`]).
    interrupt: crate::interrupt::Registration,
    /// A host call is open in the recording: accessor calls are recorded.
    pub(crate) recording_call: Cell<bool>,
}

impl Drop for Pvm {
    fn drop(&mut self) {
        // The JavaScript object was collected (or the env is shutting down). Views that are still
        // reachable keep the instance alive through their finalizers, so only the references go.
        // This runs in napi-rs's finalizer: nothing may unwind from here, so the parts whose
        // drop does real work (the instance, the inner machines) are dropped under
        // `panic::catch`; what remains for the field drops is trivial.
        let views = std::mem::take(self.views.get_mut());
        let inner = self.inner.get_mut().take();
        let inst = if Rc::strong_count(&self.core) == 1 {
            // SAFETY: no view holds the core (the count is 1) and no `with` borrow is live
            // (the object is being finalized), so nothing else can reach the instance.
            unsafe { (*self.core.inst.get()).take() }
        } else {
            None
        };
        let env = self.env;
        let interrupt = &self.interrupt;
        let _ = crate::panic::catch(move || {
            interrupt.unregister();
            if let Some(r) = views.registers {
                js::delete_ref(env, r);
            }
            for (_, r) in views.pages {
                js::delete_ref(env, r);
            }
            drop(inner);
            drop(inst);
        });
    }
}

fn freed() -> Fail {
    Fail::new(
        Code::VmFreed,
        "this VM was freed (vm.free()); create a new one with program.instantiate()",
    )
}

fn status_name(exit: Option<Exit>) -> &'static str {
    match exit {
        None => "running",
        Some(e) => e.name(),
    }
}

fn access_name(a: Access) -> &'static str {
    match a {
        Access::None => "none",
        Access::Read => "read",
        Access::Write => "write",
    }
}

/// `(address, length)` as a 32-bit range, or an error naming the overflow.
fn range_end(address: u32, length: u32) -> Res<()> {
    if address as u64 + length as u64 > 1 << 32 {
        return Err(Fail::from(MemoryError::OutOfRange {
            address: address as u64,
            length: length as u64,
        }));
    }
    Ok(())
}

fn memory_options(env: RawEnv, options: Option<Unknown>) -> Res<bool> {
    let Some(o) = options
        .map(|o| o.raw())
        .filter(|o| !js::is_nullish(env, *o))
    else {
        return Ok(false);
    };
    if js::type_of(env, o) != sys::ValueType::napi_object {
        return Err(Fail::new(
            Code::InvalidArgument,
            format!("options must be an object, got {}", js::describe(env, o)),
        ));
    }
    match js::get(env, o, c"unchecked")? {
        Some(v) => js::to_bool(env, v, "options.unchecked"),
        None => Ok(false),
    }
}

impl Pvm {
    pub(crate) fn new(
        env: RawEnv,
        inst: Instance,
        program_bytes: Rc<[u8]>,
        args_write: Option<(u32, Vec<u8>)>,
    ) -> Pvm {
        let interrupt = crate::interrupt::Registration::new(env, inst.interrupt_handle());
        Pvm {
            core: Rc::new(Core {
                inst: UnsafeCell::new(Some(Box::new(inst))),
                env,
                reported: Cell::new(0),
            }),
            env,
            callback: Cell::new(Callback::None),
            state: Cell::new(State::Running),
            views: RefCell::new(Views::default()),
            copies_only: Cell::new(false),
            host_call_open: Cell::new(None),
            builtin_done: Cell::new(false),
            builtins: Cell::new(false),
            inner: RefCell::new(None),
            trace_steps: Cell::new(0),
            program_bytes,
            args_write: RefCell::new(args_write),
            jip6: RefCell::new(None),
            account_budget: Cell::new(0),
            account_now: Cell::new(false),
            jip6_active: Cell::new(false),
            recording_call: Cell::new(false),
            interrupt,
        }
    }

    /// After a run or step stopped with `Exit::Interrupted`: true if that ends the run (the host
    /// asked for it, or the env is being torn down), false for a watchdog poll (continue).
    fn interrupt_ends_run(&self, env: RawEnv) -> bool {
        self.interrupt.take_request() || js::env_stopping(env)
    }

    pub(crate) fn set_builtins_default(&self, on: bool) {
        self.builtins.set(on);
    }

    /// Re-measures the native memory of the instance and its inner machines for V8 (see [`Core`]).
    /// A no-op for a freed VM; skipped (not wrong, only stale) while the inner machines are in use.
    ///
    /// Measuring visits every mapped page (and a 2 KiB summary bitmap), so it is amortised: after
    /// a measurement that visited `n` pages the next `16 + n / 32` operations skip it (a VM with
    /// 64 MiB mapped re-measures every 528 operations), unless an operation moved at least
    /// [`ACCOUNT_NOW_BYTES`] (`note_bytes`), which re-measures at once. Creation always measures.
    pub(crate) fn account(&self) {
        let left = self.account_budget.get();
        if left > 0 && !self.account_now.get() {
            self.account_budget.set(left - 1);
            return;
        }
        self.account_now.set(false);
        let Ok(inner) = self.inner.try_borrow() else {
            return;
        };
        if let Ok((bytes, visited)) = self.with(|i| native_size(i, inner.as_ref())) {
            self.core.report(bytes);
            self.account_budget
                .set((16 + visited / 32).min(u32::MAX as u64) as u32);
        }
    }

    /// An operation wrote, mapped or unmapped `bytes`: a large one is reported to V8 at once.
    fn note_bytes(&self, bytes: u64) {
        if bytes >= ACCOUNT_NOW_BYTES {
            self.account_now.set(true);
        }
    }

    /// `Ok` unless the VM was freed (`VM_FREED`): every method and setter but `free` and `freed`
    /// checks this first.
    pub(crate) fn live(&self) -> Res<()> {
        self.with(|_| ())
    }

    /// [`guard`] for the methods of a VM: throws `VM_FREED` before anything else (arguments
    /// included) if the VM was freed.
    fn guard<T>(&self, env: RawEnv, f: impl FnOnce() -> Res<T>) -> Result<T> {
        guard(env, || {
            self.live()?;
            f()
        })
    }

    /// [`Pvm::guard`] for methods that may change the VM's native memory (running, writing,
    /// mapping, views, built-in host calls): re-measures it for V8 afterwards, however `f` ends.
    fn guard_mem<T>(&self, env: RawEnv, f: impl FnOnce() -> Res<T>) -> Result<T> {
        let r = self.guard(env, f);
        self.account();
        r
    }

    /// Runs `f` with the instance borrowed mutably. `f` must not call JavaScript (which could
    /// re-enter and borrow again), and callers never nest `with`.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Instance) -> R) -> Res<R> {
        // SAFETY: single-threaded (a napi class lives on its env's thread). The only mutable
        // borrows of the instance are made here, last for the duration of `f`, and `f` never
        // calls JavaScript or `with`, so no two borrows overlap. External views write the same
        // memory only while JavaScript runs, i.e. never during `f`.
        let slot = unsafe { &mut *self.core.inst.get() };
        match slot {
            Some(inst) => Ok(f(inst)),
            None => Err(freed()),
        }
    }

    fn not_in_callback(&self, what: &str) -> Res<()> {
        match self.callback.get() {
            Callback::None => Ok(()),
            Callback::Handler => Err(Fail::new(
                Code::ReentrantCall,
                format!(
                    "vm.{what}() was called from inside this VM's host-call handler; return from the \
                     handler instead (the guest continues at the next instruction, or ends the run \
                     if the handler returns 'halt', 'panic' or 'oog')"
                ),
            )),
            Callback::Trace => Err(Fail::new(
                Code::ReentrantCall,
                format!("vm.{what}() was called from inside this VM's trace sink"),
            )),
        }
    }

    /// The `Exit` object for the current state.
    fn exit_object(&self, env: RawEnv, exit: Option<Exit>) -> Res<Val> {
        let (pc, gas) = self.with(|i| (i.pc(), i.gas()))?;
        let name = status_name(exit);
        let status = js::STATUS_NAMES
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| Fail::new(Code::Internal, format!("unknown status {name}")))?;
        let extra = match exit {
            Some(Exit::HostCall(id)) => js::ExitExtra::HostCallId(id),
            Some(Exit::PageFault(a)) => js::ExitExtra::FaultAddress(a),
            _ => js::ExitExtra::None,
        };
        js::exit_object(env, status, pc, gas, extra)
    }

    fn last_exit(&self) -> Option<Exit> {
        match self.state.get() {
            State::Running => None,
            State::Exited(e) => Some(e),
        }
    }

    fn run_impl(
        &self,
        env: RawEnv,
        this: Val,
        handler: Option<Val>,
        options: Option<Val>,
    ) -> Res<Val> {
        self.not_in_callback("run")?;
        let (handler, opts) = Self::run_args(env, handler, options)?;
        self.run_parsed(env, this, handler, opts)
    }

    /// Checks `run`'s handler and reads its options (which may run JavaScript getters).
    fn run_args(
        env: RawEnv,
        handler: Option<Val>,
        options: Option<Val>,
    ) -> Res<(Option<Val>, RunOpts)> {
        let handler = match handler.filter(|h| !js::is_nullish(env, *h)) {
            Some(h) if js::is_function(env, h) => Some(h),
            Some(h) => {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    format!("hostCall must be a function, got {}", js::describe(env, h)),
                ))
            }
            None => None,
        };
        // Options may run JavaScript (getters): read them before touching any state.
        Ok((handler, RunOpts::parse(env, options)?))
    }

    /// `vm.invoke(pc, args, gas, hostCall, options)`: a new invocation (see [`Pvm::invoke`]).
    #[allow(clippy::too_many_arguments)]
    fn invoke_impl(
        &self,
        env: RawEnv,
        this: Val,
        pc: Val,
        args: Val,
        gas: Val,
        handler: Option<Val>,
        options: Option<Val>,
    ) -> Res<Val> {
        self.not_in_callback("invoke")?;
        // Everything that may run JavaScript first; the arguments are copied at once.
        let (handler, opts) = Self::run_args(env, handler, options)?;
        let pc = js::to_u32(env, pc, "pc")?;
        let gas = js::to_i64(env, gas, "gas")?;
        let args = if js::is_nullish(env, args) {
            Vec::new()
        } else {
            js::to_bytes(env, args, "args")?.to_vec()
        };
        // Checked before anything changes (the instance would refuse them too, but views of the
        // argument pages are detached before it unmaps them).
        let args_start = self
            .with(|i| i.program().standard_layout().map(|l| l.args_start()))?
            .ok_or(pvm_core::ProgramError::InvokeWithoutLayout)?;
        if args.len() as u64 > pvm_core::program::INPUT_SIZE {
            return Err(pvm_core::ProgramError::ArgumentsTooLong { len: args.len() }.into());
        }
        // The previous invocation's recording ends here (its open host call is closed).
        self.jip6_begin_run(false)?;
        self.detach_pages(env, args_start, pvm_core::program::INPUT_SIZE as u32);
        self.with(|i| i.prepare_invoke(pc, &args, gas))??;
        self.state.set(State::Running);
        self.host_call_open.set(None);
        self.builtin_done.set(false);
        self.trace_steps.set(0);
        // A new Ψ_M invocation starts with an empty refine context (no inner machines).
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            *inner = None;
        }
        *self.args_write.borrow_mut() = (!args.is_empty()).then_some((args_start, args));
        self.run_parsed(env, this, handler, opts)
    }

    /// `run` with its arguments checked and read.
    fn run_parsed(&self, env: RawEnv, this: Val, handler: Option<Val>, opts: RunOpts) -> Res<Val> {
        self.with(|_| ())?;
        let builtins = opts.builtins.unwrap_or(self.builtins.get());
        self.jip6_begin_run(opts.jip6)?;
        // Running completes (or, after a pc change, abandons) the host call the VM stopped at.
        self.host_call_open.set(None);
        // The watchdog polls untraced runs (traced runs call JavaScript at every instruction).
        let _running = opts.trace.is_none().then(|| self.interrupt.running());
        loop {
            // Untraced, the engine runs to the next exit in one borrow; traced, it steps.
            let exit = match opts.trace {
                None => self.with(|i| i.run())?,
                Some(sink) => self.traced_run(env, this, sink, opts.hash_every)?,
            };
            if exit == Exit::Interrupted && !self.interrupt_ends_run(env) {
                continue;
            }
            self.state.set(State::Exited(exit));
            let Exit::HostCall(id) = exit else {
                return self.conclude(env, this, &opts, exit);
            };
            self.host_call_open.set(Some(id));
            self.builtin_done.set(false);
            self.jip6_open_call(id)?;
            let builtin = if builtins {
                self.perform_own_builtin(id)?
            } else {
                None
            };
            let outcome = match (builtin, handler) {
                (Some(o), _) => o,
                (None, Some(h)) => self.call_handler(env, h, this, id)?,
                // Stop at the ecalli (status 'host'); the host call stays open.
                (None, None) => return self.conclude(env, this, &opts, exit),
            };
            self.jip6_close_call()?;
            self.host_call_open.set(None);
            if outcome == HostOutcome::Continue {
                if let Some(sink) = opts.trace {
                    let line = self.ecalli_line(id, opts.hash_every)?;
                    self.emit(env, this, sink, &line)?;
                }
                continue;
            }
            // The run ends inside the host call (GP Ψ_H): the pc stays at the `ecalli` and the
            // next run does not continue past it.
            let end = self.with(|i| i.finish_host_call(outcome))?.unwrap_or(exit);
            return self.conclude(env, this, &opts, end);
        }
    }

    /// Ends a run with `exit`: the JIP-6 termination (final exits), the trace's `EXIT` line, and
    /// the `Exit` object.
    fn conclude(&self, env: RawEnv, this: Val, opts: &RunOpts, exit: Exit) -> Res<Val> {
        self.state.set(State::Exited(exit));
        // An interrupted run, like one stopped at a host call, continues (and so does its log).
        if !matches!(exit, Exit::HostCall(_) | Exit::Interrupted) {
            self.host_call_open.set(None);
            self.jip6_on_exit(exit)?;
        }
        if let Some(sink) = opts.trace {
            let line = self.exit_line(exit)?;
            self.emit(env, this, sink, &line)?;
        }
        self.exit_object(env, Some(exit))
    }

    /// One host-call round trip: `handler.call(vm, id, vm)` in its own handle scope. Returns the
    /// handler's outcome (`Continue` for `undefined`, `null` or `'continue'`).
    fn call_handler(&self, env: RawEnv, handler: Val, this: Val, id: u32) -> Res<HostOutcome> {
        let mut scope = ptr::null_mut();
        // SAFETY: scopes are opened and closed in pairs on this thread.
        js::check(
            env,
            unsafe { sys::napi_open_handle_scope(env, &mut scope) },
            "open scope",
        )?;
        self.callback.set(Callback::Handler);
        let result = (|| {
            let args = [js::uint32(env, id)?, this];
            let mut ret = ptr::null_mut();
            // SAFETY: all values are live in this env; no Rust borrow of the instance is held.
            let status =
                unsafe { sys::napi_call_function(env, this, handler, 2, args.as_ptr(), &mut ret) };
            self.callback.set(Callback::None);
            js::check(env, status, "calling the host-call handler")?;
            if js::is_nullish(env, ret) {
                return Ok(HostOutcome::Continue);
            }
            let mut buf = [0u8; 16];
            match js::short_string(env, ret, &mut buf) {
                Some("continue") => Ok(HostOutcome::Continue),
                Some("halt") => Ok(HostOutcome::Halt),
                Some("panic") => Ok(HostOutcome::Panic),
                Some("oog") => Ok(HostOutcome::OutOfGas),
                _ => Err(Fail::new(
                    Code::InvalidArgument,
                    format!(
                        "the host-call handler (ecalli {id}) returned {}; expected undefined, \
                         'continue', 'halt', 'panic' or 'oog' (handlers are synchronous: a Promise \
                         is not awaited; the VM stays at the ecalli, status 'host')",
                        match js::short_string(env, ret, &mut [0u8; 16]) {
                            Some(s) => format!("'{s}'"),
                            None => js::describe(env, ret).to_string(),
                        }
                    ),
                )),
            }
        })();
        self.callback.set(Callback::None);
        // SAFETY: closes the scope opened above; the results are plain Rust values.
        unsafe { sys::napi_close_handle_scope(env, scope) };
        result
    }

    fn step_impl(&self, env: RawEnv, count: u32) -> Res<Val> {
        self.not_in_callback("step")?;
        self.with(|_| ())?;
        if count > 0 {
            // Steps are not recorded: a JIP-6 recording in progress ends here.
            self.jip6_begin_run(false)?;
            self.host_call_open.set(None);
        }
        let mut left = count;
        let exit = loop {
            let exit = self.with(|i| {
                while left > 0 {
                    match i.step() {
                        Some(e) => return Some(e),
                        None => left -= 1,
                    }
                }
                None
            })?;
            // A stale watchdog poll (from an earlier run) is not an exit of a step.
            if exit != Some(Exit::Interrupted) || self.interrupt_ends_run(env) {
                break exit;
            }
        };
        match exit {
            Some(e) => {
                self.state.set(State::Exited(e));
                if let Exit::HostCall(id) = e {
                    self.host_call_open.set(Some(id));
                    self.builtin_done.set(false);
                }
            }
            None if count > 0 => self.state.set(State::Running),
            None => {}
        }
        self.exit_object(env, if count > 0 { exit } else { self.last_exit() })
    }

    fn registers_impl(&self, env: RawEnv) -> Res<Val> {
        if let Some(r) = self.views.borrow().registers {
            if let Some(v) = js::deref(env, r) {
                return Ok(v);
            }
        }
        let regs_ptr = self.with(|i| i.registers_mut().as_mut_ptr())?;
        if !self.copies_only.get() {
            // SAFETY: the boxed instance's 13 registers do not move until the instance is dropped,
            // which happens only after this buffer is detached (`free`) or finalized (the keepalive
            // `Rc` below).
            let ab = unsafe {
                js::external_arraybuffer(
                    env,
                    regs_ptr.cast::<u8>(),
                    NUM_REGISTERS * 8,
                    self.core.clone(),
                )?
            };
            if let Some(ab) = ab {
                let ta = js::biguint64_array(env, ab, NUM_REGISTERS)?;
                self.views.borrow_mut().registers = Some(js::make_ref(env, ta)?);
                return Ok(ta);
            }
            self.copies_only.set(true);
        }
        let regs = self.with(|i| *i.registers())?;
        js::biguint64_array_copy(env, &regs)
    }

    fn memory_view(&self, env: RawEnv, address: u32, length: u32) -> Res<Val> {
        if length == 0 {
            return js::buffer_copy(env, &[]);
        }
        let offset = address % PAGE_SIZE;
        if offset as u64 + length as u64 > PAGE_SIZE as u64 {
            return Err(Fail::new(
                Code::InvalidArgument,
                format!(
                    "vm.memory({address:#x}, {length}) spans {} pages; a zero-copy view covers at \
                     most one 4 KiB page (pages are stored separately). Use vm.readMemory()/\
                     vm.writeMemory() to copy, or one view per page",
                    (offset as u64 + length as u64).div_ceil(PAGE_SIZE as u64)
                ),
            )
            .with(c"address", address as f64));
        }
        let page = address / PAGE_SIZE;
        let page_ptr = self.with(|i| {
            let m = i.memory_mut();
            if m.access(address) == Access::None {
                Err(MemoryError::Inaccessible {
                    address,
                    write: false,
                })
            } else {
                m.page_ptr(page).ok_or(MemoryError::PageLimit {
                    address: page * PAGE_SIZE,
                    limit: m.page_limit().unwrap_or(u64::MAX),
                })
            }
        })??;
        if !self.copies_only.get() {
            let cached = self.views.borrow().pages.get(&page).copied();
            let ab = match cached.and_then(|r| js::deref(env, r)) {
                Some(ab) => Some(ab),
                None => {
                    // SAFETY: pvm-core boxes each page and never moves it while mapped; the buffer
                    // is detached before the page is unmapped or the instance freed, and keeps the
                    // instance alive otherwise.
                    let ab = unsafe {
                        js::external_arraybuffer(
                            env,
                            page_ptr,
                            PAGE_SIZE as usize,
                            self.core.clone(),
                        )?
                    };
                    if let Some(ab) = ab {
                        let r = js::make_ref(env, ab)?;
                        if let Some(old) = self.views.borrow_mut().pages.insert(page, r) {
                            js::delete_ref(env, old);
                        }
                    }
                    ab
                }
            };
            match ab {
                Some(ab) => return js::buffer_view(env, ab, offset, length),
                None => self.copies_only.set(true),
            }
        }
        let mut buf = vec![0u8; length as usize];
        self.with(|i| i.memory().read_unchecked(address, &mut buf))??;
        js::buffer_copy(env, &buf)
    }

    /// Detaches the views of the pages covering `[address, address + length)`.
    fn detach_pages(&self, env: RawEnv, address: u32, length: u32) {
        if length == 0 {
            return;
        }
        let first = address / PAGE_SIZE;
        let last = ((address as u64 + length as u64).div_ceil(PAGE_SIZE as u64)) as u32;
        let removed: Vec<sys::napi_ref> = {
            let mut views = self.views.borrow_mut();
            let keys: Vec<u32> = views.pages.range(first..last).map(|(k, _)| *k).collect();
            keys.iter().filter_map(|k| views.pages.remove(k)).collect()
        };
        for r in removed {
            if let Some(ab) = js::deref(env, r) {
                js::detach(env, ab);
            }
            js::delete_ref(env, r);
        }
    }

    fn free_impl(&self, env: RawEnv) -> Res<()> {
        self.not_in_callback("free")?;
        let views = std::mem::take(&mut *self.views.borrow_mut());
        if let Some(r) = views.registers {
            if let Some(ab) = js::deref(env, r).and_then(|ta| js::typedarray_buffer(env, ta)) {
                js::detach(env, ab);
            }
            js::delete_ref(env, r);
        }
        for (_, r) in views.pages {
            if let Some(ab) = js::deref(env, r) {
                js::detach(env, ab);
            }
            js::delete_ref(env, r);
        }
        // SAFETY: no borrow of the instance is live (not inside `with`); every view over it has
        // just been detached.
        let inst = unsafe { (*self.core.inst.get()).take() };
        drop(inst);
        self.core.report(0);
        self.interrupt.unregister();
        // The inner machines go too (they are not borrowed: no host call is being handled).
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            *inner = None;
        }
        self.host_call_open.set(None);
        Ok(())
    }

    fn output_impl(&self, env: RawEnv) -> Res<Val> {
        // GP A.8: after a halt, μ[φ7 .. φ7+φ8] if readable, else empty. (A step that did not
        // exit since the halt makes the status 'running': no output then.)
        if self.last_exit() != Some(Exit::Halt) {
            return Ok(js::null(env));
        }
        match self.with(|i| i.output())? {
            Some(out) => js::buffer_copy(env, &out),
            None => Ok(js::null(env)),
        }
    }
}

fn arg_u32(env: RawEnv, v: &Unknown, what: &str) -> Res<u32> {
    js::to_u32(env, v.raw(), what)
}

fn reg_index(env: RawEnv, v: &Unknown) -> Res<usize> {
    let i = arg_u32(env, v, "index")?;
    if i as usize >= NUM_REGISTERS {
        return Err(Fail::new(
            Code::InvalidArgument,
            format!("register index must be 0..12, got {i}"),
        ));
    }
    Ok(i as usize)
}

#[napi]
impl Pvm {
    /// Runs until the VM stops (GP Ψ, or Ψ_H with a handler).
    ///
    /// With `hostCall`, every `ecalli` calls `hostCall(id, vm)` synchronously (with `this` = `vm`).
    /// The handler may read and write registers, gas and memory; when it returns `undefined` (or
    /// `'continue'`) the guest continues at the next instruction; `'halt'`, `'panic'` or `'oog'`
    /// end the run with that status. If it throws, `run` throws the same error and the VM stays
    /// resumable at the `ecalli` (status `'host'`; a later `run` continues after it).
    ///
    /// Without `hostCall`, an `ecalli` stops the run with status `'host'` and `hostCallId`; the
    /// next `run()` continues after the `ecalli`.
    ///
    /// `options`: `builtins` answers the PVM-level host calls inside libpvm (default
    /// `vm.builtins`), `trace` traces every instruction, `jip6` records the host calls (see
    /// `RunOptions`).
    #[napi(
        ts_args_type = "hostCall?: HostCallHandler | null, options?: RunOptions | null",
        ts_return_type = "Exit"
    )]
    pub fn run(
        &self,
        env: &Env,
        this: This,
        host_call: Option<Unknown>,
        options: Option<Unknown>,
    ) -> Result<Val> {
        let env = env.raw();
        let this = this.raw();
        self.guard_mem(env, || {
            self.run_impl(
                env,
                this,
                host_call.map(|h| h.raw()),
                options.map(|o| o.raw()),
            )
        })
    }

    /// A new invocation of a standard program (GP Ψ_M, A.7/A.8), run as `run(hostCall, options)`
    /// runs and returning the same `Exit`: sets r0 = 0xFFFF0000 (the halt address), r1 = the stack
    /// top, r7 = the argument address, r8 = `args.length` and the other registers to 0; unmaps
    /// the argument area (views of it are detached) and maps ⌈|args| / 4096⌉ read-only pages there
    /// holding `args`; sets `pc`, `gas`, clears `gasCharged` and drops the VM's inner machines (a
    /// new refine context). The rest of memory is kept from the previous invocation (instantiate
    /// again for a fresh one). A recorded run (`{ jip7: true }`) starts a new log with the new
    /// arguments. Throws `INVALID_STATE` for a program without the standard layout and
    /// `INVALID_ARGUMENT` for more than 2^24 bytes of arguments, with the VM unchanged.
    #[napi(
        ts_args_type = "pc: number, args: Uint8Array | null | undefined, gas: bigint | number, hostCall?: HostCallHandler | null, options?: RunOptions | null",
        ts_return_type = "Exit"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn invoke(
        &self,
        env: &Env,
        this: This,
        pc: Unknown,
        args: Unknown,
        gas: Unknown,
        host_call: Option<Unknown>,
        options: Option<Unknown>,
    ) -> Result<Val> {
        let env = env.raw();
        let this = this.raw();
        self.guard_mem(env, || {
            self.invoke_impl(
                env,
                this,
                pc.raw(),
                args.raw(),
                gas.raw(),
                host_call.map(|h| h.raw()),
                options.map(|o| o.raw()),
            )
        })
    }

    /// Executes up to `count` instructions (default 1). Returns status `'running'` if the VM did
    /// not stop; otherwise the exit as `run()` does (an `ecalli` stops with status `'host'`).
    #[napi(ts_args_type = "count?: number", ts_return_type = "Exit")]
    pub fn step(&self, env: &Env, count: Option<Unknown>) -> Result<Val> {
        let env = env.raw();
        self.guard_mem(env, || {
            let n = match count.filter(|c| !js::is_nullish(env, c.raw())) {
                Some(c) => arg_u32(env, &c, "count")?,
                None => 1,
            };
            self.step_impl(env, n)
        })
    }

    /// The status of the last run or step (`'running'` for a fresh VM).
    #[napi(getter, ts_return_type = "ExitStatus")]
    pub fn status(&self, env: &Env) -> Result<&'static str> {
        self.guard(env.raw(), || {
            self.with(|_| ()).map(|_| status_name(self.last_exit()))
        })
    }

    /// Interrupts this VM: its run ends with status `'interrupted'` at the next basic-block
    /// boundary (pc = that block, nothing of it charged), and the next `run()` continues exactly
    /// there. For the VM's own thread: from a host-call handler, a trace sink, or a timer between
    /// runs; if the VM is not running, its next run stops at its first block boundary (the
    /// request stays pending until a run consumes it). From another worker use
    /// `interruptVm(vm.interruptToken())`.
    #[napi]
    pub fn interrupt(&self, env: &Env) -> Result<()> {
        self.guard(env.raw(), || {
            self.interrupt.interrupt();
            Ok(())
        })
    }

    /// A token for `interruptVm(token)`, which interrupts this VM from any worker thread (post the
    /// number to it). A positive safe integer, unique in the process; after `free()` or garbage
    /// collection `interruptVm` returns false for it.
    #[napi]
    pub fn interrupt_token(&self, env: &Env) -> Result<f64> {
        self.guard(env.raw(), || Ok(self.interrupt.token as f64))
    }

    /// Total guest memory limit, in 4 KiB pages with storage of their own (`null`: no limit, the
    /// default). Mapping costs no storage; a page gets storage on its first write. A guest store
    /// that needs storage beyond the limit ends the run with status `'fault'` at the lowest such
    /// page of the store (nothing written, pc at the store: raise the limit and `run()` again to
    /// re-execute it, with the exact result of an unlimited run); host writes beyond it throw
    /// `MEMORY_FAULT` (`tryWriteMemory` returns the address) and views of such pages are refused.
    /// Setting it clears `memoryLimitReached`.
    #[napi(getter, ts_return_type = "number | null")]
    pub fn memory_limit(&self, env: &Env) -> Result<Option<f64>> {
        self.guard(env.raw(), || {
            self.with(|i| i.memory().page_limit().map(|p| p as f64))
        })
    }

    #[napi(setter, ts_args_type = "pages: number | null")]
    pub fn set_memory_limit(&self, env: &Env, pages: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let limit = if js::is_nullish(env, pages.raw()) {
                None
            } else {
                Some(js::to_u64(env, pages.raw(), "memoryLimit")?)
            };
            self.with(|i| i.memory_mut().set_page_limit(limit))
        })
    }

    /// Whether a write or view was refused because of `memoryLimit` since it was last set: a
    /// `'fault'` is then the limit's, not a page fault the GP defines.
    #[napi(getter)]
    pub fn memory_limit_reached(&self, env: &Env) -> Result<bool> {
        self.guard(env.raw(), || self.with(|i| i.memory().page_limit_reached()))
    }

    /// Whether `free()` was called.
    #[napi(getter)]
    pub fn freed(&self, env: &Env) -> Result<bool> {
        // SAFETY: a shared read of the slot's discriminant outside any `with`.
        guard(env.raw(), || {
            Ok(unsafe { (*self.core.inst.get()).is_none() })
        })
    }

    /// The 13 registers as a live, zero-copy `BigUint64Array`: writes change the VM. The same
    /// array is returned every time; it is detached (length 0) after `free()`. (Where the runtime
    /// refuses external buffers, e.g. Electron, this is a copy: use `setRegister`.)
    #[napi(getter, ts_return_type = "BigUint64Array")]
    pub fn registers(&self, env: &Env) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || self.registers_impl(env))
    }

    /// Sets the first `values.length` registers (at most 13).
    #[napi(
        setter,
        ts_args_type = "values: BigUint64Array | Array<bigint | number>"
    )]
    pub fn set_registers(&self, env: &Env, values: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let regs = js::to_registers(env, values.raw(), "registers")?;
            self.with(|i| i.registers_mut()[..regs.len()].copy_from_slice(&regs))?;
            for i in 0..regs.len() {
                self.jip6_record(|r| r.record_set_reg(i));
            }
            Ok(())
        })
    }

    /// Register `index` (0..12).
    #[napi(ts_args_type = "index: number", ts_return_type = "bigint")]
    pub fn get_register(&self, env: &Env, index: Unknown) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            let i = reg_index(env, &index)?;
            let v = self.with(|inst| inst.registers()[i])?;
            js::bigint_u64(env, v)
        })
    }

    /// Sets register `index` (0..12) to `value` (a bigint in 0..2^64 or a safe integer).
    #[napi(ts_args_type = "index: number, value: bigint | number")]
    pub fn set_register(&self, env: &Env, index: Unknown, value: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let i = reg_index(env, &index)?;
            let v = js::to_u64(env, value.raw(), "value")?;
            self.with(|inst| inst.registers_mut()[i] = v)?;
            self.jip6_record(|r| r.record_set_reg(i));
            Ok(())
        })
    }

    /// Remaining gas ϱ (a signed 64-bit value).
    #[napi(getter, ts_return_type = "bigint")]
    pub fn gas(&self, env: &Env) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            self.with(|i| i.gas()).and_then(|g| js::bigint_i64(env, g))
        })
    }

    #[napi(setter, ts_args_type = "value: bigint | number")]
    pub fn set_gas(&self, env: &Env, value: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let g = js::to_i64(env, value.raw(), "gas")?;
            self.with(|i| i.set_gas(g))?;
            self.jip6_record(|r| r.record_set_gas());
            Ok(())
        })
    }

    /// Instructions executed since creation (or the last assignment), the same with `run`,
    /// `step` and either backend (GP 0.8.0 gas is not an instruction count). Each execution of
    /// an instruction counts once, including the one that exits (`trap`, `ecalli`, the halting
    /// jump, a faulting load or store; retried, it counts again); an instruction that does not
    /// start (out of gas, interrupted) does not. `invoke` keeps counting.
    #[napi(getter, ts_return_type = "bigint")]
    pub fn instruction_count(&self, env: &Env) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            self.with(|i| i.instruction_count())
                .and_then(|n| js::bigint_u64(env, n))
        })
    }

    #[napi(setter, ts_args_type = "value: bigint | number")]
    pub fn set_instruction_count(&self, env: &Env, value: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let n = js::to_u64(env, value.raw(), "instructionCount")?;
            self.with(|i| i.set_instruction_count(n))
        })
    }

    /// The pc ı. After an `ecalli` it is the `ecalli`'s pc (also inside the handler). Setting it
    /// also cancels "continue after the ecalli": the next run starts exactly there.
    #[napi(getter)]
    pub fn pc(&self, env: &Env) -> Result<u32> {
        self.guard(env.raw(), || self.with(|i| i.pc()))
    }

    #[napi(setter, ts_args_type = "value: number")]
    pub fn set_pc(&self, env: &Env, value: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let pc = arg_u32(env, &value, "pc")?;
            self.with(|i| i.set_pc(pc))?;
            // The next run starts here: the host call the VM stopped at is abandoned.
            self.host_call_open.set(None);
            Ok(())
        })
    }

    /// The pc the next run or step starts at (after an `ecalli`: the next instruction's).
    #[napi(getter)]
    pub fn next_pc(&self, env: &Env) -> Result<u32> {
        self.guard(env.raw(), || self.with(|i| i.next_pc()))
    }

    /// The gas-charged flag χ (GP 0.8.0 A.4): whether the current basic block is paid for.
    #[napi(getter)]
    pub fn gas_charged(&self, env: &Env) -> Result<bool> {
        self.guard(env.raw(), || self.with(|i| i.gas_charged()))
    }

    #[napi(setter, ts_args_type = "value: boolean")]
    pub fn set_gas_charged(&self, env: &Env, value: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            let b = js::to_bool(env, value.raw(), "gasCharged")?;
            self.with(|i| i.set_gas_charged(b))
        })
    }

    /// Copies `length` bytes of guest memory. Checked as the guest sees it: throws a `PvmError`
    /// (`MEMORY_FAULT`, `address` = the lowest unreadable address) unless every byte is readable.
    /// With `{ unchecked: true }` any mapped page can be read.
    #[napi(
        ts_args_type = "address: number, length: number, options?: MemoryOptions | null",
        ts_return_type = "Buffer"
    )]
    pub fn read_memory(
        &self,
        env: &Env,
        address: Unknown,
        length: Unknown,
        options: Option<Unknown>,
    ) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            let address = arg_u32(env, &address, "address")?;
            let length = arg_u32(env, &length, "length")?;
            let unchecked = memory_options(env, options)?;
            range_end(address, length)?;
            let mut buf = vec![0u8; length as usize];
            self.with(|i| {
                if unchecked {
                    i.memory().read_unchecked(address, &mut buf)
                } else {
                    i.memory().read(address, &mut buf)
                }
            })??;
            if !unchecked && length > 0 {
                self.jip6_record(|r| r.record_read(address, &buf));
            }
            js::buffer_copy(env, &buf)
        })
    }

    /// Reads guest memory into `target` (as many bytes as it holds), checked as the guest sees
    /// it, without allocating or throwing on a fault: returns -1 when every byte was read, else
    /// the lowest unreadable address (and `target` is left unchanged). For hosts that read guest
    /// memory on every host call. Argument errors (a range past 2^32) still throw.
    #[napi(
        ts_args_type = "address: number, target: Uint8Array",
        ts_return_type = "number"
    )]
    pub fn read_memory_into(&self, env: &Env, address: Unknown, target: Unknown) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            let address = arg_u32(env, &address, "address")?;
            let (dst, len) = js::bytes_ptr(env, target.raw(), "target")?;
            let len32 = u32::try_from(len).map_err(|_| {
                Fail::new(Code::InvalidArgument, "target is longer than 2^32 bytes")
            })?;
            range_end(address, len32)?;
            let fault = SCRATCH.with_borrow_mut(|buf| -> Res<Option<u32>> {
                buf.clear();
                buf.resize(len, 0);
                match self.with(|i| i.memory().read(address, buf))? {
                    Ok(()) => {}
                    Err(e) => return fault_address(e),
                }
                if len > 0 {
                    // SAFETY: `dst` has `len` writable bytes (Node's report for the live
                    // `target`); `buf` is ours, so the two do not overlap; a raw copy makes no
                    // reference to `target`'s memory, which may alias guest page views.
                    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, len) };
                    js::wrote(env, target.raw(), len);
                    self.jip6_record(|r| r.record_read(address, buf));
                }
                Ok(None)
            })?;
            js::int64(env, fault.map_or(-1, |a| a as i64))
        })
    }

    /// Writes `data` to guest memory, checked as the guest sees it, without throwing on a
    /// fault: returns -1 when every byte was written, else the lowest unwritable address (and
    /// nothing is written). Argument errors (a range past 2^32) still throw.
    #[napi(
        ts_args_type = "address: number, data: Uint8Array",
        ts_return_type = "number"
    )]
    pub fn try_write_memory(&self, env: &Env, address: Unknown, data: Unknown) -> Result<Val> {
        let env = env.raw();
        self.guard_mem(env, || {
            let address = arg_u32(env, &address, "address")?;
            let fault = SCRATCH.with_borrow_mut(|buf| -> Res<Option<u32>> {
                // Copied first: `data` may be a view of guest memory itself.
                buf.clear();
                buf.extend_from_slice(js::to_bytes(env, data.raw(), "data")?);
                let len = u32::try_from(buf.len()).map_err(|_| {
                    Fail::new(Code::InvalidArgument, "data is longer than 2^32 bytes")
                })?;
                range_end(address, len)?;
                match self.with(|i| i.memory_mut().write(address, buf))? {
                    Ok(()) => {}
                    Err(e) => return fault_address(e),
                }
                if !buf.is_empty() {
                    self.jip6_record(|r| r.record_write(address, buf));
                }
                Ok(None)
            })?;
            js::int64(env, fault.map_or(-1, |a| a as i64))
        })
    }

    /// Writes guest memory. Checked: throws `MEMORY_FAULT` (nothing written) unless every byte
    /// is writable. With `{ unchecked: true }` it writes any mapped page, read-only included.
    #[napi(ts_args_type = "address: number, data: Uint8Array, options?: MemoryOptions | null")]
    pub fn write_memory(
        &self,
        env: &Env,
        address: Unknown,
        data: Unknown,
        options: Option<Unknown>,
    ) -> Result<()> {
        let env = env.raw();
        self.guard_mem(env, || {
            let address = arg_u32(env, &address, "address")?;
            // Options first: reading them may run JavaScript, which must not happen while `data`
            // borrows an ArrayBuffer's memory.
            let unchecked = memory_options(env, options)?;
            let data = js::to_bytes(env, data.raw(), "data")?;
            range_end(address, data.len().min(u32::MAX as usize) as u32)?;
            if data.len() > u32::MAX as usize {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    "data is longer than 2^32 bytes",
                ));
            }
            self.with(|i| {
                if unchecked {
                    i.memory_mut().write_unchecked(address, data)
                } else {
                    i.memory_mut().write(address, data)
                }
            })??;
            if !unchecked && !data.is_empty() {
                self.jip6_record(|r| r.record_write(address, data));
            }
            self.note_bytes(data.len() as u64);
            Ok(())
        })
    }

    /// A zero-copy Buffer over guest memory `[address, address + length)`, which must lie in one
    /// accessible 4 KiB page (else `INVALID_ARGUMENT` / `MEMORY_FAULT`). Writes through it are
    /// seen by the guest (bypassing write protection, as a host may). The Buffer is detached
    /// (length 0) when the page is unmapped or made inaccessible, or the VM is freed.
    #[napi(
        ts_args_type = "address: number, length: number",
        ts_return_type = "Buffer"
    )]
    pub fn memory(&self, env: &Env, address: Unknown, length: Unknown) -> Result<Val> {
        let env = env.raw();
        self.guard_mem(env, || {
            let address = arg_u32(env, &address, "address")?;
            let length = arg_u32(env, &length, "length")?;
            self.memory_view(env, address, length)
        })
    }

    /// Maps the pages covering `[address, address + length)` with `access`. New pages are
    /// zero-filled; pages that are already mapped keep their contents. `'none'` keeps the storage
    /// but makes it inaccessible (and detaches views of those pages). Addresses below 0x10000
    /// cannot be mapped.
    #[napi(ts_args_type = "address: number, length: number, access: PageAccess")]
    pub fn map_pages(
        &self,
        env: &Env,
        address: Unknown,
        length: Unknown,
        access: Unknown,
    ) -> Result<()> {
        let env = env.raw();
        self.guard_mem(env, || {
            let address = arg_u32(env, &address, "address")?;
            let length = arg_u32(env, &length, "length")?;
            let mut buf = [0u8; 16];
            let access = match js::to_short_string(env, access.raw(), &mut buf, "access")? {
                "read" => Access::Read,
                "write" => Access::Write,
                "none" => Access::None,
                other => {
                    return Err(Fail::new(
                        Code::InvalidArgument,
                        format!("access must be 'read', 'write' or 'none', got '{other}'"),
                    ))
                }
            };
            range_end(address, length)?;
            self.with(|i| i.memory_mut().map(address, length, access))??;
            self.note_bytes(length as u64);
            if access == Access::None {
                self.detach_pages(env, address, length);
            }
            Ok(())
        })
    }

    /// Unmaps the pages covering `[address, address + length)` and frees their storage; views of
    /// them are detached.
    #[napi(ts_args_type = "address: number, length: number")]
    pub fn unmap_pages(&self, env: &Env, address: Unknown, length: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard_mem(env, || {
            let address = arg_u32(env, &address, "address")?;
            let length = arg_u32(env, &length, "length")?;
            range_end(address, length)?;
            // Detach first: the storage is freed by the unmap.
            self.with(|_| ())?;
            self.detach_pages(env, address, length);
            self.with(|i| i.memory_mut().unmap(address, length))??;
            self.note_bytes(length as u64);
            Ok(())
        })
    }

    /// The access of the page holding `address`.
    #[napi(ts_args_type = "address: number", ts_return_type = "PageAccess")]
    pub fn page_access(&self, env: &Env, address: Unknown) -> Result<&'static str> {
        let env = env.raw();
        self.guard(env, || {
            let address = arg_u32(env, &address, "address")?;
            self.with(|i| access_name(i.memory().access(address)))
        })
    }

    /// Every page with storage, ascending, with its access.
    #[napi(ts_return_type = "PageInfo[]")]
    pub fn pages(&self, env: &Env) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            let pages: Vec<(u32, Access)> = self.with(|i| i.memory().pages().collect())?;
            let mut arr = ptr::null_mut();
            // SAFETY: plain array creation in a live env.
            js::check(
                env,
                unsafe { sys::napi_create_array_with_length(env, pages.len(), &mut arr) },
                "napi_create_array_with_length",
            )?;
            for (n, (p, a)) in pages.into_iter().enumerate() {
                let o = js::object(env)?;
                js::set(env, o, c"address", js::uint32(env, p * PAGE_SIZE)?)?;
                js::set(env, o, c"access", js::string(env, access_name(a))?)?;
                // SAFETY: `arr` and `o` are live values.
                js::check(
                    env,
                    unsafe { sys::napi_set_element(env, arr, n as u32, o) },
                    "napi_set_element",
                )?;
            }
            Ok(arr)
        })
    }

    /// GP Ψ_M's result after a halt: a copy of memory `[r7, r7 + r8)`, or an empty Buffer if that
    /// is not readable. `null` unless the last run halted.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn output(&self, env: &Env) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || self.output_impl(env))
    }

    /// Performs host call `id` if it is one of the PVM-level host calls of the program's spec
    /// (GP 0.8.0: 0 `gas`, 1 `grow_heap`, 9 `machine`, 10 `peek`, 11 `poke`, 12 `pages`,
    /// 13 `invoke`, 14 `expunge`; GP 0.7.2: 0 `gas`, 8 `machine` … 13 `expunge`), with the VM's
    /// own inner machines, which live as long as the VM. Returns `undefined` if `id` is not one of
    /// them, else the outcome for the handler to return: `vm.run((id, vm) => vm.handleBuiltin(id)
    /// ?? myHost(id, vm))`.
    ///
    /// Only while the VM is stopped at an `ecalli`: inside its host-call handler, or after `run()`
    /// or `step()` stopped with status `'host'` (then a `'panic'` or `'oog'` outcome ends the run
    /// at once: `vm.status` becomes `'panic'`/`'oog'`). At most once per `ecalli`. Otherwise
    /// throws `INVALID_STATE`.
    #[napi(ts_args_type = "id: number", ts_return_type = "BuiltinResult")]
    pub fn handle_builtin(&self, env: &Env, id: Unknown) -> Result<Val> {
        let env = env.raw();
        self.guard_mem(env, || {
            let id = arg_u32(env, &id, "id")?;
            self.handle_builtin_js(env, id, None)
        })
    }

    /// Whether runs answer the PVM-level host calls inside libpvm (without calling the handler)
    /// unless `run`'s `builtins` option says otherwise. Set by `instantiate({ builtins })`.
    #[napi(getter)]
    pub fn builtins(&self, env: &Env) -> Result<bool> {
        self.guard(env.raw(), || {
            self.live()?;
            Ok(self.builtins.get())
        })
    }

    #[napi(setter, ts_args_type = "value: boolean")]
    pub fn set_builtins(&self, env: &Env, value: Unknown) -> Result<()> {
        let env = env.raw();
        self.guard(env, || {
            self.live()?;
            js::to_bool(env, value.raw(), "builtins").map(|b| self.builtins.set(b))
        })
    }

    /// The number of live inner machines of the VM (made by `machine`, removed by `expunge`).
    #[napi(getter)]
    pub fn inner_machine_count(&self, env: &Env) -> Result<u32> {
        self.guard(env.raw(), || {
            self.with(|_| ()).and_then(|_| {
                let slot = self
                    .inner
                    .try_borrow()
                    .map_err(|_| Fail::new(Code::Internal, "the inner machines are in use"))?;
                Ok(slot.as_ref().map_or(0, |i| i.len()) as u32)
            })
        })
    }

    /// PVM hash v1 of the current state: blake2b-256 of E8(φ0..φ12) ⌢ E8(ϱ) ⌢ E4(page) ⌢ page
    /// bytes for every readable page holding a non-zero byte, ascending (`pvm_core::trace`).
    #[napi(ts_return_type = "Buffer")]
    pub fn pvm_hash(&self, env: &Env) -> Result<Val> {
        let env = env.raw();
        self.guard(env, || {
            self.with(|i| pvm_core::trace::pvm_hash(i))
                .and_then(|h| js::buffer_copy(env, &h))
        })
    }

    /// The hash preimage as text: `regs+gas: <hex>` and one `page 0x…: <E4(index)> <bytes>` line
    /// per hashed page. The hex after the colons, concatenated without spaces, is the exact
    /// preimage of `pvmHash()`.
    #[napi]
    pub fn dump_state(&self, env: &Env) -> Result<String> {
        self.guard(env.raw(), || self.with(|i| pvm_core::trace::dump_state(i)))
    }

    /// The earlier name of `jip7Log()` (the JIP-7 log of the last recorded run(s)), kept for one
    /// release.
    #[napi]
    pub fn jip6_log(&self, env: &Env) -> Result<String> {
        // The one method that works after `free()`: the log is not instance state, and "record,
        // free, then fetch the log" is a natural order. A freed VM without a log (or with a host
        // call still open, which needs the instance) throws `VM_FREED`.
        guard(env.raw(), || {
            let has_log = self.jip6.try_borrow().map_or(true, |l| l.is_some());
            if !has_log {
                self.live()?;
            }
            self.jip6_text()
        })
    }

    /// Frees the instance now (instead of at garbage collection). Detaches `registers` and every
    /// memory view; afterwards every method but `freed` throws `VM_FREED`. Idempotent.
    #[napi]
    pub fn free(&self, env: &Env) -> Result<()> {
        let env = env.raw();
        guard(env, || self.free_impl(env))
    }
}

thread_local! {
    /// Reused buffer of `readMemoryInto` / `tryWriteMemory`, so they allocate nothing per call.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The guest-visible fault address of a failed checked access (`Some`), or the argument error.
fn fault_address(e: pvm_core::MemoryError) -> Res<Option<u32>> {
    match e {
        pvm_core::MemoryError::Inaccessible { address, .. }
        | pvm_core::MemoryError::PageLimit { address, .. }
        | pvm_core::MemoryError::BelowMinimum { address } => Ok(Some(address)),
        e => Err(e.into()),
    }
}
