//! `Program`: an immutable compiled program, shared by every VM instantiated from it.

use std::rc::Rc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{guard, Code, Fail, Res};
use crate::js::{self, RawEnv, Val};
use crate::vm::Pvm;

/// Options of `Program.fromStandard`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct StandardProgramOptions {
    /// Gray Paper version whose PVM rules apply (default `'0.8.0'`).
    #[napi(ts_type = "SpecVersion")]
    pub spec: Option<String>,
    /// The input is a JAM service blob: `E(|m|) m` metadata followed by the standard program.
    /// Default: detected (a standard program without the prefix if the bytes parse as one, else
    /// a service blob with it), as `pvm run` does.
    pub metadata: Option<bool>,
    /// The engine that runs the program (default `'auto'`: the recompiler where supported, else
    /// the interpreter; the environment variable `LIBPVM_BACKEND` overrides `'auto'`).
    /// `'recompiler'` where `recompilerSupported()` is false throws `INVALID_ARGUMENT`.
    #[napi(ts_type = "Backend")]
    pub backend: Option<String>,
}

/// Options of `Program.fromCode`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct CodeProgramOptions {
    /// Gray Paper version whose PVM rules apply (default `'0.8.0'`).
    #[napi(ts_type = "SpecVersion")]
    pub spec: Option<String>,
    /// The engine that runs the program (see `StandardProgramOptions.backend`).
    #[napi(ts_type = "Backend")]
    pub backend: Option<String>,
}

/// The metadata m of a JAM service blob (`E(|m|) m` before the standard program), with its
/// JIP-6 ("Program metadata") fields when it follows JIP-6: a format byte 0, then the
/// length-prefixed UTF-8 strings name, version and licence and a length-prefixed list of authors.
#[napi(object, object_from_js = false)]
pub struct ProgramMetadata {
    /// The raw bytes m.
    pub raw: Buffer,
    /// Whether m follows JIP-6 (format 0); the fields below are set exactly then.
    pub jip6: bool,
    /// The JIP-6 format byte (0).
    pub format: Option<u32>,
    /// The program name.
    pub name: Option<String>,
    /// The program version.
    pub version: Option<String>,
    /// The licence (by convention an SPDX expression).
    pub license: Option<String>,
    /// The authors (each a person or organisation, optionally `Name <email>`).
    pub authors: Option<Vec<String>>,
    /// Bytes after the JIP-6 fields (writers should add none; readers ignore them).
    pub trailing: Option<u32>,
    /// m as UTF-8, invalid sequences replaced with U+FFFD (a best effort for metadata that is
    /// not JIP-6).
    pub text: String,
}

/// Whether the `'recompiler'` backend can run on this machine (x86-64 on a Unix system, once
/// the recompiler is built in). The interpreter runs everywhere.
#[napi]
// napi-derive exports free functions only outside `cfg(test)`, so the test build (clippy
// --all-targets) sees no caller.
#[cfg_attr(test, allow(dead_code))]
pub fn recompiler_supported() -> bool {
    pvm_core::Backend::recompiler_supported()
}

/// Options of `program.instantiate`.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // declares a TypeScript type; the binding reads and builds these objects itself
pub struct InstantiateOptions {
    /// Initial gas ϱ.
    #[napi(ts_type = "bigint | number")]
    pub gas: i64,
    /// Initial pc ı (default 0; for a standard program, the entry point).
    pub pc: Option<u32>,
    /// Argument data for a standard program (GP A.7; at most 2^24 bytes).
    pub args: Option<Uint8Array>,
    /// Initial registers, overriding the first `registers.length` of the defaults (zeros for a
    /// code blob; GP A.7's for a standard program).
    #[napi(ts_type = "BigUint64Array | Array<bigint | number>")]
    pub registers: Option<Vec<i64>>,
    /// Answer the PVM-level host calls (`gas`, `grow_heap`, `machine`, `peek`, `poke`, `pages`,
    /// `invoke`, `expunge`) inside libpvm, with inner machines owned by the VM, without calling the
    /// host-call handler (default false; sets `vm.builtins`).
    pub builtins: Option<bool>,
}

