//! The interpreter's pre-decoded form: operation kinds, the 16-byte [`Op`], and the lowering of
//! one decoded instruction to an op.

use std::sync::atomic::AtomicU64;

use crate::isa::{ArgClass, Instruction, Opcode};
use crate::Spec;

/// Operation kinds of the pre-decoded form. Most map 1:1 to opcodes; `Charge` is inserted at every
/// basic-block start, `Trap` also stands for statically known panics (invalid branch edges in GP
/// 0.8.0, invalid opcodes in GP 0.7.2) and `Nop` for `fallthrough`/`unlikely`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub(crate) enum K {
    /// Must stay 0: an all-zero op is an (uncompiled) `Charge` slot.
    Charge = 0,
    Trap,
    Nop,
    Fallthrough,
    Ecalli,
    LoadImm64,
    StoreImmU8,
    StoreImmU16,
    StoreImmU32,
    StoreImmU64,
    Jump,
    JumpInd,
    LoadImm,
    LoadU8,
    LoadI8,
    LoadU16,
    LoadI16,
    LoadU32,
    LoadI32,
    LoadU64,
    StoreU8,
    StoreU16,
    StoreU32,
    StoreU64,
    StoreImmIndU8,
    StoreImmIndU16,
    StoreImmIndU32,
    StoreImmIndU64,
    LoadImmJump,
    BranchEqImm,
    BranchNeImm,
    BranchLtUImm,
    BranchLeUImm,
    BranchGeUImm,
    BranchGtUImm,
    BranchLtSImm,
    BranchLeSImm,
    BranchGeSImm,
    BranchGtSImm,
    MoveReg,
    Sbrk,
    CountSetBits64,
    CountSetBits32,
    LeadingZeroBits64,
    LeadingZeroBits32,
    TrailingZeroBits64,
    TrailingZeroBits32,
    SignExtend8,
    SignExtend16,
    ZeroExtend16,
    ReverseBytes,
    StoreIndU8,
    StoreIndU16,
    StoreIndU32,
    StoreIndU64,
    LoadIndU8,
    LoadIndI8,
    LoadIndU16,
    LoadIndI16,
    LoadIndU32,
    LoadIndI32,
    LoadIndU64,
    AddImm32,
    AndImm,
    XorImm,
    OrImm,
    MulImm32,
    SetLtUImm,
    SetLtSImm,
    ShloLImm32,
    ShloRImm32,
    SharRImm32,
    NegAddImm32,
    SetGtUImm,
    SetGtSImm,
    ShloLImmAlt32,
    ShloRImmAlt32,
    SharRImmAlt32,
    CmovIzImm,
    CmovNzImm,
    AddImm64,
    MulImm64,
    ShloLImm64,
    ShloRImm64,
    SharRImm64,
    NegAddImm64,
    ShloLImmAlt64,
    ShloRImmAlt64,
    SharRImmAlt64,
    RotR64Imm,
    RotR64ImmAlt,
    RotR32Imm,
    RotR32ImmAlt,
    BranchEq,
    BranchNe,
    BranchLtU,
    BranchLtS,
    BranchGeU,
    BranchGeS,
    LoadImmJumpInd,
    Add32,
    Sub32,
    Mul32,
    DivU32,
    DivS32,
    RemU32,
    RemS32,
    ShloL32,
    ShloR32,
    SharR32,
    Add64,
    Sub64,
    Mul64,
    DivU64,
    DivS64,
    RemU64,
    RemS64,
    ShloL64,
    ShloR64,
    SharR64,
    And,
    Xor,
    Or,
    MulUpperSS,
    MulUpperUU,
    MulUpperSU,
    SetLtU,
    SetLtS,
    CmovIz,
    CmovNz,
    RotL64,
    RotL32,
    RotR64,
    RotR32,
    AndInv,
    OrInv,
    Xnor,
    Max,
    MaxU,
    Min,
    MinU,
    // Fused pairs (interpreter programs only, see [`fuse`]): the op executes itself and then the
    // op in the next slot, which stays in place (for step mode, where the fused op executes only
    // its first half, and for the recompiler, which never sees fused kinds).
    Add64LoadIndU64,
    XorRotR64Imm,
    LoadIndU64Add64,
    RotR64ImmAdd64,
    Add64Xor,
    ShloLImm64Add64,
    Add64StoreIndU64,
    LoadIndU8ShloLImm64,
    LoadIndU64Xor,
    Mul64MulUpperSS,
    ShloLImm64ShloRImm64,
    ShloRImm64Or,
    OrMul64,
    Add64BranchLtS,
    AddImm64AddImm64,
    LoadIndU64AddImm64,
    AddImm64BranchLtU,
    NopLoadIndU64,
    Add64StoreIndU8,
    Add64Add64,
    StoreIndU8BranchLtU,
    AndImmShloLImm64,
    ShloRImm64StoreIndU8,
    RotR64ImmLoadIndU64,
    StoreIndU64LoadIndU8,
    StoreIndU64Add64,
    LoadIndU64RotR64Imm,
    XorAdd64,
    MulUpperSSShloLImm64,
    OrAdd64,
    OrAndImm,
    AndImmAdd64,
    Add64Sub64,
    Sub64AddImm64,
    AddImm64LoadImm,
    LoadImmAdd64,
    Add64BranchNe,
}

