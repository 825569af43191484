//! The GP 0.8.0 block gas cost function ϱ^Δ(c, k, ı): the A.9 "Gas Cost Model" (a reorder-buffer
//! pipeline simulation) with the A.10 cost tables.
//!
//! # Model (A.9)
//!
//! The simulation state 𝕊 = ⟨ı, c, d, e, t, r⟩ holds the next instruction to decode (or ∅ once a
//! terminator has been decoded), the cycle counter, the decode slots left in this cycle (4), the
//! instruction starts left in this cycle (5), the free execution units t = ⟨A, L, S, M, D⟩
//! (initially ⟨4, 4, 4, 1, 1⟩) and the reorder buffer (ROB) r. The driver 𝔛 repeatedly applies,
//! in this order of precedence:
//!
//! 1. 𝔛′ (decode) if ı ≠ ∅ ∧ ď(ı) ≤ d ∧ l < 32, where l is the number of ROB entries whose state
//!    is not ∅. `move_reg` is renamed in the front end (𝔛^mov) and creates no entry; every other
//!    instruction is appended as ⟨DEC, č, p, ř, x̌⟩ where p are the entries whose clobber set meets
//!    the instruction's sources š (𝔛^dec).
//! 2. 𝔛″ (start) if 𝔖(x) ≠ ∅ ∧ e > 0: the lowest-index WAIT entry whose units fit into t and whose
//!    dependencies all have c = 0 moves to EXE and takes its units.
//! 3. stop if ı = ∅ ∧ l = 0;
//! 4. 𝔛‴ (next cycle) otherwise.
//!
//! The cost is max(c_final − 3, 1).
//!
//! # Implementation notes
//!
//! * Retirement (s → ∅) only ever happens to a prefix of the ROB (the ∅ case of 𝔛‴ requires every
//!   earlier entry to be FIN or ∅), so the live entries are the contiguous global index range
//!   `head..len` with `len − head = l ≤ 32`. They are kept in a 32-slot ring indexed by
//!   `global index mod 32`.
//! * Both 𝔛^dec and 𝔛^mov keep the invariant that each register is in the clobber set r of at most
//!   one entry (𝔛^dec removes ř from every older entry; 𝔛^mov gives ř to the single owner of its one
//!   source register and removes it from all others). The clobber sets are therefore stored as an
//!   `owner` map register → global entry index, and p = {owner(s) : s ∈ š}.
//! * A retired (∅) entry was FIN, hence has c = 0 forever; a dependency on it is always satisfied.
//! * Cycles in which nothing can be decoded or started and no entry changes state except for
//!   counting down its cycles are skipped in one step (see `Sim::idle_cycles`); the result is
//!   identical to stepping 𝔛‴ one cycle at a time.

use crate::isa::{ArgClass, Code, Instruction, Opcode};
use crate::Spec;

/// Number of execution unit kinds: A (ALU), L (load), S (store), M (multiply), D (divide).
const UNIT_KINDS: usize = 5;

/// A tuple of 𝔼: a count per execution unit kind, in the order ⟨A, L, S, M, D⟩.
type Units = [u8; UNIT_KINDS];

/// x^init_t: the execution units available in every cycle.
const ALL_UNITS: Units = [4, 4, 4, 1, 1];

/// Decode slots per cycle (x^init_d, reset by 𝔛‴).
const DECODE_SLOTS: u32 = 4;

/// Instruction starts per cycle (x^init_e, reset by 𝔛‴).
const START_SLOTS: u32 = 5;

/// ROB capacity (the `l < 32` condition of 𝔛).
const ROB_CAPACITY: usize = 32;

/// Number of PVM registers.
const REGISTERS: usize = 13;

/// 𝔪: the cost of a memory load (A.10).
const MEMORY_COST: u32 = 25;

/// ROB entry state s (∅ is represented by the entry having left the live window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Dec,
    Wait,
    Exe,
    Fin,
}

/// A reorder-buffer entry ⟨s, c, p, r, t⟩ (r is kept in [`Sim::owner`]).
#[derive(Clone, Copy, Debug)]
struct Entry {
    state: State,
    /// Cycles left.
    cycles: u32,
    /// Dependencies p: global ROB indices (at most 3 source registers).
    deps: [u32; 3],
    /// Number of valid elements of `deps`.
    dep_count: u8,
    /// Execution units x̌ used.
    units: Units,
}

const EMPTY_ENTRY: Entry = Entry {
    state: State::Dec,
    cycles: 0,
    deps: [0; 3],
    dep_count: 0,
    units: [0; UNIT_KINDS],
};

