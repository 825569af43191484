//! Programs: parsing, GP 0.8.0 prevalidation, basic blocks and gas costs, and compilation to the
//! interpreter's pre-decoded form. A [`Program`] is immutable and cheap to clone (an `Arc`), so
//! many [`crate::Instance`]s can share one.

pub mod blob;

use std::sync::Arc;

use crate::error::{InvalidCodeReason, ProgramError};
use crate::gas::simulator;
use crate::isa::{ArgClass, Code, Instruction, Opcode};
use crate::Spec;
pub use blob::{Blob, StandardParts};

/// Z_Z: the standard-program zone size (GP A.7).
pub const ZONE_SIZE: u64 = 1 << 16;
/// Z_I: the maximum argument size and the size of the argument zone (GP A.7).
pub const INPUT_SIZE: u64 = 1 << 24;
const PAGE: u64 = 4096;

fn round_page(x: u64) -> u64 {
    x.div_ceil(PAGE) * PAGE
}
fn round_zone(x: u64) -> u64 {
    x.div_ceil(ZONE_SIZE) * ZONE_SIZE
}

/// The gas charged on entering one basic block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCost {
    /// The block's first instruction.
    pub pc: u32,
    /// ϱ^Δ for GP 0.8.0 (A.9); the number of instructions in the block for GP 0.7.2.
    pub cost: u32,
}

/// Memory layout of a GP A.7 standard program, derived from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandardLayout {
    /// Read-only data o (mapped at Z_Z).
    pub ro_data: Vec<u8>,
    /// Read-write data w (mapped at 2Z_Z + Q(|o|)).
    pub rw_data: Vec<u8>,
    /// z: zero pages after the read-write data.
    pub heap_pages: u16,
    /// s: stack size.
    pub stack_size: u32,
}

impl StandardLayout {
    /// Start of the read-only section: Z_Z.
    pub fn ro_start(&self) -> u32 {
        ZONE_SIZE as u32
    }
    /// Start of the read-write (heap) section: 2Z_Z + Q(|o|). (GP 0.7.2's `h` for `sbrk`.)
    pub fn rw_start(&self) -> u32 {
        (2 * ZONE_SIZE + round_zone(self.ro_data.len() as u64)) as u32
    }
    /// End of the initially writable heap: rw_start + P(|w|) + z·Z_P.
    pub fn heap_end(&self) -> u32 {
        (self.rw_start() as u64
            + round_page(self.rw_data.len() as u64)
            + self.heap_pages as u64 * PAGE) as u32
    }
    /// Lowest stack address: 2^32 − 2Z_Z − Z_I − P(s).
    pub fn stack_start(&self) -> u32 {
        ((1u64 << 32) - 2 * ZONE_SIZE - INPUT_SIZE - round_page(self.stack_size as u64)) as u32
    }
    /// One past the highest stack address: 2^32 − 2Z_Z − Z_I (the initial φ1).
    pub fn stack_end(&self) -> u32 {
        ((1u64 << 32) - 2 * ZONE_SIZE - INPUT_SIZE) as u32
    }
    /// Start of the argument area: 2^32 − Z_Z − Z_I (the initial φ7).
    pub fn args_start(&self) -> u32 {
        ((1u64 << 32) - ZONE_SIZE - INPUT_SIZE) as u32
    }
}

/// Options for building a [`Program`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramOptions {
    /// Which Gray Paper version's rules apply.
    pub spec: Spec,
}

// ---- the interpreter's pre-decoded form ----

/// Operation kinds of the pre-decoded form. Most map 1:1 to opcodes; `Charge` is inserted at every
/// basic-block start, `Trap` also stands for statically known panics (invalid branch edges in GP
/// 0.8.0, invalid opcodes in GP 0.7.2) and `Nop` for `fallthrough`/`unlikely`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub(crate) enum K {
    Charge,
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
    R0,
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
///   high; immediate + target: value low, target op index high); 32-bit immediates are stored
///   truncated and sign-extended again at run time (they come from at most 4 bytes);
/// - branch and jump targets as op indices (of the target block's `Charge` op).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op {
    pub k: K,
    pub a: Reg,
    pub b: Reg,
    pub d: Reg,
    pub pc: u32,
    pub imm: u64,
}

