//! The host calls that act only on PVM state (GP B.5–B.6): `gas`, `grow_heap`, and the
//! inner-PVM calls `machine`, `peek`, `poke`, `pages`, `invoke`, `expunge`.
//!
//! [`InnerPvms`] owns the refine context's inner machines (GP 𝕀: code, RAM, pc and the
//! gas-charged flag) and answers those ids; a host dispatches everything else itself:
//!
//! ```
//! # use pvm_core::{inner::InnerPvms, HostOutcome, Spec};
//! let mut inner = InnerPvms::new(Spec::Gp0_8_0);
//! let my_host = |_id: u32, _ctx: &mut pvm_core::HostCallContext<'_>| HostOutcome::Continue;
//! let mut handler = |id, ctx: &mut pvm_core::HostCallContext<'_>| inner.handle(id, ctx).unwrap_or_else(|| my_host(id, ctx));
//! # let _ = &mut handler;
//! ```
//!
//! Gas (GP 0.8.0 I.4.5): every call charges g first; if ϱ < g the outcome is out-of-gas with
//! ϱ' = ϱ − g (B.5: "ϱ' ≡ ϱ − g unless explicitly defined"); `grow_heap`'s OOG case sets ϱ' = 0
//! (erratum GP #533, see [`grow_heap`]). All gas formulas use the raw register values with saturating arithmetic.
//! GP 0.7.2 charges a flat 10 for each of these calls and numbers them one lower from `fetch` on
//! (there is no `grow_heap`: GP 0.7.2 has the `sbrk` instruction instead).
//!
//! Limits: GP 0.8.0 caps the live machines at 63 (`machine` returns FULL) and makes `invoke`
//! charge the inner gas limit. GP 0.7.2 has neither, so [`InnerLimits`] (set with
//! [`InnerPvms::with_limits`]) bounds both there: at most 63 machines by default (then FULL), and
//! a total inner gas budget for `invoke` (default G_R = 5·10^9; an inner run that reaches it
//! stops out of gas), and the memory work of `peek`, `poke` and `pages` (GP 0.7.2 charges a flat
//! 10 gas for copies of up to 4 GiB): by default at most 16 MiB per `peek`/`poke`, 4096 pages
//! per `pages` call and 256 MiB in total; a call beyond them ends the run out of gas without
//! doing anything. Machine ids (the least unused index, GP n = min(n ∉ K(m))) are found in
//! O(log n).

use std::collections::{BTreeMap, BTreeSet};

use crate::host::{HostCallContext, HostOutcome};
use crate::instance::{Exit, Instance};
use crate::memory::{Access, Memory, PAGE_SIZE};
use crate::program::{Program, ProgramOptions, INPUT_SIZE, ZONE_SIZE};
use crate::Spec;

/// Host-call result codes (GP B.1), as 64-bit register values.
pub mod codes {
    /// The item does not exist.
    pub const NONE: u64 = u64::MAX;
    /// Name unknown.
    pub const WHAT: u64 = u64::MAX - 1;
    /// Memory index not accessible.
    pub const OOB: u64 = u64::MAX - 2;
    /// Index unknown.
    pub const WHO: u64 = u64::MAX - 3;
    /// Storage full or resource already allocated.
    pub const FULL: u64 = u64::MAX - 4;
    /// Core index unknown.
    pub const CORE: u64 = u64::MAX - 5;
    /// Insufficient funds.
    pub const CASH: u64 = u64::MAX - 6;
    /// Gas limit too low.
    pub const LOW: u64 = u64::MAX - 7;
    /// The operation is invalid.
    pub const HUH: u64 = u64::MAX - 8;
    /// Success.
    pub const OK: u64 = 0;
    /// Inner invocation halted.
    pub const HALT: u64 = 0;
    /// Inner invocation panicked.
    pub const PANIC: u64 = 1;
    /// Inner invocation page-faulted.
    pub const FAULT: u64 = 2;
    /// Inner invocation made a host call.
    pub const HOST: u64 = 3;
    /// Inner invocation ran out of gas.
    pub const OOG: u64 = 4;
}

/// Host-call ids of the calls [`InnerPvms`] implements, per spec version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCallIds {
    /// `gas`.
    pub gas: u32,
    /// `grow_heap` (GP 0.8.0 only).
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