/// A small register set: up to three registers.
#[derive(Clone, Copy, Debug, Default)]
struct RegSet {
    regs: [u8; 3],
    len: u8,
}

impl RegSet {
    fn of(regs: &[u8]) -> RegSet {
        let mut set = RegSet::default();
        for &r in regs {
            set.insert(r);
        }
        set
    }

    fn insert(&mut self, r: u8) {
        if !self.contains(r) {
            self.regs[self.len as usize] = r;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.regs[..self.len as usize]
    }

    fn contains(&self, r: u8) -> bool {
        self.as_slice().contains(&r)
    }

    fn intersects(&self, other: &RegSet) -> bool {
        self.as_slice().iter().any(|&r| other.contains(r))
    }
}

/// Every register an instruction reads or writes (š ∪ ř), with repeats across the two sets.
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
pub(crate) fn register_uses(op: Opcode, ins: &Instruction) -> impl Iterator<Item = u8> {
    let (src, dst) = registers(op, ins);
    let mut all = [0u8; 6];
    let mut n = 0;
    for &r in src.as_slice().iter().chain(dst.as_slice()) {
        all[n] = r;
        n += 1;
    }
    all.into_iter().take(n)
}

/// š and ř: the source and destination registers of an instruction (A.9, from the A.5 tables).
///
/// `ecalli` reads and writes no registers in the model (A.9, S.1), nor do instructions without
/// register operands.
fn registers(op: Opcode, ins: &Instruction) -> (RegSet, RegSet) {
    use Opcode::*;
    let a = &ins.args;
    let none = RegSet::default();
    match op.class() {
        ArgClass::NoArgs | ArgClass::Imm | ArgClass::ImmImm | ArgClass::Offset => (none, none),
        // load_imm_64: φ'_A = ν_X.
        ArgClass::RegImm64 => (none, RegSet::of(&[a.ra])),
        ArgClass::RegImm => match op {
            // djump(φ_A + ν_X).
            JumpInd => (RegSet::of(&[a.ra]), none),
            // store_u*: μ'[ν_X] = φ_A.
            StoreU8 | StoreU16 | StoreU32 | StoreU64 => (RegSet::of(&[a.ra]), none),
            // load_imm, load_*: φ'_A = ….
            _ => (none, RegSet::of(&[a.ra])),
        },
        // store_imm_ind_*: μ'[φ_A + ν_X] = ν_Y.
        ArgClass::RegImmImm => (RegSet::of(&[a.ra]), none),
        ArgClass::RegImmOffset => match op {
            // load_imm_jump: sjump(ν_Y), φ'_A = ν_X.
            LoadImmJump => (none, RegSet::of(&[a.ra])),
            // branch_*_imm: branch(ν_Y, φ_A ⋄ ν_X).
            _ => (RegSet::of(&[a.ra]), none),
        },
        // A.5.9: φ'_D = f(φ_A).
        ArgClass::RegReg => (RegSet::of(&[a.ra]), RegSet::of(&[a.rd])),
        ArgClass::RegRegImm => match op {
            // store_ind_*: μ'[φ_B + ν_X] = φ_A.
            StoreIndU8 | StoreIndU16 | StoreIndU32 | StoreIndU64 => {
                (RegSet::of(&[a.ra, a.rb]), none)
            }
            // cmov_*_imm: φ'_A = ν_X if φ_B ⋄ 0, else φ_A (reads φ_A).
            CmovIzImm | CmovNzImm => (RegSet::of(&[a.rb, a.ra]), RegSet::of(&[a.ra])),
            // loads and ALU: φ'_A = f(φ_B, ν_X).
            _ => (RegSet::of(&[a.rb]), RegSet::of(&[a.ra])),
        },
        // branch_*: branch(ν_X, φ_A ⋄ φ_B).
        ArgClass::RegRegOffset => (RegSet::of(&[a.ra, a.rb]), none),
        // load_imm_jump_ind: djump(φ_B + ν_Y), φ'_A = ν_X.
        ArgClass::RegRegImmImm => (RegSet::of(&[a.rb]), RegSet::of(&[a.ra])),
        ArgClass::RegRegReg => match op {
            // cmov_*: φ'_D = φ_A if φ_B ⋄ 0, else φ_D (reads φ_D).
            CmovIz | CmovNz => (RegSet::of(&[a.ra, a.rb, a.rd]), RegSet::of(&[a.rd])),
            // φ'_D = f(φ_A, φ_B).
            _ => (RegSet::of(&[a.ra, a.rb]), RegSet::of(&[a.rd])),
        },
    }
}

/// The A.10 values of one instruction: č (cycles), ď (decode slots) and x̌ (units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CostRow {
    cycles: u32,
    decode: u32,
    units: Units,
}

