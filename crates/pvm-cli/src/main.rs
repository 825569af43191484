//! `pvm`: run PVM programs, conformance vectors and block gas listings from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use pvm_cli::vectors;
use pvm_core::Spec;

const USAGE: &str = "usage: pvm <command> [options]

commands:
  test-vectors [--spec 0.8.0|0.7.2] [--verbose] DIR_OR_FILES...   run conformance vectors
  block-gas [--spec 0.8.0|0.7.2] FILE                             print `PC COST` per basic block
  run [--spec ..] [--gas N] [--pc N] [--args HEX] [--metadata] FILE   run a standard program
  bench [--runs N] [--scale X] [--arg-hex HEX] [STANDARD_PROGRAMS...]  interpreter throughput

FILE arguments of `run` are GP A.7 standard programs; with --metadata (or when the file only
parses that way) a JAM service blob with its metadata prefix.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "test-vectors" => cmd_test_vectors(rest),
        "block-gas" => cmd_block_gas(rest),
        "run" => cmd_run(rest),
        "bench" => cmd_bench(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pvm: {e}");
            ExitCode::from(2)
        }
    }
}

fn parse_spec(s: &str) -> Result<Spec, String> {
    Spec::parse(s).ok_or_else(|| format!("unknown spec `{s}` (expected 0.8.0 or 0.7.2)"))
}

fn cmd_test_vectors(args: &[String]) -> Result<ExitCode, String> {
    let mut spec = None;
    let mut verbose = false;
    let mut inputs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = Some(parse_spec(it.next().ok_or("--spec needs a value")?)?),
            "--verbose" | "-v" => verbose = true,
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    if inputs.is_empty() {
        return Err("test-vectors needs at least one directory or file".into());
    }
    let files = vectors::collect_files(&inputs).map_err(|e| e.to_string())?;
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let r = vectors::run_file(file, spec);
        if r.failures.is_empty() {
            passed += 1;
            if verbose {
                println!("ok   {}", file.display());
            }
        } else {
            failed += 1;
            println!("FAIL {}", file.display());
            for f in &r.failures {
                println!("     {f}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn parse_num(flag: &str, v: Option<&String>) -> Result<u64, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    let r = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.replace('_', "").parse(),
    };
    r.map_err(|_| format!("{flag}: `{v}` is not a number"))
}

fn parse_hex(v: &str) -> Result<Vec<u8>, String> {
    let v = v.strip_prefix("0x").unwrap_or(v);
    if v.len() % 2 != 0 {
        return Err(format!("hex `{v}` has an odd number of digits"));
    }
    (0..v.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&v[i..i + 2], 16).map_err(|_| format!("`{v}` is not hex")))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A FILE for block-gas: a raw code blob, or JSON with a `program` byte array.
fn load_code(path: &str) -> Result<Vec<u8>, String> {
    let bytes = read_file(path)?;
    if path.ends_with(".json") {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))?;
        let arr = v["program"]
            .as_array()
            .ok_or_else(|| format!("{path}: no `program` byte array"))?;
        return arr
            .iter()
            .map(|x| {
                x.as_u64()
                    .filter(|b| *b < 256)
                    .map(|b| b as u8)
                    .ok_or_else(|| format!("{path}: `program` must hold bytes"))
            })
            .collect();
    }
    Ok(bytes)
}

