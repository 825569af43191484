//! Recording: the observer of a host call's effects ([`CallRecorder`], filled in by
//! [`HostCallContext::with_recorder`] or by a binding's accessors), page-map snapshots, and
//! [`run_recorded`].

use crate::host::{HostCallContext, HostOutcome};
use crate::inner::{HostCallIds, InnerPvms};
use crate::instance::{Exit, Instance};
use crate::memory::{Access, Memory, PAGE_SIZE};

use super::format::{AccessOrd, HostCallEntry, Jip7Log, PageChange, Termination, VmState};

/// What a handler did during one host call. [`HostCallContext::with_recorder`] fills it in;
/// bindings whose host callbacks reach the VM through their own accessors record with the
/// `record_*` methods, then build the log entry with [`CallRecorder::finish`].
#[derive(Clone, Debug, Default)]
pub struct CallRecorder {
    pub(crate) reads: Vec<(u32, Vec<u8>)>,
    pub(crate) writes: Vec<(u32, Vec<u8>)>,
    pub(crate) touched_regs: [bool; 13],
    pub(crate) gas_set: bool,
    pub(crate) builtin: Option<String>,
}

impl CallRecorder {
    /// A successful guest-memory read by the handler.
    pub fn record_read(&mut self, address: u32, data: &[u8]) {
        self.reads.push((address, data.to_vec()));
    }

    /// A successful guest-memory write by the handler.
    pub fn record_write(&mut self, address: u32, data: &[u8]) {
        self.writes.push((address, data.to_vec()));
    }

    /// The handler set register `i` (logged even if the value did not change).
    pub fn record_set_reg(&mut self, i: usize) {
        if i < 13 {
            self.touched_regs[i] = true;
        }
    }

    /// The handler set the gas.
    pub fn record_set_gas(&mut self) {
        self.gas_set = true;
    }

    /// The call was answered by libpvm's built-in PVM-level host call `name` (see
    /// [`builtin_name`]); logged as the extension record `x-builtin <name>`.
    pub fn record_builtin(&mut self, name: &str) {
        self.builtin = Some(name.to_string());
    }

    /// Builds the log entry of host call `index`, given the state at the `ecalli` (`before`,
    /// from [`state_of`]) and the instance after the handler ran: registers that were set or
    /// changed, the gas if set or changed, reads and writes in JIP-7 order. Page-map changes
    /// are not seen here (they need a snapshot from before the call): [`OpenCall`] and
    /// [`run_recorded`] add them.
    pub fn finish(self, index: u32, before: VmState, after: &Instance) -> HostCallEntry {
        self.entry(index, before, after)
    }

    /// Like [`CallRecorder::finish`] without consuming the recorder (for a call still open).
    pub fn entry(&self, index: u32, before: VmState, after: &Instance) -> HostCallEntry {
        let regs = after.registers();
        let set_regs = (0..13u8)
            .filter(|&i| {
                self.touched_regs[i as usize] || regs[i as usize] != before.regs[i as usize]
            })
            .map(|i| (i, regs[i as usize]))
            .collect();
        let set_gas =
            (self.gas_set || after.gas() as u64 != before.gas).then_some(after.gas() as u64);
        HostCallEntry {
            index,
            state: Some(before),
            reads: sorted(self.reads.clone()),
            writes: sorted(self.writes.clone()),
            set_regs,
            set_gas,
            page_changes: Vec::new(),
            builtin: self.builtin.clone(),
        }
    }

    /// Adds the effects of an entry recorded separately (e.g. a built-in host call run through
    /// [`HostCallContext::with_recorder`] inside a binding's own host call).
    pub fn merge(&mut self, e: &HostCallEntry) {
        self.reads.extend(e.reads.iter().cloned());
        self.writes.extend(e.writes.iter().cloned());
        for (i, _) in &e.set_regs {
            self.record_set_reg(*i as usize);
        }
        if e.set_gas.is_some() {
            self.gas_set = true;
        }
        if e.builtin.is_some() {
            self.builtin = e.builtin.clone();
        }
    }
}

/// The page map of a memory: mapped pages, ascending, with their access.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMap(Vec<(u32, Access)>);

impl PageMap {
    /// A snapshot of `memory`'s page map (O(mapped pages)).
    pub fn of(memory: &Memory) -> PageMap {
        PageMap(memory.pages().collect())
    }

