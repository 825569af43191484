//! Runs the public PVM conformance vectors in both formats (see `tests/vectors/README.md`):
//! the GP 0.7 format (`initial-regs`, `expected-*`) and the GP 0.8 format (`steps`). The format
//! is detected from the keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pvm_core::{Access, Backend, Exit, Instance, Program, ProgramOptions, Spec};
use serde_json::Value;

/// The format of one vector file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `gp-0.7/programs`: one run, `initial-*` / `expected-*` keys.
    Gp07,
    /// `gp-0.8/programs`: a list of steps with asserts.
    Gp08,
}

/// The outcome of one vector.
#[derive(Debug)]
pub struct VectorResult {
    /// The file.
    pub path: PathBuf,
    /// Differences found; empty means passed.
    pub failures: Vec<String>,
}

/// Collects `.json` files from files and directories, sorted.
pub fn collect_files(inputs: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            for e in std::fs::read_dir(p)? {
                let path = e?.path();
                if path.extension().is_some_and(|x| x == "json") {
                    out.push(path);
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Detects the format from the keys.
pub fn detect(v: &Value) -> Option<Format> {
    if v.get("steps").is_some() {
        Some(Format::Gp08)
    } else if v.get("initial-regs").is_some() {
        Some(Format::Gp07)
    } else {
        None
    }
}

/// Runs one vector file. `spec`: `None` picks GP 0.8.0 for the 0.8 format and GP 0.7.2 for the
/// 0.7 format.
pub fn run_file(path: &Path, spec: Option<Spec>) -> VectorResult {
    run_file_with(path, spec, Mode::Run)
}

/// How the runner drives the machine to each exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `Instance::run` (the fast path).
    Run,
    /// `Instance::step` repeatedly: must reach the same state as `Run`.
    Step,
}

/// Like [`run_file`], choosing how the machine is driven (on the default backend).
pub fn run_file_with(path: &Path, spec: Option<Spec>, mode: Mode) -> VectorResult {
    run_file_on(path, spec, mode, Backend::Auto)
}

/// The backends this machine can run: the interpreter, and the recompiler where it is
/// supported. The vector suites run under each of them.
pub fn supported_backends() -> Vec<Backend> {
    let mut v = vec![Backend::Interpreter];
    if Backend::recompiler_supported() {
        v.push(Backend::Recompiler);
    }
    v
}

/// Like [`run_file_with`], on `backend` (`Auto` resolves as for any program). A backend that
/// cannot run here (the recompiler where it is not supported, a bad `LIBPVM_BACKEND`) is a
/// failure of every vector, never mistaken for an invalid program.
pub fn run_file_on(path: &Path, spec: Option<Spec>, mode: Mode, backend: Backend) -> VectorResult {
    let backend = match backend.resolve() {
        Ok(b) => b,
        Err(e) => {
            return VectorResult {
                path: path.to_path_buf(),
                failures: vec![format!("backend {backend}: {e}")],
            }
        }
    };
    let failures = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()))
    {
        Err(e) => vec![format!("cannot read: {e}")],
        Ok(v) => match detect(&v) {
            Some(Format::Gp07) => run_gp07(&v, spec.unwrap_or(Spec::Gp0_7_2), mode, backend),
            Some(Format::Gp08) => run_gp08(&v, spec.unwrap_or(Spec::Gp0_8_0), mode, backend),
            None => vec!["unknown vector format (neither `steps` nor `initial-regs`)".into()],
        },
    };
    VectorResult {
        path: path.to_path_buf(),
        failures,
    }
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_i64().map(|x| x as u64))
        .unwrap_or(0)
}

fn bytes_of(v: &Value) -> Vec<u8> {
    v.as_array()
        .map(|a| a.iter().map(|b| u64_of(b) as u8).collect())
        .unwrap_or_default()
}

/// The program blob of a conformance vector (its `program` byte array): a generic program blob
/// (GP A.1), which is what a JIP-6 `program` line of a run of the vector holds.
pub fn program_blob(v: &Value) -> Vec<u8> {
    bytes_of(&v["program"])
}

fn regs_of(v: &Value) -> [u64; 13] {
    let mut r = [0u64; 13];
    if let Some(a) = v.as_array() {
        for (i, x) in a.iter().take(13).enumerate() {
            r[i] = u64_of(x);
        }
    }
    r
}

/// The machine a vector drives. A GP 0.8.0 blob that fails prevalidation cannot become a
/// `Program`; Ψ then panics at every invocation with gas untouched, which `Invalid` models.
enum Machine {
    Valid(Box<Instance>),
    Invalid {
        regs: [u64; 13],
        memory: pvm_core::Memory,
        pc: u32,
        gas: i64,
    },
}

