//! Lazy compilation to the interpreter's pre-decoded form.
//!
//! Loading a program does one pass over the code ([`scan`]): GP 0.8.0 prevalidation (𝔳_blob), the
//! basic blocks (ϖ and the gas charge points) and the position of every block's ops in the op
//! array. Nothing is decoded beyond the opcode byte and no gas cost is computed. A block is
//! decoded, lowered and costed (A.9) the first time execution enters it, so preparation time
//! grows with the code size only through that pass, and a run pays only for the blocks it uses.
//!
//! # Layout
//! Slot 0 of the op array is the shared *invalid-target* slot. Then, in code order, every basic
//! block has a `Charge` slot followed by one slot per instruction of the block (every position of
//! the walk from 0 by 1 + skip, including the implicit `trap` at |c|). Slot positions are fixed by
//! the scan, so a branch can name its target block's `Charge` slot before that block is compiled,
//! and the ops of a compiled block never move.
//!
//! # Publication
//! The array is allocated zeroed, and an all-zero op is a `Charge` slot whose stored value is 0.
//! A `Charge` slot stores `!cost`, so a zero slot reads as cost `u64::MAX` = [`UNCOMPILED`], which
//! no gas counter can pay: the interpreter's ordinary out-of-gas check sends it to the slow path,
//! which compiles the block and retries. So the hot path of entering a block is unchanged: one
//! load, one compare.
//!
//! Blocks are compiled under a mutex. The compiling thread writes the block's ops, then the
//! block's cost into its `Charge` slot (`Release`). A reader only reads a block's ops after an
//! `Acquire` load of that block's cost returned a compiled value, so it sees them complete; slots
//! of blocks that are not yet compiled are never read except for the atomic cost, and compiled
//! slots are never written again. Entering at an arbitrary pc finds the block by binary search
//! and the instruction among the block's compiled ops by their pc.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::lower::{fuse, lower, Op, Reg, K};
use super::JumpTable;
use crate::error::{InvalidCodeReason, ProgramError};
use crate::gas::simulator;
use crate::isa::{Code, Instruction, Opcode};
use crate::Spec;

/// The slot that every statically known invalid target points at (an out-of-ϖ target of a GP
/// 0.7.2 branch or of a `load_imm_jump`, an invalid jump-table entry).
pub(crate) const INVALID_SLOT: u32 = 0;
/// The cost read from a `Charge` slot whose block is not compiled yet.
pub(crate) const UNCOMPILED: u64 = u64::MAX;
/// The cost read from the invalid-target slot.
pub(crate) const INVALID_TARGET: u64 = u64::MAX - 1;

/// One gas charge point (a basic-block start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockInfo {
    /// The block's first instruction.
    pub pc: u32,
    /// Index of the block's `Charge` slot; its instructions follow it.
    pub slot: u32,
    /// Whether `pc ∈ ϖ`, i.e. a valid static or dynamic jump target. Charge points outside ϖ are
    /// |c| after a final terminator and, in GP 0.7.2, positions after an instruction that executes
    /// as `trap`.
    pub varpi: bool,
}

/// The op array and the block table of one program.
pub(crate) struct OpTable {
    ops: Box<[UnsafeCell<Op>]>,
    /// Charge points, sorted by pc (and so by slot).
    pub blocks: Box<[BlockInfo]>,
    /// The pcs of `blocks` as a rank index: O(1) from a pc to its block.
    starts: StartIndex,
    /// For every jump-table entry: the target block's `Charge` slot, or [`INVALID_SLOT`].
    pub jump_table: SlotTable,
    /// Held while compiling a block; it guards the decoded instructions of the block being
    /// compiled (GP 0.8.0: given to the gas simulator so that it does not decode them again).
    compile_lock: Mutex<Vec<(u32, Instruction)>>,
    /// Fuse hot op pairs when compiling a block (`lower::fuse`): only for programs that the
    /// interpreter alone executes (the recompiler reads the ops and knows no fused kinds).
    pub fuse: bool,
}

