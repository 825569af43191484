//! Typed errors. Bad bytes are user input: every malformed program is reported with what was
//! wrong and where (byte offset or pc), never with a panic.

use thiserror::Error;

/// Why a program blob, standard program or service blob was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProgramError {
    /// The input ended before a field was complete.
    #[error("truncated input: {what} needs {needed} byte(s) at byte offset {offset}, but only {available} remain")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Byte offset of the field in the input.
        offset: usize,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the input.
        available: usize,
    },
    /// Bytes were left over after the last field.
    #[error("{count} unexpected trailing byte(s) at byte offset {offset} after the {after}")]
    TrailingBytes {
        /// Byte offset of the first extra byte.
        offset: usize,
        /// How many bytes are left over.
        count: usize,
        /// The last field that was read.
        after: &'static str,
    },
    /// The jump-table entry size z is not supported.
    #[error("jump table entry size {size} at byte offset {offset} is too large (at most 8 bytes)")]
    JumpTableEntrySize {
        /// The size read.
        size: u8,
        /// Byte offset of z.
        offset: usize,
    },
    /// A declared length does not fit in memory or in the 32-bit PVM address space.
    #[error("{what} of {value} at byte offset {offset} is too large")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// The value read.
        value: u64,
        /// Byte offset of the field.
        offset: usize,
    },
    /// A program blob exceeds a size limit of GP erratum #559: at most 2^25 bytes of code
    /// ([`crate::program::blob::MAX_CODE_LEN`]) and 2^24 jump-table entries
    /// ([`crate::program::blob::MAX_JUMP_TABLE_LEN`]).
    #[error("{what} of {value} at byte offset {offset} exceeds the limit of {limit} (GP erratum #559: at most 2^25 bytes of code and 2^24 jump-table entries)")]
    LimitExceeded {
        /// The field: "code length" or "jump table length".
        what: &'static str,
        /// The value read.
        value: u64,
        /// The limit.
        limit: u64,
        /// Byte offset of the field.
        offset: usize,
    },
    /// GP 0.8.0 prevalidation (𝔳_blob, A.1) failed.
    #[error("invalid code at pc {pc}: {reason}")]
    InvalidCode {
        /// The instruction position where the check failed.
        pc: u32,
        /// What was wrong.
        reason: InvalidCodeReason,
    },
    /// The standard program's sections do not fit the 32-bit address space (GP A.7 condition).
    #[error("standard program layout does not fit in 2^32 bytes: ro {ro} + rw {rw} + heap pages {heap_pages} + stack {stack} (+ 5 zones and the 16 MiB argument area)")]
    LayoutTooLarge {
        /// |o|.
        ro: u64,
        /// |w|.
        rw: u64,
        /// z.
        heap_pages: u64,
        /// s.
        stack: u64,
    },
    /// Argument data longer than Z_I = 2^24 bytes.
    #[error("argument data is {len} bytes, more than the maximum of 16777216 (Z_I)")]
    ArgumentsTooLong {
        /// The length given.
        len: usize,
    },
    /// Argument data was given for a plain code blob, which has no argument area.
    #[error("{len} bytes of argument data given, but the program is a plain code blob without the standard memory layout (use a standard program)")]
    ArgumentsWithoutLayout {
        /// The length given.
        len: usize,
    },
    /// [`crate::Instance::invoke`] on a program without the GP A.7 standard layout (a plain
    /// code blob has no stack or argument area to set up).
    #[error("invoke needs a standard program (GP A.7 layout with stack and argument area), but this program was loaded as a plain code blob; set the pc, registers and gas yourself and run")]
    InvokeWithoutLayout,
    /// The recompiler was asked for on a machine it does not support (it needs x86-64 Unix).
    #[error("the recompiler backend is not supported on this machine (it needs x86-64 on a Unix system); use the interpreter or auto")]
    BackendUnsupported,
    /// The recompiler could not get executable memory (the system refused the mapping).
    #[error("the recompiler could not map executable memory (out of memory, or executable mappings are forbidden here); use the interpreter backend")]
    ExecutableMemory,
    /// `LIBPVM_BACKEND` holds something other than `interpreter`, `recompiler` or `auto`.
    #[error(
        "LIBPVM_BACKEND={value:?} is not a backend (expected interpreter, recompiler or auto)"
    )]
    InvalidBackendEnv {
        /// The variable's value.
        value: String,
    },
    /// A bitmask given separately (C ABI) has the wrong length.
    #[error(
        "bitmask is {len} bytes, expected {packed} (packed) or {unpacked} (one byte per code byte)"
    )]
    BitmaskLength {
        /// Length given.
        len: usize,
        /// ceil(|c| / 8).
        packed: usize,
        /// |c|.
        unpacked: usize,
    },
}

/// The specific GP 0.8.0 code-validity rule that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InvalidCodeReason {
    /// The code is empty (𝔳_blob requires ı > 0 at the end of the walk).
    #[error("the code is empty")]
    Empty,
    /// The bitmask walk reached a byte that is not marked as an instruction start (a gap of more
    /// than 24 bytes between instruction starts).
    #[error("not an instruction start (bitmask bit is 0; gaps between instructions are at most 24 bytes)")]
    NotInstructionStart,
    /// The opcode byte is not a valid GP 0.8.0 opcode.
    #[error("opcode byte {0} is not a valid instruction")]
    UnknownOpcode(u8),
    /// The last instruction is not a basic-block terminator.
    #[error("the last instruction ({0}) is not a block terminator")]
    NoTerminatorAtEnd(&'static str),
}