/// Every fused kind, as a pattern (used by the recompiler).
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(unused_macros))]
macro_rules! fused_kinds {
    () => {
        K::Add64LoadIndU64
            | K::XorRotR64Imm
            | K::LoadIndU64Add64
            | K::RotR64ImmAdd64
            | K::Add64Xor
            | K::ShloLImm64Add64
            | K::Add64StoreIndU64
            | K::LoadIndU8ShloLImm64
            | K::LoadIndU64Xor
            | K::Mul64MulUpperSS
            | K::ShloLImm64ShloRImm64
            | K::ShloRImm64Or
            | K::OrMul64
            | K::Add64BranchLtS
            | K::AddImm64AddImm64
            | K::LoadIndU64AddImm64
            | K::AddImm64BranchLtU
            | K::NopLoadIndU64
            | K::Add64StoreIndU8
            | K::Add64Add64
            | K::StoreIndU8BranchLtU
            | K::AndImmShloLImm64
            | K::ShloRImm64StoreIndU8
            | K::RotR64ImmLoadIndU64
            | K::StoreIndU64LoadIndU8
            | K::StoreIndU64Add64
            | K::LoadIndU64RotR64Imm
            | K::XorAdd64
            | K::MulUpperSSShloLImm64
            | K::OrAdd64
            | K::OrAndImm
            | K::AndImmAdd64
            | K::Add64Sub64
            | K::Sub64AddImm64
            | K::AddImm64LoadImm
            | K::LoadImmAdd64
            | K::Add64BranchNe
    };
}
#[cfg(all(target_arch = "x86_64", unix))]
pub(crate) use fused_kinds;

/// Every branch kind comparing a register with an immediate (A.5.8), as a pattern.
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(unused_macros))]
macro_rules! branch_imm_kinds {
    () => {
        K::BranchEqImm
            | K::BranchNeImm
            | K::BranchLtUImm
            | K::BranchLeUImm
            | K::BranchGeUImm
            | K::BranchGtUImm
            | K::BranchLtSImm
            | K::BranchLeSImm
            | K::BranchGeSImm
            | K::BranchGtSImm
    };
}
#[cfg(all(target_arch = "x86_64", unix))]
pub(crate) use branch_imm_kinds;

/// Every branch kind comparing two registers (A.5.11), as a pattern.
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(unused_macros))]
macro_rules! branch_reg_kinds {
    () => {
        K::BranchEq | K::BranchNe | K::BranchLtU | K::BranchLtS | K::BranchGeU | K::BranchGeS
    };
}
#[cfg(all(target_arch = "x86_64", unix))]
pub(crate) use branch_reg_kinds;