// SAFETY: the only shared mutation of `ops` is the publication protocol described in the module
// documentation: slots are written only under `compile_lock`, only while unreachable (their block
// is not compiled), and a block becomes reachable through a `Release` store that readers pair with
// an `Acquire` load; the `Charge` slots' costs are atomics. Everything else is immutable after
// construction.
unsafe impl Sync for OpTable {}

impl std::fmt::Debug for OpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpTable")
            .field("slots", &self.ops.len())
            .field("blocks", &self.blocks.len())
            .field("jump_table", &self.jump_table.len())
            .finish_non_exhaustive()
    }
}

/// The jump table resolved to `Charge` slots. A table of zero-width entries (all targeting pc 0)
/// is kept as one slot and a length, so that loading costs O(blob size) however many such
/// entries the blob declares (up to 2^24 for an 8-byte blob).
///
/// The interpreter reads it as `let jt = &table.jump_table[..]; … jt.len() … jt[i]`: `[..]`
/// gives the table itself, and indexing masks the index (with 0 for the one-slot form, with
/// `usize::MAX` otherwise), so a lookup stays one load plus one AND.
pub(crate) struct SlotTable {
    slots: Box<[u32]>,
    len: usize,
    mask: usize,
}

impl SlotTable {
    /// Number of entries |j|.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }
}

impl SlotTable {
    /// Whether every entry is the same slot (the zero-width form: one slot and a length).
    #[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
    pub fn is_uniform(&self) -> bool {
        self.mask == 0
    }
}

impl std::ops::Index<std::ops::RangeFull> for SlotTable {
    type Output = SlotTable;
    #[inline(always)]
    fn index(&self, _: std::ops::RangeFull) -> &SlotTable {
        self
    }
}

impl std::ops::Index<usize> for SlotTable {
    type Output = u32;
    /// The slot of entry `i < len`.
    #[inline(always)]
    fn index(&self, i: usize) -> &u32 {
        debug_assert!(i < self.len);
        &self.slots[i & self.mask]
    }
}

/// A zero-initialised boxed slice of `n > 0` values of a type for which all-zero bytes are a valid
/// value. The allocator zeroes the memory (for large sizes: fresh pages, which cost nothing until
/// touched), which is what keeps loading cheap for large programs.
///
/// # Safety
/// The all-zero bit pattern must be a valid `T`, and `T` must not be zero-sized.
unsafe fn zeroed_slice<T>(n: usize) -> Box<[T]> {
    assert!(n > 0 && std::mem::size_of::<T>() > 0);
    let layout = std::alloc::Layout::array::<T>(n).expect("slice size fits in isize");
    // SAFETY: the layout has a non-zero size (asserted above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[T; n]`, which is
    // what `Box<[T]>` frees it with; its `n` elements are zero bytes, a valid `T` (the caller's
    // guarantee).
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n)) }
}

/// Per opcode byte: bit 0 = a valid opcode under the spec, bit 1 = a terminator, bit 2 = ends a
/// gas block without being a terminator (`ecalli` under GP 0.7.2, see [`scan`]).
fn opcode_flags(spec: Spec) -> [u8; 256] {
    let mut t = [0u8; 256];
    for (byte, f) in t.iter_mut().enumerate() {
        if let Some(op) = Opcode::from_byte(byte as u8, spec) {
            let gas_end = spec == Spec::Gp0_7_2 && op == Opcode::Ecalli;
            *f = 1 | ((op.is_terminator() as u8) << 1) | ((gas_end as u8) << 2);
        }
    }
    t
}

