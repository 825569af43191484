//! `pvm-bench`: libpvm vs PolkaVM 0.37 (interpreter, recompiler) on bench/programs.
//!
//! ```text
//! cargo run --release -p pvm-bench -- [--small] [--runs N] [--json out.json] [--markdown out.md]
//!     [--gas-model 0.8|0.7] [--only NAME[,NAME...]] [--no-memory] [--no-load] [--no-block-gas]
//!     [--no-recompiler] [--bench-dir DIR]
//! ```
//!
//! Exits 1 if any engine disagrees (status, output, gas used), a run fails, or a block-gas cost
//! differs; 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use pvm_bench::{report, GasModel, Options};

const USAGE: &str = "usage: pvm-bench [--small] [--runs N] [--json PATH] [--markdown PATH]
                 [--gas-model 0.8|0.7] [--only NAME[,NAME...]] [--no-memory] [--no-load]
                 [--no-block-gas] [--no-recompiler] [--bench-dir DIR]

Runs bench/programs/{blake2b,sort,sieve,mandel,interp}.jam in libpvm and in PolkaVM 0.37
(interpreter and recompiler) under the GP 0.8.0 and GP 0.7.2 gas models, checks that status,
output and gas used are identical, then reports median times (default 5 runs), instructions/s,
gas/s, preparation and instance-creation time, peak memory (RSS growth, one child process per
measurement) and the speedups of libpvm over PolkaVM. Also times the preparation of the larger
blobs and cross-checks every blob's block gas costs against PolkaVM.
  --small       the small sizes of bench/expected.json instead of the default ones
  --runs N      timed runs per engine and program (>= 1; default 5); 0 = verify only
  --json PATH   write the full report (every sample) as JSON
  --markdown PATH  write the Markdown report to a file too (it always goes to stdout)
  --no-memory   skip the peak-memory child processes
PolkaVM's tail-call interpreter (`interpreter-musttail-dispatch`) runs as a fifth engine in a child
process, built from bench/polkavm-musttail with `cargo +nightly build --release` (left out with a
note when that fails). PVM_BENCH_MUSTTAIL=PATH uses a prebuilt binary, PVM_BENCH_MUSTTAIL=off
leaves it out.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__memory-probe") {
        return match pvm_bench::memory::child_main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut options = Options::default();
    let mut json_path: Option<PathBuf> = None;
    let mut md_path: Option<PathBuf> = None;
    let mut memory = true;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| -> Result<String, ExitCode> {
            iter.next().cloned().ok_or_else(|| {
                eprintln!("missing value for {name}\n{USAGE}");
                ExitCode::from(2)
            })
        };
        match arg.as_str() {
            "--small" => options.small = true,
            "--runs" => match value("--runs").map(|v| v.parse::<usize>()) {
                Ok(Ok(n)) => options.runs = n,
                Ok(Err(_)) => {
                    eprintln!("bad --runs\n{USAGE}");
                    return ExitCode::from(2);
                }
                Err(code) => return code,
            },
            "--json" => match value("--json") {
                Ok(v) => json_path = Some(v.into()),
                Err(code) => return code,
            },
            "--markdown" => match value("--markdown") {
                Ok(v) => md_path = Some(v.into()),
                Err(code) => return code,
            },
            "--gas-model" => match value("--gas-model").map(|v| GasModel::from_key(&v)) {
                Ok(Some(m)) => options.models = vec![m],
                Ok(None) => {
                    eprintln!("bad --gas-model (0.8 or 0.7)\n{USAGE}");
                    return ExitCode::from(2);
                }
                Err(code) => return code,
            },
            "--only" => match value("--only") {
                Ok(v) => options.only = v.split(',').map(str::to_string).collect(),
                Err(code) => return code,
            },
            "--bench-dir" => match value("--bench-dir") {
                Ok(v) => options.bench_dir = v.into(),
                Err(code) => return code,
            },
            "--no-memory" => memory = false,
            "--no-load" => options.load = false,
            "--no-block-gas" => options.block_gas = false,
            "--no-recompiler" => options.recompiler = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if memory && options.runs > 0 {
        match std::env::current_exe() {
            Ok(exe) => options.memory_probe_exe = Some(exe),
            Err(e) => eprintln!("warning: no peak-memory measurement: {e}"),
        }
    }
    if cfg!(debug_assertions) && options.runs > 0 {
        eprintln!("warning: this is a debug build; timings are meaningless (use --release)");
    }

    let report = match pvm_bench::run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut md = report::markdown(&report);
    if options.runs > 0 {
        match pvm_bench::engines::Engines::new(options.recompiler) {
            Ok(engines) => {
                md.push('\n');
                md.push_str(&pvm_bench::hostcall::markdown(
                    &pvm_bench::hostcall::measure(&engines, options.runs),
                ));
            }
            Err(e) => eprintln!("warning: no host-call measurement: {e}"),
        }
    }
    println!("{md}");
    if let Some(path) = md_path {
        if let Err(e) = std::fs::write(&path, &md) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if let Some(path) = json_path {
        let text = serde_json::to_string_pretty(&report::json(&report)).expect("serialisable");
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let failures = report.failures();
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: {} problem(s):", failures.len());
        for f in failures {
            eprintln!("  {f}");
        }
        ExitCode::from(1)
    }
}
