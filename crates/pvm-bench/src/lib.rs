//! # pvm-bench
//!
//! libpvm against PolkaVM 0.37 (its interpreter and its recompiler) on the real guest programs
//! of `bench/programs` (built from C, see `bench/README.md`), under both gas models:
//!
//! * GP 0.8.0 block gas: libpvm's default mode vs PolkaVM with
//!   `CostModelKind::Full(CacheModel::L2Hit)`;
//! * GP 0.7.2, one gas per instruction: libpvm's GP 0.7.2 mode (on the blob re-encoded with
//!   `pvm_cli::bench::for_gp072`) vs PolkaVM's naive simple cost model (on the same program in
//!   GP 0.8.0 numbering, `unlikely` → `fallthrough`, see [`unlikely_to_fallthrough`]). Both
//!   charge per basic block at block entry, so gas used on halt is equal (and equals the
//!   instruction count).
//!
//! Everything runs in one process. Before anything is timed, every engine's status, output and
//! gas used must be identical (and equal to `bench/expected.json`); a mismatch fails the run.
//! See `docs/BENCHMARKS.md` for the method and the latest numbers.

#![warn(missing_docs)]

pub mod blockgas;
pub mod engines;
pub mod hashing;
pub mod hostcall;
pub mod memory;
pub mod musttail;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pvm_core::Spec;

use crate::blockgas::BlockGasCheck;
use crate::engines::{EngineKind, Engines, ModelBytes, Outcome, Sample};
use crate::memory::MemoryUse;

/// The two gas models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GasModel {
    /// GP 0.8.0: block gas (A.9/A.10); PolkaVM `Full(CacheModel::L2Hit)`.
    Gp080,
    /// GP 0.7.2: one gas per instruction; PolkaVM's naive simple cost model.
    Gp072,
}

impl GasModel {
    /// Both, in report order.
    pub const ALL: [GasModel; 2] = [GasModel::Gp080, GasModel::Gp072];

    /// `"0.8"` / `"0.7"`.
    pub fn key(self) -> &'static str {
        match self {
            GasModel::Gp080 => "0.8",
            GasModel::Gp072 => "0.7",
        }
    }

    /// Parses [`GasModel::key`] (also `0.8.0` / `0.7.2`).
    pub fn from_key(s: &str) -> Option<GasModel> {
        match Spec::parse(s)? {
            Spec::Gp0_8_0 => Some(GasModel::Gp080),
            Spec::Gp0_7_2 => Some(GasModel::Gp072),
        }
    }

    /// libpvm's spec.
    pub fn spec(self) -> Spec {
        match self {
            GasModel::Gp080 => Spec::Gp0_8_0,
            GasModel::Gp072 => Spec::Gp0_7_2,
        }
    }

    /// Heading text.
    pub fn title(self) -> &'static str {
        match self {
            GasModel::Gp080 => "GP 0.8.0 gas (block model; PolkaVM `Full(CacheModel::L2Hit)`)",
            GasModel::Gp072 => {
                "GP 0.7.2 gas (one per instruction; PolkaVM naive `Simple`, per block)"
            }
        }
    }
}

/// Lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (optional `0x`).
pub fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() % 2 != 0 {
        return Err(format!("odd-length hex: {text}"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| format!("bad hex: {text}")))
        .collect()
}

/// The `bench/` directory of this repository.
pub fn default_bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench")
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

/// What `bench/expected.json` says a run ends with.
#[derive(Clone, Debug)]
pub struct Expected {
    /// `halt`.
    pub status: String,
    /// Output bytes.
    pub output: Vec<u8>,
    /// Instructions executed.
    pub instructions: u64,
    /// GP 0.7 gas.
    pub gas_0_7: u64,
    /// GP 0.8 gas.
    pub gas_0_8: u64,
}

impl Expected {
    fn from_json(v: &serde_json::Value) -> Result<Expected, String> {
        let num = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| format!("expected.json: missing {k}"))
        };
        Ok(Expected {
            status: v["status"].as_str().unwrap_or("halt").to_string(),
            output: hex_decode(v["output"].as_str().unwrap_or_default())?,
            instructions: num("instructions")?,
            gas_0_7: num("gas_0_7")?,
            gas_0_8: num("gas_0_8")?,
        })
    }

    /// The expected gas under `model`.
    pub fn gas(&self, model: GasModel) -> u64 {
        match model {
            GasModel::Gp080 => self.gas_0_8,
            GasModel::Gp072 => self.gas_0_7,
        }
    }
}