/// The fused pairs: (first, second, fused). The second may be a block's terminator (a branch).
const FUSED: [(K, K, K); 37] = [
    (K::Add64, K::LoadIndU64, K::Add64LoadIndU64),
    (K::Xor, K::RotR64Imm, K::XorRotR64Imm),
    (K::LoadIndU64, K::Add64, K::LoadIndU64Add64),
    (K::RotR64Imm, K::Add64, K::RotR64ImmAdd64),
    (K::Add64, K::Xor, K::Add64Xor),
    (K::ShloLImm64, K::Add64, K::ShloLImm64Add64),
    (K::Add64, K::StoreIndU64, K::Add64StoreIndU64),
    (K::LoadIndU8, K::ShloLImm64, K::LoadIndU8ShloLImm64),
    (K::LoadIndU64, K::Xor, K::LoadIndU64Xor),
    (K::Mul64, K::MulUpperSS, K::Mul64MulUpperSS),
    (K::ShloLImm64, K::ShloRImm64, K::ShloLImm64ShloRImm64),
    (K::ShloRImm64, K::Or, K::ShloRImm64Or),
    (K::Or, K::Mul64, K::OrMul64),
    (K::Add64, K::BranchLtS, K::Add64BranchLtS),
    (K::AddImm64, K::AddImm64, K::AddImm64AddImm64),
    (K::LoadIndU64, K::AddImm64, K::LoadIndU64AddImm64),
    (K::AddImm64, K::BranchLtU, K::AddImm64BranchLtU),
    (K::Nop, K::LoadIndU64, K::NopLoadIndU64),
    (K::Add64, K::StoreIndU8, K::Add64StoreIndU8),
    (K::Add64, K::Add64, K::Add64Add64),
    (K::StoreIndU8, K::BranchLtU, K::StoreIndU8BranchLtU),
    (K::AndImm, K::ShloLImm64, K::AndImmShloLImm64),
    (K::ShloRImm64, K::StoreIndU8, K::ShloRImm64StoreIndU8),
    (K::RotR64Imm, K::LoadIndU64, K::RotR64ImmLoadIndU64),
    (K::StoreIndU64, K::LoadIndU8, K::StoreIndU64LoadIndU8),
    (K::StoreIndU64, K::Add64, K::StoreIndU64Add64),
    (K::LoadIndU64, K::RotR64Imm, K::LoadIndU64RotR64Imm),
    (K::Xor, K::Add64, K::XorAdd64),
    (K::MulUpperSS, K::ShloLImm64, K::MulUpperSSShloLImm64),
    (K::Or, K::Add64, K::OrAdd64),
    (K::Or, K::AndImm, K::OrAndImm),
    (K::AndImm, K::Add64, K::AndImmAdd64),
    (K::Add64, K::Sub64, K::Add64Sub64),
    (K::Sub64, K::AddImm64, K::Sub64AddImm64),
    (K::AddImm64, K::LoadImm, K::AddImm64LoadImm),
    (K::LoadImm, K::Add64, K::LoadImmAdd64),
    (K::Add64, K::BranchNe, K::Add64BranchNe),
];

impl K {
    /// The fused kind for `self` followed by `next`, if that pair is fused.
    pub fn fuse(self, next: K) -> Option<K> {
        FUSED
            .iter()
            .find(|(a, b, _)| *a == self && *b == next)
            .map(|&(_, _, f)| f)
    }

    /// The first half of a fused kind (itself for every other kind): what step mode executes.
    #[inline]
    pub fn first(self) -> K {
        if (self as u8) < (K::Add64LoadIndU64 as u8) {
            return self;
        }
        FUSED
            .iter()
            .find(|(_, _, f)| *f == self)
            .map_or(self, |&(a, _, _)| a)
    }
}

/// Fuses the hot pairs of the ops of one block (`ops`: its instructions, without the `Charge`
/// slot), greedily from the start: each op takes part in at most one pair.
pub(crate) fn fuse(ops: &mut [Op]) {
    let mut i = 0;
    while i + 1 < ops.len() {
        if let Some(f) = ops[i].k.fuse(ops[i + 1].k) {
            ops[i].k = f;
            i += 2;
        } else {
            i += 1;
        }
    }
}

