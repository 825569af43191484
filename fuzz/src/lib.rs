//! The bodies of the fuzz targets (`fuzz_targets/*.rs` call these), kept in a library so that
//! they can be read, reused and replayed over a corpus (`cargo +nightly fuzz run TARGET DIR --
//! -runs=0`).
//!
//! Every body must never panic on any input, except where it asserts a property (run = step =
//! clone-then-run, a written JIP-7 log parses again, identical traces do not differ).

use pvm_core::jip7::{Jip7Log, ReplayOptions};
use pvm_core::{Access, Exit, Instance, Program, ProgramOptions, Spec};

pub mod capi;
pub use capi::capi_calls;
#[cfg(feature = "polkavm")]
pub mod polkavm_diff;

/// Reads a fuzz input as a stream of small integers (0 once the input is used up); targets add
/// their own readers in their modules.
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Bytes<'_> {
    pub(crate) fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// Gas for a run of a fuzzed program: small, so that every input runs in milliseconds.
pub const RUN_GAS: i64 = 20_000;

/// The spec selected by bit 0 of a flags byte.
pub fn spec_of(flags: u8) -> Spec {
    if flags & 1 == 0 {
        Spec::Gp0_8_0
    } else {
        Spec::Gp0_7_2
    }
}

/// Runs `vm` with `gas`, continuing after every host call, at most `max_calls` of them.
pub fn run_to_end(vm: &mut Instance, max_calls: u32) -> Exit {
    let mut calls = 0;
    loop {
        match vm.run() {
            Exit::HostCall(_) if calls < max_calls => calls += 1,
            e => return e,
        }
    }
}

/// Touches the read-only API of an instance (output, hash, dump, pages).
fn inspect(vm: &Instance) {
    let _ = vm.output_len();
    let _ = vm.output();
    let _ = pvm_core::trace::pvm_hash(vm);
    let _ = vm.memory().pages().take(64).count();
}

/// Target `load_standard`: `flags ⌢ blob`; bit 0: GP 0.7.2, bit 1: with a metadata prefix. A
/// blob that loads is instantiated (the first 16 bytes as arguments) and run with little gas.
pub fn load_standard(data: &[u8]) {
    let Some((&flags, blob)) = data.split_first() else {
        return;
    };
    let spec = spec_of(flags);
    let Ok(p) = Program::from_standard(blob, flags & 2 != 0, ProgramOptions::new(spec)) else {
        return;
    };
    let _ = p.standard_layout();
    if let Ok(mut vm) = p.instantiate(&blob[..blob.len().min(16)]) {
        vm.set_gas(RUN_GAS);
        run_to_end(&mut vm, 100);
        inspect(&vm);
    }
}

/// Target `load_code`: `flags ⌢ code blob` (GP A.2 `E(|j|) E1(z) E(|c|) j c k`). A blob that
/// loads is disassembled and run with little gas.
pub fn load_code(data: &[u8]) {
    let Some((&flags, blob)) = data.split_first() else {
        return;
    };
    let Ok(p) = Program::from_code(blob, ProgramOptions::new(spec_of(flags))) else {
        return;
    };
    if p.blob().code.len() <= 4096 {
        let _ = pvm_core::disasm::disassemble(&p);
    }
    let mut vm = p.instantiate(&[]).expect("a code blob takes no arguments");
    vm.set_gas(RUN_GAS);
    run_to_end(&mut vm, 100);
    inspect(&vm);
}

/// What must agree between run, step and clone-then-run.
#[derive(Debug, PartialEq, Eq)]
pub struct Final {
    pub exit: Exit,
    pub pc: u32,
    pub gas: i64,
    pub regs: [u64; 13],
    pub hash: [u8; 32],
}

fn final_of(vm: &Instance, exit: Exit) -> Final {
    Final {
        exit,
        pc: vm.pc(),
        gas: vm.gas(),
        regs: *vm.registers(),
        hash: pvm_core::trace::pvm_hash(vm),
    }
}

/// The most instructions the step path executes before the comparison is given up.
const MAX_STEPS: u32 = 200_000;