/// Rewrites every `unlikely` (opcode 2, GP 0.8.0 only) at an instruction start of a standard
/// program to `fallthrough` (1), keeping the GP 0.8.0 opcode numbering otherwise: the program
/// PolkaVM runs under GP 0.7.2 gas (as `pvm-bench-tool gp07` does). Results and instruction
/// counts are unchanged, and the basic blocks become exactly the ones of libpvm's GP 0.7.2
/// re-encoding, in which `fallthrough` ends a block (PolkaVM treats `unlikely` as a hint that
/// does not).
pub fn unlikely_to_fallthrough(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use pvm_core::isa::Code;
    let parts = pvm_core::program::StandardParts::parse(bytes, false).map_err(|e| e.to_string())?;
    let blob = &parts.blob;
    // The standard program ends with the code blob, which ends with `c ++ k`, |k| = ⌈|c|/8⌉.
    let c_len = blob.code.len();
    let c_start = bytes.len() - c_len.div_ceil(8) - c_len;
    let mut out = bytes.to_vec();
    let code = Code {
        code: &blob.code,
        bitmask: &blob.bitmask,
    };
    let mut pc = 0usize;
    while pc < c_len {
        if blob.bitmask[pc] && blob.code[pc] == 2 {
            out[c_start + pc] = 1;
        }
        pc += 1 + code.skip(pc as u32) as usize;
    }
    Ok(out)
}

/// A standard program with its GP 0.7.2 forms.
#[derive(Clone, Debug)]
pub struct Blob {
    /// Name (file stem).
    pub name: String,
    /// Path.
    pub file: PathBuf,
    /// GP 0.8.0 standard program (as built).
    pub gp080: Vec<u8>,
    /// The same for the GP 0.7.2 opcode table (for libpvm's GP 0.7.2 mode):
    /// `pvm_cli::bench::for_gp072`.
    pub gp072: Vec<u8>,
    /// For PolkaVM under GP 0.7.2 gas: GP 0.8.0 numbering with `unlikely` → `fallthrough`
    /// ([`unlikely_to_fallthrough`]), so both engines run the same program.
    pub gp072_polkavm: Vec<u8>,
}

impl Blob {
    /// Reads a blob and re-encodes it for GP 0.7.2.
    pub fn load(file: &Path) -> Result<Blob, String> {
        let gp080 = std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
        let gp072 = pvm_cli::bench::for_gp072(&gp080, true)
            .map_err(|e| format!("{}: GP 0.7.2 re-encoding: {e}", file.display()))?;
        let gp072_polkavm = unlikely_to_fallthrough(&gp080)
            .map_err(|e| format!("{}: unlikely -> fallthrough: {e}", file.display()))?;
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Blob {
            name,
            file: file.to_path_buf(),
            gp080,
            gp072,
            gp072_polkavm,
        })
    }

    /// The bytes each engine runs under `model`.
    pub fn bytes(&self, model: GasModel) -> ModelBytes<'_> {
        ModelBytes {
            libpvm: match model {
                GasModel::Gp080 => &self.gp080,
                GasModel::Gp072 => &self.gp072,
            },
            polkavm: match model {
                GasModel::Gp080 => &self.gp080,
                GasModel::Gp072 => &self.gp072_polkavm,
            },
        }
    }
}

/// One program run: a blob, its args and entry point, and the expected result.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Name (`sort`, or `large-O0:sort` for an entry of a combined blob).
    pub name: String,
    /// The blob.
    pub blob: Blob,
    /// Argument bytes.
    pub args: Vec<u8>,
    /// Entry pc.
    pub entry: u32,
    /// Expected result.
    pub expected: Expected,
}

/// The suite: the five programs, at default or small size.
pub const SUITE: [&str; 5] = ["blake2b", "sort", "sieve", "mandel", "interp"];
/// The larger blobs whose preparation is measured separately.
pub const LARGE_BLOBS: [&str; 3] = ["large-O0", "large-O2", "bigcode"];

