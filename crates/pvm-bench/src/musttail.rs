//! PolkaVM 0.37's tail-call interpreter (`interpreter-musttail-dispatch`, nightly Rust) as a
//! fifth engine.
//!
//! Cargo unifies features, so that build cannot be linked into this binary next to the default
//! one. It lives in its own Cargo project, `bench/polkavm-musttail` (not a workspace member),
//! built here with `cargo +nightly build --release` into `target/polkavm-musttail`, and runs as
//! a child process that stays alive for the whole run (one JSON request and reply per line; the
//! protocol is described in that project's `src/main.rs`). It times prepare / instantiate /
//! execute itself, with the same PolkaVM configuration as [`crate::engines::PolkaVm`].
//!
//! `PVM_BENCH_MUSTTAIL=/path/to/polkavm-musttail` uses a binary built elsewhere instead;
//! `PVM_BENCH_MUSTTAIL=off` leaves the engine out. When nightly Rust or the build is not
//! available the engine is left out with a note; the harness never fails because of it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::engines::{Outcome, Sample};
use crate::{hex_decode, hex_encode, GasModel};

/// The child project's directory.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/polkavm-musttail")
}

/// Where it is built: under the workspace's target directory (ignored by git).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/polkavm-musttail")
}

/// Builds the child with nightly Rust (a no-op when up to date) and returns its path.
fn build() -> Result<PathBuf, String> {
    let dir = project_dir();
    let out = Command::new("cargo")
        .arg("+nightly")
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir())
        // The variables cargo sets for the process it runs (`cargo run`/`cargo test`) would pin
        // the stable toolchain's tools.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running `cargo +nightly`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!(
            "`cargo +nightly build --release` in {} failed: {}",
            dir.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    Ok(target_dir().join("release/polkavm-musttail"))
}

struct Pipe {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// The running child.
pub struct Musttail {
    pipe: Mutex<Pipe>,
}

impl Musttail {
    /// Finds or builds the child and starts it (it runs PolkaVM's self-test before answering).
    pub fn start() -> Result<Musttail, String> {
        let exe = match std::env::var("PVM_BENCH_MUSTTAIL") {
            Ok(v) if v == "off" => return Err("disabled (PVM_BENCH_MUSTTAIL=off)".into()),
            Ok(v) if !v.is_empty() => PathBuf::from(v),
            _ => build()?,
        };
        let mut child = Command::new(&exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let m = Musttail {
            pipe: Mutex::new(Pipe {
                child,
                stdin: Some(stdin),
                stdout,
            }),
        };
        // A trivial program (`trap`) as a round-trip check.
        let trap = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 0, 1];
        let s = m.run(&trap, GasModel::Gp080, &[], 0)?;
        if s.outcome.status != "panic" {
            return Err(format!(
                "self-test: expected a panic, got {}",
                s.outcome.status
            ));
        }
        Ok(m)
    }

    /// Prepares, instantiates and executes once in the child (GP 0.8.0-numbered standard program
    /// `polkavm_bytes`, as the in-process PolkaVM engines get).
    pub fn run(
        &self,
        polkavm_bytes: &[u8],
        model: GasModel,
        args: &[u8],
        entry: u32,
    ) -> Result<Sample, String> {
        let request = json!({
            "model": model.key(),
            "program": hex_encode(polkavm_bytes),
            "args": hex_encode(args),
            "entry": entry,
            "runs": 1,
        });
        let mut pipe = self.pipe.lock().map_err(|_| "musttail child: poisoned")?;
        let stdin = pipe.stdin.as_mut().ok_or("musttail child: closed")?;
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("musttail child: write: {e}"))?;
        let mut line = String::new();
        let n = pipe
            .stdout
            .read_line(&mut line)
            .map_err(|e| format!("musttail child: read: {e}"))?;
        if n == 0 {
            return Err("musttail child: exited".into());
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("musttail child: bad reply: {e}"))?;
        if let Some(e) = v["error"].as_str() {
            return Err(format!("musttail child: {e}"));
        }
        let ns = |x: &Value| Duration::from_nanos(x.as_u64().unwrap_or(0));
        let sample = &v["samples"][0];
        Ok(Sample {
            prepare: ns(&sample[0]),
            instantiate: ns(&sample[1]),
            execute: ns(&sample[2]),
            outcome: Outcome {
                status: v["status"].as_str().unwrap_or("?").to_string(),
                output: hex_decode(v["output"].as_str().unwrap_or(""))?,
                gas_used: v["gas_used"]
                    .as_u64()
                    .ok_or("musttail child: no gas_used")?,
                host_calls: v["host_calls"].as_u64().unwrap_or(0),
            },
        })
    }
}

impl Drop for Musttail {
    fn drop(&mut self) {
        if let Ok(pipe) = self.pipe.get_mut() {
            // Closing stdin ends the child's request loop.
            drop(pipe.stdin.take());
            let _ = pipe.child.wait();
        }
    }
}
