//! The engines under comparison: libpvm (`pvm-core`) and PolkaVM 0.37 with its interpreter and
//! its recompiler, each split into the same three phases:
//!
//! * **prepare**: standard program bytes → something that can be instantiated. libpvm:
//!   `Program::from_standard` (parse + validate + the block table; blocks are compiled to the pre-decoded
//!   form). PolkaVM: parse the GP A.7 header, `ProgramBlob::from_parts`, `Module::from_blob`
//!   (the interpreter validates the code here and compiles lazily while running; the recompiler
//!   compiles everything to native code here).
//! * **instantiate**: a fresh VM with GP A.7 memory and registers, the args written, gas set.
//! * **execute**: run to the end, answering every `ecalli` by continuing.

use std::time::{Duration, Instant};

use polkavm::program::InstructionSetKind;
use polkavm::{
    ArcBytes, BackendKind, CacheModel, Config, CostModel, CostModelKind, Engine, GasMeteringKind,
    InterruptKind, Module, ModuleConfig, ProgramBlob, ProgramCounter, ProgramParts, RawInstance,
    Reg,
};
use pvm_core::{Backend, Exit, HostOutcome, Instance, Program, ProgramOptions};

use crate::musttail::Musttail;
use crate::GasModel;

/// The gas every run starts with: large enough never to run out, equal for every engine.
pub const GAS_LIMIT: i64 = 1 << 62;
/// Z_P: the PVM page size (GP A.7).
const PAGE: u32 = 4096;
/// Z_I: the size of the argument region (GP A.7); PolkaVM's aux data region.
const ARGS_REGION: u32 = 1 << 24;
/// The return address that halts the machine.
const HALT_ADDRESS: u64 = 0xFFFF_0000;

/// One engine of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// libpvm (`pvm-core`'s interpreter).
    Libpvm,
    /// libpvm's x86-64 recompiler.
    LibpvmRecompiler,
    /// PolkaVM 0.37, `BackendKind::Interpreter`.
    PolkavmInterpreter,
    /// PolkaVM 0.37, `BackendKind::Compiler` (Linux sandbox).
    PolkavmRecompiler,
    /// PolkaVM 0.37, `BackendKind::Interpreter` built with `interpreter-musttail-dispatch`
    /// (nightly), in a child process (see [`crate::musttail`]).
    PolkavmMusttail,
}

impl EngineKind {
    /// All engines, in report order.
    pub const ALL: [EngineKind; 5] = [
        EngineKind::Libpvm,
        EngineKind::LibpvmRecompiler,
        EngineKind::PolkavmInterpreter,
        EngineKind::PolkavmRecompiler,
        EngineKind::PolkavmMusttail,
    ];

    /// Machine-readable name (JSON keys, the memory probe's command line).
    pub fn key(self) -> &'static str {
        match self {
            EngineKind::Libpvm => "libpvm",
            EngineKind::LibpvmRecompiler => "libpvm-recompiler",
            EngineKind::PolkavmInterpreter => "polkavm-interpreter",
            EngineKind::PolkavmRecompiler => "polkavm-recompiler",
            EngineKind::PolkavmMusttail => "polkavm-interpreter-musttail",
        }
    }

    /// Name in the Markdown tables.
    pub fn label(self) -> &'static str {
        match self {
            EngineKind::Libpvm => "libpvm interp.",
            EngineKind::LibpvmRecompiler => "libpvm recomp.",
            EngineKind::PolkavmInterpreter => "PolkaVM interp.",
            EngineKind::PolkavmRecompiler => "PolkaVM recomp.",
            EngineKind::PolkavmMusttail => "PolkaVM interp. (musttail)",
        }
    }

    /// The libpvm backend of a libpvm engine, `None` for PolkaVM.
    pub fn libpvm_backend(self) -> Option<Backend> {
        match self {
            EngineKind::Libpvm => Some(Backend::Interpreter),
            EngineKind::LibpvmRecompiler => Some(Backend::Recompiler),
            _ => None,
        }
    }

    /// Parses [`EngineKind::key`].
    pub fn from_key(key: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// What a run ended with: the things that must be identical across engines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `halt`, `panic`, `oog`, `fault 0x…`.
    pub status: String,
    /// μ[φ7 .. φ7+φ8] after a halt, else empty.
    pub output: Vec<u8>,
    /// Gas used (GAS_LIMIT − gas left).
    pub gas_used: u64,
    /// Number of `ecalli`s answered.
    pub host_calls: u64,
}