    /// The changes that turn this map into `now`'s, as ascending runs of pages with the same
    /// new state.
    pub fn changes_to(&self, now: &Memory) -> Vec<PageChange> {
        let after = PageMap::of(now);
        let (a, b) = (&self.0, &after.0);
        let (mut i, mut j) = (0, 0);
        // (page, new state) for every page whose state differs.
        let mut changed: Vec<(u32, Option<AccessOrd>)> = Vec::new();
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(&(pa, xa)), Some(&(pb, xb))) if pa == pb => {
                    if xa != xb {
                        changed.push((pa, Some(xb.into())));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(&(pa, _)), Some(&(pb, _))) if pa < pb => {
                    changed.push((pa, None));
                    i += 1;
                }
                (Some(&(pa, _)), None) => {
                    changed.push((pa, None));
                    i += 1;
                }
                (_, Some(&(pb, xb))) => {
                    changed.push((pb, Some(xb.into())));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let mut out: Vec<PageChange> = Vec::new();
        let page = PAGE_SIZE as u64;
        for (p, st) in changed {
            let addr = p as u64 * page;
            match out.last_mut() {
                Some(last) if last.access == st && last.address as u64 + last.len == addr => {
                    last.len += page;
                }
                _ => out.push(PageChange {
                    address: addr as u32,
                    len: page,
                    access: st,
                }),
            }
        }
        out
    }
}

/// A host call whose log entry is still open: the state at its `ecalli`, the page map then, and
/// what the host has done so far. Bindings keep one while their host callback runs (or while a
/// run is stopped at a host call) and close it into a [`HostCallEntry`] when the VM moves on.
#[derive(Clone, Debug)]
pub struct OpenCall {
    index: u32,
    before: VmState,
    pages: PageMap,
    effects: CallRecorder,
}

impl OpenCall {
    /// Opens the record of host call `index` for a VM stopped at its `ecalli`.
    pub fn new(index: u32, vm: &Instance) -> OpenCall {
        OpenCall {
            index,
            before: state_of(vm),
            pages: PageMap::of(vm.memory()),
            effects: CallRecorder::default(),
        }
    }

    /// Where the host's effects are recorded.
    pub fn effects(&mut self) -> &mut CallRecorder {
        &mut self.effects
    }

    /// The entry as it stands, given the VM's current state (page-map changes included).
    pub fn entry(&self, vm: &Instance) -> HostCallEntry {
        let mut e = self.effects.entry(self.index, self.before.clone(), vm);
        e.page_changes = self.pages.changes_to(vm.memory());
        e
    }
}

/// The pc, gas and registers of an instance as a JIP-7 line shows them (gas as its unsigned
/// two's-complement value).
pub fn state_of(vm: &Instance) -> VmState {
    VmState {
        pc: vm.pc(),
        gas: vm.gas() as u64,
        regs: *vm.registers(),
    }
}

/// The state for a `start` line: the pc the run begins at.
pub fn start_state_of(vm: &Instance) -> VmState {
    VmState {
        pc: vm.next_pc(),
        gas: vm.gas() as u64,
        regs: *vm.registers(),
    }
}

/// The termination record for a final exit (`None` for a host call or an interrupt, which are not
/// final); the
/// gas saturates at 0.
pub fn termination_of(exit: Exit, vm: &Instance) -> Option<(Termination, VmState)> {
    let t = match exit {
        Exit::Halt => Termination::Halt,
        Exit::Panic => Termination::Panic(None),
        Exit::OutOfGas => Termination::OutOfGas,
        Exit::PageFault(a) => Termination::Fault(a),
        // Neither ends the run: the next run continues.
        Exit::HostCall(_) | Exit::Interrupted => return None,
    };
    let st = VmState {
        pc: vm.pc(),
        gas: vm.gas().max(0) as u64,
        regs: *vm.registers(),
    };
    Some((t, st))
}

pub(crate) fn sorted(mut v: Vec<(u32, Vec<u8>)>) -> Vec<(u32, Vec<u8>)> {
    v.sort();
    v
}

/// Fills in the prelude of a log for a run about to start on `vm` (the first run of the log):
/// the `start` state and whatever the host set up beyond the program's own initial image —
/// page-map differences (`x-pages`) and memory contents (`memwrite`), found by comparing `vm`
/// with a fresh instance of its program given the logged arguments (the initial write at the
/// argument address). Does nothing if the log already has a `start`. O(mapped pages), once.
pub fn record_prelude(log: &mut Jip7Log, vm: &Instance) {
    if log.start.is_some() {
        return;
    }
    log.start = Some(start_state_of(vm));
    let args_at = vm.program().standard_layout().map(|l| l.args_start());
    let args = log
        .initial_writes
        .iter()
        .find(|(a, _)| Some(*a) == args_at)
        .map(|(_, d)| d.clone())
        .unwrap_or_default();
    let Ok(fresh) = vm.program().instantiate(&args) else {
        return;
    };
    log.initial_pages = PageMap::of(fresh.memory()).changes_to(vm.memory());
    let zero = [0u8; PAGE_SIZE as usize];
    let mut writes = Vec::new();
    for (p, _) in vm.memory().pages() {
        let Some(now) = vm.memory().page_bytes(p) else {
            continue;
        };
        let was = fresh.memory().page_bytes(p).unwrap_or(&zero);
        // Most pages are unchanged: one slice comparison (memcmp) settles them.
        if now[..] == was[..] {
            continue;
        }
        let Some(first) = now.iter().zip(was).position(|(a, b)| a != b) else {
            continue;
        };
        let last = now
            .iter()
            .zip(was)
            .rposition(|(a, b)| a != b)
            .unwrap_or(first);
        writes.push(((p << 12) + first as u32, now[first..=last].to_vec()));
    }
    // Runs of differing bytes in adjacent pages could be merged; one write per page is simpler
    // to read and still exact.
    log.initial_writes.extend(writes);
}

/// The name of built-in host call `id` under the numbering `ids` (`None` if `id` is none of
/// them): `gas`, `grow_heap`, `machine`, `peek`, `poke`, `pages`, `invoke` or `expunge`.
pub fn builtin_name(ids: HostCallIds, id: u32) -> Option<&'static str> {
    Some(match id {
        _ if id == ids.gas => "gas",
        _ if Some(id) == ids.grow_heap => "grow_heap",
        _ if id == ids.machine => "machine",
        _ if id == ids.peek => "peek",
        _ if id == ids.poke => "poke",
        _ if id == ids.pages => "pages",
        _ if id == ids.invoke => "invoke",
        _ if id == ids.expunge => "expunge",
        _ => return None,
    })
}

