//! `pvm`: run PVM programs, conformance vectors and block gas listings from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use pvm_cli::vectors;
use pvm_core::{Backend, Spec};

const USAGE: &str = "usage: pvm <command> [options]     (pvm <command> --help: that command's usage)

commands:
  test-vectors [--spec 0.8.0|0.7.2] [--backend B|all] [--verbose] DIR_OR_FILES...
                                                run conformance vectors
  block-gas [--spec 0.8.0|0.7.2] FILE                             print `PC COST` per basic block
  info [--spec ..] [--backend B] [--metadata|--no-metadata] FILE
                                                metadata (JIP-6), code size, blocks, jump table,
                                                entry points and layout of a program
  run [RUN OPTIONS] [--jip7 OUT.log] [--verbose] FILE
                                                run; with --jip7, record the host calls (JIP-7)
  trace [RUN OPTIONS] [--hash-every N] [--hash-threads N|auto] [--from STEP] [--limit N] FILE
                                                one line per instruction with gas, pvmHash, registers
  dump [RUN OPTIONS] [--at STEP] FILE           the PVM-hash preimage (state dump) at a step
  trace-diff A B                                first step where two traces differ
  disasm [--spec ..] FILE                       the program as assembly
  replay [--spec ..] [--backend B] [--gas N] [--all] [--no-verify] [--ignore-gas] LOG
                                                re-execute a JIP-7 log and verify it
  bench [--runs N] [--scale X] [--backend B] [--arg-hex HEX] [STANDARD_PROGRAMS...]
                                                throughput

B (backend): interpreter | recompiler | auto (default auto: the recompiler where supported,
  else the interpreter; the LIBPVM_BACKEND environment variable overrides auto)