/// One timed run.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Preparation time.
    pub prepare: Duration,
    /// Instance creation time.
    pub instantiate: Duration,
    /// Execution time.
    pub execute: Duration,
    /// The result.
    pub outcome: Outcome,
}

// ---------------------------------------------------------------------------------------------
// libpvm
// ---------------------------------------------------------------------------------------------

/// libpvm, phase 1. `bytes` must already use the model's opcode table (see
/// `pvm_cli::bench::for_gp072`).
pub fn libpvm_prepare(bytes: &[u8], model: GasModel, backend: Backend) -> Result<Program, String> {
    let options = ProgramOptions {
        spec: model.spec(),
        backend,
    };
    Program::from_standard(bytes, false, options).map_err(|e| format!("libpvm: {e}"))
}

/// libpvm, phase 2.
pub fn libpvm_instantiate(program: &Program, args: &[u8], entry: u32) -> Result<Instance, String> {
    let mut vm = program
        .instantiate(args)
        .map_err(|e| format!("libpvm: instantiate: {e}"))?;
    vm.set_gas(GAS_LIMIT);
    vm.set_pc(entry);
    Ok(vm)
}

/// libpvm, phase 3.
pub fn libpvm_execute(vm: &mut Instance) -> Outcome {
    let mut host_calls = 0u64;
    let exit = vm.run_with_host(|_, _| {
        host_calls += 1;
        HostOutcome::Continue
    });
    let status = match exit {
        Exit::Halt => "halt".to_string(),
        Exit::Panic => "panic".to_string(),
        Exit::OutOfGas => "oog".to_string(),
        Exit::PageFault(page) => format!("fault 0x{page:x}"),
        Exit::HostCall(id) => format!("host {id}"),
        Exit::Interrupted => "interrupted".to_string(),
    };
    Outcome {
        status,
        output: vm.output().unwrap_or_default(),
        gas_used: (GAS_LIMIT - vm.gas()) as u64,
        host_calls,
    }
}

// ---------------------------------------------------------------------------------------------
// PolkaVM
// ---------------------------------------------------------------------------------------------

/// A GP A.7 standard program split into its parts:
/// `E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|c|) c` (no metadata prefix).
pub struct StandardProgram {
    /// o
    pub ro: Vec<u8>,
    /// w
    pub rw: Vec<u8>,
    /// z
    pub heap_pages: u32,
    /// s
    pub stack: u32,
    /// c: the GP code blob `E(|j|) E1(z) E(|c|) j c k`.
    pub code: Vec<u8>,
}

/// Splits a standard program (the same parser as bench/tool's `pvm-bench-tool`).
pub fn parse_standard_program(bytes: &[u8]) -> Result<StandardProgram, String> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let slice = bytes
            .get(pos..pos + n)
            .ok_or("standard program truncated")?;
        pos += n;
        Ok(slice)
    };
    fn le(slice: &[u8]) -> u32 {
        slice
            .iter()
            .rev()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
    }
    let ro_len = le(take(3)?) as usize;
    let rw_len = le(take(3)?) as usize;
    let heap_pages = le(take(2)?);
    let stack = le(take(3)?);
    let ro = take(ro_len)?.to_vec();
    let rw = take(rw_len)?.to_vec();
    let code_len = le(take(4)?) as usize;
    let code = take(code_len)?.to_vec();
    if pos != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the code blob",
            bytes.len() - pos
        ));
    }
    Ok(StandardProgram {
        ro,
        rw,
        heap_pages,
        stack,
        code,
    })
}