/// The load-time pass: GP 0.8.0 𝔳_blob (A.1) and the block table. Walks the code from 0 by
/// 1 + skip; under GP 0.8.0 every visited position must be a valid instruction, the walk must
/// land exactly on |c| > 0, and the last instruction must be a terminator.
pub(crate) fn scan(
    code: &Code<'_>,
    spec: Spec,
    jump_table: &JumpTable,
) -> Result<OpTable, ProgramError> {
    let (bytes, bitmask) = (code.code, code.bitmask);
    let len = bytes.len();
    let gp080 = spec == Spec::Gp0_8_0;
    if gp080 && len == 0 {
        return Err(ProgramError::InvalidCode {
            pc: 0,
            reason: InvalidCodeReason::Empty,
        });
    }
    let flags = opcode_flags(spec);
    let mut blocks: Vec<BlockInfo> = Vec::with_capacity(len / 16 + 2);
    let mut positions = 0usize; // walk positions before the current one
    let mut charge = true; // the current position is a charge point (0 always is)
    let mut after_terminator = true; // 0 is in ϖ if it is a valid instruction
    let mut i = 0usize;
    while i < len {
        let k = bitmask[i];
        let f = flags[bytes[i] as usize];
        let valid = k && f & 1 != 0;
        let next = i + 1 + crate::isa::skip(bitmask, i);
        if gp080 && !valid {
            let reason = if k {
                InvalidCodeReason::UnknownOpcode(bytes[i])
            } else {
                InvalidCodeReason::NotInstructionStart
            };
            return Err(ProgramError::InvalidCode {
                pc: i as u32,
                reason,
            });
        }
        let terminator = valid && f & 2 != 0;
        if gp080 && next == len && !terminator {
            let name = Opcode::from_byte(bytes[i], spec).map_or("?", Opcode::name);
            return Err(ProgramError::InvalidCode {
                pc: i as u32,
                reason: InvalidCodeReason::NoTerminatorAtEnd(name),
            });
        }
        if charge {
            blocks.push(BlockInfo {
                pc: i as u32,
                slot: (1 + positions + blocks.len()) as u32,
                varpi: valid && after_terminator,
            });
        }
        // ϖ (A.3): after a terminator. Charge points: ϖ, plus (GP 0.7.2, where such positions
        // execute as `trap`) the position after an invalid one, plus (GP 0.7.2) the position after
        // an `ecalli`: GP 0.7.2 charges gas per instruction, and ending the pre-charged block at
        // the host call makes the gas a host call sees exact without any refund (the
        // instruction-exact accounting is in `instance.rs`). Such positions are not in ϖ.
        charge = terminator || !valid || f & 4 != 0;
        after_terminator = terminator;
        positions += 1;
        i = next;
    }
    // |c|: the implicit trap of ζ, never in ϖ.
    if charge {
        blocks.push(BlockInfo {
            pc: len as u32,
            slot: (1 + positions + blocks.len()) as u32,
            varpi: false,
        });
    }
    positions += 1;
    let slots = 1 + positions + blocks.len();

    // SAFETY: an all-zero `Op` is valid: `K::Charge` and `Reg::R0` are discriminant 0, the other
    // fields are integers and an atomic integer.
    let mut ops: Box<[UnsafeCell<Op>]> = unsafe { zeroed_slice(slots) };
    *ops[INVALID_SLOT as usize].get_mut() = Op {
        k: K::Charge,
        a: Reg::R0,
        b: Reg::R0,
        d: Reg::R0,
        pc: 0,
        imm: AtomicU64::new(!INVALID_TARGET),
    };
    let starts = StartIndex::new(&blocks, len);
    let mut table = OpTable {
        ops,
        blocks: blocks.into_boxed_slice(),
        starts,
        jump_table: SlotTable {
            slots: Box::new([]),
            len: 0,
            mask: 0,
        },
        compile_lock: Mutex::new(Vec::new()),
        fuse: false,
    };
    let slot = |t: u64| {
        u32::try_from(t)
            .ok()
            .and_then(|t| table.target_slot(t))
            .unwrap_or(INVALID_SLOT)
    };
    table.jump_table = match jump_table.explicit() {
        // |j| entries with z > 0 took |j|·z input bytes: O(input).
        Some(entries) => SlotTable {
            slots: entries.iter().map(|&t| slot(t)).collect(),
            len: entries.len(),
            mask: usize::MAX,
        },
        // All-zero entries (z = 0): one resolution for all of them.
        None => SlotTable {
            slots: Box::new([slot(0)]),
            len: jump_table.len(),
            mask: 0,
        },
    };
    Ok(table)
}

/// A set of pcs in `0..=|c|` (the charge points) with O(1) rank: one bit per pc, and per 64-pc
/// word the number of members below it.
struct StartIndex {
    bits: Box<[u64]>,
    /// `rank[w]`: members below pc 64·w.
    rank: Box<[u32]>,
}