/// The gas charged on entering one basic block.
#[napi(object)]
pub struct BlockGasCost {
    /// The block's first instruction.
    pub pc: u32,
    /// ϱ^Δ (GP 0.8.0 A.9); the number of instructions in the block for GP 0.7.2.
    pub cost: u32,
}

/// An immutable compiled program. Cheap to share: every VM made by `instantiate` refers to it.
#[napi]
pub struct Program {
    pub(crate) inner: pvm_core::Program,
    /// The bytes it was loaded from (metadata included): the `program` line of a JIP-6 log.
    bytes: Rc<[u8]>,
}

fn parse_spec(env: RawEnv, opts: Option<Val>) -> Res<pvm_core::Spec> {
    let Some(opts) = opts else {
        return Ok(pvm_core::Spec::default());
    };
    let Some(v) = js::get(env, opts, c"spec")? else {
        return Ok(pvm_core::Spec::default());
    };
    let mut buf = [0u8; 16];
    let s = js::to_short_string(env, v, &mut buf, "options.spec")?;
    pvm_core::Spec::parse(s).ok_or_else(|| {
        Fail::new(
            Code::InvalidArgument,
            format!("options.spec must be '0.8.0' or '0.7.2', got '{s}'"),
        )
    })
}

fn parse_backend(env: RawEnv, opts: Option<Val>) -> Res<pvm_core::Backend> {
    let Some(opts) = opts else {
        return Ok(pvm_core::Backend::Auto);
    };
    let Some(v) = js::get(env, opts, c"backend")? else {
        return Ok(pvm_core::Backend::Auto);
    };
    let mut buf = [0u8; 16];
    let s = js::to_short_string(env, v, &mut buf, "options.backend")?;
    pvm_core::Backend::parse(s).ok_or_else(|| {
        Fail::new(
            Code::InvalidArgument,
            format!("options.backend must be 'interpreter', 'recompiler' or 'auto', got '{s}'"),
        )
    })
}

fn program_options(env: RawEnv, opts: Option<Val>) -> Res<pvm_core::ProgramOptions> {
    Ok(pvm_core::ProgramOptions {
        spec: parse_spec(env, opts)?,
        backend: parse_backend(env, opts)?,
    })
}

fn options_object(env: RawEnv, opts: Option<Unknown<'_>>, what: &str) -> Res<Option<Val>> {
    match opts {
        None => Ok(None),
        Some(o) if js::is_nullish(env, o.raw()) => Ok(None),
        Some(o) if js::type_of(env, o.raw()) == napi::sys::ValueType::napi_object => {
            Ok(Some(o.raw()))
        }
        Some(o) => Err(Fail::new(
            Code::InvalidArgument,
            format!(
                "{what} must be an object, got {}",
                js::describe(env, o.raw())
            ),
        )),
    }
}