impl Machine {
    fn new(program: &[u8], spec: Spec, backend: Backend) -> Machine {
        match Program::from_code(program, ProgramOptions { spec, backend }) {
            Ok(p) => Machine::Valid(Box::new(p.instantiate(&[]).expect("no args"))),
            Err(_) => Machine::Invalid {
                regs: [0; 13],
                memory: pvm_core::Memory::new(),
                pc: 0,
                gas: 0,
            },
        }
    }
    fn regs_mut(&mut self) -> &mut [u64; 13] {
        match self {
            Machine::Valid(i) => i.registers_mut(),
            Machine::Invalid { regs, .. } => regs,
        }
    }
    fn regs(&self) -> [u64; 13] {
        match self {
            Machine::Valid(i) => *i.registers(),
            Machine::Invalid { regs, .. } => *regs,
        }
    }
    fn memory_mut(&mut self) -> &mut pvm_core::Memory {
        match self {
            Machine::Valid(i) => i.memory_mut(),
            Machine::Invalid { memory, .. } => memory,
        }
    }
    fn memory(&self) -> &pvm_core::Memory {
        match self {
            Machine::Valid(i) => i.memory(),
            Machine::Invalid { memory, .. } => memory,
        }
    }
    fn set_pc(&mut self, new: u32) {
        match self {
            Machine::Valid(i) => i.set_pc(new),
            Machine::Invalid { pc, .. } => *pc = new,
        }
    }
    fn pc(&self) -> u32 {
        match self {
            Machine::Valid(i) => i.pc(),
            Machine::Invalid { pc, .. } => *pc,
        }
    }
    fn set_gas(&mut self, g: i64) {
        match self {
            Machine::Valid(i) => i.set_gas(g),
            Machine::Invalid { gas, .. } => *gas = g,
        }
    }
    fn gas(&self) -> i64 {
        match self {
            Machine::Valid(i) => i.gas(),
            Machine::Invalid { gas, .. } => *gas,
        }
    }
    fn run(&mut self, mode: Mode) -> Exit {
        match (self, mode) {
            (Machine::Valid(i), Mode::Run) => i.run(),
            (Machine::Valid(i), Mode::Step) => loop {
                if let Some(e) = i.step() {
                    break e;
                }
            },
            (Machine::Invalid { .. }, _) => Exit::Panic,
        }
    }
}

fn status_name(e: Exit) -> &'static str {
    match e {
        Exit::Halt => "halt",
        Exit::Panic => "panic",
        Exit::OutOfGas => "out-of-gas",
        Exit::PageFault(_) => "page-fault",
        Exit::HostCall(_) => "ecalli",
        Exit::Interrupted => "interrupted",
    }
}

/// Non-zero bytes of every page in `pages` (by page index), as address → byte.
fn nonzero_bytes(mem: &pvm_core::Memory, pages: impl Iterator<Item = u32>) -> BTreeMap<u32, u8> {
    let mut out = BTreeMap::new();
    for p in pages {
        if let Some(bytes) = mem.page_bytes(p) {
            for (i, b) in bytes.iter().enumerate() {
                if *b != 0 {
                    out.insert((p << 12) + i as u32, *b);
                }
            }
        }
    }
    out
}

fn expected_bytes(chunks: &Value) -> BTreeMap<u32, u8> {
    let mut out = BTreeMap::new();
    for c in chunks.as_array().into_iter().flatten() {
        let addr = u64_of(&c["address"]) as u32;
        for (i, b) in bytes_of(&c["contents"]).into_iter().enumerate() {
            if b != 0 {
                out.insert(addr.wrapping_add(i as u32), b);
            }
        }
    }
    out
}

fn diff_memory(
    failures: &mut Vec<String>,
    expected: &BTreeMap<u32, u8>,
    actual: &BTreeMap<u32, u8>,
) {
    let mut shown = 0;
    let keys: std::collections::BTreeSet<u32> =
        expected.keys().chain(actual.keys()).copied().collect();
    for a in keys {
        let (e, g) = (
            expected.get(&a).copied().unwrap_or(0),
            actual.get(&a).copied().unwrap_or(0),
        );
        if e != g {
            if shown < 16 {
                failures.push(format!("memory[{a:#x}]: expected {e:#04x}, got {g:#04x}"));
            }
            shown += 1;
        }
    }
    if shown > 16 {
        failures.push(format!(
            "... and {} more differing memory bytes",
            shown - 16
        ));
    }
}