fn kind_of(op: Opcode) -> K {
    use Opcode as O;
    match op {
        O::Trap => K::Trap,
        O::Fallthrough => K::Fallthrough,
        O::Unlikely => K::Nop,
        O::Ecalli => K::Ecalli,
        O::LoadImm64 => K::LoadImm64,
        O::StoreImmU8 => K::StoreImmU8,
        O::StoreImmU16 => K::StoreImmU16,
        O::StoreImmU32 => K::StoreImmU32,
        O::StoreImmU64 => K::StoreImmU64,
        O::Jump => K::Jump,
        O::JumpInd => K::JumpInd,
        O::LoadImm => K::LoadImm,
        O::LoadU8 => K::LoadU8,
        O::LoadI8 => K::LoadI8,
        O::LoadU16 => K::LoadU16,
        O::LoadI16 => K::LoadI16,
        O::LoadU32 => K::LoadU32,
        O::LoadI32 => K::LoadI32,
        O::LoadU64 => K::LoadU64,
        O::StoreU8 => K::StoreU8,
        O::StoreU16 => K::StoreU16,
        O::StoreU32 => K::StoreU32,
        O::StoreU64 => K::StoreU64,
        O::StoreImmIndU8 => K::StoreImmIndU8,
        O::StoreImmIndU16 => K::StoreImmIndU16,
        O::StoreImmIndU32 => K::StoreImmIndU32,
        O::StoreImmIndU64 => K::StoreImmIndU64,
        O::LoadImmJump => K::LoadImmJump,
        O::BranchEqImm => K::BranchEqImm,
        O::BranchNeImm => K::BranchNeImm,
        O::BranchLtUImm => K::BranchLtUImm,
        O::BranchLeUImm => K::BranchLeUImm,
        O::BranchGeUImm => K::BranchGeUImm,
        O::BranchGtUImm => K::BranchGtUImm,
        O::BranchLtSImm => K::BranchLtSImm,
        O::BranchLeSImm => K::BranchLeSImm,
        O::BranchGeSImm => K::BranchGeSImm,
        O::BranchGtSImm => K::BranchGtSImm,
        O::MoveReg => K::MoveReg,
        O::Sbrk => K::Sbrk,
        O::CountSetBits64 => K::CountSetBits64,
        O::CountSetBits32 => K::CountSetBits32,
        O::LeadingZeroBits64 => K::LeadingZeroBits64,
        O::LeadingZeroBits32 => K::LeadingZeroBits32,
        O::TrailingZeroBits64 => K::TrailingZeroBits64,
        O::TrailingZeroBits32 => K::TrailingZeroBits32,
        O::SignExtend8 => K::SignExtend8,
        O::SignExtend16 => K::SignExtend16,
        O::ZeroExtend16 => K::ZeroExtend16,
        O::ReverseBytes => K::ReverseBytes,
        O::StoreIndU8 => K::StoreIndU8,
        O::StoreIndU16 => K::StoreIndU16,
        O::StoreIndU32 => K::StoreIndU32,
        O::StoreIndU64 => K::StoreIndU64,
        O::LoadIndU8 => K::LoadIndU8,
        O::LoadIndI8 => K::LoadIndI8,
        O::LoadIndU16 => K::LoadIndU16,
        O::LoadIndI16 => K::LoadIndI16,
        O::LoadIndU32 => K::LoadIndU32,
        O::LoadIndI32 => K::LoadIndI32,
        O::LoadIndU64 => K::LoadIndU64,
        O::AddImm32 => K::AddImm32,
        O::AndImm => K::AndImm,
        O::XorImm => K::XorImm,
        O::OrImm => K::OrImm,
        O::MulImm32 => K::MulImm32,
        O::SetLtUImm => K::SetLtUImm,
        O::SetLtSImm => K::SetLtSImm,
        O::ShloLImm32 => K::ShloLImm32,
        O::ShloRImm32 => K::ShloRImm32,
        O::SharRImm32 => K::SharRImm32,
        O::NegAddImm32 => K::NegAddImm32,
        O::SetGtUImm => K::SetGtUImm,
        O::SetGtSImm => K::SetGtSImm,
        O::ShloLImmAlt32 => K::ShloLImmAlt32,
        O::ShloRImmAlt32 => K::ShloRImmAlt32,
        O::SharRImmAlt32 => K::SharRImmAlt32,
        O::CmovIzImm => K::CmovIzImm,
        O::CmovNzImm => K::CmovNzImm,
        O::AddImm64 => K::AddImm64,
        O::MulImm64 => K::MulImm64,
        O::ShloLImm64 => K::ShloLImm64,
        O::ShloRImm64 => K::ShloRImm64,
        O::SharRImm64 => K::SharRImm64,
        O::NegAddImm64 => K::NegAddImm64,
        O::ShloLImmAlt64 => K::ShloLImmAlt64,
        O::ShloRImmAlt64 => K::ShloRImmAlt64,
        O::SharRImmAlt64 => K::SharRImmAlt64,
        O::RotR64Imm => K::RotR64Imm,
        O::RotR64ImmAlt => K::RotR64ImmAlt,
        O::RotR32Imm => K::RotR32Imm,
        O::RotR32ImmAlt => K::RotR32ImmAlt,
        O::BranchEq => K::BranchEq,
        O::BranchNe => K::BranchNe,
        O::BranchLtU => K::BranchLtU,
        O::BranchLtS => K::BranchLtS,
        O::BranchGeU => K::BranchGeU,
        O::BranchGeS => K::BranchGeS,
        O::LoadImmJumpInd => K::LoadImmJumpInd,
        O::Add32 => K::Add32,
        O::Sub32 => K::Sub32,
        O::Mul32 => K::Mul32,
        O::DivU32 => K::DivU32,
        O::DivS32 => K::DivS32,
        O::RemU32 => K::RemU32,
        O::RemS32 => K::RemS32,
        O::ShloL32 => K::ShloL32,
        O::ShloR32 => K::ShloR32,
        O::SharR32 => K::SharR32,
        O::Add64 => K::Add64,
        O::Sub64 => K::Sub64,
        O::Mul64 => K::Mul64,
        O::DivU64 => K::DivU64,
        O::DivS64 => K::DivS64,
        O::RemU64 => K::RemU64,
        O::RemS64 => K::RemS64,
        O::ShloL64 => K::ShloL64,
        O::ShloR64 => K::ShloR64,
        O::SharR64 => K::SharR64,
        O::And => K::And,
        O::Xor => K::Xor,
        O::Or => K::Or,
        O::MulUpperSS => K::MulUpperSS,
        O::MulUpperUU => K::MulUpperUU,
        O::MulUpperSU => K::MulUpperSU,
        O::SetLtU => K::SetLtU,
        O::SetLtS => K::SetLtS,
        O::CmovIz => K::CmovIz,
        O::CmovNz => K::CmovNz,
        O::RotL64 => K::RotL64,
        O::RotL32 => K::RotL32,
        O::RotR64 => K::RotR64,
        O::RotR32 => K::RotR32,
        O::AndInv => K::AndInv,
        O::OrInv => K::OrInv,
        O::Xnor => K::Xnor,
        O::Max => K::Max,
        O::MaxU => K::MaxU,
        O::Min => K::Min,
        O::MinU => K::MinU,
    }
}