#[napi]
impl Program {
    /// Loads a GP A.7 standard program `E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|c|) c`; with
    /// `metadata: true`, a JAM service blob `E(|m|) m` followed by the standard program.
    /// Throws a `PvmError` with code `INVALID_PROGRAM` naming the byte offset (or, for GP 0.8.0
    /// code that fails prevalidation, the pc) of the problem.
    #[napi(
        factory,
        ts_args_type = "bytes: Uint8Array, options?: StandardProgramOptions | null"
    )]
    pub fn from_standard(env: &Env, bytes: Unknown, options: Option<Unknown>) -> Result<Program> {
        let env = env.raw();
        guard(env, || -> Res<Program> {
            // Options first: reading them may run JavaScript (getters), which must not happen
            // while `bytes` borrows an ArrayBuffer's memory.
            let opts = options_object(env, options, "options")?;
            let options = program_options(env, opts)?;
            let metadata = match opts
                .map(|o| js::get(env, o, c"metadata"))
                .transpose()?
                .flatten()
                .filter(|v| !js::is_nullish(env, *v))
            {
                Some(v) => Some(js::to_bool(env, v, "options.metadata")?),
                None => None,
            };
            // The backend is checked before the bytes, so that its error is not taken for (and
            // hidden behind) a failure to detect the metadata prefix.
            options.backend.resolve()?;
            let bytes = js::to_bytes(env, bytes.raw(), "bytes")?;
            let inner = match metadata {
                Some(m) => pvm_core::Program::from_standard(bytes, m, options)?,
                // Detect the prefix as `pvm run` does: a standard program as it is, else a
                // service blob.
                None => match pvm_core::Program::from_standard(bytes, false, options) {
                    Ok(p) => p,
                    Err(plain) => match pvm_core::Program::from_standard(bytes, true, options) {
                        Ok(p) => p,
                        Err(with_metadata) => {
                            let mut f = Fail::from(plain);
                            if let Fail::Pvm(e) = &mut f {
                                e.message = format!(
                                    "{} (read as a standard program; read as a JAM service \
                                     blob with a metadata prefix: {with_metadata}). Pass \
                                     `metadata: true` or `metadata: false` to say which it is.",
                                    e.message
                                );
                            }
                            return Err(f);
                        }
                    },
                },
            };
            Ok(Program {
                inner,
                bytes: bytes.into(),
            })
        })
    }

    /// Loads a generic code blob `E(|j|) E1(z) E(|c|) j c k` (GP A.1): no memory layout, all
    /// registers zero. Throws `INVALID_PROGRAM` like `fromStandard`.
    #[napi(
        factory,
        ts_args_type = "bytes: Uint8Array, options?: CodeProgramOptions | null"
    )]
    pub fn from_code(env: &Env, bytes: Unknown, options: Option<Unknown>) -> Result<Program> {
        let env = env.raw();
        guard(env, || -> Res<Program> {
            let opts = options_object(env, options, "options")?;
            let options = program_options(env, opts)?;
            let bytes = js::to_bytes(env, bytes.raw(), "bytes")?;
            let inner = pvm_core::Program::from_code(bytes, options)?;
            Ok(Program {
                inner,
                bytes: bytes.into(),
            })
        })
    }

    /// The Gray Paper version this program follows.
    #[napi(getter, ts_return_type = "'0.8.0' | '0.7.2'")]
    pub fn spec(&self, env: &Env) -> Result<&'static str> {
        guard(env.raw(), || Ok(self.inner.spec().as_str()))
    }

    /// The engine that runs this program: `'interpreter'` or `'recompiler'` (never `'auto'`).
    #[napi(getter, ts_return_type = "'interpreter' | 'recompiler'")]
    pub fn backend(&self, env: &Env) -> Result<&'static str> {
        guard(env.raw(), || Ok(self.inner.backend().as_str()))
    }

    /// Whether this is a standard program (GP A.7 memory layout and argument area).
    #[napi(getter)]
    pub fn is_standard(&self, env: &Env) -> Result<bool> {
        guard(env.raw(), || Ok(self.inner.standard_layout().is_some()))
    }

    /// The code length |c| in bytes.
    #[napi(getter)]
    pub fn code_length(&self, env: &Env) -> Result<u32> {
        guard(env.raw(), || Ok(self.inner.code().len() as u32))
    }

    /// The metadata of a JAM service blob (loaded with its `E(|m|) m` prefix), else null: the raw
    /// bytes, their JIP-6 fields when they follow JIP-6, and a best-effort UTF-8 text.
    /// (Before this release `metadata()` was a method returning the raw bytes: now
    /// `metadata?.raw`.)
    #[napi(getter, ts_return_type = "ProgramMetadata | null")]
    pub fn metadata(&self, env: &Env) -> Result<Option<ProgramMetadata>> {
        guard(env.raw(), || {
            let Some(m) = self.inner.metadata() else {
                return Ok(None);
            };
            let parsed = pvm_core::ProgramMetadata::parse(m);
            Ok(Some(ProgramMetadata {
                raw: m.to_vec().into(),
                jip6: parsed.is_some(),
                format: parsed.as_ref().map(|p| p.format as u32),
                name: parsed.as_ref().map(|p| p.name.clone()),
                version: parsed.as_ref().map(|p| p.version.clone()),
                license: parsed.as_ref().map(|p| p.license.clone()),
                authors: parsed.as_ref().map(|p| p.authors.clone()),
                trailing: parsed.as_ref().map(|p| p.trailing as u32),
                text: pvm_core::metadata::lossy_text(m),
            }))
        })
    }

    /// The gas cost of every basic block, sorted by pc (GP 0.8.0 A.9 costs; for GP 0.7.2 the
    /// number of instructions in each block).
    #[napi]
    pub fn block_gas_costs(&self, env: &Env) -> Result<Vec<BlockGasCost>> {
        guard(env.raw(), || {
            Ok(self
                .inner
                .block_gas_costs()
                .iter()
                .map(|b| BlockGasCost {
                    pc: b.pc,
                    cost: b.cost,
                })
                .collect())
        })
    }

    /// Whether `pc` is the start of a valid instruction.
    #[napi]
    pub fn is_instruction_start(&self, env: &Env, pc: u32) -> Result<bool> {
        guard(env.raw(), || Ok(self.inner.is_instruction_start(pc)))
    }

    /// Creates a VM. For a standard program memory and registers are laid out as GP A.7 says for
    /// `args`; for a code blob memory is empty and registers are zero (`args` must be empty).
    #[napi(ts_args_type = "options: InstantiateOptions")]
    pub fn instantiate(&self, env: &Env, options: Unknown) -> Result<Pvm> {
        let env = env.raw();
        guard(env, || -> Res<Pvm> {
            let Some(opts) = options_object(env, Some(options), "options")? else {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    "options must be an object with at least `gas`",
                ));
            };
            let gas = match js::get(env, opts, c"gas")? {
                Some(v) => js::to_i64(env, v, "options.gas")?,
                None => {
                    return Err(Fail::new(
                        Code::InvalidArgument,
                        "options.gas is required (a bigint)",
                    ))
                }
            };
            let pc = js::get(env, opts, c"pc")?
                .map(|v| js::to_u32(env, v, "options.pc"))
                .transpose()?;
            let regs = js::get(env, opts, c"registers")?
                .map(|v| js::to_registers(env, v, "options.registers"))
                .transpose()?;
            let builtins = match js::get(env, opts, c"builtins")? {
                Some(v) => js::to_bool(env, v, "options.builtins")?,
                None => false,
            };
            // Last: nothing that can run JavaScript happens while `args` borrows its buffer.
            let args = match js::get(env, opts, c"args")? {
                Some(v) => js::to_bytes(env, v, "options.args")?,
                None => &[],
            };
            let mut inst = self.inner.instantiate(args)?;
            inst.set_gas(gas);
            if let Some(pc) = pc {
                inst.set_pc(pc);
            }
            if let Some(regs) = regs {
                inst.registers_mut()[..regs.len()].copy_from_slice(&regs);
            }
            // JIP-6 prelude: the arguments of a standard program are an initial write at their
            // address.
            let args_write = match inst.program().standard_layout() {
                Some(l) if !args.is_empty() => Some((l.args_start(), args.to_vec())),
                _ => None,
            };
            let vm = Pvm::new(env, inst, self.bytes.clone(), args_write);
            vm.set_builtins_default(builtins);
            vm.account();
            Ok(vm)
        })
    }
}
