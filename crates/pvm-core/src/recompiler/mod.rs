//! The x86-64 recompiler backend: translates a program's blocks to machine code that runs over the
//! same instance state as the interpreter. Work in progress: see `docs/ARCHITECTURE.md`.

/// Whether this build can run recompiled code (x86-64 Unix).
pub const SUPPORTED: bool = false;