impl StartIndex {
    /// The index of `blocks` (sorted by pc, all pcs at most `len`).
    fn new(blocks: &[BlockInfo], len: usize) -> StartIndex {
        let words = len / 64 + 1;
        let mut bits = vec![0u64; words].into_boxed_slice();
        for b in blocks {
            bits[b.pc as usize / 64] |= 1 << (b.pc % 64);
        }
        let mut rank = vec![0u32; words].into_boxed_slice();
        let mut below = 0u32;
        for (r, w) in rank.iter_mut().zip(bits.iter()) {
            *r = below;
            below += w.count_ones();
        }
        StartIndex { bits, rank }
    }

    /// How many members are at most `pc`.
    #[inline]
    fn blocks_up_to(&self, pc: u32) -> usize {
        let w = pc as usize / 64;
        match self.bits.get(w) {
            // Members at or below pc in its word: the bits up to and including pc's.
            Some(&bits) => {
                let upto = bits & (u64::MAX >> (63 - pc % 64));
                (self.rank[w] + upto.count_ones()) as usize
            }
            // Past the last word: every member (the last word's rank plus its members).
            None => match (self.rank.last(), self.bits.last()) {
                (Some(&r), Some(w)) => (r + w.count_ones()) as usize,
                _ => 0,
            },
        }
    }

    /// The index of the member `pc`, if it is one.
    #[inline]
    fn block_at(&self, pc: u32) -> Option<usize> {
        let w = pc as usize / 64;
        let bits = *self.bits.get(w)?;
        let bit = 1u64 << (pc % 64);
        (bits & bit != 0).then(|| (self.rank[w] + (bits & (bit - 1)).count_ones()) as usize)
    }
}

impl OpTable {
    /// The first op; slots are `0..self.len()`.
    #[inline(always)]
    pub fn base(&self) -> *const Op {
        // `UnsafeCell<Op>` has the same layout as `Op`.
        self.ops.as_ptr() as *const Op
    }

    /// Number of slots.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The op in slot `slot` of a compiled block (or a `Charge` slot); the caller has compiled
    /// the block with [`OpTable::ensure_compiled`].
    pub fn op(&self, slot: u32) -> &Op {
        debug_assert!(
            !self.is_charge_slot(slot)
                || slot == INVALID_SLOT
                || self.slot_cost(slot) != UNCOMPILED
        );
        // SAFETY: compiled slots are never written again (module documentation), and the
        // caller compiled the block (an `Acquire` load of its cost happened in
        // `ensure_compiled`).
        unsafe { &*self.ops[slot as usize].get() }
    }

    /// The cost stored in a `Charge` slot: the block's gas, [`UNCOMPILED`] or [`INVALID_TARGET`].
    #[inline(always)]
    pub fn slot_cost(&self, slot: u32) -> u64 {
        // SAFETY: `imm` is an atomic; taking a reference to it is sound while other threads
        // store to it. Other fields of a `Charge` slot are never written after construction.
        !unsafe { &(*self.ops[slot as usize].get()).imm }.load(Ordering::Acquire)
    }

    /// The `Charge` slot of the block starting at `pc`, if `pc ∈ ϖ`.
    #[inline]
    pub fn target_slot(&self, pc: u32) -> Option<u32> {
        let i = self.starts.block_at(pc)?;
        let b = &self.blocks[i];
        b.varpi.then_some(b.slot)
    }

    /// The index of the block containing `pc` (the last charge point at or before it).
    pub fn block_containing(&self, pc: u32) -> usize {
        // Block 0 starts at pc 0.
        self.starts.blocks_up_to(pc).saturating_sub(1)
    }

    /// The index of the block whose `Charge` slot is `slot`.
    pub fn block_of_slot(&self, slot: u32) -> usize {
        let i = self.blocks.partition_point(|b| b.slot < slot);
        debug_assert!(self.blocks[i].slot == slot);
        i
    }

