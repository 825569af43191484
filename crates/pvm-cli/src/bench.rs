//! `pvm bench`: throughput of the interpreter on hand-assembled loops (and on any standard
//! programs given on the command line), under both gas models. Reports the median of several
//! runs; instruction counts come from running the same code under the GP 0.7.2 gas model, which
//! charges one gas per instruction.

use std::time::{Duration, Instant};

use pvm_core::asm::{Assembler, Operands};
use pvm_core::isa::Opcode as O;
use pvm_core::{Access, Backend, Exit, Instance, Program, ProgramOptions, Spec};

/// A benchmark program.
pub struct BenchProgram {
    /// Short name.
    pub name: String,
    /// What it stresses.
    pub description: &'static str,
    /// The code blob, or a standard program when `standard` is set.
    pub bytes: Vec<u8>,
    /// Whether `bytes` is a standard program.
    pub standard: bool,
    /// Argument data for a standard program.
    pub args: Vec<u8>,
    /// Memory to map for a code blob: (address, length).
    pub map: Option<(u32, u32)>,
}

const DATA: u32 = 0x20000;
const DATA_LEN: u32 = 1 << 20;

fn halt(a: &mut Assembler) {
    a.inst(O::LoadImm, Operands::reg_imm(0, -65536));
    a.inst(O::JumpInd, Operands::reg_imm(0, 0));
}

/// 64-bit ALU: multiply-add, xor, rotate, shifts; ~10 instructions per iteration.
pub fn alu_loop(iterations: u32) -> Vec<u8> {
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Operands::reg_imm(1, iterations as i64));
    a.inst(O::LoadImm, Operands::reg_imm(2, 0x1234_5678));
    a.inst(O::LoadImm, Operands::reg_imm(3, 7));
    a.inst(O::Fallthrough, Operands::none());
    let top = a.here();
    a.inst(O::MulImm64, Operands::reg_reg_imm(2, 2, 0x5bd1e995));
    a.inst(O::Add64, Operands::three(2, 2, 1));
    a.inst(O::Xor, Operands::three(3, 3, 2));
    a.inst(O::RotR64Imm, Operands::reg_reg_imm(3, 3, 13));
    a.inst(O::Add64, Operands::three(4, 4, 3));
    a.inst(O::ShloRImm64, Operands::reg_reg_imm(5, 4, 7));
    a.inst(O::Xor, Operands::three(2, 2, 5));
    a.inst(O::AddImm32, Operands::reg_reg_imm(6, 6, 3));
    a.inst(O::AddImm64, Operands::reg_reg_imm(1, 1, -1));
    a.inst(O::BranchNeImm, Operands::branch_imm(1, 0, top));
    a.inst(O::MoveReg, Operands::dst_src(7, 4));
    halt(&mut a);
    a.finish()
}

/// Unpredictable branches: a xorshift generator decides, per iteration, which of two counters
/// to bump.
pub fn branch_loop(iterations: u32) -> Vec<u8> {
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Operands::reg_imm(1, iterations as i64));
    a.inst(O::LoadImm, Operands::reg_imm(2, 88172645));
    a.inst(O::Fallthrough, Operands::none());
    let top = a.here();
    let odd = a.label();
    let join = a.label();
    a.inst(O::ShloLImm64, Operands::reg_reg_imm(3, 2, 13));
    a.inst(O::Xor, Operands::three(2, 2, 3));
    a.inst(O::ShloRImm64, Operands::reg_reg_imm(3, 2, 7));
    a.inst(O::Xor, Operands::three(2, 2, 3));
    a.inst(O::ShloLImm64, Operands::reg_reg_imm(3, 2, 17));
    a.inst(O::Xor, Operands::three(2, 2, 3));
    a.inst(O::AndImm, Operands::reg_reg_imm(4, 2, 1));
    a.inst(O::BranchNeImm, Operands::branch_imm(4, 0, odd));
    a.inst(O::AddImm64, Operands::reg_reg_imm(5, 5, 1));
    a.inst(O::Jump, Operands::to(join));
    a.bind(odd);
    a.inst(O::AddImm64, Operands::reg_reg_imm(6, 6, 3));
    a.inst(O::Fallthrough, Operands::none());
    a.bind(join);
    a.inst(O::AddImm64, Operands::reg_reg_imm(1, 1, -1));
    a.inst(O::BranchNeImm, Operands::branch_imm(1, 0, top));
    a.inst(O::Add64, Operands::three(7, 5, 6));
    halt(&mut a);
    a.finish()
}

/// Loads and stores walking a 1 MiB buffer (mapped at 0x20000 by the harness).
pub fn memory_loop(iterations: u32) -> Vec<u8> {
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Operands::reg_imm(1, iterations as i64));
    a.inst(O::LoadImm, Operands::reg_imm(2, 0));
    a.inst(O::Fallthrough, Operands::none());
    let top = a.here();
    a.inst(O::AddImm64, Operands::reg_reg_imm(3, 2, DATA as i64));
    a.inst(O::LoadIndU64, Operands::reg_reg_imm(4, 3, 0));
    a.inst(O::Add64, Operands::three(4, 4, 1));
    a.inst(O::StoreIndU64, Operands::reg_reg_imm(4, 3, 0));
    a.inst(O::LoadIndU32, Operands::reg_reg_imm(5, 3, 8));
    a.inst(O::Add64, Operands::three(6, 6, 5));
    a.inst(O::AddImm64, Operands::reg_reg_imm(2, 2, 72));
    a.inst(
        O::AndImm,
        Operands::reg_reg_imm(2, 2, (DATA_LEN / 2 - 1) as i64 & !7),
    );
    a.inst(O::AddImm64, Operands::reg_reg_imm(1, 1, -1));
    a.inst(O::BranchNeImm, Operands::branch_imm(1, 0, top));
    a.inst(O::MoveReg, Operands::dst_src(7, 6));
    halt(&mut a);
    a.finish()
}

