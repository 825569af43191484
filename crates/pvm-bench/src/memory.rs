//! Peak memory: the resident-set growth caused by preparing, instantiating and running one
//! program once, measured in a fresh child process per (engine, gas model, program).
//!
//! Why a child process: inside the long-running harness the allocator keeps freed memory of
//! earlier runs (and glibc's dynamic mmap threshold changes with history), so an in-process RSS
//! delta would depend on what ran before. A fresh process has no history.
//!
//! What is measured (Linux, from /proc/PID/status):
//! * host: `VmHWM` (peak resident set) after the run − `VmRSS` just before preparation. The
//!   file has been read, the args decoded and the PolkaVM engine created before the baseline;
//!   the peak high-water mark is reset (`/proc/self/clear_refs` ← 5) at the baseline when the
//!   kernel allows it.
//! * worker (recompiler only): PolkaVM runs recompiled guests in a separate sandbox process;
//!   its `VmHWM` after the run − its `VmRSS` before preparation (workers are pre-spawned; their
//!   pids come from `Engine::idle_worker_pids`). Guest memory and the native code live in
//!   shared memory mapped by that worker; pages the host also touches (args, code it wrote) can
//!   be counted in both processes, so the sum slightly over-counts.
//!
//! RSS counts pages actually touched, not address space reserved: a 32 MiB zero heap that the
//! guest never touches costs nothing, a 16 MiB sieve costs ≥ 16 MiB in every engine.

use std::path::Path;
use std::process::Command;

use crate::engines::{libpvm_execute, libpvm_instantiate, libpvm_prepare, EngineKind, PolkaVm};
use crate::{hex_decode, hex_encode, GasModel};

/// Peak memory of one run.
#[derive(Clone, Copy, Debug)]
pub struct MemoryUse {
    /// Host process peak RSS growth, bytes.
    pub host: u64,
    /// Sandbox worker peak RSS growth, bytes (recompiler only).
    pub worker: Option<u64>,
    /// Whether the host's high-water mark could be reset at the baseline.
    pub hwm_reset: bool,
}

impl MemoryUse {
    /// host + worker.
    pub fn total(&self) -> u64 {
        self.host + self.worker.unwrap_or(0)
    }
}

/// A field of /proc/PID/status in bytes (the file gives kB).
pub fn proc_status_bytes(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The child side: runs once and prints one JSON line
/// `{"host": bytes, "worker": bytes|null, "hwm_reset": bool, "gas_used": n, "status": s}`.
pub fn child_main(args: &[String]) -> Result<(), String> {
    let [engine, model, file, args_hex, entry] = args else {
        return Err("usage: pvm-bench __memory-probe ENGINE MODEL FILE ARGS_HEX ENTRY".into());
    };
    let kind = EngineKind::from_key(engine).ok_or_else(|| format!("unknown engine {engine}"))?;
    let model = GasModel::from_key(model).ok_or_else(|| format!("unknown gas model {model}"))?;
    let bytes = std::fs::read(file).map_err(|e| format!("reading {file}: {e}"))?;
    let input = hex_decode(args_hex)?;
    let entry: u32 = entry.parse().map_err(|_| format!("bad entry {entry}"))?;

    let reset = || std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (outcome, host, worker, hwm_reset) = match kind {
        EngineKind::Libpvm | EngineKind::LibpvmRecompiler => {
            let backend = kind.libpvm_backend().expect("a libpvm engine");
            let bytes = match model {
                GasModel::Gp080 => bytes,
                GasModel::Gp072 => pvm_cli::bench::for_gp072(&bytes, true)?,
            };
            let hwm_reset = reset();
            let base = proc_status_bytes(None, "VmRSS").ok_or("no /proc/self/status")?;
            let program = libpvm_prepare(&bytes, model, backend)?;
            let mut vm = libpvm_instantiate(&program, &input, entry)?;
            let outcome = libpvm_execute(&mut vm);
            let peak = proc_status_bytes(None, "VmHWM").ok_or("no VmHWM")?;
            (outcome, peak.saturating_sub(base), None, hwm_reset)
        }
        _ => {
            let backend = match kind {
                EngineKind::PolkavmInterpreter => polkavm::BackendKind::Interpreter,
                _ => polkavm::BackendKind::Compiler,
            };
            let bytes = match model {
                GasModel::Gp080 => bytes,
                GasModel::Gp072 => crate::unlikely_to_fallthrough(&bytes)?,
            };
            let vm = PolkaVm::new(backend)?;
            let workers: Vec<(u32, u64)> = vm
                .engine()
                .idle_worker_pids()
                .into_iter()
                .filter_map(|pid| Some((pid, proc_status_bytes(Some(pid), "VmRSS")?)))
                .collect();
            let hwm_reset = reset();
            let base = proc_status_bytes(None, "VmRSS").ok_or("no /proc/self/status")?;
            let module = vm.prepare(&bytes, model)?;
            let mut instance = vm.instantiate(&module, &input, entry)?;
            let outcome = vm.execute(&mut instance)?;
            let peak = proc_status_bytes(None, "VmHWM").ok_or("no VmHWM")?;
            let worker = instance.pid().map(|pid| {
                let worker_peak = proc_status_bytes(Some(pid), "VmHWM").unwrap_or(0);
                let worker_base = workers
                    .iter()
                    .find(|(p, _)| *p == pid)
                    .map_or(0, |(_, rss)| *rss);
                worker_peak.saturating_sub(worker_base)
            });
            (outcome, peak.saturating_sub(base), worker, hwm_reset)
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "host": host,
            "worker": worker,
            "hwm_reset": hwm_reset,
            "gas_used": outcome.gas_used,
            "status": outcome.status,
            "output": hex_encode(&outcome.output),
        })
    );
    Ok(())
}

/// The parent side: runs `exe __memory-probe …` and checks that the child's run ended like the
/// verified run (`expect_gas`).
pub fn probe(
    exe: &Path,
    kind: EngineKind,
    model: GasModel,
    file: &Path,
    args: &[u8],
    entry: u32,
    expect_gas: u64,
) -> Result<MemoryUse, String> {
    let out = Command::new(exe)
        .arg("__memory-probe")
        .arg(kind.key())
        .arg(model.key())
        .arg(file)
        .arg(hex_encode(args))
        .arg(entry.to_string())
        .output()
        .map_err(|e| format!("spawning the memory probe: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "memory probe failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("memory probe output {line:?}: {e}"))?;
    let gas = v["gas_used"].as_u64().unwrap_or(u64::MAX);
    if gas != expect_gas {
        return Err(format!(
            "memory probe run differs: gas used {gas}, expected {expect_gas}"
        ));
    }
    Ok(MemoryUse {
        host: v["host"].as_u64().unwrap_or(0),
        worker: v["worker"].as_u64(),
        hwm_reset: v["hwm_reset"].as_bool().unwrap_or(false),
    })
}