    /// One past the last op of the block that slot `slot` belongs to: the next block's `Charge`
    /// slot, or the end of the array. (Ops of a block are contiguous, so the number of
    /// instructions from slot `s` to the end of its block is `block_end_slot(s) - s`.)
    #[inline]
    pub fn block_end_slot(&self, slot: u32) -> u32 {
        let i = self.blocks.partition_point(|b| b.slot <= slot);
        self.blocks.get(i).map_or(self.ops.len() as u32, |b| b.slot)
    }

    /// Whether `slot` is a `Charge` slot (a block start or the invalid-target slot).
    #[inline]
    pub fn is_charge_slot(&self, slot: u32) -> bool {
        slot == INVALID_SLOT || {
            let i = self.blocks.partition_point(|b| b.slot < slot);
            self.blocks.get(i).is_some_and(|b| b.slot == slot)
        }
    }

    /// The pc of the block whose `Charge` slot is `slot`.
    pub fn block_pc_of_slot(&self, slot: u32) -> u32 {
        self.blocks[self.block_of_slot(slot)].pc
    }

    /// The slot of the instruction at `pc`, compiling its block if needed; `None` if `pc` is not
    /// a position of the walk (not an instruction start, or beyond |c|).
    pub fn op_for_pc(&self, code: &Code<'_>, spec: Spec, pc: u32) -> Option<u32> {
        if pc as usize > code.code.len() {
            return None;
        }
        let b = self.block_containing(pc);
        self.ensure_compiled(code, spec, b);
        let first = self.blocks[b].slot as usize + 1;
        let end = self
            .blocks
            .get(b + 1)
            .map_or(self.ops.len(), |n| n.slot as usize);
        // SAFETY: the block is compiled (the `Acquire` load in `ensure_compiled` saw its cost, or
        // this thread compiled it), and compiled slots are never written again.
        let pc_of = |cell: &UnsafeCell<Op>| unsafe { (*cell.get()).pc };
        let ops = &self.ops[first..end];
        let i = ops.partition_point(|cell| pc_of(cell) < pc);
        ops.get(i)
            .filter(|&cell| pc_of(cell) == pc)
            .map(|_| (first + i) as u32)
    }

    /// The gas cost of block `b`, compiling it if needed.
    pub fn block_cost(&self, code: &Code<'_>, spec: Spec, b: usize) -> u32 {
        self.ensure_compiled(code, spec, b);
        self.slot_cost(self.blocks[b].slot) as u32
    }

    /// Compiles block `b` unless it already is.
    #[inline]
    pub fn ensure_compiled(&self, code: &Code<'_>, spec: Spec, b: usize) {
        if self.slot_cost(self.blocks[b].slot) == UNCOMPILED {
            self.compile_block(code, spec, b);
        }
    }

    /// Compiles every block not compiled yet, taking the lock once (the recompiler's eager
    /// compilation). `each` sees every instruction of every block compiled here, decoded (a
    /// fresh table compiles all of them here).
    #[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
    pub fn compile_all(&self, code: &Code<'_>, spec: Spec, mut each: impl FnMut(&Instruction)) {
        let mut decoded = self
            .compile_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for b in 0..self.blocks.len() {
            self.compile_block_locked(&mut decoded, code, spec, b, &mut each);
        }
    }

    /// Decodes, lowers and costs block `b`, then publishes it (see the module documentation).
    #[cold]
    #[inline(never)]
    fn compile_block(&self, code: &Code<'_>, spec: Spec, b: usize) {
        let mut decoded = self
            .compile_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.compile_block_locked(&mut decoded, code, spec, b, &mut |_| {});
    }