/// Unit tuples ⟨A, L, S, M, D⟩ used by the A.10 table.
const U_NONE: Units = [0, 0, 0, 0, 0];
const U_A: Units = [1, 0, 0, 0, 0];
const U_AA: Units = [2, 0, 0, 0, 0];
const U_AL: Units = [1, 1, 0, 0, 0];
const U_AS: Units = [1, 0, 1, 0, 0];
const U_AM: Units = [1, 0, 0, 1, 0];
const U_AD: Units = [1, 0, 0, 0, 1];

/// 𝔟 (A.10): 1 if the fallthrough or the branch target holds the opcode byte of `unlikely` or
/// `trap`, else 20. ζ is zero (= `trap`) past the end of the code; a target before the start of
/// the code is treated the same way (it is outside c).
fn branch_cost(code: &Code<'_>, pc: u32, ins: &Instruction) -> u32 {
    let is_cold = |byte: u8| {
        matches!(
            Opcode::from_byte(byte, Spec::Gp0_8_0),
            Some(Opcode::Trap | Opcode::Unlikely)
        )
    };
    let fallthrough = code.zeta(u64::from(pc) + 1 + u64::from(ins.skip));
    let target = u64::try_from(ins.args.target).map_or(0, |t| code.zeta(t));
    if is_cold(fallthrough) || is_cold(target) {
        1
    } else {
        20
    }
}

/// č, ď and x̌ of the instruction at `pc` (A.10 table, with 𝔓, 𝔓_S, 𝔪 and 𝔟).
fn cost_row(
    code: &Code<'_>,
    pc: u32,
    op: Opcode,
    ins: &Instruction,
    src: &RegSet,
    dst: &RegSet,
) -> CostRow {
    use Opcode::*;
    // 𝔓(a, b): a if š ∩ ř ≠ ∅.
    let p = |a: u32, b: u32| if src.intersects(dst) { a } else { b };
    // 𝔓_S(a, b): a if r_A = r_D (three-register form).
    let ps = |a: u32, b: u32| if ins.args.ra == ins.args.rd { a } else { b };
    let row = |cycles: u32, decode: u32, units: Units| CostRow {
        cycles,
        decode,
        units,
    };
    match op {
        Trap | Fallthrough => row(2, 1, U_NONE),
        Unlikely => row(40, 1, U_NONE),
        Ecalli => row(100, 4, U_A),
        LoadImm64 => row(1, 2, U_NONE),
        StoreImmU8 | StoreImmU16 | StoreImmU32 | StoreImmU64 => row(25, 1, U_AS),
        Jump | LoadImmJump => row(15, 1, U_NONE),
        JumpInd | LoadImmJumpInd => row(22, 1, U_NONE),
        LoadImm => row(1, 1, U_NONE),
        LoadU8 | LoadI8 | LoadU16 | LoadI16 | LoadU32 | LoadI32 | LoadU64 => {
            row(MEMORY_COST, 1, U_AL)
        }
        StoreU8 | StoreU16 | StoreU32 | StoreU64 => row(25, 1, U_AS),
        StoreImmIndU8 | StoreImmIndU16 | StoreImmIndU32 | StoreImmIndU64 => row(25, 1, U_AS),
        BranchEqImm | BranchNeImm | BranchLtUImm | BranchLeUImm | BranchGeUImm | BranchGtUImm
        | BranchLtSImm | BranchLeSImm | BranchGeSImm | BranchGtSImm | BranchEq | BranchNe
        | BranchLtU | BranchLtS | BranchGeU | BranchGeS => row(branch_cost(code, pc, ins), 1, U_A),
        MoveReg => row(0, 1, U_NONE),
        CountSetBits64 | CountSetBits32 | LeadingZeroBits64 | LeadingZeroBits32 => row(1, 1, U_A),
        TrailingZeroBits64 | TrailingZeroBits32 => row(2, 1, U_AA),
        SignExtend8 | SignExtend16 | ZeroExtend16 => row(1, 1, U_A),
        ReverseBytes => row(1, p(1, 2), U_A),
        StoreIndU8 | StoreIndU16 | StoreIndU32 | StoreIndU64 => row(25, 1, U_AS),
        LoadIndU8 | LoadIndI8 | LoadIndU16 | LoadIndI16 | LoadIndU32 | LoadIndI32 | LoadIndU64 => {
            row(MEMORY_COST, 1, U_AL)
        }
        AddImm32 => row(2, p(2, 3), U_A),
        AndImm | XorImm | OrImm => row(1, p(1, 2), U_A),
        MulImm32 => row(4, p(2, 3), U_AM),
        SetLtUImm | SetLtSImm | SetGtUImm | SetGtSImm => row(3, 3, U_A),
        ShloLImm32 | ShloRImm32 | SharRImm32 => row(2, p(2, 3), U_A),
        NegAddImm32 => row(3, 4, U_A),
        ShloLImmAlt32 | ShloRImmAlt32 | SharRImmAlt32 => row(2, 4, U_A),
        CmovIzImm | CmovNzImm => row(2, 3, U_A),
        AddImm64 => row(1, p(1, 2), U_A),
        MulImm64 => row(3, p(1, 2), U_AM),
        ShloLImm64 | ShloRImm64 | SharRImm64 => row(1, p(1, 2), U_A),
        NegAddImm64 => row(2, 3, U_A),
        ShloLImmAlt64 | ShloRImmAlt64 | SharRImmAlt64 => row(1, 3, U_A),
        RotR64Imm => row(1, p(1, 2), U_A),
        RotR64ImmAlt => row(1, 3, U_A),
        RotR32Imm => row(2, p(2, 3), U_A),
        RotR32ImmAlt => row(2, 4, U_A),
        Add32 | Sub32 => row(2, p(2, 3), U_A),
        Mul32 => row(4, p(2, 3), U_AM),
        DivU32 | DivS32 | RemU32 | RemS32 | DivU64 | DivS64 | RemU64 | RemS64 => row(60, 4, U_AD),
        ShloL32 | ShloR32 | SharR32 | RotL32 | RotR32 => row(2, ps(3, 4), U_A),
        Add64 | Sub64 => row(1, p(1, 2), U_A),
        Mul64 => row(3, p(1, 2), U_AM),
        ShloL64 | ShloR64 | SharR64 | RotL64 | RotR64 => row(1, ps(2, 3), U_A),
        And | Xor | Or => row(1, p(1, 2), U_A),
        MulUpperSS | MulUpperUU => row(4, 4, U_AM),
        MulUpperSU => row(6, 4, U_AM),
        SetLtU | SetLtS => row(3, 3, U_A),
        CmovIz | CmovNz => row(2, 2, U_A),
        AndInv | OrInv => row(2, 3, U_A),
        Xnor => row(2, p(2, 3), U_A),
        Max | MaxU | Min | MinU => row(3, p(2, 3), U_A),
        // Not a GP 0.8.0 instruction (never produced by the 0.8.0 decoder): cost it like `trap`.
        Sbrk => row(2, 1, U_NONE),
    }
}

