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