fn cmd_block_gas(args: &[String]) -> Result<ExitCode, String> {
    let mut spec = Spec::Gp0_8_0;
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = parse_spec(it.next().ok_or("--spec needs a value")?)?,
            _ => file = Some(a.clone()),
        }
    }
    let file = file.ok_or("block-gas needs a FILE")?;
    let code = load_code(&file)?;
    let program = pvm_core::Program::from_code(&code, pvm_core::ProgramOptions { spec })
        .map_err(|e| format!("{file}: {e}"))?;
    for b in program.block_gas_costs() {
        println!("{} {}", b.pc, b.cost);
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads a standard program, with or without the metadata prefix.
fn load_standard(
    path: &str,
    metadata: Option<bool>,
    spec: Spec,
) -> Result<pvm_core::Program, String> {
    let bytes = read_file(path)?;
    let opts = pvm_core::ProgramOptions { spec };
    match metadata {
        Some(m) => {
            pvm_core::Program::from_standard(&bytes, m, opts).map_err(|e| format!("{path}: {e}"))
        }
        None => pvm_core::Program::from_standard(&bytes, false, opts)
            .or_else(|plain| {
                pvm_core::Program::from_standard(&bytes, true, opts).map_err(|_| plain)
            })
            .map_err(|e| format!("{path}: {e}")),
    }
}

fn cmd_run(args: &[String]) -> Result<ExitCode, String> {
    let (mut spec, mut gas, mut pc, mut run_args, mut metadata, mut file) = (
        Spec::Gp0_8_0,
        1_000_000_000u64,
        0u64,
        Vec::new(),
        None,
        None,
    );
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = parse_spec(it.next().ok_or("--spec needs a value")?)?,
            "--gas" => gas = parse_num("--gas", it.next())?,
            "--pc" => pc = parse_num("--pc", it.next())?,
            "--args" => run_args = parse_hex(it.next().ok_or("--args needs a value")?)?,
            "--metadata" => metadata = Some(true),
            "--no-metadata" => metadata = Some(false),
            _ => file = Some(a.clone()),
        }
    }
    let file = file.ok_or("run needs a FILE")?;
    let program = load_standard(&file, metadata, spec)?;
    let mut vm = program.instantiate(&run_args).map_err(|e| e.to_string())?;
    vm.set_pc(u32::try_from(pc).map_err(|_| "--pc must fit in 32 bits")?);
    let gas = i64::try_from(gas).map_err(|_| "--gas must be below 2^63")?;
    vm.set_gas(gas);
    let exit = vm.run();
    println!("exit: {}", describe(exit));
    println!("pc: {}", vm.pc());
    println!("gas used: {}", gas - vm.gas());
    println!("gas left: {}", vm.gas());
    println!("registers: {:?}", vm.registers());
    if let pvm_core::Exit::HostCall(id) = exit {
        println!("note: stopped at host call {id}; `pvm run` has no host-call handler");
    }
    if let Some(out) = vm.output() {
        println!("output: 0x{}", hex(&out));
    }
    Ok(if matches!(exit, pvm_core::Exit::Halt) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn describe(e: pvm_core::Exit) -> String {
    match e {
        pvm_core::Exit::PageFault(a) => format!("page fault at {a:#x}"),
        pvm_core::Exit::HostCall(id) => format!("host call {id}"),
        other => other.name().to_string(),
    }
}

fn cmd_bench(args: &[String]) -> Result<ExitCode, String> {
    use pvm_cli::bench::*;
    let (mut runs, mut scale, mut arg_hex, mut files) = (5usize, 1.0f64, String::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = parse_num("--runs", it.next())? as usize,
            "--scale" => {
                scale = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--scale needs a number")?
            }
            "--arg-hex" => arg_hex = it.next().ok_or("--arg-hex needs a value")?.clone(),
            _ => files.push(a.clone()),
        }
    }
    let mut suite = builtin_suite(scale);
    for f in files {
        let name = std::path::Path::new(&f)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or(f.clone());
        suite.push(BenchProgram {
            name,
            description: "standard program",
            bytes: read_file(&f)?,
            standard: true,
            args: parse_hex(&arg_hex)?,
            map: None,
        });
    }
    println!("| program | gas model | exit | instructions | gas used | time (median of {runs}) | M instr/s | M gas/s | prepare |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for p in &suite {
        let instructions = count_instructions(p)?;
        for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
            let r = run_one(p, spec, runs, instructions)?;
            let secs = r.median.as_secs_f64();
            println!(
                "| {} | GP {} | {} | {} | {} | {:.1} ms | {:.0} | {:.0} | {:.2} ms |",
                r.name,
                spec.as_str(),
                describe(r.exit),
                r.instructions,
                r.gas_used,
                secs * 1e3,
                r.instructions as f64 / secs / 1e6,
                r.gas_used as f64 / secs / 1e6,
                r.prepare.as_secs_f64() * 1e3
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