/// One decoded instruction as the simulator front end sees it.
struct Decoded {
    op: Opcode,
    next_pc: u32,
    src: RegSet,
    dst: RegSet,
    row: CostRow,
}

/// Decodes the instruction at `pc` over ζ (zero bytes, i.e. `trap`, past the end of the code). A
/// byte that is not a GP 0.8.0 opcode is treated as `trap` (a validated program has none).
///
/// `known` holds instructions the caller has already decoded, `(pc, code.decode(pc, GP 0.8.0))`
/// in the order the simulation reaches them; `*next` is the first not used yet. The instruction
/// at `pc` is taken from there when it is the next one, else decoded.
fn decode(code: &Code<'_>, pc: u32, known: &[(u32, Instruction)], next: &mut usize) -> Decoded {
    let ins = match known.get(*next) {
        Some(&(at, ins)) if at == pc => {
            *next += 1;
            ins
        }
        _ => code.decode(pc, Spec::Gp0_8_0),
    };
    let op = ins.opcode.unwrap_or(Opcode::Trap);
    let (src, dst) = registers(op, &ins);
    let row = cost_row(code, pc, op, &ins, &src, &dst);
    Decoded {
        op,
        next_pc: ins.next_pc(pc),
        src,
        dst,
        row,
    }
}

fn units_fit(need: &Units, free: &Units) -> bool {
    need.iter().zip(free).all(|(n, f)| n <= f)
}

/// The simulation state 𝕊 (with the ROB as a ring of live entries).
struct Sim {
    /// x_ı: the next instruction to decode, `None` (∅) after a terminator.
    pc: Option<u32>,
    /// x_c.
    cycle: u32,
    /// x_d.
    decode_slots: u32,
    /// x_e.
    start_slots: u32,
    /// x_t.
    units: Units,
    /// Live ROB entries: global indices `head..len`, slot = index mod 32.
    rob: [Entry; ROB_CAPACITY],
    head: u32,
    len: u32,
    /// Register → the global ROB index whose clobber set contains it.
    owner: [Option<u32>; REGISTERS],
}