fn diff_regs(failures: &mut Vec<String>, expected: &[u64; 13], actual: &[u64; 13]) {
    for i in 0..13 {
        if expected[i] != actual[i] {
            failures.push(format!(
                "r{i}: expected {} ({:#x}), got {} ({:#x})",
                expected[i], expected[i], actual[i], actual[i]
            ));
        }
    }
}

fn check_exit(
    failures: &mut Vec<String>,
    exit: Exit,
    status: &str,
    fault: Option<u64>,
    hostcall: Option<u64>,
) {
    if status_name(exit) != status {
        failures.push(format!(
            "status: expected {status}, got {}",
            status_name(exit)
        ));
    }
    if let (Some(f), Exit::PageFault(a)) = (fault, exit) {
        if f != a as u64 {
            failures.push(format!("page-fault address: expected {f:#x}, got {a:#x}"));
        }
    }
    if let (Some(h), Exit::HostCall(id)) = (hostcall, exit) {
        if h != id as u64 {
            failures.push(format!("host-call id: expected {h}, got {id}"));
        }
    }
}

/// GP 0.7 vectors whose expected gas charges a whole basic block for a page fault: each faults
/// on its first and only instruction and expects 2 gas consumed (the fault and the implicit
/// `trap` after it), an artifact of the block-charging generator (tests/vectors/README.md,
/// "Discrepancies" 1). libpvm's GP 0.7.2 mode charges one gas per executed instruction, the
/// faulting one included, as anan-as, typeberry and the GP errata after 0.7.2 (commit `b318d1e`,
/// "Charge gas for illegal memory access instruction") do: 1 gas. For exactly these files the
/// runner expects one gas more than the file says; `tests/conformance.rs` checks that the list is
/// exactly the set of 0.7 page-fault vectors. The list is shared with the JS runner.
pub fn gp07_block_charged_faults() -> Vec<&'static str> {
    include_str!("../../../tests/vectors/gp-0.7/block-charged-faults.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A 0.7-format vector's `expected-gas`, corrected for [`gp07_block_charged_faults`] under GP
/// 0.7.2.
fn expected_gas_gp07(v: &Value, spec: Spec) -> i64 {
    let gas = v["expected-gas"].as_i64().unwrap_or(0);
    let name = v["name"].as_str().unwrap_or("");
    let corrected = spec == Spec::Gp0_7_2
        && v["expected-status"] == "page-fault"
        && gp07_block_charged_faults().contains(&name);
    gas + corrected as i64
}

fn run_gp07(v: &Value, spec: Spec, mode: Mode, backend: Backend) -> Vec<String> {
    let mut m = Machine::new(&bytes_of(&v["program"]), spec, backend);
    let mut pages = Vec::new();
    *m.regs_mut() = regs_of(&v["initial-regs"]);
    for e in v["initial-page-map"].as_array().into_iter().flatten() {
        let (addr, len) = (u64_of(&e["address"]) as u32, u64_of(&e["length"]) as u32);
        let access = if e["is-writable"].as_bool() == Some(true) {
            Access::Write
        } else {
            Access::Read
        };
        if let Err(err) = m.memory_mut().map(addr, len, access) {
            return vec![format!("cannot map {addr:#x}+{len}: {err}")];
        }
        pages.extend((addr >> 12)..((addr as u64 + len as u64).div_ceil(4096) as u32));
    }
    for c in v["initial-memory"].as_array().into_iter().flatten() {
        if let Err(err) = m
            .memory_mut()
            .write_unchecked(u64_of(&c["address"]) as u32, &bytes_of(&c["contents"]))
        {
            return vec![format!("cannot write initial memory: {err}")];
        }
    }
    m.set_pc(u64_of(&v["initial-pc"]) as u32);
    m.set_gas(v["initial-gas"].as_i64().unwrap_or(0));
    let exit = m.run(mode);
    let mut f = Vec::new();
    let status = v["expected-status"].as_str().unwrap_or("?");
    check_exit(
        &mut f,
        exit,
        status,
        v.get("expected-page-fault-address").map(u64_of),
        None,
    );
    let pc = u64_of(&v["expected-pc"]) as u32;
    if m.pc() != pc {
        f.push(format!("pc: expected {pc}, got {}", m.pc()));
    }
    let gas = expected_gas_gp07(v, spec);
    if m.gas() != gas {
        f.push(format!("gas: expected {gas}, got {}", m.gas()));
    }
    diff_regs(&mut f, &regs_of(&v["expected-regs"]), &m.regs());
    diff_memory(
        &mut f,
        &expected_bytes(&v["expected-memory"]),
        &nonzero_bytes(m.memory(), pages.into_iter()),
    );
    f
}

fn run_gp08(v: &Value, spec: Spec, mode: Mode, backend: Backend) -> Vec<String> {
    let mut m = Machine::new(&bytes_of(&v["program"]), spec, backend);
    m.set_pc(u64_of(&v["initial-pc"]) as u32);
    m.set_gas(v["initial-gas"].as_i64().unwrap_or(0));
    let mut f = Vec::new();
    let mut pages: Vec<u32> = Vec::new();
    let mut last: Option<Exit> = None;
    for (n, step) in v["steps"].as_array().into_iter().flatten().enumerate() {
        let Some((kind, body)) = step.as_object().and_then(|o| o.iter().next()) else {
            f.push(format!("step {n}: malformed"));
            continue;
        };
        match kind.as_str() {
            "run" => last = Some(m.run(mode)),
            "map" => {
                let (addr, len) = (
                    u64_of(&body["address"]) as u32,
                    u64_of(&body["length"]) as u32,
                );
                let access = if body["is-writable"].as_bool() == Some(true) {
                    Access::Write
                } else {
                    Access::Read
                };
                if let Err(err) = m.memory_mut().map(addr, len, access) {
                    f.push(format!("step {n}: cannot map {addr:#x}+{len}: {err}"));
                }
                pages.extend((addr >> 12)..((addr as u64 + len as u64).div_ceil(4096) as u32));
            }
            "write" => {
                let addr = u64_of(&body["address"]) as u32;
                if let Err(err) = m
                    .memory_mut()
                    .write_unchecked(addr, &bytes_of(&body["contents"]))
                {
                    f.push(format!("step {n}: cannot write: {err}"));
                }
            }
            "set-reg" => {
                let r = u64_of(&body["reg"]) as usize;
                if r < 13 {
                    m.regs_mut()[r] = u64_of(&body["value"]);
                }
            }
            "assert" => {
                let before = f.len();
                let Some(exit) = last else {
                    f.push(format!("step {n}: assert before any run"));
                    continue;
                };
                let status = body["status"].as_str().unwrap_or("?");
                check_exit(
                    &mut f,
                    exit,
                    status,
                    body.get("page-fault-address").map(u64_of),
                    body.get("hostcall").map(u64_of),
                );
                if let Some(pc) = body.get("pc").map(u64_of) {
                    if m.pc() as u64 != pc {
                        f.push(format!("pc: expected {pc}, got {}", m.pc()));
                    }
                }
                if let Some(gas) = body.get("gas").and_then(Value::as_i64) {
                    if m.gas() != gas {
                        f.push(format!("gas: expected {gas}, got {}", m.gas()));
                    }
                }
                if let Some(regs) = body.get("regs") {
                    diff_regs(&mut f, &regs_of(regs), &m.regs());
                }
                if let Some(mem) = body.get("memory") {
                    diff_memory(
                        &mut f,
                        &expected_bytes(mem),
                        &nonzero_bytes(m.memory(), pages.iter().copied()),
                    );
                }
                for line in &mut f[before..] {
                    *line = format!("step {n} (assert): {line}");
                }
            }
            other => f.push(format!("step {n}: unknown step kind `{other}`")),
        }
    }
    // Block gas costs, when present and the program is valid.
    if let (Some(costs), Ok(p)) = (
        v.get("block-gas-costs").and_then(Value::as_array),
        Program::from_code(&bytes_of(&v["program"]), ProgramOptions { spec, backend }),
    ) {
        if spec == Spec::Gp0_8_0 {
            let ours: BTreeMap<u32, u32> =
                p.block_gas_costs().iter().map(|b| (b.pc, b.cost)).collect();
            let theirs: BTreeMap<u32, u32> = costs
                .iter()
                .map(|c| (u64_of(&c["pc"]) as u32, u64_of(&c["cost"]) as u32))
                .collect();
            if ours != theirs {
                f.push(format!(
                    "block-gas-costs differ: expected {theirs:?}, got {ours:?}"
                ));
            }
        }
    }
    f
}

/// The initial machine of a vector (everything before its first `run`), for tracing; together
/// with the vector's final expected state when it has one run (0.7 format or a single-run 0.8
/// vector): (registers, gas, memory as address → byte over the mapped pages).
pub fn initial_instance(
    v: &Value,
    spec: Option<Spec>,
) -> Result<(Instance, Option<ExpectedState>), String> {
    initial_instance_on(v, spec, Backend::Auto)
}

/// [`initial_instance`] on a chosen backend.
pub fn initial_instance_on(
    v: &Value,
    spec: Option<Spec>,
    backend: Backend,
) -> Result<(Instance, Option<ExpectedState>), String> {
    let format = detect(v).ok_or("unknown vector format")?;
    let spec = spec.unwrap_or(match format {
        Format::Gp07 => Spec::Gp0_7_2,
        Format::Gp08 => Spec::Gp0_8_0,
    });
    let program = Program::from_code(&bytes_of(&v["program"]), ProgramOptions { spec, backend })
        .map_err(|e| e.to_string())?;
    let mut vm = program.instantiate(&[]).map_err(|e| e.to_string())?;
    let mut pages = Vec::new();
    let mut map = |vm: &mut Instance, e: &Value| -> Result<(), String> {
        let (addr, len) = (u64_of(&e["address"]) as u32, u64_of(&e["length"]) as u32);
        let access = if e["is-writable"].as_bool() == Some(true) {
            Access::Write
        } else {
            Access::Read
        };
        vm.memory_mut()
            .map(addr, len, access)
            .map_err(|e| e.to_string())?;
        pages.extend((addr >> 12)..((addr as u64 + len as u64).div_ceil(4096) as u32));
        Ok(())
    };
    match format {
        Format::Gp07 => {
            *vm.registers_mut() = regs_of(&v["initial-regs"]);
            for e in v["initial-page-map"].as_array().into_iter().flatten() {
                map(&mut vm, e)?;
            }
            for c in v["initial-memory"].as_array().into_iter().flatten() {
                vm.memory_mut()
                    .write_unchecked(u64_of(&c["address"]) as u32, &bytes_of(&c["contents"]))
                    .map_err(|e| e.to_string())?;
            }
        }
        Format::Gp08 => {
            for step in v["steps"].as_array().into_iter().flatten() {
                let Some((kind, body)) = step.as_object().and_then(|o| o.iter().next()) else {
                    continue;
                };
                match kind.as_str() {
                    "run" => break,
                    "map" => map(&mut vm, body)?,
                    "write" => vm
                        .memory_mut()
                        .write_unchecked(
                            u64_of(&body["address"]) as u32,
                            &bytes_of(&body["contents"]),
                        )
                        .map_err(|e| e.to_string())?,
                    "set-reg" => {
                        let r = u64_of(&body["reg"]) as usize;
                        if r < 13 {
                            vm.registers_mut()[r] = u64_of(&body["value"]);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    vm.set_pc(u64_of(&v["initial-pc"]) as u32);
    vm.set_gas(v["initial-gas"].as_i64().unwrap_or(0));
    let expected = match format {
        Format::Gp07 => Some(ExpectedState {
            regs: regs_of(&v["expected-regs"]),
            gas: expected_gas_gp07(v, spec),
            memory: expected_bytes(&v["expected-memory"]),
            pages,
        }),
        Format::Gp08 => {
            let steps = v["steps"].as_array().cloned().unwrap_or_default();
            let runs = steps.iter().filter(|s| s.get("run").is_some()).count();
            let last = steps.iter().rev().find_map(|s| s.get("assert")).cloned();
            match (runs, last) {
                (1, Some(a)) => Some(ExpectedState {
                    regs: regs_of(&a["regs"]),
                    gas: a["gas"].as_i64().unwrap_or(0),
                    memory: expected_bytes(&a["memory"]),
                    pages,
                }),
                _ => None,
            }
        }
    };
    Ok((vm, expected))
}

/// A vector's expected final state.
#[derive(Debug, Clone)]
pub struct ExpectedState {
    /// Registers.
    pub regs: [u64; 13],
    /// Gas.
    pub gas: i64,
    /// Non-zero bytes.
    pub memory: BTreeMap<u32, u8>,
    /// Pages mapped by the vector (all of them readable).
    pub pages: Vec<u32>,
}

impl ExpectedState {
    /// The PVM hash of this state, computed from the vector's data alone: registers, gas, and the
    /// mapped pages rebuilt from the expected non-zero bytes.
    pub fn pvm_hash(&self) -> [u8; 32] {
        let mut mem = pvm_core::Memory::new();
        for p in &self.pages {
            mem.map(p << 12, 4096, Access::Read)
                .expect("vector pages are above 2^16");
        }
        for (a, b) in &self.memory {
            mem.write_unchecked(*a, &[*b])
                .expect("expected bytes lie in mapped pages");
        }
        pvm_core::trace::state_hash(&self.regs, self.gas, &mem)
    }
}