/// A register index, 0..=12. As an enum its range is known to the compiler, so indexing the
/// register file with it needs neither a mask nor a bounds check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub(crate) enum Reg {
    #[default]
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    R11,
    R12,
}

impl Reg {
    const ALL: [Reg; 13] = [
        Reg::R0,
        Reg::R1,
        Reg::R2,
        Reg::R3,
        Reg::R4,
        Reg::R5,
        Reg::R6,
        Reg::R7,
        Reg::R8,
        Reg::R9,
        Reg::R10,
        Reg::R11,
        Reg::R12,
    ];

    /// The register with index `i` (already clamped to 12 by the decoder; clamped again here).
    fn new(i: u8) -> Reg {
        Reg::ALL[i.min(12) as usize]
    }
}

/// One pre-decoded operation (16 bytes). Operand packing by class:
/// - registers in `a`/`b`/`d` (already clamped to 0..=12);
/// - a full 64-bit immediate in `imm` (A.5.3, A.5.6, A.5.10);
/// - two 32-bit values in the low/high halves of `imm` (two immediates: address/offset low, value
///   high; immediate + target: value low, target slot high); 32-bit immediates are stored
///   truncated and sign-extended again at run time (they come from at most 4 bytes);
/// - branch and jump targets as op indices of the target block's `Charge` slot (or of the shared
///   invalid-target slot, see `lazy.rs`).
///
/// `imm` is atomic because a `Charge` slot's cost is published by the thread that compiles its
/// block while other threads may be reading the slot; every other field of a slot is written
/// before the slot can be reached. `Relaxed` loads compile to plain loads.
#[derive(Debug)]
pub(crate) struct Op {
    pub k: K,
    pub a: Reg,
    pub b: Reg,
    pub d: Reg,
    pub pc: u32,
    pub imm: AtomicU64,
}