fn read_expected(bench_dir: &Path) -> Result<serde_json::Value, String> {
    let path = bench_dir.join("expected.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The suite programs (`small`: the small args of expected.json, else the default size = empty
/// args), optionally filtered by name.
pub fn suite(bench_dir: &Path, small: bool, only: &[String]) -> Result<Vec<Workload>, String> {
    let expected = read_expected(bench_dir)?;
    let size = if small { "small" } else { "default" };
    let mut out = Vec::new();
    for name in SUITE {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let e = &expected["programs"][name][size];
        if e.is_null() {
            return Err(format!("expected.json has no programs.{name}.{size}"));
        }
        out.push(Workload {
            name: name.to_string(),
            blob: Blob::load(&bench_dir.join("programs").join(format!("{name}.jam")))?,
            args: hex_decode(e["args"].as_str().unwrap_or_default())?,
            entry: 0,
            expected: Expected::from_json(e)?,
        });
    }
    Ok(out)
}

/// The larger blobs, and the runs of them that expected.json knows (every entry of the combined
/// blobs at the small args, bigcode at its default): these are checked for correctness only.
pub fn large_blobs(bench_dir: &Path) -> Result<(Vec<Blob>, Vec<Workload>), String> {
    let expected = read_expected(bench_dir)?;
    let mut blobs = Vec::new();
    let mut runs = Vec::new();
    for name in LARGE_BLOBS {
        let blob = Blob::load(&bench_dir.join("programs").join(format!("{name}.jam")))?;
        let combined = &expected["combined"][name];
        if let Some(entries) = combined.as_object() {
            for (key, e) in entries {
                if !e.is_object() {
                    continue;
                }
                runs.push(Workload {
                    name: if key == "default" {
                        name.to_string()
                    } else {
                        format!("{name}:{key}")
                    },
                    blob: blob.clone(),
                    args: hex_decode(e["args"].as_str().unwrap_or_default())?,
                    entry: e["entry_pc"].as_u64().unwrap_or(0) as u32,
                    expected: Expected::from_json(e)?,
                });
            }
        }
        blobs.push(blob);
    }
    Ok((blobs, runs))
}

/// Every `.jam` in `bench/programs` (for the block-gas cross-check), sorted by name.
pub fn all_blobs(bench_dir: &Path) -> Result<Vec<Blob>, String> {
    let dir = bench_dir.join("programs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jam"))
        .collect();
    files.sort();
    files.iter().map(|f| Blob::load(f)).collect()
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// Timing samples of one quantity.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// All samples, in run order.
    pub samples: Vec<Duration>,
}

impl Stats {
    /// Median (the mean of the two middle samples for an even count).
    pub fn median(&self) -> Duration {
        let mut v = self.samples.clone();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }

    /// Smallest sample.
    pub fn min(&self) -> Duration {
        self.samples.iter().copied().min().unwrap_or_default()
    }

    /// Largest sample.
    pub fn max(&self) -> Duration {
        self.samples.iter().copied().max().unwrap_or_default()
    }

    /// (max − min) / median: how noisy the samples are.
    pub fn spread(&self) -> f64 {
        let m = self.median().as_secs_f64();
        if m == 0.0 {
            0.0
        } else {
            (self.max() - self.min()).as_secs_f64() / m
        }
    }
}

/// Geometric mean (None if empty).
pub fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// One engine on one program under one gas model.
#[derive(Clone, Debug)]
pub struct EngineResult {
    /// The engine.
    pub engine: EngineKind,
    /// Preparation times.
    pub prepare: Stats,
    /// Instance creation times.
    pub instantiate: Stats,
    /// Execution times.
    pub execute: Stats,
    /// Peak memory (from the probe), if measured.
    pub memory: Option<MemoryUse>,
    /// Why the memory probe failed.
    pub memory_error: Option<String>,
}

/// One program under one gas model.
#[derive(Clone, Debug)]
pub struct ProgramResult {
    /// Program name.
    pub name: String,
    /// Args (hex).
    pub args: Vec<u8>,
    /// The agreed outcome (libpvm's).
    pub outcome: Option<Outcome>,
    /// Instructions executed (GP 0.7 gas used; from expected.json when GP 0.7 was not run).
    pub instructions: u64,
    /// Per engine (empty if verification failed).
    pub engines: Vec<EngineResult>,
    /// Verification problems (mismatches, errors).
    pub failures: Vec<String>,
}

impl ProgramResult {
    /// The engine's result.
    pub fn engine(&self, kind: EngineKind) -> Option<&EngineResult> {
        self.engines.iter().find(|e| e.engine == kind)
    }

    /// PolkaVM `kind` execution time / libpvm's interpreter execution time (medians).
    pub fn speedup(&self, kind: EngineKind) -> Option<f64> {
        self.speedup_of(EngineKind::Libpvm, kind)
    }

    /// `theirs` execution time / `ours` execution time (medians; > 1: `ours` is faster).
    pub fn speedup_of(&self, ours: EngineKind, theirs: EngineKind) -> Option<f64> {
        let ours = self.engine(ours)?.execute.median().as_secs_f64();
        let theirs = self.engine(theirs)?.execute.median().as_secs_f64();
        (ours > 0.0 && theirs > 0.0).then(|| theirs / ours)
    }
}

/// All programs under one gas model.
#[derive(Clone, Debug)]
pub struct ModelResult {
    /// Gas model.
    pub model: GasModel,
    /// Programs.
    pub programs: Vec<ProgramResult>,
}

impl ModelResult {
    /// Geometric mean of [`ProgramResult::speedup`] over the programs that have it.
    pub fn geomean_speedup(&self, kind: EngineKind) -> Option<f64> {
        self.geomean_speedup_of(EngineKind::Libpvm, kind)
    }

    /// Geometric mean of [`ProgramResult::speedup_of`] over the programs that have it.
    pub fn geomean_speedup_of(&self, ours: EngineKind, theirs: EngineKind) -> Option<f64> {
        let v: Vec<f64> = self
            .programs
            .iter()
            .filter_map(|p| p.speedup_of(ours, theirs))
            .collect();
        geomean(&v)
    }
}

/// Preparation of one larger blob under one gas model.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Blob name.
    pub blob: String,
    /// Standard program size in bytes.
    pub size: usize,
    /// Gas model.
    pub model: GasModel,
    /// Per engine: (engine, prepare, instantiate).
    pub engines: Vec<(EngineKind, Stats, Stats)>,
    /// libpvm: compiling every block after preparation (`Program::block_gas_costs`), work that
    /// execution normally does lazily for the blocks it reaches.
    pub compile_all: Stats,
}