impl Sim {
    fn new(start: u32) -> Sim {
        Sim {
            pc: Some(start),
            cycle: 0,
            decode_slots: DECODE_SLOTS,
            start_slots: START_SLOTS,
            units: ALL_UNITS,
            rob: [EMPTY_ENTRY; ROB_CAPACITY],
            head: 0,
            len: 0,
            owner: [None; REGISTERS],
        }
    }

    fn live(&self) -> u32 {
        self.len - self.head
    }

    fn entry(&self, index: u32) -> &Entry {
        &self.rob[index as usize % ROB_CAPACITY]
    }

    fn entry_mut(&mut self, index: u32) -> &mut Entry {
        &mut self.rob[index as usize % ROB_CAPACITY]
    }

    /// 𝔛^mov: front-end register renaming, no ROB entry.
    fn rename(&mut self, next_pc: u32, src: &RegSet, dst: &RegSet) {
        // Entries whose clobber set meets š (the owner of the single source register) gain ř;
        // every other entry loses ř.
        let from = src.as_slice().iter().find_map(|&r| self.owner[r as usize]);
        for &d in dst.as_slice() {
            self.owner[d as usize] = from;
        }
        self.pc = Some(next_pc);
        self.decode_slots -= 1;
    }

    /// 𝔛^dec: append ⟨DEC, č, p, ř, x̌⟩.
    fn push(&mut self, d: &Decoded) {
        let mut entry = Entry {
            state: State::Dec,
            cycles: d.row.cycles,
            deps: [0; 3],
            dep_count: 0,
            units: d.row.units,
        };
        for &s in d.src.as_slice() {
            if let Some(i) = self.owner[s as usize] {
                if !entry.deps[..entry.dep_count as usize].contains(&i) {
                    entry.deps[entry.dep_count as usize] = i;
                    entry.dep_count += 1;
                }
            }
        }
        let index = self.len;
        for &r in d.dst.as_slice() {
            self.owner[r as usize] = Some(index);
        }
        *self.entry_mut(index) = entry;
        self.len += 1;
        self.pc = if d.op.is_terminator() {
            None
        } else {
            Some(d.next_pc)
        };
        self.decode_slots -= d.row.decode;
    }

    /// 𝔖: the lowest-index WAIT entry whose units fit and whose dependencies have all finished.
    fn ready(&self) -> Option<u32> {
        (self.head..self.len).find(|&j| {
            let e = self.entry(j);
            e.state == State::Wait
                && units_fit(&e.units, &self.units)
                && e.deps[..e.dep_count as usize]
                    .iter()
                    .all(|&k| k < self.head || self.entry(k).cycles == 0)
        })
    }

    /// 𝔛″: start entry `n`.
    fn start(&mut self, n: u32) {
        self.start_slots -= 1;
        let units = self.entry(n).units;
        for (free, used) in self.units.iter_mut().zip(units) {
            *free -= used;
        }
        self.entry_mut(n).state = State::Exe;
    }

    /// 𝔛‴: advance one cycle.
    fn tick(&mut self) {
        self.decode_slots = DECODE_SLOTS;
        self.start_slots = START_SLOTS;
        self.cycle += 1;
        // Every case below is evaluated on the old state; entries are visited in index order, so
        // the retire condition "all entries up to j were FIN or ∅" is tracked with `prefix`.
        let mut prefix = true;
        let mut new_head = self.head;
        for j in self.head..self.len {
            let entry = &mut self.rob[j as usize % ROB_CAPACITY];
            match entry.state {
                State::Fin => {
                    if prefix {
                        // Retired (∅): leaves the live window.
                        new_head = j + 1;
                    }
                }
                State::Dec => {
                    prefix = false;
                    entry.state = State::Wait;
                }
                State::Wait => prefix = false,
                State::Exe => {
                    prefix = false;
                    if entry.cycles == 0 {
                        entry.state = State::Fin;
                    } else {
                        if entry.cycles == 1 {
                            for (free, used) in self.units.iter_mut().zip(entry.units) {
                                *free += used;
                            }
                        }
                        entry.cycles -= 1;
                    }
                }
            }
        }
        self.head = new_head;
    }