impl Op {
    /// The immediate (for body ops: written once, before the op became reachable).
    #[inline(always)]
    pub fn imm(&self) -> u64 {
        self.imm.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// An op that panics at `pc`.
    pub fn trap(pc: u32) -> Op {
        Op {
            k: K::Trap,
            a: Reg::R0,
            b: Reg::R0,
            d: Reg::R0,
            pc,
            imm: AtomicU64::new(0),
        }
    }
}

/// Lowers one valid instruction to an op. `resolve(t)` is the `Charge` slot of the basic block
/// starting at `t` if `t ∈ ϖ`. Returns `None` when the instruction statically always panics with
/// no other effect: a `jump` to a target outside ϖ (both versions), and in GP 0.8.0 a
/// `fallthrough` or branch with either edge outside ϖ. A GP 0.7.2 branch or a `load_imm_jump`
/// with a target outside ϖ gets `invalid` as its target: taking it panics at the instruction.
pub(crate) fn lower(
    opcode: Opcode,
    ins: &Instruction,
    pc: u32,
    spec: Spec,
    resolve: impl Fn(i64) -> Option<u32>,
    invalid: u32,
) -> Option<Op> {
    let args = &ins.args;
    let next = ins.next_pc(pc) as i64;
    let (mut a, mut b, mut d, mut imm) = (Reg::R0, Reg::R0, Reg::R0, 0u64);
    let lo32 = |x: u64| x & 0xffff_ffff;
    let both_edges = || resolve(args.target).is_some() && resolve(next).is_some();
    match opcode.class() {
        ArgClass::NoArgs => {
            if opcode == Opcode::Fallthrough && spec == Spec::Gp0_8_0 && resolve(next).is_none() {
                return None; // sjump(ı + 1 + skip) outside ϖ
            }
        }
        ArgClass::Imm => imm = lo32(args.imm1),
        ArgClass::RegImm64 | ArgClass::RegImm => {
            a = Reg::new(args.ra);
            imm = args.imm1;
        }
        ArgClass::ImmImm => imm = lo32(args.imm1) | (lo32(args.imm2) << 32),
        // jump: sjump in 0.8.0, branch(b, ⊤) in 0.7.2 — both panic iff b ∉ ϖ.
        ArgClass::Offset => imm = resolve(args.target)? as u64,
        ArgClass::RegImmImm => {
            a = Reg::new(args.ra);
            imm = lo32(args.imm1) | (lo32(args.imm2) << 32);
        }
        ArgClass::RegImmOffset => {
            a = Reg::new(args.ra);
            if opcode != Opcode::LoadImmJump && spec == Spec::Gp0_8_0 && !both_edges() {
                return None; // two-edge branch check (0.8.0)
            }
            let t = resolve(args.target).unwrap_or(invalid);
            imm = lo32(args.imm1) | ((t as u64) << 32);
        }
        ArgClass::RegReg => {
            d = Reg::new(args.rd);
            a = Reg::new(args.ra);
        }
        ArgClass::RegRegImm => {
            a = Reg::new(args.ra);
            b = Reg::new(args.rb);
            imm = args.imm1;
        }
        ArgClass::RegRegOffset => {
            a = Reg::new(args.ra);
            b = Reg::new(args.rb);
            if spec == Spec::Gp0_8_0 && !both_edges() {
                return None;
            }
            imm = resolve(args.target).unwrap_or(invalid) as u64;
        }
        ArgClass::RegRegImmImm => {
            a = Reg::new(args.ra);
            b = Reg::new(args.rb);
            imm = lo32(args.imm1) | (lo32(args.imm2) << 32);
        }
        ArgClass::RegRegReg => {
            a = Reg::new(args.ra);
            b = Reg::new(args.rb);
            d = Reg::new(args.rd);
        }
    }
    Some(Op {
        k: kind_of(opcode),
        a,
        b,
        d,
        pc,
        imm: AtomicU64::new(imm),
    })
}