impl LoadResult {
    /// PolkaVM `kind` preparation time / libpvm's interpreter's (medians).
    pub fn speedup(&self, kind: EngineKind) -> Option<f64> {
        self.speedup_of(EngineKind::Libpvm, kind)
    }

    /// The median preparation time of `kind`, in seconds.
    pub fn prepare_secs(&self, kind: EngineKind) -> Option<f64> {
        self.engines
            .iter()
            .find(|(e, _, _)| *e == kind)
            .map(|(_, p, _)| p.median().as_secs_f64())
    }

    /// `theirs` preparation time / `ours` (medians).
    pub fn speedup_of(&self, ours: EngineKind, theirs: EngineKind) -> Option<f64> {
        let (ours, theirs) = (self.prepare_secs(ours)?, self.prepare_secs(theirs)?);
        (ours > 0.0).then(|| theirs / ours)
    }
}

/// The machine the numbers come from.
#[derive(Clone, Debug)]
pub struct Machine {
    /// CPU model (`lscpu` "Model name" / /proc/cpuinfo "model name").
    pub cpu: String,
    /// Logical CPUs available.
    pub cores: usize,
    /// `rustc --version` at build time.
    pub rustc: String,
    /// Kernel release.
    pub kernel: String,
    /// The libpvm source measured: `git rev-parse --short HEAD`, `+dirty` if crates/pvm-core
    /// has uncommitted changes.
    pub revision: String,
    /// /proc/loadavg at the start and at the end of the run.
    pub load_start: String,
    /// See `load_start`.
    pub load_end: String,
}

impl Machine {
    /// Describes this machine.
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rustc: env!("PVM_BENCH_RUSTC_VERSION").to_string(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| std::env::consts::OS.to_string()),
            revision: String::new(),
            load_start: loadavg(),
            load_end: String::new(),
        }
    }
}

