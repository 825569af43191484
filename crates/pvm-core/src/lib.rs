//! # pvm-core
//!
//! The libpvm engine: a JAM PVM (Gray Paper appendix A) that executes programs exactly as GP 0.8.0
//! (default) or GP 0.7.2 define them. No FFI, no I/O: the C ABI, the Node addon and the CLI are
//! thin layers on top of this crate.
//!
//! ```
//! use pvm_core::{Program, ProgramOptions, Exit};
//! // A code blob: no jump table, code = [load_imm r7, 42; trap], bitmask 0b101.
//! let blob = [0, 0, 4, 51, 7, 42, 0, 0b1001];
//! let program = Program::from_code(&blob, ProgramOptions::default()).unwrap();
//! let mut vm = program.instantiate(&[]).unwrap();
//! vm.set_gas(100);
//! assert_eq!(vm.run(), Exit::Panic);
//! assert_eq!(vm.registers()[7], 42);
//! ```

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod asm;
pub mod backend;
pub mod boundary;
pub mod disasm;
pub mod error;
pub mod gas;
pub mod host;
pub mod inner;
pub mod instance;
mod interpreter;
mod invoke;
pub mod isa;
pub mod jip7;
/// The earlier name of [`jip7`] (the host-call trace format is now JIP-7; JIP-6 is "Program
/// metadata"). Kept for one release.
#[deprecated(note = "renamed to pvm_core::jip7 (the format is JIP-7)")]
pub mod jip6 {
    #[allow(deprecated)]
    pub use crate::jip7::*;
}
pub mod memory;
pub mod metadata;
pub mod program;
pub mod recompiler;
pub mod trace;

pub use backend::Backend;
pub use error::{InvalidCodeReason, ProgramError};
pub use host::{HostCallContext, HostOutcome, InvocationResult};
pub use instance::{
    Exit, Instance, InterruptHandle, HALT_ADDRESS, NATIVE_GAS_SLICE, NUM_REGISTERS,
};
pub use memory::{Access, Memory, MemoryError, PAGE_SIZE};
pub use metadata::ProgramMetadata;
pub use program::{Blob, BlockCost, JumpTable, Program, ProgramOptions, StandardLayout};

/// The Gray Paper version whose PVM rules a program follows. A value chosen per program, not a
/// build feature, so both conformance suites run in one build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Spec {
    /// GP 0.8.0: prevalidated blobs, `unlikely`, block gas (A.9/A.10), `sjump`, two-edge branches.
    #[default]
    Gp0_8_0,
    /// GP 0.7.2: `sbrk`, invalid opcodes execute as `trap`, one gas per instruction.
    Gp0_7_2,
}

impl Spec {
    /// Parses `"0.8.0"`, `"0.8"`, `"0.7.2"` or `"0.7"`.
    pub fn parse(s: &str) -> Option<Spec> {
        match s {
            "0.8.0" | "0.8" => Some(Spec::Gp0_8_0),
            "0.7.2" | "0.7" => Some(Spec::Gp0_7_2),
            _ => None,
        }
    }

    /// The version as written in the Gray Paper (`"0.8.0"` / `"0.7.2"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Spec::Gp0_8_0 => "0.8.0",
            Spec::Gp0_7_2 => "0.7.2",
        }
    }
}