    /// [`OpTable::compile_block`] with the lock held (`decoded` is what it guards), showing
    /// each decoded instruction to `each`.
    fn compile_block_locked(
        &self,
        decoded: &mut Vec<(u32, Instruction)>,
        code: &Code<'_>,
        spec: Spec,
        b: usize,
        each: &mut impl FnMut(&Instruction),
    ) {
        let gp080 = spec == Spec::Gp0_8_0;
        let block = self.blocks[b];
        if self.slot_cost(block.slot) != UNCOMPILED {
            return; // compiled already (perhaps by another thread first)
        }
        decoded.clear();
        let len = code.code.len() as u32;
        let end = self.blocks.get(b + 1).map_or(len + 1, |n| n.pc);
        let resolve = |t: i64| u32::try_from(t).ok().and_then(|t| self.target_slot(t));
        let (mut pc, mut slot, mut count) = (block.pc, block.slot + 1, 0u32);
        loop {
            let ins = code.decode(pc, spec);
            each(&ins);
            if gp080 {
                decoded.push((pc, ins));
            }
            let op = match ins.opcode {
                Some(opcode) if pc < len && code.bitmask[pc as usize] => {
                    lower(opcode, &ins, pc, spec, resolve, INVALID_SLOT)
                }
                _ => None,
            };
            let cell = &self.ops[slot as usize];
            // SAFETY: the slot belongs to this block, which is not compiled: no other thread
            // reads it (readers wait for the cost published below) and no other thread writes it
            // (we hold the lock and re-checked that the block is uncompiled). The old value is an
            // all-zero `Op`, which needs no drop.
            unsafe { cell.get().write(op.unwrap_or_else(|| Op::trap(pc))) };
            slot += 1;
            count += 1;
            if pc >= len {
                break;
            }
            pc = ins.next_pc(pc);
            if pc >= end {
                break;
            }
        }
        debug_assert_eq!(
            self.blocks
                .get(b + 1)
                .map_or(self.ops.len() as u32, |n| n.slot),
            slot
        );
        if self.fuse {
            let first = block.slot as usize + 1;
            let cells = &self.ops[first..slot as usize];
            // SAFETY: as for the writes above: these are this (uncompiled, so unreachable)
            // block's slots, written only under the lock we hold. `UnsafeCell<Op>` has the layout
            // of `Op`, so the run of cells is a run of ops.
            let ops = unsafe {
                std::slice::from_raw_parts_mut(UnsafeCell::raw_get(cells.as_ptr()), cells.len())
            };
            fuse(ops);
        }
        let cost = match spec {
            Spec::Gp0_8_0 => simulator::block_cost_decoded(code, block.pc, decoded),
            Spec::Gp0_7_2 => count,
        };
        // SAFETY: as in `slot_cost`.
        unsafe { &(*self.ops[block.slot as usize].get()).imm }
            .store(!(cost as u64), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use crate::asm::{Assembler, Operands as Ops};
    use crate::isa::Opcode as O;
    use crate::{Backend, Program, ProgramOptions, Spec};

    /// The rank index answers exactly what a search of the sorted block list answers, for every
    /// pc in and past the code (blocks of many lengths, runs of one-byte blocks, both specs).
    #[test]
    fn block_lookups_match_a_search_of_the_block_list() {
        for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
            let mut a = Assembler::for_spec(spec);
            let mut x = 0x9e37_79b9u32;
            for _ in 0..400 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                for _ in 0..x % 9 {
                    a.inst(
                        O::AddImm64,
                        Ops::reg_reg_imm(1, 1, (x >> 8) as i64 % 100_000),
                    );
                }
                match x % 4 {
                    0 => a.inst(O::Trap, Ops::none()),
                    1 => a.inst(O::Ecalli, Ops::imm(1)),
                    _ => a.inst(O::Fallthrough, Ops::none()),
                }
            }
            let options = ProgramOptions {
                spec,
                backend: Backend::Interpreter,
            };
            let p = Program::from_code(&a.finish(), options).unwrap();
            let t = &p.inner.table;
            let len = p.inner.blob.code.len() as u32;
            assert!(t.blocks.len() > 250, "{spec:?}: many blocks");
            for pc in (0..len + 300).chain([u32::MAX - 1, u32::MAX]) {
                let i = t.blocks.partition_point(|b| b.pc < pc);
                let want = t
                    .blocks
                    .get(i)
                    .filter(|b| b.pc == pc && b.varpi)
                    .map(|b| b.slot);
                assert_eq!(t.target_slot(pc), want, "{spec:?}: target_slot({pc})");
                let want = t.blocks.partition_point(|b| b.pc <= pc).saturating_sub(1);
                assert_eq!(
                    t.block_containing(pc),
                    want,
                    "{spec:?}: block_containing({pc})"
                );
            }
        }
    }
}