/// The built-in suite at a given scale (1.0 ≈ 10^8 instructions per program).
pub fn builtin_suite(scale: f64) -> Vec<BenchProgram> {
    let n = |per_iter: f64| ((1e8 * scale / per_iter).max(1.0)) as u32;
    vec![
        BenchProgram {
            name: "alu-loop".into(),
            description: "64-bit ALU, rotates, multiplies",
            bytes: alu_loop(n(10.0)),
            standard: false,
            args: vec![],
            map: None,
        },
        BenchProgram {
            name: "branch-loop".into(),
            description: "unpredictable branches",
            bytes: branch_loop(n(11.0)),
            standard: false,
            args: vec![],
            map: None,
        },
        BenchProgram {
            name: "memory-loop".into(),
            description: "loads/stores over 1 MiB",
            bytes: memory_loop(n(10.0)),
            standard: false,
            args: vec![],
            map: Some((DATA, DATA_LEN)),
        },
    ]
}

/// Re-encodes a GP 0.8.0 program for the GP 0.7.2 opcode table, so the same program can be
/// measured under the 0.7.2 gas model (`pvm_core::asm::renumber_for_gp072`, errors as text).
pub fn for_gp072(bytes: &[u8], standard: bool) -> Result<Vec<u8>, String> {
    pvm_core::asm::renumber_for_gp072(bytes, standard).map_err(|e| e.to_string())
}

/// Result of one benchmark under one gas model.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// Program name.
    pub name: String,
    /// Gas model (spec).
    pub spec: Spec,
    /// Exit of the run.
    pub exit: Exit,
    /// Executed instructions.
    pub instructions: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Median execution time.
    pub median: Duration,
    /// Median program preparation time (parse + validate + block costs + compile).
    pub prepare: Duration,
    /// r7 at exit (a checksum the loops leave there).
    pub r7: u64,
}

fn instantiate(p: &BenchProgram, program: &Program) -> Result<Instance, String> {
    let mut vm = program
        .instantiate(if p.standard { &p.args } else { &[] })
        .map_err(|e| e.to_string())?;
    if let Some((addr, len)) = p.map {
        vm.memory_mut()
            .map(addr, len, Access::Write)
            .map_err(|e| e.to_string())?;
    }
    vm.set_gas(i64::MAX);
    Ok(vm)
}

fn load(p: &BenchProgram, bytes: &[u8], spec: Spec, backend: Backend) -> Result<Program, String> {
    let opts = ProgramOptions { spec, backend };
    if p.standard {
        Program::from_standard(bytes, false, opts).map_err(|e| e.to_string())
    } else {
        Program::from_code(bytes, opts).map_err(|e| e.to_string())
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs one program `runs` times under `spec`, answering host calls by continuing (on the
/// default backend, see [`run_one_on`]).
pub fn run_one(
    p: &BenchProgram,
    spec: Spec,
    runs: usize,
    instructions: u64,
) -> Result<BenchResult, String> {
    run_one_on(p, spec, Backend::Auto, runs, instructions)
}

/// [`run_one`] on a chosen backend.
pub fn run_one_on(
    p: &BenchProgram,
    spec: Spec,
    backend: Backend,
    runs: usize,
    instructions: u64,
) -> Result<BenchResult, String> {
    let bytes = match spec {
        Spec::Gp0_8_0 => p.bytes.clone(),
        Spec::Gp0_7_2 => for_gp072(&p.bytes, p.standard)?,
    };
    let mut prepare = Vec::new();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let program = load(p, &bytes, spec, backend)?;
        prepare.push(t.elapsed());
        let mut vm = instantiate(p, &program)?;
        let t = Instant::now();
        let exit = vm.run_with_host(|_, _| pvm_core::HostOutcome::Continue);
        times.push(t.elapsed());
        last = Some((exit, (i64::MAX - vm.gas()) as u64, vm.registers()[7]));
    }
    let (exit, gas_used, r7) = last.expect("at least one run");
    Ok(BenchResult {
        name: p.name.clone(),
        spec,
        exit,
        instructions,
        gas_used,
        median: median(times),
        prepare: median(prepare),
        r7,
    })
}

/// Counts executed instructions ([`pvm_core::Instance::instruction_count`] of one GP 0.8.0 run
/// on the default backend).
pub fn count_instructions(p: &BenchProgram) -> Result<u64, String> {
    let program = load(p, &p.bytes, Spec::Gp0_8_0, Backend::Auto)?;
    let mut vm = instantiate(p, &program)?;
    vm.run_with_host(|_, _| pvm_core::HostOutcome::Continue);
    Ok(vm.instruction_count())
}
