//! PolkaVM 0.37's interpreter built with `interpreter-musttail-dispatch` (nightly Rust), run as a
//! benchmark peer by pvm-bench (`crates/pvm-bench/src/musttail.rs`).
//!
//! A server on stdin/stdout, one JSON object per line each way, so the engine stays warm across
//! runs like the in-process engines of pvm-bench:
//!
//! ```text
//! -> {"model": "0.8"|"0.7", "program": HEX, "args": HEX, "entry": N, "runs": N}
//! <- {"status": "halt"|"panic"|"oog"|"fault 0x…", "output": HEX, "gas_used": N,
//!     "host_calls": N, "samples": [[prepare_ns, instantiate_ns, execute_ns], ...]}
//!  | {"error": "..."}
//! ```
//!
//! `program` is a GP A.7 standard program in GP 0.8.0 opcode numbering (for GP 0.7.2 gas pvm-bench
//! sends the `unlikely` → `fallthrough` form). Each run prepares, instantiates and executes once,
//! every phase timed, exactly like pvm-bench's `engines::PolkaVm` (same `Config`, same
//! `ModuleConfig`, same register and memory set-up; that file is the reference: keep them equal).
//! `--self-test` runs a one-instruction program and prints `ok`.

use std::io::{BufRead, Write};
use std::time::Instant;

use polkavm::program::InstructionSetKind;
use polkavm::{
    ArcBytes, BackendKind, CacheModel, Config, CostModel, CostModelKind, Engine, GasMeteringKind,
    InterruptKind, Module, ModuleConfig, ProgramBlob, ProgramCounter, ProgramParts, RawInstance,
    Reg,
};
use serde_json::{json, Value};

/// As pvm-bench's `engines::GAS_LIMIT`.
const GAS_LIMIT: i64 = 1 << 62;
const PAGE: u32 = 4096;
const ARGS_REGION: u32 = 1 << 24;
const HALT_ADDRESS: u64 = 0xFFFF_0000;

#[derive(Clone, Copy)]
enum GasModel {
    Gp080,
    Gp072,
}

/// As `engines::PolkaVm::module_config`.
fn module_config(model: GasModel) -> ModuleConfig {
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

/// As `engines::parse_standard_program` + `engines::polkavm_blob`.
fn blob(bytes: &[u8]) -> Result<ProgramBlob, String> {
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
    let page_align = |x: u32| x.div_ceil(PAGE) * PAGE;
    let mut parts = ProgramParts::empty(InstructionSetKind::JamV1);
    parts.ro_data_size = ro.len() as u32;
    parts.rw_data_size = page_align(rw.len() as u32) + heap_pages * PAGE;
    parts.stack_size = stack;
    parts.ro_data = ArcBytes::from(ro);
    parts.rw_data = ArcBytes::from(rw);
    parts.code_and_jump_table = ArcBytes::from(code);
    ProgramBlob::from_parts(parts).map_err(|e| format!("invalid program: {e}"))
}

/// As `engines::PolkaVm::instantiate`.
fn instantiate(module: &Module, args: &[u8], entry: u32) -> Result<RawInstance, String> {
    let err = |e: &dyn std::fmt::Display| format!("instantiate: {e}");
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

struct Outcome {
    status: String,
    output: Vec<u8>,
    gas_used: u64,
    host_calls: u64,
}

/// As `engines::PolkaVm::execute`.
fn execute(instance: &mut RawInstance) -> Result<Outcome, String> {
    let mut host_calls = 0u64;
    let status = loop {
        match instance.run().map_err(|e| format!("run: {e}"))? {
            InterruptKind::Ecalli(_) => host_calls += 1,
            InterruptKind::Finished => break "halt".to_string(),
            InterruptKind::Trap => break "panic".to_string(),
            InterruptKind::NotEnoughGas => break "oog".to_string(),
            InterruptKind::Segfault(fault) => break format!("fault 0x{:x}", fault.page_address),
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

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err("odd-length hex".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| "bad hex".to_string()))
        .collect()
}

fn handle(engine: &Engine, request: &Value) -> Result<Value, String> {
    let model = match request["model"].as_str() {
        Some("0.8") => GasModel::Gp080,
        Some("0.7") => GasModel::Gp072,
        _ => return Err("model must be \"0.8\" or \"0.7\"".into()),
    };
    let program = hex_decode(request["program"].as_str().ok_or("no program")?)?;
    let args = hex_decode(request["args"].as_str().unwrap_or(""))?;
    let entry = request["entry"].as_u64().unwrap_or(0) as u32;
    let runs = request["runs"].as_u64().unwrap_or(1).max(1);
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let module = Module::from_blob(engine, &module_config(model), blob(&program)?)
            .map_err(|e| format!("module: {e}"))?;
        let prepare = t.elapsed();
        let t = Instant::now();
        let mut instance = instantiate(&module, &args, entry)?;
        let instantiate = t.elapsed();
        let t = Instant::now();
        let outcome = execute(&mut instance)?;
        let execute = t.elapsed();
        drop(instance);
        samples.push(json!([
            prepare.as_nanos() as u64,
            instantiate.as_nanos() as u64,
            execute.as_nanos() as u64
        ]));
        last = Some(outcome);
    }
    let o = last.expect("runs >= 1");
    Ok(json!({
        "status": o.status,
        "output": hex_encode(&o.output),
        "gas_used": o.gas_used,
        "host_calls": o.host_calls,
        "samples": samples,
    }))
}

/// A one-instruction program (`trap`) must trap.
fn self_test(engine: &Engine) -> Result<(), String> {
    let mut parts = ProgramParts::empty(InstructionSetKind::JamV1);
    parts.code_and_jump_table = ArcBytes::from(vec![0u8, 0, 1, 0, 1]);
    let blob = ProgramBlob::from_parts(parts).map_err(|e| format!("self-test blob: {e}"))?;
    let module = Module::from_blob(engine, &module_config(GasModel::Gp080), blob)
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

fn main() -> std::process::ExitCode {
    // As `engines::PolkaVm::new`: POLKAVM_* honoured, the backend forced.
    let mut config = Config::from_env().unwrap_or_else(|_| Config::new());
    config.set_backend(Some(BackendKind::Interpreter));
    let engine = match Engine::new(&config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("engine: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    if let Err(e) = self_test(&engine) {
        eprintln!("{e}");
        return std::process::ExitCode::from(1);
    }
    if std::env::args().nth(1).as_deref() == Some("--self-test") {
        println!("ok");
        return std::process::ExitCode::SUCCESS;
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("bad request: {e}"))
            .and_then(|r| handle(&engine, &r))
            .unwrap_or_else(|e| json!({ "error": e }));
        if writeln!(stdout, "{reply}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}
