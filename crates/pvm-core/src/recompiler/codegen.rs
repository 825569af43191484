//! Translation of a program's blocks (the shared decoded form of `program/`: ops with resolved
//! targets and block gas) to x86-64.
//!
//! # Machine state
//! Ten guest registers live in host registers, the three least used ones in frame slots, the
//! gas and instruction counters in r15 and r14 ([`RegMap`]); rax, rcx and rdx are scratch. rsp
//! points at the frame ([`frame`]), which holds the page table pointer, the spilled guest
//! registers and the exit record. Compiled code calls nothing.
//!
//! # What compiled code does itself, and what it leaves to the interpreter
//! Compiled code does the common case exactly: block entry (the block's gas, charged as the
//! interpreter charges it), every ALU instruction, loads and stores whose
//! page-table entry allows them on one page, branches, jumps and jump-table jumps to valid
//! targets. Everything else *yields*: it stops before the instruction with the state exactly as
//! the interpreter would have it there (registers, gas after the block charge, pc) and lets the
//! interpreter execute that instruction (faults, page-straddling or first writes to a lazy page,
//! host calls, traps, halts, invalid jumps, division by zero and overflow, `sbrk`). A block
//! its gas slice cannot pay *exits at the block entry*, uncharged (the driver then looks at
//! interrupt requests, the real gas and the next slice). So every rule whose outcome is an exit
//! lives once, in the interpreter, and the recompiler only has to be exact on the paths it
//! takes.
//!
//! # Memory safety
//! A guest address is a 32-bit value; its page-table index is < 2^20 (the table has 2^20
//! entries). Compiled code reads a page only through an entry with the READ bit and writes only
//! through one with the WRITE bit, at an offset that keeps the whole access inside the page —
//! the same invariants the interpreter's fast path relies on (`memory.rs`). The hottest access
//! sites keep the last page they used in a frame cache ([`Gen::cached_access`]): a hit needs the
//! whole access inside that page, a cache is filled only after the entry check above, and every
//! entry to compiled code starts with the caches empty (page entries change only outside it), so
//! a cached page is one the check allowed during this entry. Jumps go only to
//! labels of this code or through the jump table's native offsets, each bounds-checked.

use super::mem_groups;
use super::x64::*;
use crate::program::lower::{Op, Reg};
use crate::program::{OpTable, K};

/// The frame at rsp while compiled code runs.
pub(crate) mod frame {
    /// `*mut Ctx` of the run.
    pub const CTX: i32 = 0;
    // 8: unused (the gas counter lives in a host register).
    /// The page table's base pointer.
    pub const TABLE: i32 = 16;
    // 24: unused (was the interrupt flag's address).
    /// The first guest register kept in the frame (the program's least used one).
    pub const SPILLED: i32 = 32;
    /// Exit pc (u32) and, at +4, the exit kind (u32).
    pub const EXIT: i32 = 40;
    /// The checked host addresses of memory-access groups (`mem_groups::SLOTS` of them): the
    /// host address of guest address base + min (a member at base + off is at that + off - min,
    /// a displacement in 0..=512: no 32-bit overflow whatever the offsets).
    pub const GROUP: i32 = 48;
    /// The third guest register kept in the frame.
    pub const SPILLED3: i32 = 80;
    /// The second guest register kept in the frame.
    pub const SPILLED2: i32 = 88;
    /// Frame size without the page caches (keeps rsp 16-byte aligned after six pushes).
    pub const SIZE: i32 = 104;
    /// The page caches of the cached access sites (16 bytes each, from here; see
    /// [`super::Gen::cached_access`]): the guest page's base address, then its host address.
    pub const CACHES: i32 = SIZE;
}

/// Access sites (loads and stores through a register, outside memory groups, in loops) that get
/// a page cache of their own, at most: each costs two stores at every entry to compiled code.
pub(crate) const MAX_CACHED_SITES: usize = 32;

/// A page cache's guest page base while it holds no page (set at every entry): as a 64-bit value
/// (sign-extended from this i32) it is above every 32-bit address by more than a page.
const NO_PAGE: i32 = i32::MIN;

/// Frame offset of page cache `k`'s guest page base (its host page address is 8 bytes above).
fn cache_slot(k: u8) -> i32 {
    frame::CACHES + 16 * k as i32
}

/// The slow half of a cached access site, emitted out of line (see [`Gen::cached_access`]).
struct Refill {
    label: Label,
    retry: Label,
    k: u8,
    base: Option<Reg>,
    off: u64,
    n: u32,
    write: bool,
    pc: u32,
}

/// Byte offsets in [`super::Ctx`].
pub(crate) mod ctx {
    pub const REGS: i32 = 0;
    pub const GAS: i32 = 104;
    pub const TABLE: i32 = 112;
    pub const EXIT: i32 = 120;
    pub const INSTRUCTIONS: i32 = 128;
}

/// Exit kinds written to the exit record.
pub(crate) const EXIT_YIELD: u32 = 1;
pub(crate) const EXIT_ENTRY: u32 = 2;
pub(crate) const EXIT_HOST: u32 = 3;

/// Host registers of ω0..ω11 (ω12 is in the frame).
const HOST: [R; 12] = [R12, RSI, RDI, R8, R9, R10, R11, RBX, RBP, R13, R14, R15];

/// Where a guest register lives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loc {
    H(R),
    M,
}

/// Where each guest register lives: ten in host registers and three in the frame (GP 0.7.2:
/// eleven and two); the gas and instruction counters have the last two host registers (a
/// counter in memory would make every block a read-modify-write of the same slot: a
/// store-to-load chain that doubled the time of tight loops such as `sieve`'s).
#[derive(Clone, Copy)]
struct RegMap {
    loc: [Loc; 13],
    /// Frame offset of each register in the frame (0 for the others).
    slot: [i32; 13],
    /// Whether compiled code keeps the instruction counter in [`COUNT`] (GP 0.8.0). Under GP
    /// 0.7.2 a block's gas is its instruction count, so the driver derives the count from the
    /// gas used and r14 holds a guest register instead (two in the frame, not three).
    counts: bool,
}

/// The host register of the gas counter.
const GAS: R = R15;
/// The host register of the executed-instruction counter.
const COUNT: R = R14;
/// The host register holding the page table's base pointer (also in the frame, to restore it
/// after the instructions that write rdx: `div`, widening `mul`).
const TABLE: R = RDX;

impl RegMap {
    /// ω`spilled` (at most three) in the frame, the others in [`HOST`] in order (without
    /// [`COUNT`] if `counts`).
    fn new(spilled: &[usize], counts: bool) -> RegMap {
        let mut loc = [Loc::M; 13];
        let mut slot = [0; 13];
        let mut host = HOST
            .iter()
            .filter(|&&h| h != GAS && (h != COUNT || !counts));
        let slots = [frame::SPILLED, frame::SPILLED2, frame::SPILLED3];
        for (i, l) in loc.iter_mut().enumerate() {
            if let Some(k) = spilled.iter().position(|&r| r == i) {
                slot[i] = slots[k];
            } else {
                *l = Loc::H(*host.next().expect("a host register for each guest one"));
            }
        }
        RegMap { loc, slot, counts }
    }

    fn loc(&self, g: Reg) -> Loc {
        self.loc[g as usize]
    }

    fn rm(&self, g: Reg) -> Rm {
        match self.loc(g) {
            Loc::H(h) => Rm::Reg(h),
            Loc::M => Rm::mem(RSP, self.slot[g as usize]),
        }
    }
}

/// Frame offset of memory-group slot `hb`.
fn group_slot(hb: usize) -> i32 {
    frame::GROUP + 8 * hb as i32
}

/// Bytes read by a load kind.
fn load_size(kind: K) -> u32 {
    match kind {
        K::LoadU8 | K::LoadIndU8 | K::LoadI8 | K::LoadIndI8 => 1,
        K::LoadU16 | K::LoadIndU16 | K::LoadI16 | K::LoadIndI16 => 2,
        K::LoadU32 | K::LoadIndU32 | K::LoadI32 | K::LoadIndI32 => 4,
        _ => 8,
    }
}

fn fits_i32(x: u64) -> bool {
    (x as i64) >= i32::MIN as i64 && (x as i64) <= i32::MAX as i64
}

/// CPU features the code generator may use (detected once per compilation).
#[derive(Clone, Copy)]
pub(crate) struct Features {
    pub popcnt: bool,
    pub lzcnt: bool,
    pub bmi1: bool,
}

impl Features {
    pub fn detect() -> Features {
        Features {
            popcnt: std::arch::is_x86_feature_detected!("popcnt"),
            lzcnt: std::arch::is_x86_feature_detected!("lzcnt"),
            bmi1: std::arch::is_x86_feature_detected!("bmi1"),
        }
    }
}