/// Target `run_step_clone`: `flags ⌢ gas (2 bytes LE) ⌢ split (2 bytes LE) ⌢ code blob`, run
/// with 64 KiB of writable and 4 KiB of read-only memory mapped. Running to the end (continuing
/// after host calls), single-stepping to the end, and stepping `split` instructions, cloning
/// and running the clone must all end in the same exit, pc, gas, registers and PVM hash.
pub fn run_step_clone(data: &[u8]) {
    if data.len() < 5 {
        return;
    }
    let (flags, gas, split) = (
        data[0],
        u16::from_le_bytes([data[1], data[2]]) as i64,
        u16::from_le_bytes([data[3], data[4]]) as u32,
    );
    let Ok(p) = Program::from_code(&data[5..], ProgramOptions::new(spec_of(flags))) else {
        return;
    };
    let mut base = p.instantiate(&[]).expect("a code blob takes no arguments");
    base.memory_mut()
        .map(0x10000, 0x10000, Access::Write)
        .expect("valid range");
    base.memory_mut()
        .map(0x20000, 0x1000, Access::Read)
        .expect("valid range");
    base.memory_mut()
        .write_unchecked(0x20000, &data[..data.len().min(4096)])
        .expect("mapped");
    base.set_gas(gas);

    let mut run = base.clone();
    let run_exit = run_to_end(&mut run, u32::MAX);
    let ran = final_of(&run, run_exit);

    let mut stepped = base.clone();
    let mut steps = 0u32;
    let mut snapshot = None;
    let step_exit = loop {
        if steps == split {
            snapshot = Some(stepped.clone());
        }
        if steps >= MAX_STEPS {
            return;
        }
        steps += 1;
        match stepped.step() {
            None | Some(Exit::HostCall(_)) => {}
            Some(e) => break e,
        }
    };
    assert_eq!(final_of(&stepped, step_exit), ran, "step vs run");

    if let Some(mut c) = snapshot {
        let e = run_to_end(&mut c, u32::MAX);
        assert_eq!(final_of(&c, e), ran, "step {split}, clone, run vs run");
    }

    // The other backend: `base` runs on the default one (the recompiler where supported).
    if pvm_core::Backend::recompiler_supported() {
        let mut opts = ProgramOptions::new(spec_of(flags));
        opts.backend = pvm_core::Backend::Interpreter;
        let p = Program::from_code(&data[5..], opts).expect("loaded above");
        let mut other = p.instantiate(&[]).expect("a code blob takes no arguments");
        *other.memory_mut() = base.memory().clone();
        other.set_gas(gas);
        let e = run_to_end(&mut other, u32::MAX);
        assert_eq!(final_of(&other, e), ran, "interpreter vs default backend");
    }
}

/// Target `jip7`: `flags ⌢ log`. The parser must be total; a parsed log must parse again after
/// writing it out; and replaying it (GP 0.8.0, at most [`RUN_GAS`] gas) must not fail other than
/// with an error.
pub fn jip7(data: &[u8]) {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let Ok(mut log) = Jip7Log::parse_bytes(text) else {
        return;
    };
    let written = log.to_text();
    Jip7Log::parse(&written).expect("a log libpvm wrote parses");
    if let Some(s) = log.start.as_mut() {
        s.gas = s.gas.min(RUN_GAS as u64);
    }
    if log.program.len() > 1 << 16 {
        return;
    }
    let opts = ReplayOptions {
        spec: Spec::Gp0_8_0,
        gas: Some(RUN_GAS),
        verify: flags & 1 == 0,
        verify_end: flags & 2 == 0,
        ignore_gas: flags & 4 != 0,
        all: flags & 8 != 0,
        ..ReplayOptions::default()
    };
    let _ = pvm_core::jip7::replay_with(&log, &opts);
}

/// Target `trace_diff`: two traces separated by the first 0 byte (the rest is the second). The
/// line parser and the diff must be total, and a trace never differs from itself.
pub fn trace_diff(data: &[u8]) {
    let (a, b) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    for line in a.lines().chain(b.lines()) {
        let _ = pvm_cli::tracing::parse_trace_line(line);
    }
    let _ = pvm_cli::tracing::trace_diff(&a, &b);
    assert_eq!(
        pvm_cli::tracing::trace_diff(&a, &a),
        None,
        "a trace differs from itself"
    );
}