    /// The number of upcoming cycles that are provably "quiet" and can be skipped at once: none of
    /// them can decode or start anything, return units, finish, or retire an entry; the only
    /// change is that every EXE entry's cycle counter counts down by one per cycle.
    ///
    /// This holds when (at the point 𝔛 would apply 𝔛‴): nothing could be decoded even with fresh
    /// decode slots (ı = ∅ or the ROB is full, and it stays full as nothing retires), no entry is
    /// DEC, the oldest live entry is not FIN, every EXE entry has c ≥ 2 and 𝔖 finds nothing to
    /// start. With m the smallest EXE counter, the next m − 1 applications of 𝔛‴ then neither
    /// return units (no EXE entry has c = 1 when they are applied), nor move an entry to FIN, nor
    /// retire one (the oldest entry stays WAIT or EXE), and 𝔖 stays empty in between (units are
    /// unchanged and no dependency reaches c = 0). So m − 1 cycles can be skipped.
    fn idle_cycles(&self) -> u32 {
        let can_decode = self.pc.is_some() && (self.live() as usize) < ROB_CAPACITY;
        if can_decode {
            return 0;
        }
        if self.head < self.len && self.entry(self.head).state == State::Fin {
            return 0;
        }
        let mut min_cycles = u32::MAX;
        for j in self.head..self.len {
            let e = self.entry(j);
            match e.state {
                State::Dec => return 0,
                // A FIN entry behind a non-FIN head stays FIN: it cannot retire.
                State::Fin => {}
                State::Exe => {
                    if e.cycles <= 1 {
                        return 0;
                    }
                    min_cycles = min_cycles.min(e.cycles);
                }
                State::Wait => {}
            }
        }
        if min_cycles == u32::MAX || self.ready().is_some() {
            return 0;
        }
        min_cycles - 1
    }

    /// 𝔛 until convergence; returns x^final_c. `skip_idle` enables the quiet-cycle shortcut (it
    /// is only disabled by the tests, to check that it does not change the result).
    fn run(&mut self, code: &Code<'_>, skip_idle: bool, known: &[(u32, Instruction)]) -> u32 {
        // The instruction at `pc`, decoded once and kept until it fits into the decode slots.
        let mut pending: Option<Decoded> = None;
        let mut next_known = 0;
        loop {
            if let Some(pc) = self.pc {
                let d = pending.get_or_insert_with(|| decode(code, pc, known, &mut next_known));
                if d.row.decode <= self.decode_slots && (self.live() as usize) < ROB_CAPACITY {
                    let d = pending.take().expect("decoded above");
                    if d.op == Opcode::MoveReg && (pc as usize) < code.code.len() {
                        self.rename(d.next_pc, &d.src, &d.dst);
                    } else {
                        self.push(&d);
                    }
                    continue;
                }
            }
            if self.start_slots > 0 {
                if let Some(n) = self.ready() {
                    self.start(n);
                    continue;
                }
            }
            if self.pc.is_none() && self.live() == 0 {
                return self.cycle;
            }
            let skip = if skip_idle { self.idle_cycles() } else { 0 };
            if skip > 0 {
                self.cycle += skip;
                for j in self.head..self.len {
                    let e = self.entry_mut(j);
                    if e.state == State::Exe {
                        e.cycles -= skip;
                    }
                }
            }
            self.tick();
        }
    }
}

/// ϱ^Δ(c, k, start) for GP 0.8.0: the gas charged when entering the basic block starting at `start`.
///
/// `start` may be any instruction start; the simulation decodes from there until after the first
/// terminator (A.9, eq:gascostforblock), reading zero bytes (`trap`) past the end of the code.
pub fn block_cost(code: &Code<'_>, start: u32) -> u32 {
    block_cost_decoded(code, start, &[])
}