/// The result of code generation, before it is mapped executable.
pub(crate) struct Output {
    pub code: Vec<u8>,
    /// Native offset of each block of `OpTable::blocks`.
    pub block_offsets: Vec<u32>,
    /// GP 0.8.0: (pc after an `ecalli`, native offset where compiled code resumes), by pc.
    pub resume_points: Vec<(u32, u32)>,
}

struct Gen<'a> {
    a: Asm,
    table: &'a OpTable,
    features: Features,
    /// Label of each block (index into `table.blocks`).
    block_labels: Vec<Label>,
    /// Yield stubs to emit after the code: (label, pc).
    yields: Vec<(Label, u32)>,
    /// Entry-exit stubs: (label, pc, gas to give back).
    entries: Vec<(Label, u32, u64)>,
    exit_yield: Label,
    exit_entry: Label,
    exit_host: Label,
    /// (pc after an `ecalli`, label of the code that resumes there).
    resumes: Vec<(u32, Label)>,
    gp080: bool,
    jt_label: Label,
    map: RegMap,
    /// Emitting a block's fast version, which its checked twin follows: the not-taken edge
    /// jumps to the next block instead of running into it.
    jump_next: bool,
    /// Emitting a checked twin: its `ecalli`s register no resume point (the fast version's do).
    in_twin: bool,
    /// The memory group (frame slot) whose checked host address rax still holds: set by the
    /// group's check and member accesses (which leave rax alone), cleared by any other op whose
    /// code may write rax (as [`Asm::take_written`] counts) and at every join point.
    rax_group: Option<usize>,
    /// Scratch of `block`: per op slot of the block, the index of its memory group or
    /// [`NO_GROUP`].
    member: Vec<usize>,
    /// Per op slot: the index of the block whose `Charge` slot it is, `u32::MAX` for the other
    /// slots (`OpTable::block_of_slot` without the binary search).
    slot_block: Vec<u32>,
    /// Per op slot: the page cache of a cached access site, [`NO_CACHE`] for the others.
    cache_of: Vec<u8>,
    /// The op slot being translated (`Gen::op`).
    slot: u32,
    /// The slow halves of the cached access sites, emitted with the stubs.
    refills: Vec<Refill>,
    /// The memory groups of the loop blocks, found while choosing the cached sites (taken by
    /// `block`; the other blocks' groups are found there).
    loop_groups: Vec<Option<Vec<mem_groups::Group>>>,
    /// The frame's size: [`frame::SIZE`] plus the page caches.
    frame_size: i32,
}

/// `Gen::cache_of` of an op slot without a page cache.
const NO_CACHE: u8 = u8::MAX;

/// `Gen::member` of an op outside every group.
const NO_GROUP: usize = usize::MAX;

/// Generates the code of every block. The caller has compiled all blocks of `table`.
/// `spilled` (distinct, < 13) are the guest registers to keep in the frame (all others live in
/// host registers): the program's three least used ones.
pub(crate) fn generate(
    table: &OpTable,
    loops: &Loops,
    features: Features,
    spec: crate::Spec,
    spilled: [usize; 3],
) -> Option<Output> {
    let n = table.blocks.len();
    let slots = table.len();
    // Reservations from the sizes seen on large programs (bigcode: per block about 2.4 labels,
    // per slot about 1.2 fixups and 0.1 yield stubs), so that large programs do not regrow.
    let mut g = Gen {
        a: Asm::with_capacity(slots * 24 + 1024, 2 * n + slots / 2 + 16, 2 * slots + 16),
        table,
        features,
        block_labels: Vec::with_capacity(n),
        yields: Vec::with_capacity(slots / 8 + 16),
        entries: Vec::with_capacity(n),
        exit_yield: Label(0),
        exit_entry: Label(0),
        exit_host: Label(0),
        resumes: Vec::new(),
        gp080: spec == crate::Spec::Gp0_8_0,
        jt_label: Label(0),
        jump_next: false,
        in_twin: false,
        rax_group: None,
        map: if spec == crate::Spec::Gp0_8_0 {
            RegMap::new(&spilled, true)
        } else {
            RegMap::new(&spilled[..2], false)
        },
        member: Vec::new(),
        slot_block: {
            let mut v = vec![u32::MAX; slots];
            for (b, info) in table.blocks.iter().enumerate() {
                v[info.slot as usize] = b as u32;
            }
            v
        },
        cache_of: Vec::new(),
        slot: 0,
        refills: Vec::new(),
        loop_groups: Vec::new(),
        frame_size: frame::SIZE,
    };
    g.choose_cached_sites(loops);
    g.exit_yield = g.a.label();
    g.exit_entry = g.a.label();
    g.exit_host = g.a.label();
    g.jt_label = g.a.label();
    for _ in 0..n {
        let l = g.a.label();
        g.block_labels.push(l);
    }
    g.trampoline();
    g.exits();
    for b in 0..n {
        g.block(b);
    }
    g.stubs();
    g.jump_table();
    if !g.a.finish() {
        return None;
    }
    let block_offsets = g
        .block_labels
        .iter()
        .map(|&l| g.a.offset_of(l).expect("every block is bound"))
        .collect();
    let resume_points = g
        .resumes
        .iter()
        .map(|&(pc, l)| (pc, g.a.offset_of(l).expect("bound")))
        .collect();
    Some(Output {
        code: g.a.code,
        block_offsets,
        resume_points,
    })
}

/// Static control flow of the blocks, for the code generator's heuristics.
pub(crate) struct Loops {
    /// Per block: how many backward static jumps (from a block c to a block h <= b <= c) span
    /// it, one more for a block that jumps to itself: a cheap stand-in for its loop nesting depth.
    pub depth: Vec<u32>,
}

impl Loops {
    pub fn of(table: &OpTable) -> Loops {
        let n = table.blocks.len();
        // depth as a difference array: +1 at h, -1 after c.
        let mut delta = vec![0i64; n + 1];
        for b in 0..n {
            let end = table
                .blocks
                .get(b + 1)
                .map_or(table.len() as u32, |x| x.slot);
            for slot in table.blocks[b].slot + 1..end {
                let Some(target) = static_target(table.op(slot), slot) else {
                    continue;
                };
                // Slots ascend with blocks: only a target at or before this block's `Charge`
                // slot can be a back edge (the search for its block is left to those).
                if target != crate::program::lazy::INVALID_SLOT && target <= table.blocks[b].slot {
                    let t = table.block_of_slot(target);
                    if t <= b {
                        delta[t] += 1;
                        delta[b + 1] -= 1;
                    }
                    if t == b {
                        // A block that loops on itself is an innermost loop: count it one
                        // level deeper (these are most programs' hottest code).
                        delta[t] += 1;
                        delta[b + 1] -= 1;
                    }
                }
            }
        }
        let mut depth = Vec::with_capacity(n);
        let mut d = 0i64;
        for x in &delta[..n] {
            d += x;
            depth.push(d.max(0) as u32);
        }
        Loops { depth }
    }
}

/// The static jump target slot of a branch or jump op (a `Charge` slot runs into itself).
fn static_target(op: &Op, slot: u32) -> Option<u32> {
    let imm = op.imm();
    Some(match op.k {
        K::Jump => imm as u32,
        K::LoadImmJump | crate::program::branch_imm_kinds!() => (imm >> 32) as u32,
        crate::program::branch_reg_kinds!() => imm as u32,
        K::Charge => slot,
        _ => return None,
    })
}

