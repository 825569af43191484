//! The per-instruction PVM-hash benchmark (`pvm-hash-bench`): a guest that keeps a chosen number
//! of pages non-zero, and the timing of the ways of hashing its state after every step.

use std::time::Instant;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use pvm_cli::tracing::{trace, HostMode, TraceOptions};
use pvm_core::asm::{Assembler, Operands};
use pvm_core::isa::Opcode;
use pvm_core::trace::{pvm_hash, registers_and_gas, MemoryImage, StepHasher};
use pvm_core::{Access, Instance, Program, ProgramOptions};

type Blake2b256 = Blake2b<U32>;

/// Where the guest's pages start.
pub const BASE: u32 = 0x10_0000;

/// The hash preimage size of a state with `pages` hashed pages: 13 registers and the gas (8
/// bytes each), then 4 + 4096 bytes per page.
pub fn preimage_len(pages: u32) -> usize {
    112 + 4100 * pages as usize
}

/// A guest that writes a non-zero word at the end of each of `pages` pages (`pages` a power of
/// two, at most 1024) at [`BASE`], then loops forever over 8 instructions: 5 ALU ops, one store
/// and one load into page `i mod pages` (the store goes 8 bytes below the word written first, so
/// every page stays non-zero), and a jump back. Per iteration that is one store (a step that may
/// write memory) and one step that changes neither registers nor gas (the jump: under GP 0.8.0
/// the next block is charged by the step that enters it). The non-zero words sit at the end of
/// their pages, the worst case for finding out whether a page is all zero.
pub fn guest(pages: u32) -> Instance {
    assert!(pages.is_power_of_two() && pages <= 1024);
    let mut a = Assembler::new();
    for k in 0..pages {
        let at = BASE + k * 4096 + 4088;
        a.inst(
            Opcode::StoreImmU64,
            Operands {
                imm1: at as i64,
                imm2: k as i64 + 1,
                ..Operands::none()
            },
        );
    }
    a.inst(Opcode::LoadImm, Operands::reg_imm(2, BASE as i64));
    // The loop must start a basic block to be a jump target.
    a.inst(Opcode::Fallthrough, Operands::none());
    let top = a.here();
    a.inst(Opcode::AddImm64, Operands::reg_reg_imm(1, 1, 1));
    a.inst(Opcode::Xor, Operands::three(4, 4, 1));
    a.inst(
        Opcode::AndImm,
        Operands::reg_reg_imm(5, 1, pages as i64 - 1),
    );
    a.inst(Opcode::ShloLImm64, Operands::reg_reg_imm(5, 5, 12));
    a.inst(Opcode::Add64, Operands::three(5, 5, 2));
    a.inst(Opcode::StoreIndU64, Operands::reg_reg_imm(4, 5, 4080));
    a.inst(Opcode::LoadIndU64, Operands::reg_reg_imm(6, 5, 4088));
    a.inst(Opcode::Jump, Operands::to(top));
    let program = Program::from_code(&a.finish(), ProgramOptions::default()).expect("valid code");
    let mut vm = program.instantiate(&[]).expect("instance");
    vm.memory_mut()
        .map(BASE, pages * 4096, Access::Write)
        .expect("map");
    vm.set_gas(i64::MAX);
    // Run the prologue (the stores, the load_imm and the fallthrough), so every page is non-zero
    // from here on.
    for _ in 0..pages + 2 {
        assert!(vm.step().is_none());
    }
    vm
}

/// CPU time used by the whole process so far (all threads), in seconds; NaN where unknown.
pub fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec; the clock id is a constant of the platform.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0 {
            return t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9;
        }
    }
    f64::NAN
}

/// Steps per second of `f` run `steps` times.
pub fn rate(steps: u64, f: impl FnMut()) -> f64 {
    timed(steps, f).0
}

/// Steps per second of wall-clock and of CPU time of `f` run `steps` times.
fn timed(steps: u64, mut f: impl FnMut()) -> (f64, f64) {
    let t = Timer::start();
    for _ in 0..steps {
        f();
    }
    t.rates(steps)
}

/// The median of `xs` (not empty).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The hash as it was computed before the word-wise all-zero check: the same preimage, the
/// pages tested byte by byte (`iter().any`). Kept here only to measure the difference.
pub fn state_hash_bytewise(vm: &Instance) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(registers_and_gas(vm.registers(), vm.gas()));
    for (p, bytes) in vm
        .memory()
        .readable_backed_pages()
        .filter(|(_, b)| b.iter().any(|x| *x != 0))
    {
        h.update(p.to_le_bytes());
        h.update(bytes);
    }
    h.finalize().into()
}

/// What is measured, one column each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The `blake2` crate alone over one contiguous buffer of the preimage's size.
    Ceiling,
    /// `pvm_hash` of an unchanging state (no stepping): hashing throughput of `state_hash`.
    HashOnly,
    /// Step, then the hash with the old byte-wise all-zero check.
    Bytewise,
    /// Step, then `pvm_hash`.
    Sequential,
    /// Step, then `StepHasher::sequential()` (reuse of unchanged hashes).
    Reuse,
    /// Step, then `StepHasher::parallel(n)` (reuse, worker threads), tickets resolved with a lag.
    Parallel(usize),
    /// `pvm trace` (`pvm_cli::tracing::trace`) into a sink, with `hash_threads` workers.
    Trace(usize),
}