/// `git rev-parse --short HEAD` of the repository holding `bench_dir`, with `+dirty` when
/// crates/pvm-core has uncommitted changes ("unknown" without git).
pub fn git_revision(bench_dir: &Path) -> String {
    let repo = bench_dir.join("..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "crates/pvm-core",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+dirty")
    } else {
        head
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Everything one invocation measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Machine description.
    pub machine: Machine,
    /// `--small`.
    pub small: bool,
    /// Timed runs per engine and program.
    pub runs: usize,
    /// Why the recompiler was left out (None = it ran).
    pub recompiler_error: Option<String>,
    /// Why PolkaVM's musttail interpreter was left out (None = it ran).
    pub musttail_error: Option<String>,
    /// Whether timings were taken (false: correctness only).
    pub timed: bool,
    /// Per gas model.
    pub models: Vec<ModelResult>,
    /// Preparation of the larger blobs.
    pub load: Vec<LoadResult>,
    /// Correctness runs of the larger blobs: (workload name, model, failures).
    pub large_runs: Vec<(String, GasModel, Vec<String>)>,
    /// Block-gas cross-check, per blob and model.
    pub block_gas: Vec<BlockGasCheck>,
}

impl Report {
    /// Every failure: mismatches, errors, block-gas differences.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.models {
            for p in &m.programs {
                for f in &p.failures {
                    out.push(format!("{} [GP {}]: {f}", p.name, m.model.key()));
                }
            }
        }
        for (name, model, failures) in &self.large_runs {
            for f in failures {
                out.push(format!("{name} [GP {}]: {f}", model.key()));
            }
        }
        for c in &self.block_gas {
            if let Some(e) = &c.error {
                out.push(format!("block gas {} [GP {}]: {e}", c.blob, c.model.key()));
            }
            if c.mismatch_count > 0 {
                out.push(format!(
                    "block gas {} [GP {}]: {} difference(s), first: {}",
                    c.blob,
                    c.model.key(),
                    c.mismatch_count,
                    c.mismatches.first().map_or("", String::as_str)
                ));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Small sizes (expected.json's small args).
    pub small: bool,
    /// Timed runs per engine (0 = verify only, no timing).
    pub runs: usize,
    /// Gas models.
    pub models: Vec<GasModel>,
    /// Only these programs (empty = the whole suite).
    pub only: Vec<String>,
    /// Use the recompiler (if it works here).
    pub recompiler: bool,
    /// Measure peak memory with child processes of this executable (`pvm-bench`).
    pub memory_probe_exe: Option<PathBuf>,
    /// Measure preparation of the larger blobs (and check their runs).
    pub load: bool,
    /// Run the block-gas cross-check.
    pub block_gas: bool,
    /// The `bench/` directory.
    pub bench_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            small: false,
            runs: 5,
            models: GasModel::ALL.to_vec(),
            only: Vec::new(),
            recompiler: true,
            memory_probe_exe: None,
            load: true,
            block_gas: true,
            bench_dir: default_bench_dir(),
        }
    }
}

/// Compares an outcome with the reference and with expected.json.
fn verify(
    kind: EngineKind,
    outcome: &Outcome,
    reference: Option<&Outcome>,
    expected: &Expected,
    model: GasModel,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = reference {
        if outcome != r {
            out.push(format!(
                "MISMATCH {} vs libpvm: status {} vs {}, gas used {} vs {}, output {} vs {}, host calls {} vs {}",
                kind.label(),
                outcome.status,
                r.status,
                outcome.gas_used,
                r.gas_used,
                hex_encode(&outcome.output),
                hex_encode(&r.output),
                outcome.host_calls,
                r.host_calls
            ));
        }
    }
    if outcome.status != expected.status
        || outcome.output != expected.output
        || outcome.gas_used != expected.gas(model)
    {
        out.push(format!(
            "MISMATCH {} vs bench/expected.json: status {} vs {}, gas used {} vs {}, output {} vs {}",
            kind.label(),
            outcome.status,
            expected.status,
            outcome.gas_used,
            expected.gas(model),
            hex_encode(&outcome.output),
            hex_encode(&expected.output)
        ));
    }
    out
}