RUN OPTIONS: --spec 0.8.0|0.7.2  --backend B  --gas N  --pc N  --args HEX  --metadata|--no-metadata
  --host stop|continue (default stop)  --inner (answer machine/peek/poke/pages/invoke/expunge/
  gas/grow_heap with libpvm's inner PVMs)  --replay LOG (answer host calls from a JIP-7 log)
FILE: a GP A.7 standard program or JAM service blob (metadata prefix detected), a code blob, or a
conformance-vector .json (trace/dump: initial state from the vector; the trace checks its final
pvmHash against the vector's expected state).
";

const RUN_OPTIONS: &str = "RUN OPTIONS:
  --spec 0.8.0|0.7.2   Gray Paper version (default 0.8.0; vectors carry their own)
  --backend B          interpreter | recompiler | auto (default auto: the recompiler where
                       supported, else the interpreter; LIBPVM_BACKEND overrides auto)
  --gas N              initial gas (default 1000000000)
  --pc N               initial pc (default 0)
  --args HEX           argument data (standard programs)
  --metadata | --no-metadata   whether FILE starts with a metadata prefix (default: detect)
  --host stop|continue how to answer host calls (default stop)
  --inner              answer gas/grow_heap/machine/peek/poke/pages/invoke/expunge with
                       libpvm's built-in (inner-PVM) host calls
  --replay LOG         answer host calls from a JIP-7 log, in order
FILE: a GP A.7 standard program or JAM service blob (metadata prefix detected), a code blob, or a
conformance-vector .json.
";

/// The usage of one subcommand (`pvm <command> --help`).
fn command_usage(cmd: &str) -> Option<String> {
    let text = match cmd {
        "test-vectors" => "usage: pvm test-vectors [--spec 0.8.0|0.7.2] [--backend B|all] [--verbose|-v] DIR_OR_FILES...\n\
            Runs conformance vectors (JSON files, or every .json under a directory) and prints\n\
            one line per failure and a summary. Exit status 1 if any vector fails.\n\
            --backend B          interpreter | recompiler | auto (default auto; LIBPVM_BACKEND\n\
            \x20                    overrides auto); `all`: every backend supported here, in turn\n"
            .to_string(),
        "info" => "usage: pvm info [--spec 0.8.0|0.7.2] [--backend B] [--metadata|--no-metadata] FILE\n\
            Describes a program without running it: the JIP-6 metadata of a JAM service blob,\n\
            code size, number of basic blocks, jump table (length and entries), entry points\n\
            (GP A.7: 0 refine/is-authorized, 5 accumulate), the standard layout's sizes, the\n\
            spec and the backend that would run it.\n\
            --metadata | --no-metadata   whether FILE starts with a metadata prefix (default: detect)\n\
            --backend B          interpreter | recompiler | auto (default auto)\n"
            .to_string(),
        "block-gas" => "usage: pvm block-gas [--spec 0.8.0|0.7.2] [--backend B] FILE\n\
            Prints `PC COST` for every basic block of a code blob (or of the `program` byte\n\
            array of a JSON vector).\n"
            .to_string(),
        "run" => format!(
            "usage: pvm run [RUN OPTIONS] [--jip7 OUT.log] [--verbose|-v] FILE\n\
            Runs FILE and prints the exit, pc, gas, the instructions executed and the registers (and\n\
            the output of a halt).\n\
            --verbose, -v        also print the spec and the backend that ran\n\
            --jip7 OUT.log       record the host calls as a JIP-7 log (`-`: standard output);\n\
            \x20                    --jip6 is an alias\n{RUN_OPTIONS}"
        ),
        "trace" => format!(
            "usage: pvm trace [RUN OPTIONS] [--hash-every N] [--hash-threads N|auto] [--from STEP]\n\
            \x20                [--limit N] FILE\n\
            One line per instruction: step, pc, instruction, gas, pvmHash, registers.\n\
            --hash-every N       compute the PVM hash every N steps (0: never; default 1)\n\
            --hash-threads N     compute the hashes on N worker threads while the trace steps on\n\
            \x20                    (auto: one per core; default 0: on the stepping thread); the\n\
            \x20                    output is the same\n\
            --from STEP          first step to print (default 1)\n\
            --limit N            print at most N steps (default: all)\n{RUN_OPTIONS}"
        ),
        "dump" => format!(
            "usage: pvm dump [RUN OPTIONS] [--at STEP] FILE\n\
            Prints the PVM-hash preimage (registers, gas, non-zero readable pages) after STEP\n\
            steps (default: at the end).\n{RUN_OPTIONS}"
        ),
        "trace-diff" => "usage: pvm trace-diff A B\n\
            Reports the first step where two traces differ (pc, instruction, gas, registers or\n\
            pvmHash). Exit status 1 if they differ.\n"
            .to_string(),
        "disasm" => "usage: pvm disasm [--spec 0.8.0|0.7.2] [--backend B] [--metadata|--no-metadata] FILE\n\
            Prints the program as assembly.\n"
            .to_string(),
        "replay" => format!(
            "usage: pvm replay [--spec 0.8.0|0.7.2] [--backend B] [--gas N] [--all] [--no-verify] [--ignore-gas] LOG\n\
            Re-executes a JIP-7 log statelessly, answering every ecalli from the log, and checks\n\
            pc, gas and registers at every host call, every logged memory read, built-in host\n\
            calls (x-builtin, re-executed) and the termination. Exit status 1 on a divergence.\n\
            --spec V             Gray Paper version of the logged program (default 0.8.0)\n\
            --backend B          interpreter | recompiler | auto (default auto)\n\
            --gas N              initial gas if the log has no `start` line (default {})\n\
            --all                report every divergence, not only the first\n\
            --no-verify          do not check the host calls; the termination is still compared\n\
            --ignore-gas         leave gas out of every comparison\n",
            pvm_core::jip7::DEFAULT_REPLAY_GAS
        ),
        "bench" => "usage: pvm bench [--runs N] [--scale X] [--backend B] [--arg-hex HEX] [STANDARD_PROGRAMS...]\n\
            Measures throughput on the built-in suite and the given programs.\n\
            --backend B          interpreter | recompiler | auto (default auto)\n"
            .to_string(),
        _ => return None,
    };
    Some(text)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        if let Some(u) = command_usage(cmd) {
            print!("{u}");
            return ExitCode::SUCCESS;
        }
    }
    let result = match cmd.as_str() {
        "test-vectors" => cmd_test_vectors(rest),
        "block-gas" => cmd_block_gas(rest),
        "run" => cmd_run(rest),
        "info" => cmd_info(rest),
        "trace" => cmd_trace(rest),
        "dump" => cmd_dump(rest),
        "trace-diff" => cmd_trace_diff(rest),
        "disasm" => cmd_disasm(rest),
        "replay" => cmd_replay(rest),
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

/// Parses a `--backend` value.
fn parse_backend(s: Option<&String>) -> Result<Backend, String> {
    let s = s.ok_or("--backend needs a value (interpreter, recompiler or auto)")?;
    Backend::parse(s)
        .ok_or_else(|| format!("unknown backend `{s}` (expected interpreter, recompiler or auto)"))
}

fn cmd_test_vectors(args: &[String]) -> Result<ExitCode, String> {
    let mut spec = None;
    let mut verbose = false;
    let mut inputs = Vec::new();
    let mut backends = vec![Backend::Auto];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = Some(parse_spec(it.next().ok_or("--spec needs a value")?)?),
            "--backend" => {
                backends = match it.next() {
                    Some(v) if v == "all" => vectors::supported_backends(),
                    v => vec![parse_backend(v)?],
                }
            }
            "--verbose" | "-v" => verbose = true,
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    if inputs.is_empty() {
        return Err("test-vectors needs at least one directory or file".into());
    }
    let files = vectors::collect_files(&inputs).map_err(|e| e.to_string())?;
    let mut any_failed = false;
    for &backend in &backends {
        // Resolved up front so that an unsupported backend is one clear error, not N failures.
        let resolved = backend
            .resolve()
            .map_err(|e| format!("--backend {backend}: {e}"))?;
        let (mut passed, mut failed) = (0, 0);
        for file in &files {
            let r = vectors::run_file_on(file, spec, vectors::Mode::Run, resolved);
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
        if backends.len() > 1 || verbose {
            println!("backend {resolved}: {passed} passed, {failed} failed");
        } else {
            println!("{passed} passed, {failed} failed");
        }
        any_failed |= failed > 0;
    }
    Ok(if !any_failed {
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
    let digits = v.strip_prefix("0x").unwrap_or(v).as_bytes();
    if digits.len() % 2 != 0 {
        return Err(format!("hex `{v}` has an odd number of digits"));
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .filter(|_| pair.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(|| format!("`{v}` is not hex"))
        })
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
    let mut backend = Backend::Auto;
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = parse_spec(it.next().ok_or("--spec needs a value")?)?,
            "--backend" => backend = parse_backend(it.next())?,
            _ => file = Some(a.clone()),
        }
    }
    let file = file.ok_or("block-gas needs a FILE")?;
    let code = load_code(&file)?;
    let program = pvm_core::Program::from_code(&code, pvm_core::ProgramOptions { spec, backend })
        .map_err(|e| format!("{file}: {e}"))?;
    for b in program.block_gas_costs() {
        println!("{} {}", b.pc, b.cost);
    }
    Ok(ExitCode::SUCCESS)
}

/// Options shared by `run`, `trace` and `dump`.
struct RunOptions {
    spec: Option<Spec>,
    backend: Backend,
    verbose: bool,
    gas: u64,
    pc: Option<u32>,
    args: Vec<u8>,
    metadata: Option<bool>,
    host: pvm_cli::tracing::HostMode,
    inner: bool,
    jip7: Option<String>,
    hash_every: u64,
    hash_threads: usize,
    from: u64,
    limit: u64,
    at: Option<u64>,
    file: String,
}

fn parse_run_options(args: &[String]) -> Result<RunOptions, String> {
    use pvm_cli::tracing::HostMode;
    let mut o = RunOptions {
        spec: None,
        backend: Backend::Auto,
        verbose: false,
        gas: 1_000_000_000,
        pc: None,
        args: vec![],
        metadata: None,
        host: HostMode::Stop,
        inner: false,
        jip7: None,
        hash_every: 1,
        hash_threads: 0,
        from: 1,
        limit: 0,
        at: None,
        file: String::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => o.spec = Some(parse_spec(it.next().ok_or("--spec needs a value")?)?),
            "--backend" => o.backend = parse_backend(it.next())?,
            "--verbose" | "-v" => o.verbose = true,
            "--gas" => o.gas = parse_num("--gas", it.next())?,
            "--pc" => {
                o.pc = Some(
                    u32::try_from(parse_num("--pc", it.next())?)
                        .map_err(|_| "--pc must fit in 32 bits")?,
                )
            }
            "--args" => o.args = parse_hex(it.next().ok_or("--args needs a value")?)?,
            "--metadata" => o.metadata = Some(true),
            "--no-metadata" => o.metadata = Some(false),
            "--host" => {
                o.host = match it.next().map(String::as_str) {
                    Some("stop") => HostMode::Stop,
                    Some("continue") => HostMode::Continue,
                    other => return Err(format!("--host takes stop or continue, not {other:?}")),
                }
            }
            "--replay" => {
                let f = it.next().ok_or("--replay needs a JIP-7 log")?;
                let bytes = std::fs::read(f).map_err(|e| format!("cannot read {f}: {e}"))?;
                let log = pvm_core::jip7::Jip7Log::parse_bytes(&bytes)
                    .map_err(|e| format!("{f}: {e}"))?;
                o.host = HostMode::Replay(Box::new(log), 0);
            }
            "--inner" => o.inner = true,
            "--jip7" | "--jip6" => {
                o.jip7 = Some(
                    it.next()
                        .ok_or_else(|| format!("{a} needs an output file (or -)"))?
                        .clone(),
                )
            }
            "--hash-every" => o.hash_every = parse_num("--hash-every", it.next())?,
            "--hash-threads" => {
                let v = it.next();
                o.hash_threads = if v.map(String::as_str) == Some("auto") {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                } else {
                    match parse_num("--hash-threads", v)? {
                        n @ 0..=256 => n as usize,
                        _ => return Err("--hash-threads takes at most 256".into()),
                    }
                };
            }
            "--from" => o.from = parse_num("--from", it.next())?.max(1),
            "--limit" => o.limit = parse_num("--limit", it.next())?,
            "--at" => o.at = Some(parse_num("--at", it.next())?),
            f if !f.starts_with("--") => o.file = f.to_string(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.file.is_empty() {
        return Err("a FILE is required".into());
    }
    Ok(o)
}

fn prepare(o: &RunOptions) -> Result<pvm_cli::tracing::Target, String> {
    let mut t = pvm_cli::tracing::load_target_on(&o.file, o.spec, o.metadata, &o.args, o.backend)?;
    // Vectors carry their own pc and gas; other files take the options (defaults pc 0).
    if t.expected.is_none() || o.pc.is_some() {
        t.vm.set_pc(o.pc.unwrap_or(0));
    }
    if !o.file.ends_with(".json") {
        t.vm.set_gas(i64::try_from(o.gas).map_err(|_| "--gas must be below 2^63")?);
    }
    Ok(t)
}

fn cmd_run(args: &[String]) -> Result<ExitCode, String> {
    let mut o = parse_run_options(args)?;
    let mut t = prepare(&o)?;
    let gas = t.vm.gas();
    let mut inner = o
        .inner
        .then(|| pvm_core::inner::InnerPvms::new(t.vm.program().spec()));
    let exit = match &o.jip7 {
        Some(out) => {
            if o.file.ends_with(".json") {
                // A vector's program is its code blob; its memory and registers go into the
                // prelude (x-pages, memwrite, start), which the recorder derives from the VM.
                t.bytes = load_code(&o.file)?;
            }
            let (exit, log) = pvm_cli::tracing::record(&mut t, &mut o.host, inner.as_mut())?;
            write_out(out, &log.to_text())?;
            exit
        }
        None => loop {
            let exit = t.vm.run();
            let pvm_core::Exit::HostCall(id) = exit else {
                break exit;
            };
            match o.host.answer(inner.as_mut(), id, &mut t.vm)? {
                Some(pvm_core::HostOutcome::Continue) => continue,
                Some(other) => break t.vm.finish_host_call(other).expect("not continue"),
                None => break exit,
            }
        },
    };
    let vm = &t.vm;
    if o.verbose {
        println!("spec: {}", vm.program().spec().as_str());
        println!("backend: {}", vm.program().backend());
    }
    println!("exit: {}", describe(exit));
    println!("pc: {}", vm.pc());
    println!("gas used: {}", gas - vm.gas());
    println!("gas left: {}", vm.gas());
    println!("instructions: {}", vm.instruction_count());
    println!("registers: {:?}", vm.registers());
    if let pvm_core::Exit::HostCall(id) = exit {
        println!("note: stopped at host call {id} (answer host calls with --host continue, --inner or --replay LOG)");
    }
    if let Some(out) = vm.output() {
        println!("output: 0x{}", hex(&out));
        if let Ok(text) = std::str::from_utf8(&out) {
            if !text.is_empty() && text.chars().all(|c| !c.is_control()) {
                println!("output (utf-8): {text}");
            }
        }
    }
    Ok(if matches!(exit, pvm_core::Exit::Halt) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_out(path: &str, text: &str) -> Result<(), String> {
    if path == "-" {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))
    }
}

fn cmd_trace(args: &[String]) -> Result<ExitCode, String> {
    let mut o = parse_run_options(args)?;
    let mut t = prepare(&o)?;
    let mut inner = o
        .inner
        .then(|| pvm_core::inner::InnerPvms::new(t.vm.program().spec()));
    let opts = pvm_cli::tracing::TraceOptions {
        hash_every: o.hash_every,
        hash_threads: o.hash_threads,
        from: o.from,
        limit: o.limit,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (_, hash) =
        pvm_cli::tracing::trace(&mut t.vm, &mut o.host, inner.as_mut(), &opts, &mut out)?;
    use std::io::Write;
    out.flush().map_err(|e| e.to_string())?;
    if let Some(e) = &t.expected {
        let want = e.pvm_hash();
        println!(
            "EXPECTED pvmHash=0x{} ({})",
            pvm_core::trace::hex(&want),
            if want == hash { "match" } else { "MISMATCH" }
        );
        if want != hash {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_dump(args: &[String]) -> Result<ExitCode, String> {
    let mut o = parse_run_options(args)?;
    let mut t = prepare(&o)?;
    let mut inner = o
        .inner
        .then(|| pvm_core::inner::InnerPvms::new(t.vm.program().spec()));
    print!(
        "{}",
        pvm_cli::tracing::dump_at(&mut t.vm, &mut o.host, inner.as_mut(), o.at)?
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_trace_diff(args: &[String]) -> Result<ExitCode, String> {
    let [a, b] = args else {
        return Err("trace-diff needs two files".into());
    };
    let ta = std::fs::read_to_string(a).map_err(|e| format!("cannot read {a}: {e}"))?;
    let tb = std::fs::read_to_string(b).map_err(|e| format!("cannot read {b}: {e}"))?;
    match pvm_cli::tracing::trace_diff(&ta, &tb) {
        None => {
            println!("traces agree");
            Ok(ExitCode::SUCCESS)
        }
        Some(report) => {
            print!("{report}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `pvm info FILE`: what a program is, without running it.
fn cmd_info(args: &[String]) -> Result<ExitCode, String> {
    let mut o = parse_run_options(args)?;
    o.args.clear();
    let t = pvm_cli::tracing::load_target_on(&o.file, o.spec, o.metadata, &[], o.backend)?;
    print!("{}", pvm_cli::info::program_info(t.vm.program()));
    Ok(ExitCode::SUCCESS)
}

fn cmd_disasm(args: &[String]) -> Result<ExitCode, String> {
    let mut o = parse_run_options(args)?;
    o.args.clear();
    let t = pvm_cli::tracing::load_target_on(&o.file, o.spec, o.metadata, &[], o.backend)?;
    print!("{}", pvm_core::disasm::disassemble(t.vm.program()));
    Ok(ExitCode::SUCCESS)
}

fn cmd_replay(args: &[String]) -> Result<ExitCode, String> {
    let mut opts = pvm_core::jip7::ReplayOptions::default();
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => opts.spec = parse_spec(it.next().ok_or("--spec needs a value")?)?,
            "--backend" => opts.backend = parse_backend(it.next())?,
            "--gas" => {
                let g = parse_num("--gas", it.next())?;
                opts.gas = Some(i64::try_from(g).map_err(|_| "--gas must be below 2^63")?);
            }
            "--no-verify" => opts.verify = false,
            "--all" => opts.all = true,
            "--ignore-gas" => opts.ignore_gas = true,
            f if !f.starts_with('-') || f == "-" => {
                if file.replace(f.to_string()).is_some() {
                    return Err("replay takes one LOG file".into());
                }
            }
            other => return Err(format!("replay: unknown option {other}")),
        }
    }
    let file = file.ok_or("replay needs a JIP-7 log file (pvm replay --help)")?;
    let bytes = if file == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        b
    } else {
        std::fs::read(&file).map_err(|e| format!("cannot read {file}: {e}"))?
    };
    let log = pvm_core::jip7::Jip7Log::parse_bytes(&bytes).map_err(|e| format!("{file}: {e}"))?;
    let r = pvm_core::jip7::replay_with(&log, &opts).map_err(|e| format!("{file}: {e}"))?;
    for d in &r.divergences {
        println!("{file}: {d}");
    }
    let checked = match (opts.verify, opts.ignore_gas) {
        (true, false) => "every ecalli and the termination match the log",
        (true, true) => "every ecalli and the termination match the log (gas not compared)",
        (false, false) => "the termination matches the log (host calls not checked)",
        (false, true) => {
            "the termination matches the log (host calls not checked, gas not compared)"
        }
    };
    println!(
        "replayed {} of {} host calls; exit {} pc={} gas={}; {}",
        r.host_calls,
        log.entries.len(),
        describe(r.exit),
        r.end.pc,
        r.end.gas,
        if r.divergences.is_empty() {
            checked.to_string()
        } else {
            format!("{} divergence(s)", r.divergences.len())
        }
    );
    Ok(if r.divergences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
    let mut backend = Backend::Auto;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--backend" => backend = parse_backend(it.next())?,
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
    let backend = backend
        .resolve()
        .map_err(|e| format!("--backend {backend}: {e}"))?;
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
    println!("backend: {backend}\n");
    println!("| program | gas model | exit | instructions | gas used | time (median of {runs}) | M instr/s | M gas/s | prepare |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for p in &suite {
        let instructions = count_instructions(p)?;
        for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
            let r = run_one_on(p, spec, backend, runs, instructions)?;
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