impl HostCallIds {
    /// The numbering of `spec` (GP 0.8.0 inserted `grow_heap` = 1 and moved the rest up by one).
    pub const fn of(spec: Spec) -> HostCallIds {
        match spec {
            Spec::Gp0_8_0 => HostCallIds {
                gas: 0,
                grow_heap: Some(1),
                machine: 9,
                peek: 10,
                poke: 11,
                pages: 12,
                invoke: 13,
                expunge: 14,
            },
            Spec::Gp0_7_2 => HostCallIds {
                gas: 0,
                grow_heap: None,
                machine: 8,
                peek: 9,
                poke: 10,
                pages: 11,
                invoke: 12,
                expunge: 13,
            },
        }
    }
}

/// GP 0.8.0 host-call gas constants used here (I.4.5).
pub mod gas {
    /// `gas`.
    pub const GAS: u64 = 48;
    /// `grow_heap` base and per page.
    pub const GROW_HEAP: (u64, u64) = (275, 121);
    /// `machine` base and per 1024 bytes of program.
    pub const MACHINE: (u64, u64) = (1862, 112);
    /// `peek` base and per 1024 bytes.
    pub const PEEK: (u64, u64) = (377, 336);
    /// `poke` base and per 1024 bytes.
    pub const POKE: (u64, u64) = (297, 224);
    /// `pages` r = 0: base and per page.
    pub const PAGES_FREE: (u64, u64) = (212, 118);
    /// `pages` r ∈ {1, 2}.
    pub const PAGES_ALLOC: (u64, u64) = (275, 121);
    /// `pages` r ∈ {3, 4}.
    pub const PAGES_SET_MODE: (u64, u64) = (130, 29);
    /// `pages` with an invalid r.
    pub const PAGES_INVALID: u64 = 80;
    /// `invoke` (plus the inner gas limit).
    pub const INVOKE: u64 = 968;
    /// `expunge`.
    pub const EXPUNGE: u64 = 335;
    /// Every call in GP 0.7.2.
    pub const GP072_FLAT: u64 = 10;
}

/// The maximum number of inner machines (GP 0.8.0 `machine`: FULL at |m| ≥ 63).
pub const MAX_MACHINES: usize = 63;

/// The GP 0.7.2 refine gas limit G_R, the default total inner gas of GP 0.7.2 `invoke`s
/// ([`InnerLimits::inner_gas_budget_0_7_2`]).
pub const GP072_REFINE_GAS: u64 = 5_000_000_000;

/// Default of [`InnerLimits::max_copy_bytes_0_7_2`]: 16 MiB per `peek` or `poke`.
pub const GP072_MAX_COPY_BYTES: u64 = 16 << 20;
/// Default of [`InnerLimits::max_pages_0_7_2`]: 4096 pages (16 MiB) per `pages` call.
pub const GP072_MAX_PAGES: u64 = 4096;
/// Default of [`InnerLimits::memory_budget_0_7_2`]: 256 MiB moved in total.
pub const GP072_MEMORY_BUDGET: u64 = 256 << 20;

/// Host-controlled limits of [`InnerPvms`], for the cases where the GP defines none.
///
/// GP 0.8.0 needs none: `machine` returns FULL at 63 live machines and `invoke` charges the caller
/// the inner gas limit, so inner work is paid for. GP 0.7.2 has neither rule: `machine` has no
/// limit and `invoke` charges a flat 10 gas while running the inner machine with whatever gas
/// limit the guest wrote to memory (up to 2^63), so a 1,000-gas guest could keep the host busy
/// for ~2^62 inner gas or create machines until the host runs out of memory. These limits bound
/// both; they apply under GP 0.7.2 only, and the defaults are generous for real guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerLimits {
    /// GP 0.7.2: the most live inner machines. When reached, `machine` returns FULL (φ7 =
    /// 2^64 − 5, the code GP 0.8.0 uses for its own limit) and creates nothing; the guest
    /// continues. Default: 63, the GP 0.8.0 limit.
    pub max_machines_0_7_2: usize,
    /// GP 0.7.2: the total inner gas that all `invoke`s of this set may consume. Each `invoke`
    /// runs its machine with the gas limit min(g, budget left) instead of g; a machine that
    /// reaches that bound stops out of gas exactly as if the guest had asked for that limit
    /// (result OOG, g' = 0 written back). Default: [`GP072_REFINE_GAS`] (G_R = 5·10^9), what
    /// one refine invocation may spend itself; `u64::MAX` gives the unbounded GP 0.7.2 text.
    pub inner_gas_budget_0_7_2: u64,
    /// GP 0.7.2: the most bytes one `peek` or `poke` may copy (0.7.2 charges a flat 10 gas for
    /// up to 4 GiB). A longer copy is not performed and ends the run out of gas
    /// ([`HostOutcome::OutOfGas`], gas as charged): the guest asked for work it did not pay for,
    /// which GP 0.8.0 would charge ⌈336·z/1024⌉ or ⌈224·z/1024⌉ gas for. Default:
    /// [`GP072_MAX_COPY_BYTES`] (16 MiB).
    pub max_copy_bytes_0_7_2: u64,
    /// GP 0.7.2: the most pages one `pages` call may change (0.7.2: 10 gas for up to 2^20 pages).
    /// A larger count (with a valid machine and mode) ends the run out of gas, as above. Default:
    /// [`GP072_MAX_PAGES`] (4096 pages, 16 MiB).
    pub max_pages_0_7_2: u64,
    /// GP 0.7.2: the total bytes all `peek`s and `poke`s of this set may copy plus 4096 per page
    /// changed by `pages`. A call that would exceed what is left ends the run out of gas, as
    /// above. Default: [`GP072_MEMORY_BUDGET`] (256 MiB); `u64::MAX` with the two limits above
    /// at `u64::MAX` gives the unbounded GP 0.7.2 text.
    pub memory_budget_0_7_2: u64,
}