/// Runs every engine once on `w` and checks that they agree. Returns the reference outcome
/// (libpvm's) and the failures.
pub fn verify_workload(
    engines: &Engines,
    w: &Workload,
    model: GasModel,
) -> (Option<Outcome>, Vec<String>) {
    let mut failures = Vec::new();
    let mut reference: Option<Outcome> = None;
    for kind in engines.available() {
        match engines.run_once(kind, &w.blob.bytes(model), model, &w.args, w.entry) {
            Ok(sample) => {
                failures.extend(verify(
                    kind,
                    &sample.outcome,
                    reference.as_ref(),
                    &w.expected,
                    model,
                ));
                if kind == EngineKind::Libpvm {
                    reference = Some(sample.outcome);
                }
            }
            Err(e) => failures.push(format!("{} failed: {e}", kind.label())),
        }
    }
    (reference, failures)
}

/// Runs the comparison. Progress goes to stderr.
pub fn run(options: &Options) -> Result<Report, String> {
    let mut machine = Machine::detect();
    machine.revision = git_revision(&options.bench_dir);
    let engines = Engines::new(options.recompiler)?;
    if let Some(e) = &engines.recompiler_error {
        eprintln!("note: PolkaVM recompiler not available, continuing without it: {e}");
    }
    if let Some(e) = &engines.musttail_error {
        eprintln!("note: PolkaVM musttail interpreter not available, continuing without it: {e}");
    }
    let workloads = suite(&options.bench_dir, options.small, &options.only)?;
    let available = engines.available();

    // GP 0.7 first: its gas used is the instruction count that the GP 0.8 rows use too.
    let mut order = options.models.clone();
    order.sort_by_key(|m| if *m == GasModel::Gp072 { 0 } else { 1 });
    let mut models = Vec::new();
    let mut instructions: std::collections::HashMap<String, u64> = Default::default();
    for &model in &order {
        let mut programs = Vec::new();
        for w in &workloads {
            eprintln!("[GP {}] {}: verifying", model.key(), w.name);
            let (reference, mut failures) = verify_workload(&engines, w, model);
            let count = match (&reference, model) {
                (Some(r), GasModel::Gp072) => {
                    instructions.insert(w.name.clone(), r.gas_used);
                    r.gas_used
                }
                _ => *instructions
                    .get(&w.name)
                    .unwrap_or(&w.expected.instructions),
            };
            let mut results: Vec<EngineResult> = Vec::new();
            if failures.is_empty() && options.runs > 0 {
                eprintln!(
                    "[GP {}] {}: timing {} runs",
                    model.key(),
                    w.name,
                    options.runs
                );
                results = available
                    .iter()
                    .map(|&engine| EngineResult {
                        engine,
                        prepare: Stats::default(),
                        instantiate: Stats::default(),
                        execute: Stats::default(),
                        memory: None,
                        memory_error: None,
                    })
                    .collect();
                let reference = reference.clone().expect("verified");
                'runs: for run in 0..options.runs {
                    // Rotate the engine order from run to run so no engine always goes first.
                    for i in 0..available.len() {
                        let slot = (i + run) % available.len();
                        let kind = available[slot];
                        let sample: Sample = match engines.run_once(
                            kind,
                            &w.blob.bytes(model),
                            model,
                            &w.args,
                            w.entry,
                        ) {
                            Ok(s) => s,
                            Err(e) => {
                                failures.push(format!("{} failed: {e}", kind.label()));
                                break 'runs;
                            }
                        };
                        if sample.outcome != reference {
                            failures.extend(verify(
                                kind,
                                &sample.outcome,
                                Some(&reference),
                                &w.expected,
                                model,
                            ));
                            break 'runs;
                        }
                        let r = &mut results[slot];
                        r.prepare.samples.push(sample.prepare);
                        r.instantiate.samples.push(sample.instantiate);
                        r.execute.samples.push(sample.execute);
                    }
                }
                if let (Some(exe), Some(reference)) = (
                    &options.memory_probe_exe,
                    &reference_gas(&failures, &reference),
                ) {
                    // Not for the musttail interpreter: its child process is not a memory probe.
                    for r in results
                        .iter_mut()
                        .filter(|r| r.engine != EngineKind::PolkavmMusttail)
                    {
                        match memory::probe(
                            exe,
                            r.engine,
                            model,
                            &w.blob.file,
                            &w.args,
                            w.entry,
                            *reference,
                        ) {
                            Ok(m) => r.memory = Some(m),
                            Err(e) => {
                                eprintln!("warning: {} {}: {e}", w.name, r.engine.label());
                                r.memory_error = Some(e);
                            }
                        }
                    }
                }
                if !failures.is_empty() {
                    results.clear();
                }
            }
            for f in &failures {
                eprintln!("FAILED {} [GP {}]: {f}", w.name, model.key());
            }
            programs.push(ProgramResult {
                name: w.name.clone(),
                args: w.args.clone(),
                outcome: reference,
                instructions: count,
                engines: results,
                failures,
            });
        }
        models.push(ModelResult { model, programs });
    }
    // Report order: as requested.
    models.sort_by_key(|m| options.models.iter().position(|x| *x == m.model));

    let mut load = Vec::new();
    let mut large_runs = Vec::new();
    if options.load {
        let (blobs, runs) = large_blobs(&options.bench_dir)?;
        for &model in &options.models {
            for w in &runs {
                eprintln!("[GP {}] {}: verifying", model.key(), w.name);
                let (_, failures) = verify_workload(&engines, w, model);
                for f in &failures {
                    eprintln!("FAILED {} [GP {}]: {f}", w.name, model.key());
                }
                large_runs.push((w.name.clone(), model, failures));
            }
            if options.runs == 0 {
                continue;
            }
            for blob in &blobs {
                eprintln!("[GP {}] {}: load timing", model.key(), blob.name);
                // Without the musttail interpreter (see `Engines::load_once`).
                let loaders: Vec<EngineKind> = available
                    .iter()
                    .copied()
                    .filter(|&k| k != EngineKind::PolkavmMusttail)
                    .collect();
                let mut per_engine: Vec<(EngineKind, Stats, Stats)> = loaders
                    .iter()
                    .map(|&k| (k, Stats::default(), Stats::default()))
                    .collect();
                let mut compile_all = Stats::default();
                for run in 0..options.runs {
                    for i in 0..loaders.len() {
                        let slot = (i + run) % loaders.len();
                        match engines.load_once(loaders[slot], &blob.bytes(model), model) {
                            Ok((p, inst, all)) => {
                                per_engine[slot].1.samples.push(p);
                                per_engine[slot].2.samples.push(inst);
                                compile_all.samples.extend(all);
                            }
                            Err(e) => {
                                let f = format!("{} load failed: {e}", loaders[slot].label());
                                eprintln!("FAILED {} [GP {}]: {f}", blob.name, model.key());
                                large_runs.push((blob.name.clone(), model, vec![f]));
                            }
                        }
                    }
                }
                load.push(LoadResult {
                    blob: blob.name.clone(),
                    size: blob.gp080.len(),
                    model,
                    engines: per_engine,
                    compile_all,
                });
            }
        }
    }

    let mut block_gas = Vec::new();
    if options.block_gas {
        for blob in all_blobs(&options.bench_dir)? {
            for model in GasModel::ALL {
                let b = blob.bytes(model);
                let c =
                    blockgas::check(&blob.name, model, b.libpvm, b.polkavm, &engines.interpreter);
                eprintln!(
                    "block gas {} [GP {}]: {} blocks, {}",
                    c.blob,
                    model.key(),
                    c.blocks,
                    if c.ok() {
                        "identical".to_string()
                    } else {
                        format!("{} difference(s)", c.mismatch_count)
                    }
                );
                block_gas.push(c);
            }
        }
    }

    machine.load_end = loadavg();
    Ok(Report {
        machine,
        small: options.small,
        runs: options.runs,
        recompiler_error: engines.recompiler_error.clone(),
        musttail_error: engines.musttail_error.clone(),
        timed: options.runs > 0,
        models,
        load,
        large_runs,
        block_gas,
    })
}

fn reference_gas(failures: &[String], reference: &Outcome) -> Option<u64> {
    failures.is_empty().then_some(reference.gas_used)
}