pub(crate) const NO_OP: u32 = u32::MAX;

/// The shared, immutable part of a program.
#[derive(Debug)]
pub(crate) struct ProgramInner {
    pub spec: Spec,
    pub blob: Blob,
    pub ops: Vec<Op>,
    /// For every pc in 0..=|c|: the op index of the instruction at that pc (not its `Charge` op),
    /// or `NO_OP` if no instruction starts there.
    pub pc_to_op: Vec<u32>,
    /// For every jump-table entry: the op index of the target block's `Charge` op, or `NO_OP` if
    /// the target is not a basic-block start.
    pub jump_table_ops: Vec<u32>,
    /// Gas charge points (basic-block starts), sorted by pc.
    pub blocks: Vec<BlockCost>,
    pub standard: Option<StandardLayout>,
    pub metadata: Option<Vec<u8>>,
}

/// An immutable, shareable compiled program.
#[derive(Clone, Debug)]
pub struct Program {
    pub(crate) inner: Arc<ProgramInner>,
}

impl Program {
    /// Builds a program from a generic code blob `E(|j|) E1(z) E(|c|) j c k` (GP A.1).
    pub fn from_code(bytes: &[u8], options: ProgramOptions) -> Result<Program, ProgramError> {
        Self::from_blob(Blob::parse(bytes)?, options)
    }

    /// Builds a program from a GP A.7 standard program; with `metadata`, the input is a JAM
    /// service blob `E(|m|) m` followed by the standard program.
    pub fn from_standard(
        bytes: &[u8],
        metadata: bool,
        options: ProgramOptions,
    ) -> Result<Program, ProgramError> {
        let parts = StandardParts::parse(bytes, metadata)?;
        let layout = StandardLayout {
            ro_data: parts.ro_data,
            rw_data: parts.rw_data,
            heap_pages: parts.heap_pages,
            stack_size: parts.stack_size,
        };
        // GP A.7: 5Z_Z + Q(|o|) + Q(|w| + z·Z_P) + Q(s) + Z_I <= 2^32.
        let total = 5 * ZONE_SIZE
            + round_zone(layout.ro_data.len() as u64)
            + round_zone(layout.rw_data.len() as u64 + layout.heap_pages as u64 * PAGE)
            + round_zone(layout.stack_size as u64)
            + INPUT_SIZE;
        if total > 1 << 32 {
            return Err(ProgramError::LayoutTooLarge {
                ro: layout.ro_data.len() as u64,
                rw: layout.rw_data.len() as u64,
                heap_pages: layout.heap_pages as u64,
                stack: layout.stack_size as u64,
            });
        }
        let mut inner = compile(parts.blob, options.spec)?;
        inner.standard = Some(layout);
        inner.metadata = parts.metadata;
        Ok(Program {
            inner: Arc::new(inner),
        })
    }

    /// Builds a program from an already parsed blob.
    pub fn from_blob(blob: Blob, options: ProgramOptions) -> Result<Program, ProgramError> {
        Ok(Program {
            inner: Arc::new(compile(blob, options.spec)?),
        })
    }

    /// The spec version this program follows.
    pub fn spec(&self) -> Spec {
        self.inner.spec
    }

    /// The decoded blob (code, bitmask, jump table).
    pub fn blob(&self) -> &Blob {
        &self.inner.blob
    }

    /// The code bytes c.
    pub fn code(&self) -> &[u8] {
        &self.inner.blob.code
    }

    /// The standard-program layout, if built with [`Program::from_standard`].
    pub fn standard_layout(&self) -> Option<&StandardLayout> {
        self.inner.standard.as_ref()
    }