impl Default for InnerLimits {
    fn default() -> Self {
        InnerLimits {
            max_machines_0_7_2: MAX_MACHINES,
            inner_gas_budget_0_7_2: GP072_REFINE_GAS,
            max_copy_bytes_0_7_2: GP072_MAX_COPY_BYTES,
            max_pages_0_7_2: GP072_MAX_PAGES,
            memory_budget_0_7_2: GP072_MEMORY_BUDGET,
        }
    }
}

/// ⌈L·ℓ/1024⌉ (GP eq. fnmemgas), saturating.
pub fn mem_gas(rate: u64, len: u64) -> u64 {
    let v = (rate as u128 * len as u128).div_ceil(1024);
    v.min(u64::MAX as u128) as u64
}

/// The refine context's inner PVMs, and the handler for the PVM-level host calls.
#[derive(Debug)]
pub struct InnerPvms {
    spec: Spec,
    ids: HostCallIds,
    limits: InnerLimits,
    machines: BTreeMap<u64, Instance>,
    /// Ids below `next_id` that are not in `machines` (`machines` ∪ `free` = 0..next_id), so the
    /// GP's n = min(n ∈ ℕ, n ∉ K(m)) is `free`'s first element or `next_id`: O(log n).
    free: BTreeSet<u64>,
    next_id: u64,
    /// GP 0.7.2: inner gas left of [`InnerLimits::inner_gas_budget_0_7_2`].
    inner_gas_left: u64,
    /// GP 0.7.2: bytes left of [`InnerLimits::memory_budget_0_7_2`].
    memory_left: u64,
}

/// Whether [addr, addr + len) lies in the 32-bit space and is accessible (empty ranges are).
fn range_ok(mem: &Memory, addr: u64, len: u64, write: bool) -> bool {
    if len == 0 {
        return true;
    }
    addr.checked_add(len).is_some_and(|end| end <= 1 << 32)
        && mem.is_accessible(addr as u32, len, write)
}

impl InnerPvms {
    /// An empty set of inner machines, numbering and semantics of `spec`.
    pub fn new(spec: Spec) -> Self {
        Self::with_limits(spec, InnerLimits::default())
    }

    /// An empty set of inner machines with host-chosen [`InnerLimits`] (GP 0.7.2 only).
    pub fn with_limits(spec: Spec, limits: InnerLimits) -> Self {
        InnerPvms {
            spec,
            ids: HostCallIds::of(spec),
            limits,
            machines: BTreeMap::new(),
            free: BTreeSet::new(),
            next_id: 0,
            inner_gas_left: limits.inner_gas_budget_0_7_2,
            memory_left: limits.memory_budget_0_7_2,
        }
    }

    /// GP 0.7.2: the bytes left of [`InnerLimits::memory_budget_0_7_2`].
    pub fn memory_budget_left(&self) -> u64 {
        self.memory_left
    }