impl Gen<'_> {
    /// `extern "sysv64" fn(ctx: *mut Ctx, entry: *const u8)`: saves the callee-saved registers,
    /// builds the frame, loads the guest registers and jumps to `entry`.
    fn trampoline(&mut self) {
        let map = self.map;
        let a = &mut self.a;
        for r in [RBX, RBP, R12, R13, R14, R15] {
            a.push(r);
        }
        a.alu_rm_imm(Size::B64, Alu::Sub, Rm::Reg(RSP), self.frame_size);
        a.mov_rm_r(Size::B64, Rm::mem(RSP, frame::CTX), RDI);
        // Every entry starts with empty page caches: the page table may have changed since the
        // last exit (compiled code itself never changes it).
        for k in 0..(self.frame_size - frame::SIZE) / 16 {
            a.mov_rm_imm(Size::B64, Rm::mem(RSP, cache_slot(k as u8)), NO_PAGE);
        }
        a.mov_r_rm(Size::B64, TABLE, Rm::mem(RDI, ctx::TABLE));
        a.mov_rm_r(Size::B64, Rm::mem(RSP, frame::TABLE), TABLE);
        for i in 0..13 {
            if map.loc[i] == Loc::M {
                a.mov_r_rm(Size::B64, RAX, Rm::mem(RDI, ctx::REGS + 8 * i as i32));
                a.mov_rm_r(Size::B64, Rm::mem(RSP, map.slot[i]), RAX);
            }
        }
        a.mov_r_rm(Size::B64, GAS, Rm::mem(RDI, ctx::GAS));
        if map.counts {
            a.mov_r_rm(Size::B64, COUNT, Rm::mem(RDI, ctx::INSTRUCTIONS));
        }
        a.mov_r_rm(Size::B64, RAX, Rm::Reg(RSI));
        // rdi holds the context: load its guest register last.
        let mut last = None;
        for i in 0..13 {
            match map.loc[i] {
                Loc::H(RDI) => last = Some(i),
                Loc::H(h) => a.mov_r_rm(Size::B64, h, Rm::mem(RDI, ctx::REGS + 8 * i as i32)),
                Loc::M => {}
            }
        }
        let last = last.expect("rdi holds a guest register");
        a.mov_r_rm(Size::B64, RDI, Rm::mem(RDI, ctx::REGS + 8 * last as i32));
        a.jmp_rm(Rm::Reg(RAX));
    }

    /// The two exits: write the exit kind, store the guest state into the context, return.
    fn exits(&mut self) {
        let map = self.map;
        let a = &mut self.a;
        let common = a.label();
        a.bind(self.exit_yield);
        a.mov_rm_imm(Size::B32, Rm::mem(RSP, frame::EXIT + 4), EXIT_YIELD as i32);
        a.jmp(common);
        a.bind(self.exit_entry);
        a.mov_rm_imm(Size::B32, Rm::mem(RSP, frame::EXIT + 4), EXIT_ENTRY as i32);
        a.jmp(common);
        a.bind(self.exit_host);
        a.mov_rm_imm(Size::B32, Rm::mem(RSP, frame::EXIT + 4), EXIT_HOST as i32);
        a.bind(common);
        a.mov_r_rm(Size::B64, RAX, Rm::mem(RSP, frame::CTX));
        for i in 0..13 {
            if let Loc::H(h) = map.loc[i] {
                a.mov_rm_r(Size::B64, Rm::mem(RAX, ctx::REGS + 8 * i as i32), h);
            }
        }
        for i in 0..13 {
            if map.loc[i] == Loc::M {
                a.mov_r_rm(Size::B64, RCX, Rm::mem(RSP, map.slot[i]));
                a.mov_rm_r(Size::B64, Rm::mem(RAX, ctx::REGS + 8 * i as i32), RCX);
            }
        }
        a.mov_rm_r(Size::B64, Rm::mem(RAX, ctx::GAS), GAS);
        if map.counts {
            a.mov_rm_r(Size::B64, Rm::mem(RAX, ctx::INSTRUCTIONS), COUNT);
        }
        a.mov_r_rm(Size::B64, RCX, Rm::mem(RSP, frame::EXIT));
        a.mov_rm_r(Size::B64, Rm::mem(RAX, ctx::EXIT), RCX);
        a.alu_rm_imm(Size::B64, Alu::Add, Rm::Reg(RSP), self.frame_size);
        for r in [R15, R14, R13, R12, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
    }

    fn yield_at(&mut self, pc: u32) -> Label {
        if let Some(&(l, p)) = self.yields.last() {
            if p == pc {
                return l;
            }
        }
        let l = self.a.label();
        self.yields.push((l, pc));
        l
    }

    fn stubs(&mut self) {
        // Refills first: they add yield stubs.
        for r in std::mem::take(&mut self.refills) {
            self.refill(r);
        }
        for (l, pc) in std::mem::take(&mut self.yields) {
            self.a.bind(l);
            self.a
                .mov_rm_imm(Size::B32, Rm::mem(RSP, frame::EXIT), pc as i32);
            self.a.jmp(self.exit_yield);
        }
        for (l, pc, refund) in std::mem::take(&mut self.entries) {
            self.a.bind(l);
            if refund != 0 {
                self.add_gas(Alu::Add, refund);
            }
            self.a
                .mov_rm_imm(Size::B32, Rm::mem(RSP, frame::EXIT), pc as i32);
            self.a.jmp(self.exit_entry);
        }
    }

    /// `gas op= amount`.
    fn add_gas(&mut self, op: Alu, amount: u64) {
        let gas = Rm::Reg(GAS);
        if amount <= i32::MAX as u64 {
            self.a.alu_rm_imm(Size::B64, op, gas, amount as i32);
        } else {
            self.a.mov_r_imm(RAX, amount);
            self.a.alu_rm_r(Size::B64, op, gas, RAX);
        }
    }

    /// The native jump table: per entry the offset of the target block's code from the table
    /// (a negative i32: the table follows all code), 0 for an invalid target.
    fn jump_table(&mut self) {
        self.a.align(4);
        self.a.bind(self.jt_label);
        let jt = &self.table.jump_table;
        if jt.is_uniform() {
            return;
        }
        let at = self.a.pos() as i64;
        for i in 0..jt.len() {
            let slot = jt[i];
            let off = self.block_of_target(slot).map_or(0, |b| {
                self.a.offset_of(self.block_labels[b]).expect("bound") as i64 - at
            });
            self.a.data32(off as i32 as u32);
        }
    }

    /// The block whose `Charge` slot is `slot`, `None` for the invalid-target slot.
    fn block_of_target(&self, slot: u32) -> Option<usize> {
        (slot != crate::program::lazy::INVALID_SLOT).then(|| {
            match self.slot_block.get(slot as usize) {
                Some(&b) if b != u32::MAX => b as usize,
                _ => self.table.block_of_slot(slot),
            }
        })
    }

    fn target_label(&mut self, slot: u32, from_pc: u32) -> Label {
        match self.block_of_target(slot) {
            Some(b) => self.block_labels[b],
            None => self.yield_at(from_pc),
        }
    }

    fn block(&mut self, b: usize) {
        let info = self.table.blocks[b];
        let end = self
            .table
            .blocks
            .get(b + 1)
            .map_or(self.table.len() as u32, |n| n.slot);
        let cost = self.table.slot_cost(info.slot);
        // No alignment padding: the previous block may run into this one.
        self.a.bind(self.block_labels[b]);
        // Gas (GP 0.8.0 A.9 block cost; GP 0.7.2 the block's instruction count): an
        // unaffordable block exits at its entry with the gas unchanged. Interrupt requests are
        // not checked here: compiled code runs on gas slices, and the driver looks at requests
        // when a slice runs out (`instance::NATIVE_GAS_SLICE`); every block costs at least 1.
        let oog = self.a.label();
        self.entries.push((oog, info.pc, cost));
        self.add_gas(Alu::Sub, cost);
        self.a.jcc(Cond::L, oog);
        // The block's instructions count as executed; an exit inside the block takes back the
        // ones it did not execute (`Instance::run_native`). (GP 0.7.2: the gas is the count.)
        if self.map.counts {
            self.a.alu_rm_imm(
                Size::B64,
                Alu::Add,
                Rm::Reg(COUNT),
                (end - info.slot - 1) as i32,
            );
        } else {
            debug_assert_eq!(cost, (end - info.slot - 1) as u64);
        }
        let next = self.block_labels.get(b + 1).copied();
        let groups = match self.loop_groups.get_mut(b).and_then(Option::take) {
            Some(groups) => groups,
            None => mem_groups::groups(self.table, info.slot + 1, end),
        };
        if groups.is_empty() {
            for slot in info.slot + 1..end {
                let op = self.table.op(slot);
                self.op(op, slot, next);
            }
            return;
        }
        // The fast version: each group's accesses through its checked host address; a failed
        // check continues in the checked twin at the group's first access.
        let twins: Vec<Label> = groups.iter().map(|_| self.a.label()).collect();
        let start = info.slot + 1;
        self.mark_members(&groups, start, end);
        self.jump_next = true;
        self.rax_group = None;
        for slot in start..end {
            let op = self.table.op(slot);
            match self.member[(slot - start) as usize] {
                NO_GROUP => {
                    // rax keeps a group's host address across an op whose code never writes
                    // it (the assembler counts every register written, and every register at
                    // a join point).
                    self.a.take_written();
                    self.op(op, slot, next);
                    if self.a.take_written() & (1 << RAX) != 0 {
                        self.rax_group = None;
                    }
                }
                gi => {
                    let g = &groups[gi];
                    if g.slots[0] == slot {
                        self.group_check(g, twins[gi]);
                    }
                    self.group_access(op, g);
                }
            }
        }
        // Whatever the last op was (an `ecalli` resumes after itself), never run into the twin.
        if let Some(n) = next {
            self.a.jmp(n);
        }
        self.jump_next = false;
        self.in_twin = true;
        let twin_start = groups.iter().map(|g| g.slots[0]).min().expect("groups");
        for slot in twin_start..end {
            for (gi, g) in groups.iter().enumerate() {
                if g.slots[0] == slot {
                    self.a.bind(twins[gi]);
                }
            }
            let op = self.table.op(slot);
            self.op(op, slot, next);
        }
        self.in_twin = false;
    }

    /// Fills [`Gen::member`] for the op slots `start..end` of one block: each slot's index in
    /// `groups`, [`NO_GROUP`] for the slots outside every group.
    fn mark_members(&mut self, groups: &[mem_groups::Group], start: u32, end: u32) {
        self.member.clear();
        self.member.resize((end - start) as usize, NO_GROUP);
        for (gi, g) in groups.iter().enumerate() {
            for &s in &g.slots {
                self.member[(s - start) as usize] = gi;
            }
        }
    }

    /// A group's check: the page entry of base + min has the group's bits and the span fits in
    /// the page; then the frame slot gets the host address of base + 0. Otherwise `twin`.
    fn group_check(&mut self, g: &mem_groups::Group, twin: Label) {
        self.address(Some(g.base), g.min as u32 as u64);
        let a = &mut self.a;
        a.mov_r_rm(Size::B32, RAX, Rm::Reg(RCX));
        a.shift_imm(Size::B32, Shift::Shr, Rm::Reg(RAX), 12);
        a.mov_r_rm(Size::B64, RAX, Rm::idx(TABLE, RAX, 8));
        // A group with stores needs WRITE (which implies READ), one of loads only READ.
        let write = g.mask & 2 != 0;
        a.test_rm_imm(Size::B8, Rm::Reg(RAX), Self::access_bit(write));
        a.jcc(Cond::E, twin);
        a.alu_rm_imm(Size::B32, Alu::And, Rm::Reg(RCX), 0xfff);
        a.alu_rm_imm(Size::B32, Alu::Cmp, Rm::Reg(RCX), 4096 - g.span as i32);
        a.jcc(Cond::A, twin);
        // rax = the host address of base + min: the page plus the offset in it.
        let disp = Self::entry_to_page(a, write);
        a.lea(
            Size::B64,
            RAX,
            Rm::Mem {
                base: RAX,
                index: Some((RCX, 1)),
                disp,
            },
        );
        a.mov_rm_r(Size::B64, Rm::mem(RSP, group_slot(g.hb)), RAX);
        self.rax_group = Some(g.hb);
    }

    /// A group member's access through the group's checked host address (of base + min).
    fn group_access(&mut self, op: &Op, g: &mem_groups::Group) {
        let acc = mem_groups::access(op).expect("a group member accesses memory");
        // (A member leaves rax alone: a spilled destination or value goes through rcx.)
        if self.rax_group != Some(g.hb) {
            self.a
                .mov_r_rm(Size::B64, RAX, Rm::mem(RSP, group_slot(g.hb)));
            self.rax_group = Some(g.hb);
        }
        // Count from here: a member's own code is not expected to write rax, and if it did, rax
        // would no longer be known to hold the group's address.
        self.a.take_written();
        // off - min is in 0..=MAX_SPAN (both are i32; the difference is taken in i64).
        let disp = acc.off as i64 - g.min as i64;
        debug_assert!((0..=mem_groups::MAX_SPAN).contains(&disp));
        let at = Rm::mem(RAX, disp as i32);
        if acc.store {
            let size = match acc.n {
                1 => Size::B8,
                2 => Size::B16,
                4 => Size::B32,
                _ => Size::B64,
            };
            if matches!(
                op.k,
                K::StoreImmIndU8 | K::StoreImmIndU16 | K::StoreImmIndU32 | K::StoreImmIndU64
            ) {
                self.a.mov_rm_imm(size, at, (op.imm() >> 32) as u32 as i32);
            } else {
                let r = self.read(op.a, RCX);
                self.a.mov_rm_r(size, at, r);
            }
        } else {
            self.load_from(op.k, op.a, at);
        }
        if self.a.take_written() & (1 << RAX) != 0 {
            self.rax_group = None;
        }
    }

    /// Loads ω`g` into a host register: its own, or `scratch`.
    fn read(&mut self, g: Reg, scratch: R) -> R {
        let map = self.map;
        match map.loc(g) {
            Loc::H(h) => h,
            Loc::M => {
                self.a.mov_r_rm(Size::B64, scratch, map.rm(g));
                scratch
            }
        }
    }

    /// ω`g` ← `src` (64 bits).
    fn set(&mut self, g: Reg, src: R) {
        let map = self.map;
        self.a.mov_rm_r(Size::B64, map.rm(g), src);
    }

    /// ω`g` ← sign-extended low 32 bits of `src`.
    fn set_sx32(&mut self, g: Reg, src: R) {
        let map = self.map;
        match map.loc(g) {
            Loc::H(h) => self.a.movsx(Size::B32, h, Rm::Reg(src)),
            Loc::M => {
                self.a.movsx(Size::B32, RAX, Rm::Reg(src));
                self.set(g, RAX);
            }
        }
    }

    /// ω`g` ← `imm`.
    fn set_imm(&mut self, g: Reg, imm: u64) {
        let map = self.map;
        match map.loc(g) {
            Loc::H(h) => self.a.mov_r_imm(h, imm),
            Loc::M if fits_i32(imm) => self.a.mov_rm_imm(Size::B64, map.rm(g), imm as i32),
            Loc::M => {
                self.a.mov_r_imm(RAX, imm);
                self.set(g, RAX);
            }
        }
    }

    /// ω`d` = ω`a` op ω`b` / imm (64 bits), with the fewest moves. `f(asm, dst, src)` emits
    /// `dst op= src`.
    fn binop(
        &mut self,
        d: Reg,
        a: Reg,
        b: Operand,
        commutative: bool,
        f: impl Fn(&mut Asm, R, Rm),
    ) {
        let map = self.map;
        let src = match b {
            Operand::G(b) => map.rm(b),
            Operand::Imm(_) => Rm::Reg(RCX),
        };
        if let Operand::Imm(v) = b {
            self.a.mov_r_imm(RCX, v);
        }
        match map.loc(d) {
            Loc::H(dh) if d == a => f(&mut self.a, dh, src),
            Loc::H(dh) if b == Operand::G(d) => {
                if commutative {
                    f(&mut self.a, dh, map.rm(a));
                } else {
                    self.a.mov_r_rm(Size::B64, RAX, map.rm(a));
                    f(&mut self.a, RAX, src);
                    self.a.mov_r_rm(Size::B64, dh, Rm::Reg(RAX));
                }
            }
            Loc::H(dh) => {
                self.a.mov_r_rm(Size::B64, dh, map.rm(a));
                f(&mut self.a, dh, src);
            }
            Loc::M => {
                self.a.mov_r_rm(Size::B64, RAX, map.rm(a));
                f(&mut self.a, RAX, src);
                self.set(d, RAX);
            }
        }
    }

    /// 64-bit ALU op with an immediate where x86 has one.
    fn alu64(&mut self, op: Alu, d: Reg, a: Reg, b: Operand) {
        if let Operand::Imm(v) = b {
            if fits_i32(v) {
                let v = v as i32;
                return self.binop_with(d, a, |asm, dst| asm.alu_rm_imm(Size::B64, op, dst, v));
            }
        }
        let map = self.map;
        if let (true, Loc::M, Operand::G(b)) = (d == a, map.loc(d), b) {
            if let Loc::H(hb) = map.loc(b) {
                // ω(d) op= ω(b) on the frame slot.
                return self.a.alu_rm_r(Size::B64, op, map.rm(d), hb);
            }
        }
        let commutative = op != Alu::Sub;
        self.binop(d, a, b, commutative, |asm, dst, src| {
            asm.alu_r_rm(Size::B64, op, dst, src)
        });
    }

    /// ω`d` = f(ω`a`), f working in place on a register or (ω`d` = ω`a` in the frame) on its
    /// slot.
    fn binop_with(&mut self, d: Reg, a: Reg, f: impl Fn(&mut Asm, Rm)) {
        let map = self.map;
        match map.loc(d) {
            Loc::H(dh) => {
                if d != a {
                    self.a.mov_r_rm(Size::B64, dh, map.rm(a));
                }
                f(&mut self.a, Rm::Reg(dh));
            }
            Loc::M if d == a => f(&mut self.a, map.rm(d)),
            Loc::M => {
                self.a.mov_r_rm(Size::B64, RAX, map.rm(a));
                f(&mut self.a, Rm::Reg(RAX));
                self.set(d, RAX);
            }
        }
    }

    /// 32-bit op: eax = ω`a` (low 32) op src; ω`d` = sx32(eax).
    fn op32(&mut self, d: Reg, a: Operand, f: impl Fn(&mut Asm, R)) {
        let map = self.map;
        match a {
            Operand::G(a) => self.a.mov_r_rm(Size::B32, RAX, map.rm(a)),
            Operand::Imm(v) => self.a.mov_r_imm(RAX, v as u32 as u64),
        }
        f(&mut self.a, RAX);
        self.set_sx32(d, RAX);
    }

    /// ecx = the 32-bit guest address ω`base` + off (or `off`).
    fn address(&mut self, base: Option<Reg>, off: u64) {
        self.address_to(RCX, base, off);
    }

    /// `dst` (32 bits) = ω`base` + off mod 2^32 (or `off`).
    fn address_to(&mut self, dst: R, base: Option<Reg>, off: u64) {
        let map = self.map;
        match base.map(|g| (g, map.loc(g))) {
            None => self.a.mov_r_imm(dst, off as u32 as u64),
            Some((_, Loc::H(h))) => self.a.lea(Size::B32, dst, Rm::mem(h, off as u32 as i32)),
            Some((g, Loc::M)) => {
                self.a.mov_r_rm(Size::B32, dst, map.rm(g));
                if off as u32 != 0 {
                    self.a
                        .alu_rm_imm(Size::B32, Alu::Add, Rm::Reg(dst), off as u32 as i32);
                }
            }
        }
    }

    /// The page-entry bit an access needs: WRITE for a store (an entry with WRITE has READ too,
    /// `memory::WRITABLE_BITS`), READ for a load.
    fn access_bit(write: bool) -> i32 {
        if write {
            2
        } else {
            1
        }
    }

    /// With a page entry in rax whose [`Gen::access_bit`] is set: rax + the returned
    /// displacement is the page's host address. A writable entry's bits are exactly
    /// `WRITABLE_BITS` and are taken off in the displacement; a readable one's are masked off.
    fn entry_to_page(a: &mut Asm, write: bool) -> i32 {
        if write {
            -(crate::memory::WRITABLE_BITS as i32)
        } else {
            a.alu_rm_imm(Size::B64, Alu::And, Rm::Reg(RAX), -8);
            0
        }
    }

    /// With the address in ecx: rax + rcx + the returned displacement = the host address, or a
    /// yield at `pc` if the page's entry lacks the access bit or the `n`-byte access crosses the
    /// page end. (A load masks the entry's bits off; for a store they are exactly
    /// `WRITABLE_BITS`, taken off in the displacement.)
    fn translate(&mut self, n: u32, write: bool, pc: u32) -> i32 {
        let slow = self.yield_at(pc);
        let a = &mut self.a;
        a.mov_r_rm(Size::B32, RAX, Rm::Reg(RCX));
        a.shift_imm(Size::B32, Shift::Shr, Rm::Reg(RAX), 12);
        a.mov_r_rm(Size::B64, RAX, Rm::idx(TABLE, RAX, 8));
        a.test_rm_imm(Size::B8, Rm::Reg(RAX), Self::access_bit(write));
        a.jcc(Cond::E, slow);
        a.alu_rm_imm(Size::B32, Alu::And, Rm::Reg(RCX), 0xfff);
        if n > 1 {
            a.alu_rm_imm(Size::B32, Alu::Cmp, Rm::Reg(RCX), (4096 - n) as i32);
            a.jcc(Cond::A, slow);
        }
        Self::entry_to_page(a, write)
    }

    /// The host address of the `n`-byte access at ω`base` + off (or `off`) of the op being
    /// translated, or a yield at `pc` (see [`Gen::translate`], [`Gen::cached_access`]).
    fn access_at(&mut self, n: u32, write: bool, base: Option<Reg>, off: u64, pc: u32) -> Rm {
        match self.cache_of.get(self.slot as usize).copied() {
            Some(k) if k != NO_CACHE => self.cached_access(k, n, write, base, off, pc),
            _ => {
                self.address(base, off);
                let disp = self.translate(n, write, pc);
                Rm::Mem {
                    base: RAX,
                    index: Some((RCX, 1)),
                    disp,
                }
            }
        }
    }

    /// rax = the host address of the access at ω`base` + off through page cache `k` when the
    /// access lies in the cached page — the address (zero-extended in rax) − the page's base is
    /// at most 4096 − `n` (as 64-bit values: an empty cache's base, [`NO_PAGE`], is above every
    /// address) — else
    /// the out-of-line [`Refill`] checks the page entry as [`Gen::translate`] does (yielding at
    /// `pc` when that fails), puts the page in the cache and retries. So the host address is
    /// always inside a page whose entry allowed this access during this entry to compiled code,
    /// and page entries do not change while compiled code runs (every change is made outside it,
    /// and each entry empties the caches).
    fn cached_access(
        &mut self,
        k: u8,
        n: u32,
        write: bool,
        base: Option<Reg>,
        off: u64,
        pc: u32,
    ) -> Rm {
        let (label, retry) = (self.a.label(), self.a.label());
        self.a.bind(retry);
        self.address_to(RAX, base, off);
        let a = &mut self.a;
        a.alu_r_rm(Size::B64, Alu::Sub, RAX, Rm::mem(RSP, cache_slot(k)));
        a.alu_rm_imm(Size::B64, Alu::Cmp, Rm::Reg(RAX), (4096 - n) as i32);
        a.jcc(Cond::A, label);
        a.alu_r_rm(Size::B64, Alu::Add, RAX, Rm::mem(RSP, cache_slot(k) + 8));
        self.refills.push(Refill {
            label,
            retry,
            k,
            base,
            off,
            n,
            write,
            pc,
        });
        Rm::mem(RAX, 0)
    }

    /// The slow half of a cached access site: checks the page of the access as
    /// [`Gen::translate`] does, stores its guest base and host address in the cache, and retries.
    fn refill(&mut self, r: Refill) {
        self.a.bind(r.label);
        self.address(r.base, r.off);
        let disp = self.translate(r.n, r.write, r.pc);
        let a = &mut self.a;
        a.lea(Size::B64, RAX, Rm::mem(RAX, disp));
        a.mov_rm_r(Size::B64, Rm::mem(RSP, cache_slot(r.k) + 8), RAX);
        // `translate` kept only the in-page offset: the address again, for the page base.
        self.address(r.base, r.off);
        let a = &mut self.a;
        a.mov_r_rm(Size::B32, RAX, Rm::Reg(RCX));
        a.alu_rm_imm(Size::B32, Alu::And, Rm::Reg(RAX), -4096);
        a.mov_rm_r(Size::B64, Rm::mem(RSP, cache_slot(r.k)), RAX);
        a.jmp(r.retry);
    }

    /// Chooses the access sites that get a page cache: loads and stores through a register in
    /// blocks inside loops, outside the block's memory groups, the deepest loops first (at most
    /// [`MAX_CACHED_SITES`]); sizes the frame for them.
    fn choose_cached_sites(&mut self, loops: &Loops) {
        let table = self.table;
        let n = table.blocks.len();
        let mut candidates: Vec<(u32, u32)> = Vec::new();
        for b in 0..n {
            if loops.depth[b] == 0 {
                continue;
            }
            let start = table.blocks[b].slot + 1;
            let end = table
                .blocks
                .get(b + 1)
                .map_or(table.len() as u32, |x| x.slot);
            let groups = mem_groups::groups(table, start, end);
            self.mark_members(&groups, start, end);
            for s in start..end {
                if self.member[(s - start) as usize] == NO_GROUP
                    && mem_groups::access(table.op(s)).is_some()
                {
                    candidates.push((loops.depth[b], s));
                }
            }
            if self.loop_groups.is_empty() {
                self.loop_groups.resize_with(n, || None);
            }
            self.loop_groups[b] = Some(groups);
        }
        if candidates.is_empty() {
            return;
        }
        // Deepest first; among equals, the earlier slot.
        candidates.sort_by_key(|&(depth, s)| (std::cmp::Reverse(depth), s));
        candidates.truncate(MAX_CACHED_SITES);
        self.cache_of = vec![NO_CACHE; table.len()];
        for (k, &(_, s)) in candidates.iter().enumerate() {
            self.cache_of[s as usize] = k as u8;
        }
        self.frame_size = frame::SIZE + 16 * candidates.len() as i32;
    }

    fn load(&mut self, kind: K, dst: Reg, base: Option<Reg>, off: u64, pc: u32) {
        let at = self.access_at(load_size(kind), false, base, off, pc);
        self.load_from(kind, dst, at);
    }

    /// ω`dst` ← the `kind` load from host address `at`.
    fn load_from(&mut self, kind: K, dst: Reg, at: Rm) {
        let map = self.map;
        let f: fn(&mut Asm, R, Rm) = match kind {
            K::LoadU8 | K::LoadIndU8 => |a, d, s| a.movzx(Size::B8, d, s),
            K::LoadI8 | K::LoadIndI8 => |a, d, s| a.movsx(Size::B8, d, s),
            K::LoadU16 | K::LoadIndU16 => |a, d, s| a.movzx(Size::B16, d, s),
            K::LoadI16 | K::LoadIndI16 => |a, d, s| a.movsx(Size::B16, d, s),
            K::LoadU32 | K::LoadIndU32 => |a, d, s| a.mov_r_rm(Size::B32, d, s),
            K::LoadI32 | K::LoadIndI32 => |a, d, s| a.movsx(Size::B32, d, s),
            _ => |a, d, s| a.mov_r_rm(Size::B64, d, s),
        };
        match map.loc(dst) {
            Loc::H(h) => f(&mut self.a, h, at),
            Loc::M => {
                f(&mut self.a, RCX, at);
                self.set(dst, RCX);
            }
        }
    }

    fn store(&mut self, n: u32, value: Operand, base: Option<Reg>, off: u64, pc: u32) {
        let at = self.access_at(n, true, base, off, pc);
        let size = match n {
            1 => Size::B8,
            2 => Size::B16,
            4 => Size::B32,
            _ => Size::B64,
        };
        match value {
            Operand::Imm(v) => self.a.mov_rm_imm(size, at, v as u32 as i32),
            Operand::G(g) => match self.map.loc(g) {
                Loc::H(h) => self.a.mov_rm_r(size, at, h),
                Loc::M => {
                    // No third scratch register (rdx is the table): the address into rax.
                    self.a.lea(Size::B64, RAX, at);
                    let r = self.read(g, RCX);
                    self.a.mov_rm_r(size, Rm::mem(RAX, 0), r);
                }
            },
        }
    }

    /// `cmp ω(a), b` with ω(a) possibly in the frame.
    fn cmp(&mut self, a: Reg, b: Operand) {
        let map = self.map;
        match b {
            Operand::Imm(v) if fits_i32(v) => {
                self.a.alu_rm_imm(Size::B64, Alu::Cmp, map.rm(a), v as i32)
            }
            Operand::Imm(v) => {
                self.a.mov_r_imm(RCX, v);
                self.a.alu_rm_r(Size::B64, Alu::Cmp, map.rm(a), RCX);
            }
            Operand::G(b) => match (map.loc(a), map.loc(b)) {
                // ω(a) in the frame, ω(b) in a register: compare the slot directly.
                (Loc::M, Loc::H(rb)) => self.a.alu_rm_r(Size::B64, Alu::Cmp, map.rm(a), rb),
                _ => {
                    let ra = self.read(a, RCX);
                    self.a.alu_r_rm(Size::B64, Alu::Cmp, ra, map.rm(b));
                }
            },
        }
    }

    fn branch(&mut self, c: Cond, a: Reg, b: Operand, target: u32, pc: u32, next: Option<Label>) {
        self.cmp(a, b);
        let t = self.target_label(target, pc);
        self.a.jcc(c, t);
        self.goto_next(next, pc);
    }

    /// Continues at the next block (the not-taken edge), which the layout puts right here.
    fn goto_next(&mut self, next: Option<Label>, pc: u32) {
        match next {
            Some(l) if self.jump_next => self.a.jmp(l),
            Some(_) => {} // the next block's code follows
            None => {
                let y = self.yield_at(pc);
                self.a.jmp(y);
            }
        }
    }

    fn set_cond(&mut self, d: Reg, a: Reg, b: Operand, c: Cond) {
        // Materialise 0 before the compare (xor clobbers the flags).
        self.a.alu_r_rm(Size::B32, Alu::Xor, RAX, Rm::Reg(RAX));
        self.cmp(a, b);
        self.a.setcc(c, RAX);
        self.set(d, RAX);
    }

    /// A dynamic jump (GP A.5 djump) to the 32-bit address ω`base` + `off`; halts, invalid
    /// addresses and invalid targets yield at `pc`. `before_jump` is emitted after the target is
    /// known and before jumping (it must not touch rax or rcx).
    fn djump(&mut self, pc: u32, base: Reg, off: u64, before_jump: impl FnOnce(&mut Self)) {
        let slow = self.yield_at(pc);
        let jt_len = self.table.jump_table.len() as u64;
        if jt_len > i32::MAX as u64 {
            unreachable!("jump tables have at most 2^24 entries");
        }
        // eax = ror32(address - 2, 1): the entry index i for an address 2(i + 1), and >= 2^31
        // for an odd address (the rotated-in bit) or 0 (2^31 - 1), so one unsigned compare
        // against |j| rejects every invalid address (the halt address 2^32 - 2^16 included).
        self.address_to(RAX, Some(base), off.wrapping_sub(2));
        let a = &mut self.a;
        a.shift_imm(Size::B32, Shift::Ror, Rm::Reg(RAX), 1);
        a.alu_rm_imm(Size::B32, Alu::Cmp, Rm::Reg(RAX), jt_len as i32);
        a.jcc(Cond::Ae, slow);
        if self.table.jump_table.is_uniform() {
            // Every entry has the same target.
            let slot = if jt_len == 0 {
                0
            } else {
                self.table.jump_table[0]
            };
            match self.block_of_target(slot) {
                Some(b) => {
                    let l = self.block_labels[b];
                    before_jump(self);
                    self.a.jmp(l);
                }
                None => self.a.jmp(slow),
            }
            return;
        }
        // The native table holds each target's offset from the table itself (0: invalid).
        a.lea_rip(RCX, self.jt_label);
        a.movsx(Size::B32, RAX, Rm::idx(RCX, RAX, 4));
        a.test_rm_r(Size::B32, Rm::Reg(RAX), RAX);
        a.jcc(Cond::E, slow);
        a.alu_r_rm(Size::B64, Alu::Add, RAX, Rm::Reg(RCX));
        before_jump(self);
        self.a.jmp_rm(Rm::Reg(RAX));
    }

    fn bitcount(&mut self, d: Reg, a: Reg, size: Size, op: u8, ok: bool, pc: u32) {
        let map = self.map;
        if !ok {
            let y = self.yield_at(pc);
            self.a.jmp(y);
            return;
        }
        match map.loc(d) {
            Loc::H(h) => self.a.bitcount(size, op, h, map.rm(a)),
            Loc::M => {
                self.a.bitcount(size, op, RAX, map.rm(a));
                self.set(d, RAX);
            }
        }
    }

    /// rdx = the page table again (after an instruction that wrote rdx).
    fn restore_table(&mut self) {
        self.a
            .mov_r_rm(Size::B64, TABLE, Rm::mem(RSP, frame::TABLE));
    }

    /// Division and remainder. Division by zero and signed overflow yield (the interpreter
    /// computes the GP results, which x86 would fault on).
    fn divide(&mut self, k: K, d: Reg, a: Reg, b: Reg, pc: u32) {
        let map = self.map;
        let wide = matches!(k, K::DivU64 | K::DivS64 | K::RemU64 | K::RemS64);
        let signed = matches!(k, K::DivS64 | K::RemS64 | K::DivS32 | K::RemS32);
        let rem = matches!(k, K::RemU64 | K::RemS64 | K::RemU32 | K::RemS32);
        let size = if wide { Size::B64 } else { Size::B32 };
        let slow = self.yield_at(pc);
        self.a.mov_r_rm(size, RCX, map.rm(b));
        self.a.test_rm_r(size, Rm::Reg(RCX), RCX);
        self.a.jcc(Cond::E, slow);
        self.a.mov_r_rm(size, RAX, map.rm(a));
        if signed {
            let ok = self.a.label();
            self.a.alu_rm_imm(size, Alu::Cmp, Rm::Reg(RCX), -1);
            self.a.jcc(Cond::Ne, ok);
            if wide {
                self.a.mov_r_imm(RDX, i64::MIN as u64);
                self.a.alu_r_rm(Size::B64, Alu::Cmp, RAX, Rm::Reg(RDX));
            } else {
                self.a
                    .alu_rm_imm(Size::B32, Alu::Cmp, Rm::Reg(RAX), i32::MIN);
            }
            self.a.jcc(Cond::E, slow);
            self.a.bind(ok);
            if wide {
                self.a.cqo();
            } else {
                self.a.cdq();
            }
            self.a.group3(size, 7, Rm::Reg(RCX));
        } else {
            self.a.alu_r_rm(Size::B32, Alu::Xor, RDX, Rm::Reg(RDX));
            self.a.group3(size, 6, Rm::Reg(RCX));
        }
        let result = if rem { RDX } else { RAX };
        if wide {
            self.set(d, result);
        } else {
            self.set_sx32(d, result);
        }
        self.restore_table();
    }

    /// Shifts and rotations by a register (count in cl; x86 masks it like the PVM: & 63 / & 31).
    fn shift_reg(&mut self, d: Reg, value: Operand, count: Reg, op: Shift, wide: bool) {
        let map = self.map;
        self.a.mov_r_rm(Size::B32, RCX, map.rm(count));
        if wide {
            match value {
                Operand::G(v) => self.binop_with(d, v, |a, r| a.shift_cl(Size::B64, op, r)),
                Operand::Imm(v) => {
                    self.a.mov_r_imm(RAX, v);
                    self.a.shift_cl(Size::B64, op, Rm::Reg(RAX));
                    self.set(d, RAX);
                }
            }
        } else {
            self.op32(d, value, |a, r| a.shift_cl(Size::B32, op, Rm::Reg(r)));
        }
    }

    fn op(&mut self, op: &Op, slot: u32, next: Option<Label>) {
        self.slot = slot;
        let map = self.map;
        use Operand::{Imm, G};
        let pc = op.pc;
        let imm = op.imm();
        let lo = imm as u32 as i32 as i64 as u64; // sx32 of the low half
        let hi = imm >> 32;
        let (a, b, d) = (op.a, op.b, op.d);
        match op.k {
            K::Charge => {
                // Running into the next block's entry (see the interpreter).
                let t = self.target_label(slot, pc);
                self.a.jmp(t);
            }
            K::Nop => {}
            K::Ecalli => {
                // A host call exits with the pc at the `ecalli` (the gas of its block is
                // charged; GP 0.7.2 gas blocks end here). Under GP 0.8.0 the run resumes at the
                // next instruction, inside the block, from here; under GP 0.7.2 the next
                // instruction starts a gas block, whose entry follows.
                self.a
                    .mov_rm_imm(Size::B32, Rm::mem(RSP, frame::EXIT), pc as i32);
                self.a.jmp(self.exit_host);
                if self.gp080 && !self.in_twin {
                    let l = self.a.label();
                    self.a.bind(l);
                    let next_pc = self.table.op(slot + 1).pc;
                    self.resumes.push((next_pc, l));
                }
            }
            K::Trap | K::Sbrk => {
                let y = self.yield_at(pc);
                self.a.jmp(y);
            }
            K::Fallthrough => self.goto_next(next, pc),
            K::Jump => {
                let t = self.target_label(imm as u32, pc);
                self.a.jmp(t);
            }
            K::LoadImmJump => {
                let t = self.target_label(hi as u32, pc);
                if self.block_of_target(hi as u32).is_some() {
                    self.set_imm(a, lo);
                }
                self.a.jmp(t);
            }
            K::JumpInd => self.djump(pc, a, imm, |_| {}),
            K::LoadImmJumpInd => {
                // The address uses ω_B before ω_A is written.
                self.djump(pc, b, hi as u32 as i32 as i64 as u64, |g| {
                    match map.loc(a) {
                        Loc::H(h) => g.a.mov_r_imm(h, lo),
                        Loc::M => g.a.mov_rm_imm(Size::B64, map.rm(a), lo as i32),
                    }
                });
            }
            K::LoadImm | K::LoadImm64 => self.set_imm(a, imm),
            K::MoveReg => match map.loc(d) {
                Loc::H(h) => self.a.mov_r_rm(Size::B64, h, map.rm(a)),
                Loc::M => {
                    let r = self.read(a, RAX);
                    self.set(d, r);
                }
            },
            K::LoadU8
            | K::LoadI8
            | K::LoadU16
            | K::LoadI16
            | K::LoadU32
            | K::LoadI32
            | K::LoadU64 => self.load(op.k, a, None, imm, pc),
            K::LoadIndU8
            | K::LoadIndI8
            | K::LoadIndU16
            | K::LoadIndI16
            | K::LoadIndU32
            | K::LoadIndI32
            | K::LoadIndU64 => self.load(op.k, a, Some(b), imm, pc),
            K::StoreU8 => self.store(1, G(a), None, imm, pc),
            K::StoreU16 => self.store(2, G(a), None, imm, pc),
            K::StoreU32 => self.store(4, G(a), None, imm, pc),
            K::StoreU64 => self.store(8, G(a), None, imm, pc),
            K::StoreIndU8 => self.store(1, G(a), Some(b), imm, pc),
            K::StoreIndU16 => self.store(2, G(a), Some(b), imm, pc),
            K::StoreIndU32 => self.store(4, G(a), Some(b), imm, pc),
            K::StoreIndU64 => self.store(8, G(a), Some(b), imm, pc),
            K::StoreImmU8 => self.store(1, Imm(hi), None, imm & 0xffff_ffff, pc),
            K::StoreImmU16 => self.store(2, Imm(hi), None, imm & 0xffff_ffff, pc),
            K::StoreImmU32 => self.store(4, Imm(hi), None, imm & 0xffff_ffff, pc),
            K::StoreImmU64 => self.store(8, Imm(hi), None, imm & 0xffff_ffff, pc),
            K::StoreImmIndU8 => self.store(1, Imm(hi), Some(a), lo, pc),
            K::StoreImmIndU16 => self.store(2, Imm(hi), Some(a), lo, pc),
            K::StoreImmIndU32 => self.store(4, Imm(hi), Some(a), lo, pc),
            K::StoreImmIndU64 => self.store(8, Imm(hi), Some(a), lo, pc),
            K::BranchEqImm => self.branch(Cond::E, a, Imm(lo), hi as u32, pc, next),
            K::BranchNeImm => self.branch(Cond::Ne, a, Imm(lo), hi as u32, pc, next),
            K::BranchLtUImm => self.branch(Cond::B, a, Imm(lo), hi as u32, pc, next),
            K::BranchLeUImm => self.branch(Cond::Be, a, Imm(lo), hi as u32, pc, next),
            K::BranchGeUImm => self.branch(Cond::Ae, a, Imm(lo), hi as u32, pc, next),
            K::BranchGtUImm => self.branch(Cond::A, a, Imm(lo), hi as u32, pc, next),
            K::BranchLtSImm => self.branch(Cond::L, a, Imm(lo), hi as u32, pc, next),
            K::BranchLeSImm => self.branch(Cond::Le, a, Imm(lo), hi as u32, pc, next),
            K::BranchGeSImm => self.branch(Cond::Ge, a, Imm(lo), hi as u32, pc, next),
            K::BranchGtSImm => self.branch(Cond::G, a, Imm(lo), hi as u32, pc, next),
            K::BranchEq => self.branch(Cond::E, a, G(b), imm as u32, pc, next),
            K::BranchNe => self.branch(Cond::Ne, a, G(b), imm as u32, pc, next),
            K::BranchLtU => self.branch(Cond::B, a, G(b), imm as u32, pc, next),
            K::BranchLtS => self.branch(Cond::L, a, G(b), imm as u32, pc, next),
            K::BranchGeU => self.branch(Cond::Ae, a, G(b), imm as u32, pc, next),
            K::BranchGeS => self.branch(Cond::Ge, a, G(b), imm as u32, pc, next),
            K::CountSetBits64 => self.bitcount(d, a, Size::B64, 0xb8, self.features.popcnt, pc),
            K::CountSetBits32 => self.bitcount(d, a, Size::B32, 0xb8, self.features.popcnt, pc),
            K::LeadingZeroBits64 => self.bitcount(d, a, Size::B64, 0xbd, self.features.lzcnt, pc),
            K::LeadingZeroBits32 => self.bitcount(d, a, Size::B32, 0xbd, self.features.lzcnt, pc),
            K::TrailingZeroBits64 => self.bitcount(d, a, Size::B64, 0xbc, self.features.bmi1, pc),
            K::TrailingZeroBits32 => self.bitcount(d, a, Size::B32, 0xbc, self.features.bmi1, pc),
            K::SignExtend8 => self.unary(d, |asm, r| asm.movsx(Size::B8, r, map.rm(a))),
            K::SignExtend16 => self.unary(d, |asm, r| asm.movsx(Size::B16, r, map.rm(a))),
            K::ZeroExtend16 => self.unary(d, |asm, r| asm.movzx(Size::B16, r, map.rm(a))),
            K::ReverseBytes => self.unary(d, |asm, r| {
                asm.mov_r_rm(Size::B64, r, map.rm(a));
                asm.bswap(r);
            }),
            // Two registers and an immediate: ω_A = f(ω_B, imm).
            K::AddImm64 => match (map.loc(a), map.loc(b)) {
                (Loc::H(ha), Loc::H(hb)) if fits_i32(imm) => {
                    self.a.lea(Size::B64, ha, Rm::mem(hb, imm as i32))
                }
                _ => self.alu64(Alu::Add, a, b, Imm(imm)),
            },
            // Masks of the low 8 or 16 bits are zero extensions.
            K::AndImm if imm == 0xff || imm == 0xffff => {
                let from = if imm == 0xff { Size::B8 } else { Size::B16 };
                self.unary(a, |asm, r| asm.movzx(from, r, map.rm(b)))
            }
            K::AndImm => self.alu64(Alu::And, a, b, Imm(imm)),
            K::XorImm => self.alu64(Alu::Xor, a, b, Imm(imm)),
            K::OrImm => self.alu64(Alu::Or, a, b, Imm(imm)),
            K::MulImm64 => self.unary(a, |asm, r| {
                asm.imul_r_rm_imm(Size::B64, r, map.rm(b), imm as i32)
            }),
            K::AddImm32 => self.op32(a, G(b), |asm, r| {
                asm.alu_rm_imm(Size::B32, Alu::Add, Rm::Reg(r), imm as i32)
            }),
            K::MulImm32 => self.op32(a, G(b), |asm, r| {
                asm.imul_r_rm_imm(Size::B32, r, Rm::Reg(r), imm as i32)
            }),
            K::SetLtUImm => self.set_cond(a, b, Imm(imm), Cond::B),
            K::SetLtSImm => self.set_cond(a, b, Imm(imm), Cond::L),
            K::SetGtUImm => self.set_cond(a, b, Imm(imm), Cond::A),
            K::SetGtSImm => self.set_cond(a, b, Imm(imm), Cond::G),
            K::ShloLImm32 => self.op32(a, G(b), |asm, r| {
                asm.shift_imm(Size::B32, Shift::Shl, Rm::Reg(r), (imm & 31) as u8)
            }),
            K::ShloRImm32 => self.op32(a, G(b), |asm, r| {
                asm.shift_imm(Size::B32, Shift::Shr, Rm::Reg(r), (imm & 31) as u8)
            }),
            K::SharRImm32 => self.op32(a, G(b), |asm, r| {
                asm.shift_imm(Size::B32, Shift::Sar, Rm::Reg(r), (imm & 31) as u8)
            }),
            K::RotR32Imm => self.op32(a, G(b), |asm, r| {
                asm.shift_imm(Size::B32, Shift::Ror, Rm::Reg(r), (imm & 31) as u8)
            }),
            K::NegAddImm32 => self.op32(a, Imm(imm), |asm, r| {
                asm.alu_r_rm(Size::B32, Alu::Sub, r, map.rm(b))
            }),
            K::NegAddImm64 => {
                self.a.mov_r_imm(RAX, imm);
                self.a.alu_r_rm(Size::B64, Alu::Sub, RAX, map.rm(b));
                self.set(a, RAX);
            }
            K::ShloLImm64 => self.binop_with(a, b, |asm, r| {
                asm.shift_imm(Size::B64, Shift::Shl, r, (imm & 63) as u8)
            }),
            K::ShloRImm64 => self.binop_with(a, b, |asm, r| {
                asm.shift_imm(Size::B64, Shift::Shr, r, (imm & 63) as u8)
            }),
            K::SharRImm64 => self.binop_with(a, b, |asm, r| {
                asm.shift_imm(Size::B64, Shift::Sar, r, (imm & 63) as u8)
            }),
            K::RotR64Imm => self.binop_with(a, b, |asm, r| {
                asm.shift_imm(Size::B64, Shift::Ror, r, (imm & 63) as u8)
            }),
            K::ShloLImmAlt32 => self.shift_reg(a, Imm(imm), b, Shift::Shl, false),
            K::ShloRImmAlt32 => self.shift_reg(a, Imm(imm), b, Shift::Shr, false),
            K::SharRImmAlt32 => self.shift_reg(a, Imm(imm), b, Shift::Sar, false),
            K::RotR32ImmAlt => self.shift_reg(a, Imm(imm), b, Shift::Ror, false),
            K::ShloLImmAlt64 => self.shift_reg(a, Imm(imm), b, Shift::Shl, true),
            K::ShloRImmAlt64 => self.shift_reg(a, Imm(imm), b, Shift::Shr, true),
            K::SharRImmAlt64 => self.shift_reg(a, Imm(imm), b, Shift::Sar, true),
            K::RotR64ImmAlt => self.shift_reg(a, Imm(imm), b, Shift::Ror, true),
            K::CmovIzImm | K::CmovNzImm => {
                let c = if op.k == K::CmovIzImm {
                    Cond::E
                } else {
                    Cond::Ne
                };
                self.a.mov_r_imm(RCX, imm);
                self.cmov(a, b, c, Rm::Reg(RCX));
            }
            // Three registers: ω_D = f(ω_A, ω_B).
            K::Add64 => self.alu64(Alu::Add, d, a, G(b)),
            K::Sub64 => self.alu64(Alu::Sub, d, a, G(b)),
            K::And => self.alu64(Alu::And, d, a, G(b)),
            K::Xor => self.alu64(Alu::Xor, d, a, G(b)),
            K::Or => self.alu64(Alu::Or, d, a, G(b)),
            K::Mul64 => self.binop(d, a, G(b), true, |asm, dst, src| {
                asm.imul_r_rm(Size::B64, dst, src)
            }),
            K::Add32 => self.op32(d, G(a), |asm, r| {
                asm.alu_r_rm(Size::B32, Alu::Add, r, map.rm(b))
            }),
            K::Sub32 => self.op32(d, G(a), |asm, r| {
                asm.alu_r_rm(Size::B32, Alu::Sub, r, map.rm(b))
            }),
            K::Mul32 => self.op32(d, G(a), |asm, r| asm.imul_r_rm(Size::B32, r, map.rm(b))),
            K::DivU32
            | K::DivS32
            | K::RemU32
            | K::RemS32
            | K::DivU64
            | K::DivS64
            | K::RemU64
            | K::RemS64 => self.divide(op.k, d, a, b, pc),
            K::ShloL32 => self.shift_reg(d, G(a), b, Shift::Shl, false),
            K::ShloR32 => self.shift_reg(d, G(a), b, Shift::Shr, false),
            K::SharR32 => self.shift_reg(d, G(a), b, Shift::Sar, false),
            K::RotL32 => self.shift_reg(d, G(a), b, Shift::Rol, false),
            K::RotR32 => self.shift_reg(d, G(a), b, Shift::Ror, false),
            K::ShloL64 => self.shift_reg(d, G(a), b, Shift::Shl, true),
            K::ShloR64 => self.shift_reg(d, G(a), b, Shift::Shr, true),
            K::SharR64 => self.shift_reg(d, G(a), b, Shift::Sar, true),
            K::RotL64 => self.shift_reg(d, G(a), b, Shift::Rol, true),
            K::RotR64 => self.shift_reg(d, G(a), b, Shift::Ror, true),
            K::MulUpperUU | K::MulUpperSS | K::MulUpperSU => {
                self.a.mov_r_rm(Size::B64, RAX, map.rm(a));
                let digit = if op.k == K::MulUpperSS { 5 } else { 4 };
                self.a.group3(Size::B64, digit, map.rm(b));
                if op.k == K::MulUpperSU {
                    // hi_su = hi_uu - (a < 0 ? b : 0)
                    self.a.mov_r_rm(Size::B64, RCX, map.rm(a));
                    self.a.shift_imm(Size::B64, Shift::Sar, Rm::Reg(RCX), 63);
                    self.a.alu_r_rm(Size::B64, Alu::And, RCX, map.rm(b));
                    self.a.alu_r_rm(Size::B64, Alu::Sub, RDX, Rm::Reg(RCX));
                }
                self.set(d, RDX);
                self.restore_table();
            }
            K::SetLtU => self.set_cond(d, a, G(b), Cond::B),
            K::SetLtS => self.set_cond(d, a, G(b), Cond::L),
            K::CmovIz => self.cmov(d, b, Cond::E, map.rm(a)),
            K::CmovNz => self.cmov(d, b, Cond::Ne, map.rm(a)),
            K::AndInv | K::OrInv => {
                let alu = if op.k == K::AndInv { Alu::And } else { Alu::Or };
                self.a.mov_r_rm(Size::B64, RAX, map.rm(b));
                self.a.group3(Size::B64, 2, Rm::Reg(RAX));
                self.a.alu_r_rm(Size::B64, alu, RAX, map.rm(a));
                self.set(d, RAX);
            }
            K::Xnor => {
                self.a.mov_r_rm(Size::B64, RAX, map.rm(a));
                self.a.alu_r_rm(Size::B64, Alu::Xor, RAX, map.rm(b));
                self.a.group3(Size::B64, 2, Rm::Reg(RAX));
                self.set(d, RAX);
            }
            K::Max | K::MaxU | K::Min | K::MinU => {
                let c = match op.k {
                    K::Max => Cond::L,
                    K::MaxU => Cond::B,
                    K::Min => Cond::G,
                    _ => Cond::A,
                };
                self.a.mov_r_rm(Size::B64, RAX, map.rm(a));
                self.a.alu_r_rm(Size::B64, Alu::Cmp, RAX, map.rm(b));
                self.a.cmov(Size::B64, c, RAX, map.rm(b));
                self.set(d, RAX);
            }
            // Only in interpreter programs (`OpTable::fuse`).
            crate::program::fused_kinds!() => unreachable!("a fused op in a recompiled program"),
        }
    }

    /// ω`d` = value computed by `f` into a register.
    fn unary(&mut self, d: Reg, f: impl FnOnce(&mut Asm, R)) {
        let map = self.map;
        match map.loc(d) {
            Loc::H(h) => f(&mut self.a, h),
            Loc::M => {
                f(&mut self.a, RAX);
                self.set(d, RAX);
            }
        }
    }

    /// if ω`cond` (==0 for E, !=0 for Ne) { ω`d` = src }.
    fn cmov(&mut self, d: Reg, cond: Reg, c: Cond, src: Rm) {
        let map = self.map;
        let dst = match map.loc(d) {
            Loc::H(h) => h,
            Loc::M => {
                self.a.mov_r_rm(Size::B64, RAX, map.rm(d));
                RAX
            }
        };
        self.a.alu_rm_imm(Size::B64, Alu::Cmp, map.rm(cond), 0);
        self.a.cmov(Size::B64, c, dst, src);
        if dst == RAX {
            self.set(d, RAX);
        }
    }
}

/// A second operand: a guest register or an immediate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operand {
    G(Reg),
    Imm(u64),
}
