//! pvm-bench-tool: a dev-only helper for libpvm's benchmark guests.
//!
//! * `link IN.elf OUT.jam [--min-stack BYTES] [--opt-level 0|1|2] [--export NAME]...`
//!   turns a RISC-V ELF (built as described in bench/README.md) into a Gray Paper A.7
//!   "standard program" blob with `polkavm-linker`.
//! * `run FILE.jam [ARGS_HEX] [--gas-model 0.8|0.7] [--backend interpreter|compiler] [--gas N]
//!   [--entry PC] [--hosts none|demo] [--count-steps 1]` runs such a blob in PolkaVM (the
//!   reference peer) and prints status, gas used and output. Host calls just continue (or see
//!   `demo_host_call`). `--count-steps 1` also counts executed instructions by step tracing.
//! * `info FILE.jam` prints the decoded header of a standard program.
//! * `disasm FILE.jam` lists its jump table and instructions.
//! * `gp07 IN.jam OUT.jam` rewrites the GP 0.8 `unlikely` instruction to `fallthrough`.
//!
//! None of this is part of the libpvm library; it only builds and checks test data.

use std::process::ExitCode;
use std::time::Instant;

use polkavm::program::InstructionSetKind;
use polkavm::{
    ArcBytes, BackendKind, CacheModel, Config, CostModel, CostModelKind, Engine, GasMeteringKind, InterruptKind, Module,
    ModuleConfig, ProgramBlob, ProgramCounter, ProgramParts, Reg,
};
use polkavm_linker::{OptLevel, TargetInstructionSet};

/// Z_P: the PVM page size (GP A.7).
const PAGE: u32 = 4096;
/// Z_I: the size of the argument (aux) region (GP A.7).
const ARGS_REGION: u32 = 1 << 24;
/// The address that, when jumped to, halts the machine.
const HALT_ADDRESS: u64 = 0xFFFF_0000;

fn page_align(x: u32) -> u32 {
    x.div_ceil(PAGE) * PAGE
}

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  pvm-bench-tool link IN.elf OUT.jam [--min-stack BYTES] [--opt-level 0|1|2] [--export NAME]...\n  \
         pvm-bench-tool run FILE.jam [ARGS_HEX] [--gas-model 0.8|0.7] [--backend interpreter|compiler] [--gas N] [--entry PC] [--hosts none|demo] [--count-steps 1]\n  \
         pvm-bench-tool info FILE.jam\n  pvm-bench-tool disasm FILE.jam\n  pvm-bench-tool gp07 IN.jam OUT.jam"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("link") => cmd_link(&args[1..]),
        Some("run") => cmd_run(&args[1..]),
        Some("info") => cmd_info(&args[1..]),
        Some("disasm") => cmd_disasm(&args[1..]),
        Some("gp07") => cmd_gp07(&args[1..]),
        _ => return usage(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// Splits `args` into positional arguments and `--flag value` pairs.
fn parse_flags(args: &[String]) -> Result<(Vec<String>, Vec<(String, String)>), String> {
    let mut positional = Vec::new();
    let mut flags = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(name) = arg.strip_prefix("--") {
            let value = iter.next().ok_or_else(|| format!("missing value for --{name}"))?;
            flags.push((name.to_string(), value.clone()));
        } else {
            positional.push(arg.clone());
        }
    }
    Ok((positional, flags))
}

// ---------------------------------------------------------------------------------------------
// link
// ---------------------------------------------------------------------------------------------

fn linker_config(min_stack: u32, opt_level: OptLevel, dispatch_table: Vec<Vec<u8>>) -> polkavm_linker::Config {
    let mut config = polkavm_linker::Config::default();
    config.set_strip(true);
    config.set_opt_level(opt_level);
    config.set_min_stack_size(min_stack);
    config.set_dispatch_table(dispatch_table);
    config
}