impl Mode {
    /// Column title.
    pub fn title(self) -> String {
        match self {
            Mode::Ceiling => "BLAKE2b ceiling".into(),
            Mode::HashOnly => "state_hash only".into(),
            Mode::Bytewise => "step+hash, byte-wise scan (before)".into(),
            Mode::Sequential => "step+hash".into(),
            Mode::Reuse => "step+hash, reuse unchanged".into(),
            Mode::Parallel(n) => format!("step+hash, reuse, {n} worker{}", plural(n)),
            Mode::Trace(0) => "`pvm trace`, sequential".into(),
            Mode::Trace(n) => format!("`pvm trace`, {n} worker{}", plural(n)),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One measurement's setting.
pub struct Setup {
    /// Non-zero pages.
    pub pages: u32,
    /// Steps (hashes) per measurement.
    pub steps: u64,
}

/// Gas that makes [`guest`] run out after about `steps` more steps (GP 0.8.0 block gas: the loop
/// costs the same every round).
fn gas_for(pages: u32, steps: u64) -> i64 {
    let mut vm = guest(pages);
    let g0 = vm.gas();
    for _ in 0..800 {
        vm.step();
    }
    ((g0 - vm.gas()) as f64 * steps as f64 / 800.0) as i64
}

/// One run of one column.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Hashed steps per second of wall-clock time (for the ceiling: hashes of the preimage's
    /// size per second).
    pub rate: f64,
    /// Hashed steps per second of CPU time of the process (all its threads): what the work
    /// costs, whatever else the machine runs.
    pub cpu_rate: f64,
    /// For the modes with a `StepHasher`: the share of hashes reused.
    pub reused: Option<f64>,
}

/// Wall-clock and process CPU time of a timed section.
struct Timer(Instant, f64);

impl Timer {
    fn start() -> Timer {
        Timer(Instant::now(), process_cpu_seconds())
    }

    /// (steps per wall-clock second, steps per CPU second)
    fn rates(&self, steps: u64) -> (f64, f64) {
        let wall = self.0.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - self.1;
        (steps as f64 / wall, steps as f64 / cpu)
    }
}

/// Runs one column once.
pub fn measure(mode: Mode, s: &Setup) -> Measured {
    let ((rate, cpu_rate), reused) = measure_timed(mode, s);
    Measured {
        rate,
        cpu_rate,
        reused,
    }
}

fn measure_timed(mode: Mode, s: &Setup) -> ((f64, f64), Option<f64>) {
    let steps = s.steps;
    match mode {
        Mode::Ceiling => {
            let len = preimage_len(s.pages);
            let buf: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let mut sink = 0u8;
            let r = timed(steps, || {
                sink ^= Blake2b256::digest(std::hint::black_box(&buf))[0];
            });
            std::hint::black_box(sink);
            (r, None)
        }
        Mode::HashOnly => {
            let vm = guest(s.pages);
            (
                timed(steps, || {
                    std::hint::black_box(pvm_hash(std::hint::black_box(&vm)));
                }),
                None,
            )
        }
        Mode::Bytewise | Mode::Sequential => {
            let mut vm = guest(s.pages);
            let f = if mode == Mode::Bytewise {
                state_hash_bytewise
            } else {
                pvm_hash
            };
            (
                timed(steps, || {
                    vm.step();
                    std::hint::black_box(f(&vm));
                }),
                None,
            )
        }
        Mode::Reuse | Mode::Parallel(_) => {
            let mut vm = guest(s.pages);
            let mut hasher = match mode {
                Mode::Parallel(n) => StepHasher::parallel(n),
                _ => StepHasher::sequential(),
            };
            let lag = if hasher.threads() == 0 { 0 } else { 4096 };
            let mut tickets = std::collections::VecDeque::new();
            let t = Timer::start();
            for _ in 0..steps {
                let op = vm.program().instruction_at(vm.next_pc()).opcode;
                vm.step();
                hasher.executed(op);
                tickets.push_back(hasher.request_for(&vm));
                while tickets.len() > lag {
                    std::hint::black_box(hasher.resolve(tickets.pop_front().expect("a ticket")));
                }
            }
            while let Some(x) = tickets.pop_front() {
                std::hint::black_box(hasher.resolve(x));
            }
            let r = t.rates(steps);
            let st = hasher.stats();
            (r, Some(st.reused as f64 / (st.reused + st.computed) as f64))
        }
        Mode::Trace(n) => {
            let mut vm = guest(s.pages);
            vm.set_gas(gas_for(s.pages, steps));
            let opts = TraceOptions {
                hash_threads: n,
                ..TraceOptions::default()
            };
            let mut out = LineCounter(0);
            let t = Timer::start();
            let (exit, _) =
                trace(&mut vm, &mut HostMode::Stop, None, &opts, &mut out).expect("trace");
            assert_eq!(exit, pvm_core::Exit::OutOfGas);
            // One line per step, then the EXIT line.
            (t.rates(out.0 - 1), None)
        }
    }
}

/// Counts the lines written to it.
struct LineCounter(u64);

impl std::io::Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.iter().filter(|b| **b == b'\n').count() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Microseconds per snapshot of a [`guest`]'s state: ([`MemoryImage::capture`] — a copy of the
/// non-zero pages, what the parallel hasher takes after a store — and [`pvm_core::Memory`]'s
/// `clone`, a copy of the whole memory with its page table).
pub fn snapshot_micros(pages: u32, n: u64) -> (f64, f64) {
    let vm = guest(pages);
    let image = 1e6
        / rate(n, || {
            std::hint::black_box(MemoryImage::capture(std::hint::black_box(vm.memory())));
        });
    let clone = 1e6
        / rate(n, || {
            std::hint::black_box(std::hint::black_box(vm.memory()).clone());
        });
    (image, clone)
}