/// PolkaVM's in-memory program for a standard program. With a 4096-byte page size and a
/// 2^24-byte aux region (see [`PolkaVm::module_config`]) PolkaVM's memory map equals GP A.7's.
pub fn polkavm_blob(program: StandardProgram) -> Result<ProgramBlob, String> {
    let page_align = |x: u32| x.div_ceil(PAGE) * PAGE;
    let mut parts = ProgramParts::empty(InstructionSetKind::JamV1);
    parts.ro_data_size = program.ro.len() as u32;
    parts.rw_data_size = page_align(program.rw.len() as u32) + program.heap_pages * PAGE;
    parts.stack_size = program.stack;
    parts.ro_data = ArcBytes::from(program.ro);
    parts.rw_data = ArcBytes::from(program.rw);
    parts.code_and_jump_table = ArcBytes::from(program.code);
    ProgramBlob::from_parts(parts).map_err(|e| format!("polkavm: invalid program: {e}"))
}

/// A PolkaVM engine with one backend.
pub struct PolkaVm {
    engine: Engine,
    backend: BackendKind,
}

impl PolkaVm {
    /// Creates the engine (for the recompiler this starts the sandbox's worker processes).
    /// `POLKAVM_*` environment variables are honoured (e.g. `POLKAVM_SANDBOX`), except the
    /// backend, which is forced.
    pub fn new(backend: BackendKind) -> Result<PolkaVm, String> {
        let mut config = Config::from_env().unwrap_or_else(|_| Config::new());
        config.set_backend(Some(backend));
        let engine = Engine::new(&config).map_err(|e| format!("polkavm {backend}: engine: {e}"))?;
        Ok(PolkaVm { engine, backend })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// GP 0.8.0: `CostModelKind::Full(CacheModel::L2Hit)`; GP 0.7.2: the naive simple cost model
    /// (one gas per instruction), charged per basic block at block entry like libpvm's GP 0.7.2
    /// mode (no per-instruction metering: the recompiler cannot do it and it would slow the
    /// interpreter down).
    pub fn module_config(model: GasModel) -> ModuleConfig {
        let mut config = ModuleConfig::new();
        config.set_page_size(PAGE);
        config.set_aux_data_size(ARGS_REGION);
        config.set_gas_metering(Some(GasMeteringKind::Sync));
        config.set_cost_model(Some(match model {
            GasModel::Gp080 => CostModelKind::Full(CacheModel::L2Hit),
            GasModel::Gp072 => CostModelKind::Simple(CostModel::naive_ref()),
        }));
        config
    }

    /// Phase 1 (`bytes`: a standard program in GP 0.8.0 opcode numbering).
    pub fn prepare(&self, bytes: &[u8], model: GasModel) -> Result<Module, String> {
        let blob = polkavm_blob(parse_standard_program(bytes)?)?;
        Module::from_blob(&self.engine, &Self::module_config(model), blob)
            .map_err(|e| format!("polkavm {}: module: {e}", self.backend))
    }

    /// Phase 2: registers and memory as GP A.7 (RA = halt address, SP = stack top, A0/A1 =
    /// args address/length).
    pub fn instantiate(
        &self,
        module: &Module,
        args: &[u8],
        entry: u32,
    ) -> Result<RawInstance, String> {
        let err = |e: &dyn std::fmt::Display| format!("polkavm {}: instantiate: {e}", self.backend);
        let mut instance = module.instantiate().map_err(|e| err(&e))?;
        let map = module.memory_map();
        let aux = map.aux_data_address();
        instance
            .set_accessible_aux_size(args.len() as u32)
            .map_err(|e| err(&e))?;
        instance.write_memory(aux, args).map_err(|e| err(&e))?;
        instance.clear_regs();
        instance.set_reg(Reg::RA, HALT_ADDRESS);
        instance.set_reg(Reg::SP, u64::from(map.stack_address_high()));
        instance.set_reg(Reg::A0, u64::from(aux));
        instance.set_reg(Reg::A1, args.len() as u64);
        instance.set_gas(GAS_LIMIT);
        instance.set_next_program_counter(ProgramCounter(entry));
        Ok(instance)
    }

    /// Phase 3.
    pub fn execute(&self, instance: &mut RawInstance) -> Result<Outcome, String> {
        let mut host_calls = 0u64;
        let status = loop {
            match instance
                .run()
                .map_err(|e| format!("polkavm {}: run: {e}", self.backend))?
            {
                InterruptKind::Ecalli(_) => host_calls += 1,
                InterruptKind::Finished => break "halt".to_string(),
                InterruptKind::Trap => break "panic".to_string(),
                InterruptKind::NotEnoughGas => break "oog".to_string(),
                InterruptKind::Segfault(fault) => {
                    break format!("fault 0x{:x}", fault.page_address)
                }
                InterruptKind::Step => {}
            }
        };
        let output = if status == "halt" {
            let (ptr, len) = (instance.reg(Reg::A0), instance.reg(Reg::A1));
            u32::try_from(ptr)
                .ok()
                .zip(u32::try_from(len).ok())
                .and_then(|(ptr, len)| instance.read_memory(ptr, len).ok())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Outcome {
            status,
            output,
            gas_used: (GAS_LIMIT - instance.gas()) as u64,
            host_calls,
        })
    }

    /// Checks that the backend works end to end (for the recompiler: that the sandbox can start
    /// and run guest code here) with a one-instruction program (`trap`).
    pub fn self_test(&self) -> Result<(), String> {
        let mut parts = ProgramParts::empty(InstructionSetKind::JamV1);
        // E(|j|) = 0, E1(z) = 0, E(|c|) = 1, c = [trap], k = [0b1]
        parts.code_and_jump_table = ArcBytes::from(vec![0u8, 0, 1, 0, 1]);
        let blob = ProgramBlob::from_parts(parts).map_err(|e| format!("self-test blob: {e}"))?;
        let module = Module::from_blob(&self.engine, &Self::module_config(GasModel::Gp080), blob)
            .map_err(|e| format!("self-test module: {e}"))?;
        let mut instance = module
            .instantiate()
            .map_err(|e| format!("self-test instantiate: {e}"))?;
        instance.set_gas(100);
        instance.set_next_program_counter(ProgramCounter(0));
        match instance.run().map_err(|e| format!("self-test run: {e}"))? {
            InterruptKind::Trap => Ok(()),
            other => Err(format!("self-test: expected a trap, got {other:?}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// All engines behind one interface
// ---------------------------------------------------------------------------------------------

/// The engines available in this process.
pub struct Engines {
    /// PolkaVM's interpreter (always required).
    pub interpreter: PolkaVm,
    /// PolkaVM's recompiler, if its sandbox works here.
    pub recompiler: Option<PolkaVm>,
    /// Why the recompiler is not available.
    pub recompiler_error: Option<String>,
    /// PolkaVM's musttail interpreter (a child process), if nightly Rust could build it.
    pub musttail: Option<Musttail>,
    /// Why the musttail interpreter is not available.
    pub musttail_error: Option<String>,
}

/// Bytes of one program for one gas model, per engine family.
pub struct ModelBytes<'a> {
    /// For libpvm: the GP 0.8.0 bytes, or the GP 0.7.2 re-encoding.
    pub libpvm: &'a [u8],
    /// For PolkaVM: the GP 0.8.0 bytes, or for GP 0.7.2 the same with `unlikely` rewritten to
    /// `fallthrough`.
    pub polkavm: &'a [u8],
}

impl Engines {
    /// Starts the PolkaVM engines. The recompiler is optional: if its engine cannot be created
    /// or its self-test fails, it is reported and left out.
    pub fn new(with_recompiler: bool) -> Result<Engines, String> {
        let interpreter = PolkaVm::new(BackendKind::Interpreter)?;
        interpreter.self_test()?;
        let (recompiler, recompiler_error) = if !with_recompiler {
            (None, Some("disabled (--no-recompiler)".to_string()))
        } else {
            match PolkaVm::new(BackendKind::Compiler).and_then(|vm| vm.self_test().map(|()| vm)) {
                Ok(vm) => (Some(vm), None),
                Err(e) => (None, Some(e)),
            }
        };
        let (musttail, musttail_error) = match Musttail::start() {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        Ok(Engines {
            interpreter,
            recompiler,
            recompiler_error,
            musttail,
            musttail_error,
        })
    }

    /// The engines that can run.
    pub fn available(&self) -> Vec<EngineKind> {
        let mut v = vec![EngineKind::Libpvm];
        if Backend::recompiler_supported() {
            v.push(EngineKind::LibpvmRecompiler);
        }
        v.push(EngineKind::PolkavmInterpreter);
        if self.recompiler.is_some() {
            v.push(EngineKind::PolkavmRecompiler);
        }
        if self.musttail.is_some() {
            v.push(EngineKind::PolkavmMusttail);
        }
        v
    }

    /// The PolkaVM engine of `kind` (None for libpvm or an unavailable recompiler).
    pub fn polkavm(&self, kind: EngineKind) -> Option<&PolkaVm> {
        match kind {
            EngineKind::Libpvm | EngineKind::LibpvmRecompiler | EngineKind::PolkavmMusttail => None,
            EngineKind::PolkavmInterpreter => Some(&self.interpreter),
            EngineKind::PolkavmRecompiler => self.recompiler.as_ref(),
        }
    }

    /// Prepares, instantiates and runs once, timing each phase.
    pub fn run_once(
        &self,
        kind: EngineKind,
        bytes: &ModelBytes<'_>,
        model: GasModel,
        args: &[u8],
        entry: u32,
    ) -> Result<Sample, String> {
        match kind {
            EngineKind::Libpvm | EngineKind::LibpvmRecompiler => {
                let backend = kind.libpvm_backend().expect("a libpvm engine");
                let t = Instant::now();
                let program = libpvm_prepare(bytes.libpvm, model, backend)?;
                let prepare = t.elapsed();
                let t = Instant::now();
                let mut vm = libpvm_instantiate(&program, args, entry)?;
                let instantiate = t.elapsed();
                let t = Instant::now();
                let outcome = libpvm_execute(&mut vm);
                let execute = t.elapsed();
                drop(vm);
                Ok(Sample {
                    prepare,
                    instantiate,
                    execute,
                    outcome,
                })
            }
            EngineKind::PolkavmMusttail => self
                .musttail
                .as_ref()
                .ok_or_else(|| format!("{} is not available", kind.label()))?
                .run(bytes.polkavm, model, args, entry),
            _ => {
                let vm = self
                    .polkavm(kind)
                    .ok_or_else(|| format!("{} is not available", kind.label()))?;
                let t = Instant::now();
                let module = vm.prepare(bytes.polkavm, model)?;
                let prepare = t.elapsed();
                let t = Instant::now();
                let mut instance = vm.instantiate(&module, args, entry)?;
                let instantiate = t.elapsed();
                let t = Instant::now();
                let outcome = vm.execute(&mut instance)?;
                let execute = t.elapsed();
                drop(instance);
                Ok(Sample {
                    prepare,
                    instantiate,
                    execute,
                    outcome,
                })
            }
        }
    }

    /// Times preparation and instance creation only (for the load measurements; not for the
    /// musttail interpreter, whose child always executes too); for libpvm
    /// also the time to compile every block afterwards (normally done lazily, block by block, as
    /// execution reaches them).
    pub fn load_once(
        &self,
        kind: EngineKind,
        bytes: &ModelBytes<'_>,
        model: GasModel,
    ) -> Result<(Duration, Duration, Option<Duration>), String> {
        match kind {
            EngineKind::Libpvm | EngineKind::LibpvmRecompiler => {
                let backend = kind.libpvm_backend().expect("a libpvm engine");
                let t = Instant::now();
                let program = libpvm_prepare(bytes.libpvm, model, backend)?;
                let prepare = t.elapsed();
                let t = Instant::now();
                let vm = libpvm_instantiate(&program, &[], 0)?;
                let instantiate = t.elapsed();
                drop(vm);
                if backend == Backend::Recompiler {
                    // Preparation compiled everything already.
                    return Ok((prepare, instantiate, None));
                }
                let t = Instant::now();
                std::hint::black_box(program.block_gas_costs());
                let compile_all = t.elapsed();
                Ok((prepare, instantiate, Some(compile_all)))
            }
            _ => {
                let vm = self
                    .polkavm(kind)
                    .ok_or_else(|| format!("{} is not available", kind.label()))?;
                let t = Instant::now();
                let module = vm.prepare(bytes.polkavm, model)?;
                let prepare = t.elapsed();
                let t = Instant::now();
                let instance = vm.instantiate(&module, &[], 0)?;
                let instantiate = t.elapsed();
                drop(instance);
                Ok((prepare, instantiate, None))
            }
        }
    }
}
