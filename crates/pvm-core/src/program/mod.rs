//! Programs: parsing, GP 0.8.0 prevalidation, basic blocks and gas costs, and compilation to the
//! interpreter's pre-decoded form. A [`Program`] is immutable and cheap to clone (an `Arc`), so
//! many [`crate::Instance`]s can share one.

pub mod blob;
pub(crate) mod lazy;
pub(crate) mod lower;

use std::sync::Arc;

use crate::error::ProgramError;
use crate::isa::{Code, Instruction};
use crate::{Backend, Spec};
pub use blob::{Blob, JumpTable, StandardParts};
pub(crate) use lazy::{OpTable, INVALID_TARGET, UNCOMPILED};
#[cfg(all(target_arch = "x86_64", unix))]
pub(crate) use lower::{branch_imm_kinds, branch_reg_kinds, fused_kinds};
pub(crate) use lower::{Op, K};

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
    /// Which engine executes it (see [`Backend`]; default `Auto`).
    pub backend: Backend,
}

impl ProgramOptions {
    /// Options for `spec` with the default backend.
    pub fn new(spec: Spec) -> ProgramOptions {
        ProgramOptions {
            spec,
            backend: Backend::Auto,
        }
    }
}

/// The shared, immutable part of a program.
#[derive(Debug)]
pub(crate) struct ProgramInner {
    pub spec: Spec,
    /// The resolved backend (never `Auto`).
    pub backend: Backend,
    /// The machine code, with the recompiler backend.
    pub native: Option<crate::recompiler::Compiled>,
    pub blob: Blob,
    /// The lazily compiled ops and the block table (see `lazy.rs`).
    pub table: OpTable,
    pub standard: Option<StandardLayout>,
    pub metadata: Option<Vec<u8>>,
}

impl ProgramInner {
    /// The code and bitmask.
    #[inline]
    pub fn code(&self) -> Code<'_> {
        Code {
            code: &self.blob.code,
            bitmask: &self.blob.bitmask,
        }
    }

    /// The slot of the instruction at `pc`, compiling its block if needed (see
    /// [`OpTable::op_for_pc`]).
    pub fn op_for_pc(&self, pc: u32) -> Option<u32> {
        self.table.op_for_pc(&self.code(), self.spec, pc)
    }

    /// ϱ^Δ(𝔏(pc)): the cost of the block containing `pc`, compiling it if needed.
    pub fn cost_at(&self, pc: u32) -> u32 {
        let b = self.table.block_containing(pc);
        self.table.block_cost(&self.code(), self.spec, b)
    }

    /// The cost of entering the `Charge` slot `slot`, compiling its block if needed:
    /// [`lazy::INVALID_TARGET`] for the invalid-target slot.
    #[cold]
    #[inline(never)]
    pub fn slot_cost_slow(&self, slot: u32) -> u64 {
        let cost = self.table.slot_cost(slot);
        if cost != lazy::UNCOMPILED {
            return cost;
        }
        let b = self.table.block_of_slot(slot);
        self.table.ensure_compiled(&self.code(), self.spec, b);
        self.table.slot_cost(slot)
    }
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
        let mut inner = compile(parts.blob, options)?;
        inner.standard = Some(layout);
        inner.metadata = parts.metadata;
        Ok(Program {
            inner: Arc::new(inner),
        })
    }

    /// Builds a program from an already parsed blob.
    pub fn from_blob(blob: Blob, options: ProgramOptions) -> Result<Program, ProgramError> {
        Ok(Program {
            inner: Arc::new(compile(blob, options)?),
        })
    }

    /// The spec version this program follows.
    pub fn spec(&self) -> Spec {
        self.inner.spec
    }

    /// The backend that executes this program (`Interpreter` or `Recompiler`, never `Auto`).
    pub fn backend(&self) -> Backend {
        self.inner.backend
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

    /// The gas cost of every basic block, sorted by pc. Costs are computed when a block is first
    /// entered; this computes (and keeps) the ones not computed yet.
    pub fn block_gas_costs(&self) -> Vec<BlockCost> {
        let p = &*self.inner;
        let len = p.blob.code.len() as u32;
        let code = p.code();
        p.table
            .blocks
            .iter()
            .enumerate()
            .take_while(|(_, b)| b.pc < len)
            .map(|(i, b)| BlockCost {
                pc: b.pc,
                cost: p.table.block_cost(&code, p.spec, i),
            })
            .collect()
    }

    /// ϱ^Δ(𝔏(pc)): the cost of the block containing `pc` (the charge when entering at `pc` with the
    /// gas-charged flag unset).
    pub fn block_cost_at(&self, pc: u32) -> Option<u32> {
        (pc <= self.inner.blob.code.len() as u32).then(|| self.inner.cost_at(pc))
    }

    /// Whether `pc` is the start of a valid instruction (𝔳_inst).
    pub fn is_instruction_start(&self, pc: u32) -> bool {
        self.inner.code().is_valid_instruction(pc, self.inner.spec)
    }

    /// Decodes the instruction at `pc`.
    pub fn instruction_at(&self, pc: u32) -> Instruction {
        self.inner.code().decode(pc, self.inner.spec)
    }

    /// The pc of the instruction after the one at `pc` (pc + 1 + skip(pc)).
    pub fn next_pc(&self, pc: u32) -> u32 {
        pc + 1 + self.inner.code().skip(pc)
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
/// terminator. (Under GP 0.7.2 every code is accepted.)
pub fn validate(code: &Code<'_>, spec: Spec) -> Result<(), ProgramError> {
    lazy::scan(code, spec, &JumpTable::default()).map(drop)
}

/// Loads a blob: one pass over the code (validation and the block table); blocks are compiled
/// when first entered.
fn compile(blob: Blob, options: ProgramOptions) -> Result<ProgramInner, ProgramError> {
    let spec = options.spec;
    let backend = options.backend.resolve_for(blob.code.len())?;
    let code = Code {
        code: &blob.code,
        bitmask: &blob.bitmask,
    };
    let mut table = lazy::scan(&code, spec, &blob.jump_table)?;
    table.fuse = backend == Backend::Interpreter;
    let native = match backend {
        Backend::Recompiler => Some(crate::recompiler::Compiled::new(&table, &code, spec)?),
        _ => None,
    };
    Ok(ProgramInner {
        spec,
        backend,
        native,
        blob,
        table,
        standard: None,
        metadata: None,
    })
}