    /// The metadata m of a JAM service blob, if present.
    pub fn metadata(&self) -> Option<&[u8]> {
        self.inner.metadata.as_deref()
    }

    /// The gas cost of every basic block, sorted by pc (computed once, at load).
    pub fn block_gas_costs(&self) -> &[BlockCost] {
        let blocks = &self.inner.blocks;
        let n = blocks.partition_point(|b| (b.pc as usize) < self.inner.blob.code.len());
        &blocks[..n]
    }

    /// ϱ^Δ(𝔏(pc)): the cost of the block containing `pc` (the charge when entering at `pc` with the
    /// gas-charged flag unset).
    pub fn block_cost_at(&self, pc: u32) -> Option<u32> {
        let blocks = &self.inner.blocks;
        let i = blocks.partition_point(|b| b.pc <= pc);
        (i > 0).then(|| blocks[i - 1].cost)
    }

    /// Whether `pc` is the start of a valid instruction (𝔳_inst).
    pub fn is_instruction_start(&self, pc: u32) -> bool {
        Code {
            code: &self.inner.blob.code,
            bitmask: &self.inner.blob.bitmask,
        }
        .is_valid_instruction(pc, self.inner.spec)
    }

    /// Decodes the instruction at `pc`.
    pub fn instruction_at(&self, pc: u32) -> Instruction {
        Code {
            code: &self.inner.blob.code,
            bitmask: &self.inner.blob.bitmask,
        }
        .decode(pc, self.inner.spec)
    }

    /// The pc of the instruction after the one at `pc` (pc + 1 + skip(pc)).
    pub fn next_pc(&self, pc: u32) -> u32 {
        pc + 1
            + Code {
                code: &self.inner.blob.code,
                bitmask: &self.inner.blob.bitmask,
            }
            .skip(pc)
    }

    /// Creates an instance. For a standard program this lays out memory and registers as GP A.7
    /// says for argument data `args` (at most Z_I bytes); for a plain code blob memory is empty,
    /// registers are zero and `args` must be empty.
    pub fn instantiate(&self, args: &[u8]) -> Result<crate::Instance, ProgramError> {
        crate::Instance::new(self.clone(), args)
    }
}

/// GP 0.8.0 𝔳_blob (A.1): walk the code from 0 by 1 + skip; every visited position must be a
/// valid instruction, the walk must land exactly on |c| > 0, and the last instruction must be a
/// terminator.
pub fn validate(code: &Code<'_>, spec: Spec) -> Result<(), ProgramError> {
    let len = code.code.len() as u32;
    if len == 0 {
        return Err(ProgramError::InvalidCode {
            pc: 0,
            reason: InvalidCodeReason::Empty,
        });
    }
    let mut i = 0u32;
    while i < len {
        let next = i + 1 + code.skip(i);
        if !code.bitmask[i as usize] {
            return Err(ProgramError::InvalidCode {
                pc: i,
                reason: InvalidCodeReason::NotInstructionStart,
            });
        }
        let byte = code.code[i as usize];
        let Some(op) = Opcode::from_byte(byte, spec) else {
            return Err(ProgramError::InvalidCode {
                pc: i,
                reason: InvalidCodeReason::UnknownOpcode(byte),
            });
        };
        if next == len && !op.is_terminator() {
            return Err(ProgramError::InvalidCode {
                pc: i,
                reason: InvalidCodeReason::NoTerminatorAtEnd(op.name()),
            });
        }
        i = next;
    }
    Ok(())
}