    /// GP 0.7.2: takes `bytes` of work (at most `max` in one call) from the memory budget, or
    /// returns false (the call must end the run out of gas). Always true under GP 0.8.0, which
    /// charges gas per byte and page.
    fn take_memory_work(&mut self, bytes: u64, max: u64) -> bool {
        if self.spec == Spec::Gp0_8_0 {
            return true;
        }
        if bytes > max || bytes > self.memory_left {
            return false;
        }
        self.memory_left -= bytes;
        true
    }

    /// The limits in force.
    pub fn limits(&self) -> InnerLimits {
        self.limits
    }

    /// GP 0.7.2: the inner gas left of [`InnerLimits::inner_gas_budget_0_7_2`].
    pub fn inner_gas_left(&self) -> u64 {
        self.inner_gas_left
    }

    /// The most live machines: 63 (GP 0.8.0), or the host's limit (GP 0.7.2).
    fn max_machines(&self) -> usize {
        match self.spec {
            Spec::Gp0_8_0 => MAX_MACHINES,
            Spec::Gp0_7_2 => self.limits.max_machines_0_7_2,
        }
    }

    /// Adds a machine under the smallest free id and returns the id.
    fn insert(&mut self, inst: Instance) -> u64 {
        let n = self.free.pop_first().unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        });
        self.machines.insert(n, inst);
        n
    }

    /// Removes machine `n`.
    fn remove(&mut self, n: u64) -> Option<Instance> {
        let m = self.machines.remove(&n)?;
        self.free.insert(n);
        while self.next_id > 0 && self.free.remove(&(self.next_id - 1)) {
            self.next_id -= 1;
        }
        Some(m)
    }

    /// The ids this handler answers.
    pub fn ids(&self) -> HostCallIds {
        self.ids
    }

    /// Number of live inner machines.
    pub fn len(&self) -> usize {
        self.machines.len()
    }

    /// Whether there are no inner machines.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// An inner machine, for inspection.
    pub fn machine(&self, n: u64) -> Option<&Instance> {
        self.machines.get(&n)
    }

    /// Handles host call `id` if it is one of the PVM-level calls; `None` for every other id.
    pub fn handle(&mut self, id: u32, ctx: &mut HostCallContext<'_>) -> Option<HostOutcome> {
        let ids = self.ids;
        let outcome = if id == ids.gas {
            self.gas(ctx)
        } else if Some(id) == ids.grow_heap {
            grow_heap(ctx)
        } else if id == ids.machine {
            self.machine_call(ctx)
        } else if id == ids.peek {
            self.peek(ctx)
        } else if id == ids.poke {
            self.poke(ctx)
        } else if id == ids.pages {
            self.pages(ctx)
        } else if id == ids.invoke {
            self.invoke(ctx)
        } else if id == ids.expunge {
            self.expunge(ctx)
        } else {
            return None;
        };
        Some(outcome)
    }

    fn cost(&self, gp080: u64) -> u64 {
        match self.spec {
            Spec::Gp0_8_0 => gp080,
            Spec::Gp0_7_2 => gas::GP072_FLAT,
        }
    }

    /// `gas` (0): φ'7 = ϱ'.
    fn gas(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        if !ctx.charge(self.cost(gas::GAS)) {
            return HostOutcome::OutOfGas;
        }
        let g = ctx.gas() as u64;
        ctx.set_reg(7, g);
        HostOutcome::Continue
    }

    /// `machine`: φ7..9 = program address, program length, entry pc.
    fn machine_call(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        let (po, pz, i) = (ctx.reg(7), ctx.reg(8), ctx.reg(9));
        if !ctx.charge(self.cost(gas::MACHINE.0.saturating_add(mem_gas(gas::MACHINE.1, pz)))) {
            return HostOutcome::OutOfGas;
        }
        // GP 0.8.0: FULL at 63 machines. GP 0.7.2 has no limit; the host's (InnerLimits) gives
        // the same outcome.
        if self.machines.len() >= self.max_machines() {
            ctx.set_reg(7, codes::FULL);
            return HostOutcome::Continue;
        }
        if !range_ok(ctx.memory(), po, pz, false) {
            return HostOutcome::Panic;
        }
        let blob = ctx
            .read_vec(po as u32, pz as usize)
            .expect("range checked readable");
        // An inner machine runs on the same backend as the program that creates it.
        let options = ProgramOptions {
            spec: self.spec,
            backend: ctx.program().backend(),
        };
        let program = match Program::from_code(&blob, options) {
            Ok(p) => p,
            Err(_) => {
                ctx.set_reg(7, codes::HUH);
                return HostOutcome::Continue;
            }
        };
        // GP 0.8.0: deblob(p, i) also requires i to be a valid instruction start.
        if self.spec == Spec::Gp0_8_0
            && (i > u32::MAX as u64 || !program.is_instruction_start(i as u32))
        {
            ctx.set_reg(7, codes::HUH);
            return HostOutcome::Continue;
        }
        let mut inst = program
            .instantiate(&[])
            .expect("a code blob takes no arguments");
        // GP 0.7.2 has no entry check: an out-of-range pc simply panics when invoked.
        inst.set_pc(i.min(u32::MAX as u64) as u32);
        inst.set_gas_charged(false);
        let n = self.insert(inst);
        ctx.set_reg(7, n);
        HostOutcome::Continue
    }

    /// `peek`: φ7..10 = n, outer destination o, inner source s, length z.
    fn peek(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        let (n, o, s, z) = (ctx.reg(7), ctx.reg(8), ctx.reg(9), ctx.reg(10));
        if !ctx.charge(self.cost(gas::PEEK.0.saturating_add(mem_gas(gas::PEEK.1, z)))) {
            return HostOutcome::OutOfGas;
        }
        // GP 0.7.2 bounds, before any work (checking the ranges is O(z / 4096) already).
        if !self.take_memory_work(z, self.limits.max_copy_bytes_0_7_2) {
            return HostOutcome::OutOfGas;
        }
        if !range_ok(ctx.memory(), o, z, true) {
            return HostOutcome::Panic;
        }
        let Some(m) = self.machines.get(&n) else {
            ctx.set_reg(7, codes::WHO);
            return HostOutcome::Continue;
        };
        if !range_ok(m.memory(), s, z, false) {
            ctx.set_reg(7, codes::OOB);
            return HostOutcome::Continue;
        }
        if z > 0 {
            let mut buf = vec![0u8; z as usize];
            m.memory()
                .read(s as u32, &mut buf)
                .expect("range checked readable");
            // The range is writable; only the VM's page limit (`Memory::set_page_limit`) can
            // refuse the write, and a host call cannot fault: the run panics.
            if ctx.write_memory(o as u32, &buf).is_err() {
                return HostOutcome::Panic;
            }
        }
        ctx.set_reg(7, codes::OK);
        HostOutcome::Continue
    }

    /// `poke`: φ7..10 = n, outer source s, inner destination o, length z.
    fn poke(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        let (n, s, o, z) = (ctx.reg(7), ctx.reg(8), ctx.reg(9), ctx.reg(10));
        if !ctx.charge(self.cost(gas::POKE.0.saturating_add(mem_gas(gas::POKE.1, z)))) {
            return HostOutcome::OutOfGas;
        }
        // GP 0.7.2 bounds, before any work (checking the ranges is O(z / 4096) already).
        if !self.take_memory_work(z, self.limits.max_copy_bytes_0_7_2) {
            return HostOutcome::OutOfGas;
        }
        if !range_ok(ctx.memory(), s, z, false) {
            return HostOutcome::Panic;
        }
        let Some(m) = self.machines.get(&n) else {
            ctx.set_reg(7, codes::WHO);
            return HostOutcome::Continue;
        };
        if !range_ok(m.memory(), o, z, true) {
            ctx.set_reg(7, codes::OOB);
            return HostOutcome::Continue;
        }
        let m = self.machines.get_mut(&n).expect("looked up above");
        if z > 0 {
            let buf = ctx
                .read_vec(s as u32, z as usize)
                .expect("range checked readable");
            // Only a page limit the host set on the inner machine can refuse the write.
            if m.memory_mut().write(o as u32, &buf).is_err() {
                return HostOutcome::Panic;
            }
        }
        ctx.set_reg(7, codes::OK);
        HostOutcome::Continue
    }

    /// `pages`: φ7..10 = n, first page p, page count c, mode r (0: free, 1/2: zero as R/W,
    /// 3/4: set R/W keeping contents).
    fn pages(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        let (n, p, c, r) = (ctx.reg(7), ctx.reg(8), ctx.reg(9), ctx.reg(10));
        let per = |(base, per_page): (u64, u64)| base.saturating_add(per_page.saturating_mul(c));
        let g = match r {
            0 => per(gas::PAGES_FREE),
            1 | 2 => per(gas::PAGES_ALLOC),
            3 | 4 => per(gas::PAGES_SET_MODE),
            _ => gas::PAGES_INVALID,
        };
        if !ctx.charge(self.cost(g)) {
            return HostOutcome::OutOfGas;
        }
        // GP 0.7.2 bounds, before any work (the page checks below are O(c)).
        let max_bytes = self.limits.max_pages_0_7_2.saturating_mul(PAGE_SIZE as u64);
        if r <= 4 && !self.take_memory_work(c.saturating_mul(PAGE_SIZE as u64), max_bytes) {
            return HostOutcome::OutOfGas;
        }
        let Some(m) = self.machines.get(&n) else {
            ctx.set_reg(7, codes::WHO);
            return HostOutcome::Continue;
        };
        const PAGES: u64 = (1u64 << 32) / PAGE_SIZE as u64;
        if r > 4 || p < 16 || p.checked_add(c).is_none_or(|end| end >= PAGES) {
            ctx.set_reg(7, codes::HUH);
            return HostOutcome::Continue;
        }
        let mem = m.memory();
        if r > 2 && (p..p + c).any(|page| mem.access((page as u32) << 12) == Access::None) {
            ctx.set_reg(7, codes::HUH);
            return HostOutcome::Continue;
        }
        let mem = self
            .machines
            .get_mut(&n)
            .expect("looked up above")
            .memory_mut();
        let (addr, len) = (p * PAGE_SIZE as u64, c * PAGE_SIZE as u64);
        let result = match r {
            0 => mem.unmap(addr as u32, len as u32),
            1 | 2 => mem
                .map_range(addr, len, if r == 1 { Access::Read } else { Access::Write })
                .and_then(|_| mem.zero(addr as u32, len as u32)),
            _ => mem.map_range(addr, len, if r == 3 { Access::Read } else { Access::Write }),
        };
        result.expect("page range checked: 16 <= p and p + c < 2^20");
        ctx.set_reg(7, codes::OK);
        HostOutcome::Continue
    }

    /// `invoke`: φ7 = n, φ8 = o, where μ[o..+112] holds the inner gas limit and 13 registers.
    fn invoke(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        let (n, o) = (ctx.reg(7), ctx.reg(8));
        let io = if range_ok(ctx.memory(), o, 112, true) {
            ctx.read_vec(o as u32, 112).ok()
        } else {
            None
        };
        let g_r = io.as_ref().map_or(0, |b| {
            u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
        });
        let g = match self.spec {
            Spec::Gp0_8_0 => gas::INVOKE.saturating_add(g_r),
            Spec::Gp0_7_2 => gas::GP072_FLAT,
        };
        if !ctx.charge(g) {
            return HostOutcome::OutOfGas;
        }
        let Some(io) = io else {
            return HostOutcome::Panic;
        };
        let Some(m) = self.machines.get_mut(&n) else {
            ctx.set_reg(7, codes::WHO);
            return HostOutcome::Continue;
        };
        for (i, r) in m.registers_mut().iter_mut().enumerate() {
            *r = u64::from_le_bytes(io[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        }
        // In GP 0.8.0 g_R <= ϱ <= i64::MAX here. GP 0.7.2 does not bound it: clamp to i64 and
        // to the host's inner gas budget (InnerLimits::inner_gas_budget_0_7_2).
        let limit = match self.spec {
            Spec::Gp0_8_0 => g_r,
            Spec::Gp0_7_2 => g_r.min(self.inner_gas_left),
        }
        .min(i64::MAX as u64);
        m.set_gas(limit as i64);
        let exit = m.run();
        let g_r_after = m.gas().max(0) as u64;
        if self.spec == Spec::Gp0_7_2 {
            self.inner_gas_left -= limit - g_r_after.min(limit);
        }
        match exit {
            // The inner pc continues after the ecalli on the next invoke.
            Exit::HostCall(_) => {
                let next = m.next_pc();
                m.set_pc(next);
            }
            // GP Ψ returns ı = 0 after halt or panic; expunge reports it.
            Exit::Halt | Exit::Panic => m.set_pc(0),
            // Inner machines hand out no interrupt handle, so `Interrupted` cannot happen.
            Exit::PageFault(_) | Exit::OutOfGas | Exit::Interrupted => {}
        }
        let mut out = Vec::with_capacity(112);
        out.extend_from_slice(&g_r_after.to_le_bytes());
        for r in m.registers() {
            out.extend_from_slice(&r.to_le_bytes());
        }
        // Writable (checked above); only the VM's page limit can refuse it: the run panics.
        if ctx.write_memory(o as u32, &out).is_err() {
            return HostOutcome::Panic;
        }
        if self.spec == Spec::Gp0_8_0 {
            ctx.set_gas(ctx.gas().saturating_add(g_r_after as i64));
        }
        let (r7, r8) = match exit {
            Exit::HostCall(h) => (codes::HOST, Some(h as u64)),
            Exit::PageFault(x) => (codes::FAULT, Some(x as u64)),
            Exit::OutOfGas | Exit::Interrupted => (codes::OOG, None),
            Exit::Panic => (codes::PANIC, None),
            Exit::Halt => (codes::HALT, None),
        };
        ctx.set_reg(7, r7);
        if let Some(v) = r8 {
            ctx.set_reg(8, v);
        }
        HostOutcome::Continue
    }

    /// `expunge`: φ7 = n; returns the machine's pc and removes it.
    fn expunge(&mut self, ctx: &mut HostCallContext<'_>) -> HostOutcome {
        if !ctx.charge(self.cost(gas::EXPUNGE)) {
            return HostOutcome::OutOfGas;
        }
        let n = ctx.reg(7);
        match self.remove(n) {
            Some(m) => ctx.set_reg(7, m.pc() as u64),
            None => ctx.set_reg(7, codes::WHO),
        }
        HostOutcome::Continue
    }
}

/// `grow_heap` (GP 0.8.0, 1): φ7 = desired heap end in pages. The bounds come from the outer
/// program's standard layout: a = (2Z_Z + Q(|o|))/Z_P, b = (2^32 − 3Z_Z − Z_I − Q(s))/Z_P; for a
/// program without a standard layout a = b = 0, so every request is a no-op. h = a + c, with c
/// the number of writable pages in [a, b).
///
/// Two GP errata (erratum GP #533/#538: this follows the community 0.8.0 vectors and conformance
/// fuzzer, not the 0.8.0 text):
/// - GP #533: out of gas (ϱ < g when growing) sets ϱ' = 0, like every other host call; the
///   0.8.0 text left ϱ unchanged in that case.
/// - GP #538: the upper bound b rounds the stack size to the 64 KiB zone (Q(s), Z_Z), the address
///   space the stack reserves, not to a page (P(s)) as the 0.8.0 text does.
///
/// Cost: O(chunks of the page table in [a, b) + pages made writable), from the page table's
/// bitmaps; a no-op call touches no page.
pub fn grow_heap(ctx: &mut HostCallContext<'_>) -> HostOutcome {
    let want = ctx.reg(7);
    let (a, b) = match ctx.program().standard_layout() {
        Some(l) => {
            let a = l.rw_start() as u64 / PAGE_SIZE as u64;
            // Erratum GP #538: Q(s), not P(s).
            let stack = (l.stack_size as u64).div_ceil(ZONE_SIZE) * ZONE_SIZE;
            let b = ((1u64 << 32) - 3 * ZONE_SIZE - INPUT_SIZE - stack) / PAGE_SIZE as u64;
            (a, b)
        }
        None => (0, 0),
    };
    let c = ctx.memory().writable_page_count(a as u32..b as u32);
    let h = a + c;
    let (base, per_page) = gas::GROW_HEAP;
    if want <= h || want > b {
        // No-op: charge the base cost only (the explicit case of B.5).
        ctx.set_gas(ctx.gas().saturating_sub(base as i64));
        ctx.set_reg(7, h);
        make_writable(ctx, a, h);
        return HostOutcome::Continue;
    }
    let g = base + (want - h) * per_page; // want <= b < 2^20: no overflow
    if ctx.gas() < g as i64 {
        ctx.set_reg(7, h);
        // Erratum GP #533: ϱ' = 0 (the 0.8.0 text: ϱ unchanged).
        ctx.set_gas(0);
        return HostOutcome::OutOfGas;
    }
    ctx.set_gas(ctx.gas() - g as i64);
    make_writable(ctx, a, want);
    ctx.set_reg(7, want);
    HostOutcome::Continue
}

/// (μ'_A)[a..e) = W, touching only the pages that are not writable yet.
fn make_writable(ctx: &mut HostCallContext<'_>, a: u64, e: u64) {
    ctx.memory_mut()
        .make_writable(a as u32..e as u32)
        .expect("heap pages lie inside the standard layout");
}
