//! Which engine executes a program: the pre-decoded interpreter or the x86-64 recompiler. Both
//! run the same [`Program`](crate::Program) (validation, block table ϖ, block gas) over the same
//! [`Instance`](crate::Instance) state (registers, pc, gas, χ, memory), so the choice changes
//! speed, never results.

/// The execution engine of a program (GP Ψ has one meaning; this picks how it is computed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The pre-decoded interpreter: every platform.
    Interpreter,
    /// The x86-64 recompiler (x86-64 Linux, macOS and other Unix systems).
    Recompiler,
    /// The recompiler where it is supported, the interpreter elsewhere; the environment variable
    /// `LIBPVM_BACKEND` (`interpreter`, `recompiler` or `auto`) overrides this default.
    #[default]
    Auto,
}

/// The environment variable that chooses the backend of programs built with [`Backend::Auto`].
pub const BACKEND_ENV: &str = "LIBPVM_BACKEND";

/// `Auto` recompiles programs with at most this many bytes of code (4 MiB, above JAM's 4 MB
/// service-code limit W_C) and interprets larger ones: the recompiler translates every block
/// up front (tens of bytes of machine code per instruction), the interpreter only the blocks
/// that run. An explicit `Recompiler` compiles any size the blob format allows.
pub const AUTO_RECOMPILE_MAX_CODE: usize = 4 << 20;

impl Backend {
    /// Parses `interpreter`, `recompiler` or `auto` (ASCII case-insensitive).
    pub fn parse(s: &str) -> Option<Backend> {
        match s.to_ascii_lowercase().as_str() {
            "interpreter" | "interp" => Some(Backend::Interpreter),
            "recompiler" | "jit" => Some(Backend::Recompiler),
            "auto" => Some(Backend::Auto),
            _ => None,
        }
    }

    /// The lowercase name (`interpreter`, `recompiler`, `auto`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Interpreter => "interpreter",
            Backend::Recompiler => "recompiler",
            Backend::Auto => "auto",
        }
    }

    /// Whether the recompiler can run on this machine (an x86-64 Unix system).
    pub fn recompiler_supported() -> bool {
        crate::recompiler::SUPPORTED
    }

    /// The concrete backend for a program with `code_len` bytes of code: as
    /// [`Backend::resolve`], except that `Auto` (also via `LIBPVM_BACKEND=auto`) interprets
    /// programs larger than [`AUTO_RECOMPILE_MAX_CODE`].
    pub fn resolve_for(self, code_len: usize) -> Result<Backend, crate::ProgramError> {
        match self.with_env()? {
            Backend::Auto if code_len > AUTO_RECOMPILE_MAX_CODE => Ok(Backend::Interpreter),
            b => b.concrete(),
        }
    }

    /// The concrete backend for this choice: `Auto` becomes `LIBPVM_BACKEND`'s choice if that is
    /// set, else the recompiler where supported, else the interpreter. An explicit `Recompiler`
    /// on a machine without one is an error, as is an unknown `LIBPVM_BACKEND` value.
    pub fn resolve(self) -> Result<Backend, crate::ProgramError> {
        self.with_env()?.concrete()
    }

    /// `Auto` replaced by `LIBPVM_BACKEND`'s value when that is set (which may be `Auto` again).
    fn with_env(self) -> Result<Backend, crate::ProgramError> {
        match self {
            Backend::Auto => match std::env::var(BACKEND_ENV) {
                Ok(v) if !v.is_empty() => {
                    Backend::parse(&v).ok_or(crate::ProgramError::InvalidBackendEnv { value: v })
                }
                _ => Ok(Backend::Auto),
            },
            b => Ok(b),
        }
    }

    /// `Auto` resolved by platform support; an unsupported `Recompiler` is an error.
    fn concrete(self) -> Result<Backend, crate::ProgramError> {
        match self {
            Backend::Interpreter => Ok(Backend::Interpreter),
            Backend::Recompiler if Self::recompiler_supported() => Ok(Backend::Recompiler),
            Backend::Recompiler => Err(crate::ProgramError::BackendUnsupported),
            Backend::Auto if Self::recompiler_supported() => Ok(Backend::Recompiler),
            Backend::Auto => Ok(Backend::Interpreter),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