fn compile(blob: Blob, spec: Spec) -> Result<ProgramInner, ProgramError> {
    let code = Code {
        code: &blob.code,
        bitmask: &blob.bitmask,
    };
    if spec == Spec::Gp0_8_0 {
        validate(&code, spec)?;
    }
    let len = blob.code.len() as u32;

    // The walk: every position reached from 0 by 1 + skip, plus |c| (the implicit trap of ζ).
    let mut walk: Vec<(u32, Instruction)> = Vec::new();
    let mut i = 0u32;
    while i < len {
        let ins = code.decode(i, spec);
        walk.push((i, ins));
        i = ins.next_pc(i);
    }
    walk.push((len, code.decode(len, spec)));

    // ϖ (A.3): 0 and every instruction after a terminator, if it is a valid instruction start.
    let mut is_block_start = vec![false; len as usize + 1];
    let valid = |pc: u32| code.is_valid_instruction(pc, spec);
    if valid(0) {
        is_block_start[0] = true;
    }
    // Charge points: ϖ plus (GP 0.7.2 only) positions after instructions that execute as a trap.
    let mut charge_point = vec![false; len as usize + 1];
    charge_point[0] = true;
    for &(pc, ins) in &walk {
        if pc >= len {
            break;
        }
        let next = ins.next_pc(pc);
        let k = blob.bitmask[pc as usize];
        let terminator = k && ins.opcode.is_some_and(|op| op.is_terminator());
        let executes_as_trap = !k || ins.opcode.is_none();
        if terminator && valid(next) {
            is_block_start[next as usize] = true;
        }
        if terminator || executes_as_trap {
            charge_point[next as usize] = true;
        }
    }
    for (pc, s) in is_block_start.iter().enumerate() {
        if *s {
            charge_point[pc] = true;
        }
    }

    // Block costs.
    let mut blocks: Vec<BlockCost> = Vec::new();
    for (idx, &(pc, _)) in walk.iter().enumerate() {
        if !charge_point[pc as usize] {
            continue;
        }
        let cost = match spec {
            Spec::Gp0_8_0 => simulator::block_cost(&code, pc),
            Spec::Gp0_7_2 => {
                let n = walk[idx + 1..]
                    .iter()
                    .take_while(|(p, _)| !charge_point[*p as usize])
                    .count();
                n as u32 + 1
            }
        };
        blocks.push(BlockCost { pc, cost });
    }

    // Emit ops; record targets to patch once every pc has an op index.
    let mut ops: Vec<Op> = Vec::with_capacity(walk.len() + blocks.len() + 1);
    let mut pc_to_op = vec![NO_OP; len as usize + 1];
    let mut block_iter = blocks.iter().peekable();
    // (op index, target pc, target in high half?)
    let mut fixups: Vec<(usize, i64, bool)> = Vec::new();
    let in_varpi = |t: i64| t >= 0 && t <= len as i64 && is_block_start[t as usize];
    for &(pc, ins) in &walk {
        if let Some(b) = block_iter.peek() {
            if b.pc == pc {
                ops.push(Op {
                    k: K::Charge,
                    a: Reg::R0,
                    b: Reg::R0,
                    d: Reg::R0,
                    pc,
                    imm: b.cost as u64,
                });
                block_iter.next();
            }
        }
        pc_to_op[pc as usize] = ops.len() as u32;
        let trap = Op {
            k: K::Trap,
            a: Reg::R0,
            b: Reg::R0,
            d: Reg::R0,
            pc,
            imm: 0,
        };
        let op = match ins.opcode {
            Some(opcode) if pc < len && blob.bitmask[pc as usize] => {
                lower(opcode, &ins, pc, spec, in_varpi, ops.len(), &mut fixups).unwrap_or(trap)
            }
            _ => trap,
        };
        ops.push(op);
    }

    // Patch targets: a valid target is its block's Charge op; an invalid one is a trampoline that
    // panics at the jumping instruction's pc.
    for (at, target, high) in fixups {
        let t = if in_varpi(target) {
            pc_to_op[target as usize] - 1
        } else {
            let src_pc = ops[at].pc;
            ops.push(Op {
                k: K::Trap,
                a: Reg::R0,
                b: Reg::R0,
                d: Reg::R0,
                pc: src_pc,
                imm: 0,
            });
            (ops.len() - 1) as u32
        };
        let op = &mut ops[at];
        op.imm = if high {
            (op.imm & 0xffff_ffff) | ((t as u64) << 32)
        } else {
            t as u64
        };
    }

    let jump_table_ops = blob
        .jump_table
        .iter()
        .map(|&t| {
            if t <= len as u64 && in_varpi(t as i64) {
                pc_to_op[t as usize] - 1
            } else {
                NO_OP
            }
        })
        .collect();

    Ok(ProgramInner {
        spec,
        blob,
        ops,
        pc_to_op,
        jump_table_ops,
        blocks,
        standard: None,
        metadata: None,
    })
}