/// [`block_cost`] given instructions the caller has already decoded: `known` is
/// `(pc, code.decode(pc, Spec::Gp0_8_0))` for the block's instructions from `start` on, in code
/// order (any prefix of them; instructions not given are decoded here). The result is the same.
pub(crate) fn block_cost_decoded(code: &Code<'_>, start: u32, known: &[(u32, Instruction)]) -> u32 {
    let mut sim = Sim::new(start);
    let cycles = sim.run(code, true, known);
    cycles.saturating_sub(3).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a code blob from instructions given as byte slices (opcode first); the bitmask marks
    /// the first byte of each.
    fn program(instructions: &[&[u8]]) -> (Vec<u8>, Vec<bool>) {
        let mut code = Vec::new();
        let mut mask = Vec::new();
        for ins in instructions {
            code.extend_from_slice(ins);
            mask.push(true);
            mask.resize(mask.len() + ins.len() - 1, false);
        }
        (code, mask)
    }

    fn cost(instructions: &[&[u8]]) -> u32 {
        let (code, mask) = program(instructions);
        let code = Code {
            code: &code,
            bitmask: &mask,
        };
        let fast = block_cost(&code, 0);
        let slow = Sim::new(0).run(&code, false, &[]).saturating_sub(3).max(1);
        assert_eq!(fast, slow, "idle-cycle skipping changed the result");
        fast
    }

    const TRAP: &[u8] = &[0];
    /// add_imm_64 rA = rB + 1 (A.5.10: low nibble rA, high nibble rB).
    const fn add_imm_64(a: u8, b: u8) -> [u8; 3] {
        [149, (b << 4) | a, 1]
    }

    #[test]
    fn single_trap() {
        // Cycle 0: decode trap (ı := ∅). 𝔛‴ → 1: DEC→WAIT. Cycle 1: start (no units needed).
        // → 2: c 2→1. → 3: c 1→0. → 4: EXE with c = 0 → FIN. → 5: FIN prefix → ∅; l = 0 and
        // ı = ∅, so x^final_c = 5 and the cost is max(5 − 3, 1) = 2 = č(trap).
        assert_eq!(cost(&[TRAP]), 2);
    }

    #[test]
    fn past_the_end_is_trap() {
        // Starting at |c| decodes ζ = 0, i.e. `trap`: same timeline as `single_trap`.
        let code = Code {
            code: &[51, 1, 1],
            bitmask: &[true, false, false],
        };
        assert_eq!(block_cost(&code, 3), 2);
        // load_imm r1, 1 (č 1, no units) followed by running off the end: decoded together at
        // cycle 0, both started at cycle 1; load_imm is FIN at 3 and ∅ at 4, the trap FIN at 4
        // and ∅ at 5 → 2.
        assert_eq!(block_cost(&code, 0), 2);
    }

    #[test]
    fn dependent_chain_vs_independent() {
        // r1 += 1 three times, then trap. ď = 𝔓(1, 2) = 1 (dst ∈ srcs), so all four decode in
        // cycle 0; the adds depend on each other through r1.
        // 1: all WAIT; start add0 and trap. 2: add0 c = 0 (unit back); start add1.
        // 3: add0 FIN, add1 c = 0; start add2. 4: add0 ∅, add1 FIN, add2 c = 0, trap FIN.
        // 5: add1 ∅, add2 FIN. 6: add2, trap ∅ → x_c = 6, cost 3.
        let a = add_imm_64(1, 1);
        assert_eq!(cost(&[&a, &a, &a, TRAP]), 3);
        // r1 += 1; r2 += 1; r3 += 1; trap: all start at cycle 1 (3 of the 4 A units), c = 0 at 2,
        // FIN at 3, ∅ at 4; the trap (č 2) is FIN at 4 and ∅ at 5 → x_c = 5, cost 2.
        let (a, b, c) = (add_imm_64(1, 1), add_imm_64(2, 2), add_imm_64(3, 3));
        assert_eq!(cost(&[&a, &b, &c, TRAP]), 2);
    }

    #[test]
    fn decode_slots_from_p() {
        // r1 = r2 + 1 has dst ∉ srcs, so ď = 𝔓(1, 2) = 2: two per cycle. Four of them (independent
        // except that they all write r1: the model only tracks read-after-write) and a trap:
        // cycle 0 decodes i0, i1; cycle 1 decodes i2, i3 and starts i0, i1; cycle 2 decodes the
        // trap and starts i2, i3; cycle 3 starts the trap (č 2: c = 0 at 5, FIN at 6, ∅ at 7).
        // i0, i1 retire at 4 and i2, i3 at 5, so x_c = 7 and the cost is 4.
        let a = add_imm_64(1, 2);
        assert_eq!(cost(&[&a, &a, &a, &a, TRAP]), 4);
    }

    #[test]
    fn division() {
        // div_u_64 r3 = r1 / r2 (ď 4) fills cycle 0's decode slots; the trap is decoded at 1,
        // when the div starts (units A + D). The div's counter hits 0 at 61, FIN at 62, and
        // both retire at 63 (the trap finished long before but must wait for it): cost 60.
        let div = [203, 0x21, 3];
        assert_eq!(cost(&[&div, TRAP]), 60);
        // Two divisions on independent registers: the second is decoded at cycle 1 (4 slots),
        // but there is only one D unit. It starts at 61 (units back by the 𝔛‴ into 61), reaches
        // c = 0 at 121, FIN at 122 and retires at 123 with the trap: cost 120.
        let div2 = [203, 0x54, 6];
        assert_eq!(cost(&[&div, &div2, TRAP]), 120);
    }

    #[test]
    fn move_reg_renames() {
        let div = [203, 0x21, 3]; // r3 = r1 / r2
                                  // move_reg r4 = r3 (A.5.9: low nibble r_D, high nibble r_A): no ROB entry; the div's
                                  // clobber set gains r4. Then r4 += 1 depends on the div: it starts at 61 when the div's
                                  // c = 0, reaches 0 at 62 (div FIN), is FIN at 63 (div ∅) and retires at 64 with the
                                  // trap: x_c = 64, cost 61.
        let mov = [100, 0x34];
        let inc = add_imm_64(4, 4);
        assert_eq!(cost(&[&div, &mov, &inc, TRAP]), 61);
        // Without the move, r4 += 1 is independent of the div: cost 60 as for the div alone.
        assert_eq!(cost(&[&div, &inc, TRAP]), 60);
        // move_reg r3 = r5 after the div: r3 is removed from the div's clobber set, so r3 += 1
        // no longer waits for it: cost 60.
        let mov_away = [100, 0x53];
        let inc3 = add_imm_64(3, 3);
        assert_eq!(cost(&[&div, &mov_away, &inc3, TRAP]), 60);
    }

    #[test]
    fn branch_cost_depends_on_successors() {
        // branch_eq_imm r1, 0, +4 (ν_X has 0 bytes, 1 offset byte), skip 2: a single instruction
        // block, whose cost is its č (see `single_trap`): 𝔟.
        let br = [81, 0x01, 4];
        // Fallthrough (pc 3) and target (pc 4) are both `fallthrough`: 𝔟 = 20.
        assert_eq!(cost(&[&br, &[1], &[1]]), 20);
        // The target is `trap`: 𝔟 = 1.
        assert_eq!(cost(&[&br, &[1], TRAP]), 1);
        // The fallthrough is `unlikely`: 𝔟 = 1.
        assert_eq!(cost(&[&br, &[2], &[1]]), 1);
        // The branch is the last instruction: ζ past the end is 0 (`trap`): 𝔟 = 1.
        assert_eq!(cost(&[&[81, 0x01, 0x80]]), 1);
    }

    #[test]
    fn ecalli_uses_no_registers() {
        // r0 += 1; ecalli 0; r0 += 1; trap. ecalli (ď 4, č 100, one A unit) neither reads nor
        // writes registers, so the second add depends only on the first.
        // 0: decode add0. 1: decode ecalli (4 slots); start add0. 2: decode add1, trap; start
        // ecalli (c = 100). 3: start add1 and trap. ecalli reaches c = 0 at 102, FIN at 103, and
        // everything retires at 104: cost 101.
        let a = add_imm_64(0, 0);
        let ecalli = [10, 0];
        assert_eq!(cost(&[&a, &ecalli, &a, TRAP]), 101);
    }

    /// A deterministic pseudo-random generator for the equivalence test below.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn idle_skipping_matches_plain_stepping() {
        let ops: Vec<u8> = Opcode::ALL
            .iter()
            .filter_map(|op| op.byte(Spec::Gp0_8_0))
            .collect();
        // Odd iterations use only non-terminators (long blocks that fill the ROB).
        let long_ops: Vec<u8> = Opcode::ALL
            .iter()
            .filter(|op| !op.is_terminator())
            .filter_map(|op| op.byte(Spec::Gp0_8_0))
            .collect();
        let mut rng = Lcg(7);
        for iteration in 0..100 {
            let (ops, max_len) = if iteration % 2 == 0 {
                (&ops, 80)
            } else {
                (&long_ops, 300)
            };
            let n = 1 + rng.next() as usize % max_len;
            let mut code = Vec::new();
            let mut mask = Vec::new();
            for _ in 0..n {
                let op = ops[rng.next() as usize % ops.len()];
                code.push(op);
                mask.push(true);
                for _ in 0..rng.next() % 6 {
                    code.push(rng.next() as u8);
                    mask.push(false);
                }
            }
            let code = Code {
                code: &code,
                bitmask: &mask,
            };
            let mut pc = 0;
            for _ in 0..8 {
                if pc as usize >= code.code.len() {
                    break;
                }
                let fast = Sim::new(pc).run(&code, true, &[]);
                let slow = Sim::new(pc).run(&code, false, &[]);
                assert_eq!(fast, slow, "start {pc}");
                // Given the decoded instructions (all of the walk from `pc`, or a prefix), the
                // cost is the same.
                let mut known = Vec::new();
                let mut at = pc;
                while (at as usize) <= code.code.len() && known.len() < 400 {
                    let ins = code.decode(at, Spec::Gp0_8_0);
                    known.push((at, ins));
                    at = ins.next_pc(at);
                }
                for prefix in [known.len(), known.len() / 2, 1] {
                    assert_eq!(
                        block_cost_decoded(&code, pc, &known[..prefix]),
                        block_cost(&code, pc),
                        "start {pc}, {prefix} known"
                    );
                }
                pc = code.decode(pc, Spec::Gp0_8_0).next_pc(pc);
            }
        }
    }
}
