//! Memory-access groups: runs of loads and stores in one block that use the same base register,
//! unchanged between them, at offsets within a small span. Code generation checks a group's page
//! once (permission bits and "the whole span lies in one page") at its first access and gives
//! every access of the group a plain host-address form; when that check fails, the block
//! continues in a *checked twin* — the same instructions with the per-access checks — so the
//! group path never changes what a run does, only how fast the common case is.
//!
//! Soundness rests on three facts: the base register is not written between the group's first
//! and last access (so each address is the checked base plus its offset), compiled code never
//! changes the page table (first writes, `sbrk` and faults yield; host calls exit, and a group
//! never spans an `ecalli`), and the check covers the union of the accesses' bytes with the
//! permission bits of every kind of access in the group.

use crate::program::lower::{Op, Reg};
use crate::program::{OpTable, K};

/// Accesses of a group may spread over at most this many bytes (offset of the lowest byte to
/// one past the highest). Small spans keep the chance that the span straddles a page low.
pub(crate) const MAX_SPAN: i64 = 512;

/// A group needs at least this many accesses to pay for its check.
pub(crate) const MIN_ACCESSES: usize = 2;

/// Groups whose checked host addresses can be live at once (frame slots).
pub(crate) const SLOTS: usize = 4;

/// One memory access of an op: base register, 32-bit offset, size, whether it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    pub base: Reg,
    pub off: i32,
    pub n: u32,
    pub store: bool,
}

/// A group of accesses (op slots ascending) sharing one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub base: Reg,
    /// Lowest offset (the check's address is base + min).
    pub min: i32,
    /// Bytes from base + min to one past the highest accessed byte.
    pub span: u32,
    /// Page-entry bits every access needs: 1 = READ (a load), 2 = WRITE (a store).
    pub mask: u8,
    /// Slots of the accesses, ascending.
    pub slots: Vec<u32>,
    /// Frame slot index (< [`SLOTS`]) holding the checked host address of base + 0.
    pub hb: usize,
}

/// The register-based memory access of `op`, if it has one.
pub(crate) fn access(op: &Op) -> Option<Access> {
    let off = op.imm() as u32 as i32;
    let (n, store, base) = match op.k {
        K::LoadIndU8 | K::LoadIndI8 => (1, false, op.b),
        K::LoadIndU16 | K::LoadIndI16 => (2, false, op.b),
        K::LoadIndU32 | K::LoadIndI32 => (4, false, op.b),
        K::LoadIndU64 => (8, false, op.b),
        K::StoreIndU8 => (1, true, op.b),
        K::StoreIndU16 => (2, true, op.b),
        K::StoreIndU32 => (4, true, op.b),
        K::StoreIndU64 => (8, true, op.b),
        K::StoreImmIndU8 => (1, true, op.a),
        K::StoreImmIndU16 => (2, true, op.a),
        K::StoreImmIndU32 => (4, true, op.a),
        K::StoreImmIndU64 => (8, true, op.a),
        _ => return None,
    };
    Some(Access {
        base,
        off,
        n,
        store,
    })
}

/// Registers `op` writes. Every PVM instruction writes at most one register: `d` for the
/// two- and three-register forms (A.5.11, A.5.13), `a` for the others that write one; a fused
/// kind (interpreter programs only) conservatively counts every register field. The match is
/// exhaustive so that a new kind needs a decision here. (A wrong answer could not reach host
/// memory — a grouped access stays inside its checked page — but would change what a run does.)
fn writes(op: &Op) -> [Option<Reg>; 3] {
    let one = |r: Reg| [Some(r), None, None];
    match op.k {
        K::Charge
        | K::Trap
        | K::Nop
        | K::Fallthrough
        | K::Ecalli
        | K::StoreImmU8
        | K::StoreImmU16
        | K::StoreImmU32
        | K::StoreImmU64
        | K::Jump
        | K::JumpInd
        | K::StoreU8
        | K::StoreU16
        | K::StoreU32
        | K::StoreU64
        | K::StoreImmIndU8
        | K::StoreImmIndU16
        | K::StoreImmIndU32
        | K::StoreImmIndU64
        | crate::program::branch_imm_kinds!()
        | K::StoreIndU8
        | K::StoreIndU16
        | K::StoreIndU32
        | K::StoreIndU64
        | crate::program::branch_reg_kinds!() => [None; 3],
        K::LoadImm64
        | K::LoadImm
        | K::LoadU8
        | K::LoadI8
        | K::LoadU16
        | K::LoadI16
        | K::LoadU32
        | K::LoadI32
        | K::LoadU64
        | K::LoadImmJump
        | K::LoadIndU8
        | K::LoadIndI8
        | K::LoadIndU16
        | K::LoadIndI16
        | K::LoadIndU32
        | K::LoadIndI32
        | K::LoadIndU64
        | K::AddImm32
        | K::AndImm
        | K::XorImm
        | K::OrImm
        | K::MulImm32
        | K::SetLtUImm
        | K::SetLtSImm
        | K::ShloLImm32
        | K::ShloRImm32
        | K::SharRImm32
        | K::NegAddImm32
        | K::SetGtUImm
        | K::SetGtSImm
        | K::ShloLImmAlt32
        | K::ShloRImmAlt32
        | K::SharRImmAlt32
        | K::CmovIzImm
        | K::CmovNzImm
        | K::AddImm64
        | K::MulImm64
        | K::ShloLImm64
        | K::ShloRImm64
        | K::SharRImm64
        | K::NegAddImm64
        | K::ShloLImmAlt64
        | K::ShloRImmAlt64
        | K::SharRImmAlt64
        | K::RotR64Imm
        | K::RotR64ImmAlt
        | K::RotR32Imm
        | K::RotR32ImmAlt
        | K::LoadImmJumpInd => one(op.a),
        K::MoveReg
        | K::Sbrk
        | K::CountSetBits64
        | K::CountSetBits32
        | K::LeadingZeroBits64
        | K::LeadingZeroBits32
        | K::TrailingZeroBits64
        | K::TrailingZeroBits32
        | K::SignExtend8
        | K::SignExtend16
        | K::ZeroExtend16
        | K::ReverseBytes
        | K::Add32
        | K::Sub32
        | K::Mul32
        | K::DivU32
        | K::DivS32
        | K::RemU32
        | K::RemS32
        | K::ShloL32
        | K::ShloR32
        | K::SharR32
        | K::Add64
        | K::Sub64
        | K::Mul64
        | K::DivU64
        | K::DivS64
        | K::RemU64
        | K::RemS64
        | K::ShloL64
        | K::ShloR64
        | K::SharR64
        | K::And
        | K::Xor
        | K::Or
        | K::MulUpperSS
        | K::MulUpperUU
        | K::MulUpperSU
        | K::SetLtU
        | K::SetLtS
        | K::CmovIz
        | K::CmovNz
        | K::RotL64
        | K::RotL32
        | K::RotR64
        | K::RotR32
        | K::AndInv
        | K::OrInv
        | K::Xnor
        | K::Max
        | K::MaxU
        | K::Min
        | K::MinU => one(op.d),
        crate::program::fused_kinds!() => [Some(op.a), Some(op.b), Some(op.d)],
    }
}