/// Lowers one valid instruction to an op. Returns `None` when it statically always panics with no
/// other effect (GP 0.8.0: a jump, fallthrough or branch with an edge outside ϖ).
fn lower(
    opcode: Opcode,
    ins: &Instruction,
    pc: u32,
    spec: Spec,
    in_varpi: impl Fn(i64) -> bool,
    index: usize,
    fixups: &mut Vec<(usize, i64, bool)>,
) -> Option<Op> {
    let a = &ins.args;
    let next = ins.next_pc(pc) as i64;
    let mut op = Op {
        k: kind_of(opcode),
        a: Reg::R0,
        b: Reg::R0,
        d: Reg::R0,
        pc,
        imm: 0,
    };
    let lo32 = |x: u64| x & 0xffff_ffff;
    match opcode.class() {
        ArgClass::NoArgs => {
            if opcode == Opcode::Fallthrough && spec == Spec::Gp0_8_0 && !in_varpi(next) {
                return None; // sjump(ı + 1 + skip) outside ϖ
            }
        }
        ArgClass::Imm => op.imm = lo32(a.imm1),
        ArgClass::RegImm64 => {
            op.a = Reg::new(a.ra);
            op.imm = a.imm1;
        }
        ArgClass::ImmImm => op.imm = lo32(a.imm1) | (lo32(a.imm2) << 32),
        ArgClass::Offset => {
            // jump: sjump in 0.8.0, branch(b, ⊤) in 0.7.2 — both panic iff b ∉ ϖ.
            if !in_varpi(a.target) {
                return None;
            }
            fixups.push((index, a.target, false));
        }
        ArgClass::RegImm => {
            op.a = Reg::new(a.ra);
            op.imm = a.imm1;
        }
        ArgClass::RegImmImm => {
            op.a = Reg::new(a.ra);
            op.imm = lo32(a.imm1) | (lo32(a.imm2) << 32);
        }
        ArgClass::RegImmOffset => {
            op.a = Reg::new(a.ra);
            op.imm = lo32(a.imm1);
            if opcode != Opcode::LoadImmJump
                && spec == Spec::Gp0_8_0
                && (!in_varpi(a.target) || !in_varpi(next))
            {
                return None; // two-edge branch check (0.8.0)
            }
            fixups.push((index, a.target, true));
        }
        ArgClass::RegReg => {
            op.d = Reg::new(a.rd);
            op.a = Reg::new(a.ra);
        }
        ArgClass::RegRegImm => {
            op.a = Reg::new(a.ra);
            op.b = Reg::new(a.rb);
            op.imm = a.imm1;
        }
        ArgClass::RegRegOffset => {
            op.a = Reg::new(a.ra);
            op.b = Reg::new(a.rb);
            if spec == Spec::Gp0_8_0 && (!in_varpi(a.target) || !in_varpi(next)) {
                return None;
            }
            fixups.push((index, a.target, false));
        }
        ArgClass::RegRegImmImm => {
            op.a = Reg::new(a.ra);
            op.b = Reg::new(a.rb);
            op.imm = lo32(a.imm1) | (lo32(a.imm2) << 32);
        }
        ArgClass::RegRegReg => {
            op.a = Reg::new(a.ra);
            op.b = Reg::new(a.rb);
            op.d = Reg::new(a.rd);
        }
    }
    Some(op)
}