fn cmd_link(args: &[String]) -> Result<ExitCode, String> {
    let (positional, flags) = parse_flags(args)?;
    let [input, output] = positional.as_slice() else {
        return Ok(usage());
    };
    let mut min_stack: u32 = 64 * 1024;
    let mut opt_level = OptLevel::O2;
    let mut exports: Vec<Vec<u8>> = Vec::new();
    for (name, value) in flags {
        match name.as_str() {
            "min-stack" => min_stack = value.parse().map_err(|_| format!("bad --min-stack: {value}"))?,
            "opt-level" => {
                opt_level = match value.as_str() {
                    "0" => OptLevel::O0,
                    "1" => OptLevel::O1,
                    "2" => OptLevel::O2,
                    _ => return Err(format!("bad --opt-level: {value}")),
                }
            }
            "export" => exports.push(value.into_bytes()),
            _ => return Err(format!("unknown flag --{name}")),
        }
    }

    let elf = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;

    // Without explicit --export flags, first link once to learn the export names (in the order
    // the ELF declares them); every export then gets a dispatch table slot: the first at pc 0,
    // the second at pc 5, ... (as JAM's refine/accumulate entry points).
    if exports.is_empty() {
        let probe = polkavm_linker::program_from_elf(linker_config(min_stack, opt_level, Vec::new()), TargetInstructionSet::JamV1, &elf)
            .map_err(|e| format!("linking {input}: {e}"))?;
        let blob = ProgramBlob::parse(ArcBytes::from(probe)).map_err(|e| format!("parsing linked blob: {e}"))?;
        exports = blob.exports().map(|export| export.symbol().as_bytes().to_vec()).collect();
        if exports.is_empty() {
            return Err(format!("{input}: the ELF exports no entry point"));
        }
    }

    let raw = polkavm_linker::program_from_elf(
        linker_config(min_stack, opt_level, exports.clone()),
        TargetInstructionSet::JamV1,
        &elf,
    )
    .map_err(|e| format!("linking {input}: {e}"))?;
    let parts = ProgramParts::from_bytes(ArcBytes::from(raw)).map_err(|e| format!("parsing linked blob: {e}"))?;
    let standard = standard_program_from_parts(&parts)?;
    std::fs::write(output, &standard).map_err(|e| format!("writing {output}: {e}"))?;

    let names: Vec<String> = exports.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    eprintln!(
        "{output}: {} bytes; entry points (pc = 5*i): {}; ro {} B, rw {} B (+{} zero pages), stack {} B, code blob {} B",
        standard.len(),
        names.join(", "),
        parts.ro_data.len(),
        parts.rw_data.len(),
        (page_align(parts.rw_data_size) - page_align(parts.rw_data.len() as u32)) / PAGE,
        parts.stack_size,
        parts.code_and_jump_table.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn put_le(out: &mut Vec<u8>, value: u32, width: usize) -> Result<(), String> {
    if width < 4 && value >> (8 * width) != 0 {
        return Err(format!("value {value} does not fit in {width} bytes"));
    }
    out.extend_from_slice(&value.to_le_bytes()[..width]);
    Ok(())
}

/// GP A.7: `E3(|o|) ++ E3(|w|) ++ E2(z) ++ E3(s) ++ o ++ w ++ E4(|c|) ++ c`.
///
/// The read-only region is `o` followed by zeros up to P(|o|); the read-write region is `w`
/// followed by zeros up to P(|w|) + z·Z_P; the stack is P(s) bytes. PolkaVM's memory map with a
/// 4096-byte page size and a 2^24-byte aux region is identical, so we take:
/// * `o` = ro_data, zero-extended to ro_data_size if the linker declared more read-only memory
///   than the initialised bytes cover (so that P(|o|) >= ro_data_size),
/// * `w` = rw_data (initialised bytes, trailing zeros already trimmed by the linker),
/// * `z` = (P(rw_data_size) - P(|w|)) / Z_P,
/// * `s` = stack_size,
/// * `c` = code_and_jump_table, which for JamV1 is exactly the GP code blob
///   `E(|j|) ++ E1(z) ++ E(|c|) ++ E_z(j) ++ c ++ E(k)`.
fn standard_program_from_parts(parts: &ProgramParts) -> Result<Vec<u8>, String> {
    let mut ro = parts.ro_data.to_vec();
    if page_align(ro.len() as u32) < page_align(parts.ro_data_size) {
        ro.resize(parts.ro_data_size as usize, 0);
    }
    let rw = &parts.rw_data[..];
    let rw_pages_total = page_align(parts.rw_data_size);
    let rw_pages_init = page_align(rw.len() as u32);
    if rw_pages_total < rw_pages_init {
        return Err("rw_data larger than rw_data_size".into());
    }
    let z = (rw_pages_total - rw_pages_init) / PAGE;
    let s = parts.stack_size;
    let code = &parts.code_and_jump_table[..];

    let mut out = Vec::with_capacity(15 + ro.len() + rw.len() + code.len());
    put_le(&mut out, ro.len() as u32, 3)?;
    put_le(&mut out, rw.len() as u32, 3)?;
    put_le(&mut out, z, 2)?;
    put_le(&mut out, s, 3)?;
    out.extend_from_slice(&ro);
    out.extend_from_slice(rw);
    put_le(&mut out, code.len() as u32, 4)?;
    out.extend_from_slice(code);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// standard program parsing (for run/info)
// ---------------------------------------------------------------------------------------------

struct StandardProgram {
    ro: Vec<u8>,
    rw: Vec<u8>,
    heap_pages: u32,
    stack: u32,
    code: Vec<u8>,
}

fn parse_standard_program(bytes: &[u8]) -> Result<StandardProgram, String> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let slice = bytes.get(pos..pos + n).ok_or("standard program truncated")?;
        pos += n;
        Ok(slice)
    };
    fn le(slice: &[u8]) -> u32 {
        slice.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
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
        return Err(format!("{} trailing bytes after the code blob", bytes.len() - pos));
    }
    Ok(StandardProgram {
        ro,
        rw,
        heap_pages,
        stack,
        code,
    })
}

/// Builds PolkaVM's in-memory program from a standard program: with a 4096-byte page size and a
/// 2^24-byte aux region, PolkaVM's memory map then equals GP A.7's.
fn blob_from_standard(program: StandardProgram) -> Result<ProgramBlob, String> {
    let mut parts = ProgramParts::empty(InstructionSetKind::JamV1);
    parts.ro_data_size = program.ro.len() as u32;
    parts.rw_data_size = page_align(program.rw.len() as u32) + program.heap_pages * PAGE;
    parts.stack_size = program.stack;
    parts.ro_data = ArcBytes::from(program.ro);
    parts.rw_data = ArcBytes::from(program.rw);
    parts.code_and_jump_table = ArcBytes::from(program.code);
    ProgramBlob::from_parts(parts).map_err(|e| format!("invalid program: {e}"))
}

fn cmd_disasm(args: &[String]) -> Result<ExitCode, String> {
    let [path] = args else { return Ok(usage()) };
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let blob = blob_from_standard(parse_standard_program(&bytes)?)?;
    for (nth, target) in blob.jump_table().iter().enumerate() {
        println!("jump_table[{nth}] = {}", target.0);
    }
    for instruction in blob.instructions() {
        println!("{:6}: {}", instruction.offset.0, instruction.kind);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a copy of a standard program with every `unlikely` (opcode 2, GP 0.8 only) at an
/// instruction start replaced by `fallthrough` (opcode 1), for GP 0.7 VMs. Both are one-byte
/// basic-block terminators costing one gas under GP 0.7, so results and gas stay identical.
fn cmd_gp07(args: &[String]) -> Result<ExitCode, String> {
    let [input, output] = args else { return Ok(usage()) };
    let bytes = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
    let program = parse_standard_program(&bytes)?;
    let code_len = program.code.len();
    let blob = blob_from_standard(program)?;
    // The standard program ends with the code blob, which ends with `c ++ k`, |k| = ceil(|c|/8).
    let c_len = blob.code().len();
    let k_len = c_len.div_ceil(8);
    let c_start = bytes.len() - k_len - c_len;
    assert!(code_len >= c_len + k_len);
    let mut out = bytes.clone();
    let mut rewritten = 0;
    for instruction in blob.instructions() {
        let offset = instruction.offset.0 as usize;
        if offset < c_len && out[c_start + offset] == 2 {
            out[c_start + offset] = 1;
            rewritten += 1;
        }
    }
    std::fs::write(output, &out).map_err(|e| format!("writing {output}: {e}"))?;
    eprintln!("{output}: rewrote {rewritten} `unlikely` instructions to `fallthrough`");
    Ok(ExitCode::SUCCESS)
}

fn cmd_info(args: &[String]) -> Result<ExitCode, String> {
    let [path] = args else { return Ok(usage()) };
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let program = parse_standard_program(&bytes)?;
    println!("size: {}", bytes.len());
    println!("ro_data: {}", program.ro.len());
    println!("rw_data: {}", program.rw.len());
    println!("heap_pages: {}", program.heap_pages);
    println!("stack: {}", program.stack);
    println!("code_blob: {}", program.code.len());
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------------

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() % 2 != 0 {
        return Err("odd-length hex".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| format!("bad hex: {text}")))
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The demo host functions of examples/guests/hostcalls.c (`--hosts demo`):
/// 100 "log" (r7 = message address, r8 = length) prints the message to stderr;
/// 1001 "get_number" returns 100, 200, 300, ... in r7. Other ids just continue.
fn demo_host_call(instance: &mut polkavm::RawInstance, id: u32, counter: &mut u64) {
    match id {
        100 => {
            let (ptr, len) = (instance.reg(Reg::A0), instance.reg(Reg::A1));
            let text = u32::try_from(ptr)
                .ok()
                .zip(u32::try_from(len).ok())
                .and_then(|(ptr, len)| instance.read_memory(ptr, len).ok())
                .unwrap_or_default();
            eprintln!("log: {}", String::from_utf8_lossy(&text));
        }
        1001 => {
            *counter += 1;
            instance.set_reg(Reg::A0, *counter * 100);
        }
        _ => {}
    }
}

fn cmd_run(args: &[String]) -> Result<ExitCode, String> {
    let (positional, flags) = parse_flags(args)?;
    let (path, args_hex) = match positional.as_slice() {
        [path] => (path, ""),
        [path, hex] => (path, hex.as_str()),
        _ => return Ok(usage()),
    };
    let mut gas_model = "0.7".to_string();
    let mut backend = BackendKind::Interpreter;
    let mut gas_limit: i64 = i64::MAX / 2;
    let mut entry: u32 = 0;
    let mut demo_hosts = false;
    let mut count_steps = false;
    for (name, value) in flags {
        match name.as_str() {
            "gas-model" => gas_model = value,
            "backend" => {
                backend = match value.as_str() {
                    "interpreter" => BackendKind::Interpreter,
                    "compiler" => BackendKind::Compiler,
                    _ => return Err(format!("bad --backend: {value}")),
                }
            }
            "gas" => gas_limit = value.parse().map_err(|_| format!("bad --gas: {value}"))?,
            "entry" => entry = value.parse().map_err(|_| format!("bad --entry: {value}"))?,
            "count-steps" => count_steps = value == "1" || value == "yes" || value == "true",
            "hosts" => {
                demo_hosts = match value.as_str() {
                    "none" => false,
                    "demo" => true,
                    _ => return Err(format!("bad --hosts: {value} (expected none or demo)")),
                }
            }
            _ => return Err(format!("unknown flag --{name}")),
        }
    }
    let input = decode_hex(args_hex)?;
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let program = parse_standard_program(&bytes)?;

    let blob = blob_from_standard(program)?;

    let mut config = Config::new();
    config.set_backend(Some(backend));
    let engine = Engine::new(&config).map_err(|e| format!("engine: {e}"))?;

    let mut module_config = ModuleConfig::new();
    module_config.set_page_size(PAGE);
    module_config.set_aux_data_size(ARGS_REGION);
    module_config.set_gas_metering(Some(GasMeteringKind::Sync));
    module_config.set_step_tracing(count_steps);
    match gas_model.as_str() {
        "0.7" => {
            module_config.set_cost_model(Some(CostModelKind::Simple(CostModel::naive_ref())));
            if backend == BackendKind::Interpreter {
                module_config.set_per_instruction_metering(true);
            }
        }
        "0.8" => {
            module_config.set_cost_model(Some(CostModelKind::Full(CacheModel::L2Hit)));
        }
        _ => return Err(format!("bad --gas-model: {gas_model} (expected 0.7 or 0.8)")),
    }

    let load_start = Instant::now();
    let module = Module::from_blob(&engine, &module_config, blob).map_err(|e| format!("module: {e}"))?;
    let mut instance = module.instantiate().map_err(|e| format!("instantiate: {e}"))?;
    let load_time = load_start.elapsed();

    let memory_map = module.memory_map().clone();
    let aux = memory_map.aux_data_address();
    instance
        .set_accessible_aux_size(input.len() as u32)
        .map_err(|e| format!("aux size: {e}"))?;
    instance.write_memory(aux, &input).map_err(|e| format!("writing args: {e}"))?;
    instance.clear_regs();
    instance.set_reg(Reg::RA, HALT_ADDRESS);
    instance.set_reg(Reg::SP, u64::from(memory_map.stack_address_high()));
    instance.set_reg(Reg::A0, u64::from(aux));
    instance.set_reg(Reg::A1, input.len() as u64);
    instance.set_gas(gas_limit);
    instance.set_next_program_counter(ProgramCounter(entry));

    let run_start = Instant::now();
    let mut host_calls = 0u64;
    let mut demo_counter = 0u64;
    let mut steps = 0u64;
    let status = loop {
        match instance.run().map_err(|e| format!("run: {e}"))? {
            InterruptKind::Ecalli(id) => {
                host_calls += 1;
                if demo_hosts {
                    demo_host_call(&mut instance, id, &mut demo_counter);
                }
            }
            InterruptKind::Finished => break "halt".to_string(),
            InterruptKind::Trap => break "panic".to_string(),
            InterruptKind::NotEnoughGas => break "oog".to_string(),
            InterruptKind::Segfault(fault) => break format!("fault 0x{:x}", fault.page_address),
            InterruptKind::Step => steps += 1,
        }
    };
    let run_time = run_start.elapsed();
    let gas_used = gas_limit - instance.gas();

    let output = if status == "halt" {
        let ptr = instance.reg(Reg::A0);
        let len = instance.reg(Reg::A1);
        u32::try_from(ptr)
            .ok()
            .zip(u32::try_from(len).ok())
            .and_then(|(ptr, len)| instance.read_memory(ptr, len).ok())
            .unwrap_or_default()
    } else {
        Vec::new()
    };

    println!("status: {status}");
    println!("gas_used: {gas_used}");
    println!("output: {}", encode_hex(&output));
    println!("host_calls: {host_calls}");
    if count_steps {
        println!("steps: {steps}");
    }
    println!("load_ms: {:.3}", load_time.as_secs_f64() * 1e3);
    println!("run_ms: {:.3}", run_time.as_secs_f64() * 1e3);
    Ok(ExitCode::SUCCESS)
}