/// An open candidate group.
struct Open {
    base: Reg,
    lo: i64,
    hi: i64,
    mask: u8,
    slots: Vec<u32>,
}

/// Closes the candidate in `entry`, if any (checked first: most entries are empty, and taking
/// one moves the whole candidate).
/// `live` counts the candidates open.
#[inline]
fn close(entry: &mut Option<Open>, out: &mut Vec<Group>, live: &mut usize) {
    if entry.is_some() {
        if let Some(o) = entry.take() {
            o.close(out);
            *live -= 1;
        }
    }
}

impl Open {
    fn close(self, out: &mut Vec<Group>) {
        if self.slots.len() >= MIN_ACCESSES {
            out.push(Group {
                base: self.base,
                min: self.lo as i32,
                span: (self.hi - self.lo) as u32,
                mask: self.mask,
                slots: self.slots,
                hb: 0,
            });
        }
    }
}

/// The groups of the ops in slots `start..end` (one block's body), each with a frame slot;
/// groups that find no free slot are left out (their accesses keep the per-access checks).
pub(crate) fn groups(table: &OpTable, start: u32, end: u32) -> Vec<Group> {
    let mut open: [Option<Open>; 13] = Default::default();
    // How many entries of `open` are `Some` (most blocks have no memory access: then the
    // per-op closing below is skipped).
    let mut live = 0usize;
    let mut found = Vec::new();
    for slot in start..end {
        let op = table.op(slot);
        if matches!(op.k, K::Ecalli | K::Sbrk | K::Trap) {
            if live != 0 {
                for o in open.iter_mut() {
                    close(o, &mut found, &mut live);
                }
            }
            continue;
        }
        if let Some(acc) = access(op) {
            let (lo, hi) = (acc.off as i64, acc.off as i64 + acc.n as i64);
            let bit = if acc.store { 2 } else { 1 };
            let entry = &mut open[acc.base as usize];
            match entry {
                Some(o) if o.hi.max(hi) - o.lo.min(lo) <= MAX_SPAN => {
                    o.lo = o.lo.min(lo);
                    o.hi = o.hi.max(hi);
                    o.mask |= bit;
                    o.slots.push(slot);
                }
                _ => {
                    close(entry, &mut found, &mut live);
                    live += 1;
                    *entry = Some(Open {
                        base: acc.base,
                        lo,
                        hi,
                        mask: bit,
                        slots: vec![slot],
                    });
                }
            }
        }
        if live != 0 {
            for r in writes(op).into_iter().flatten() {
                close(&mut open[r as usize], &mut found, &mut live);
            }
        }
    }
    if live != 0 {
        for o in open.iter_mut() {
            close(o, &mut found, &mut live);
        }
    }
    assign_slots(found)
}

/// Gives each group a frame slot not used by a group whose accesses overlap it in time.
fn assign_slots(mut found: Vec<Group>) -> Vec<Group> {
    found.sort_by_key(|g| g.slots[0]);
    let mut busy_until = [0u32; SLOTS];
    let mut used = [false; SLOTS];
    let mut out = Vec::with_capacity(found.len());
    for mut g in found {
        let first = g.slots[0];
        let last = *g.slots.last().expect("a group has accesses");
        if let Some(s) = (0..SLOTS).find(|&s| !used[s] || busy_until[s] < first) {
            used[s] = true;
            busy_until[s] = last;
            g.hb = s;
            out.push(g);
        }
    }
    out
}