/// Answers host call `id` with libpvm's built-in PVM-level host calls if it is one of them, and
/// marks the recorder `rec` (when given) with its name, so the log says `x-builtin <name>`.
/// Bindings that record through their own [`CallRecorder`] use this in place of
/// [`InnerPvms::handle`].
pub fn handle_builtin(
    inner: &mut InnerPvms,
    id: u32,
    ctx: &mut HostCallContext<'_>,
    rec_name: &mut Option<&'static str>,
) -> Option<HostOutcome> {
    let outcome = inner.handle(id, ctx)?;
    *rec_name = builtin_name(inner.ids(), id);
    Some(outcome)
}

/// Runs `instance` with `handler`, recording every host call into `log` (whose `program` and
/// initial writes the caller sets). The handler's memory reads and writes through
/// [`HostCallContext::read_memory`]/[`HostCallContext::write_memory`] (and everything built on
/// them) are captured; register and gas changes are captured by comparing the state before and
/// after each call, plus every register the handler explicitly set; page-map changes by
/// comparing the page map before and after (extension `x-pages`). Contents written through
/// [`HostCallContext::memory_mut`] bypass recording.
pub fn run_recorded<H>(instance: &mut Instance, log: &mut Jip7Log, handler: H) -> Exit
where
    H: FnMut(u32, &mut HostCallContext<'_>) -> HostOutcome,
{
    run_recorded_with(instance, log, None, handler)
}

/// [`run_recorded`] with libpvm's built-in PVM-level host calls: each host call is offered to
/// `inner` first (logged with `x-builtin <name>`), and only the others reach `handler`.
pub fn run_recorded_with<H>(
    instance: &mut Instance,
    log: &mut Jip7Log,
    mut inner: Option<&mut InnerPvms>,
    mut handler: H,
) -> Exit
where
    H: FnMut(u32, &mut HostCallContext<'_>) -> HostOutcome,
{
    record_prelude(log, instance);
    let exit = loop {
        let exit = instance.run();
        let Exit::HostCall(id) = exit else { break exit };
        let before = state_of(instance);
        let pages = PageMap::of(instance.memory());
        let mut rec = CallRecorder::default();
        let mut name = None;
        let outcome = {
            let mut ctx = HostCallContext::with_recorder(instance, &mut rec);
            match inner.as_deref_mut() {
                Some(inner) => handle_builtin(inner, id, &mut ctx, &mut name),
                None => None,
            }
            .unwrap_or_else(|| handler(id, &mut ctx))
        };
        if let Some(n) = name {
            rec.record_builtin(n);
        }
        let mut e = rec.finish(id, before, instance);
        e.page_changes = pages.changes_to(instance.memory());
        log.entries.push(e);
        if let Some(e) = instance.finish_host_call(outcome) {
            break e;
        }
    };
    log.end = termination_of(exit, instance);
    exit
}
