//! Stateless re-execution of a log.

use crate::host::{HostCallContext, HostOutcome};
use crate::inner::InnerPvms;
use crate::instance::{Exit, Instance};
use crate::memory::Memory;
use crate::program::{Program, ProgramOptions};
use crate::Spec;

use super::format::{HostCallEntry, Jip7Error, Jip7Log, PageChange, Termination, VmState};
use super::record::{state_of, termination_of, CallRecorder, PageMap};

/// The initial gas of a replay whose log has no `start` line, unless the caller gives one: 10^9,
/// the same default as `pvm run`. (A bound, not 2^63 − 1: a looping program must stop.)
pub const DEFAULT_REPLAY_GAS: i64 = 1_000_000_000;

/// Loads the logged program: a JAM service blob (with metadata), else a standard program, else
/// a plain code blob.
pub fn load_program(bytes: &[u8], spec: Spec) -> Result<Program, Jip7Error> {
    load_program_with(bytes, ProgramOptions::new(spec))
}

/// [`load_program`] with every program option (spec and backend).
pub fn load_program_with(bytes: &[u8], opts: ProgramOptions) -> Result<Program, Jip7Error> {
    if let Err(e) = opts.backend.resolve() {
        return Err(Jip7Error::Program(e.to_string()));
    }
    Program::from_standard(bytes, true, opts)
        .or_else(|_| Program::from_standard(bytes, false, opts))
        .or_else(|_| Program::from_code(bytes, opts))
        .map_err(|e| Jip7Error::Program(e.to_string()))
}

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Gray Paper version of the logged program.
    pub spec: Spec,
    /// Initial gas when the log has no `start` line (`None`: [`DEFAULT_REPLAY_GAS`]).
    pub gas: Option<i64>,
    /// Check every `ecalli` line (index, pc, gas, registers) and every logged memory read, and
    /// re-execute `x-builtin` calls with libpvm's built-ins, comparing their effects.
    pub verify: bool,
    /// Compare the termination (kind, pc, gas, registers) with the log's.
    pub verify_end: bool,
    /// Leave gas out of every comparison (for logs of an engine whose gas differs).
    pub ignore_gas: bool,
    /// Report every divergence, not only the first (the replay goes on with the logged values).
    pub all: bool,
    /// The backend that executes the program and its inner machines (default `Auto`).
    pub backend: crate::Backend,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            spec: Spec::default(),
            gas: None,
            verify: true,
            verify_end: true,
            ignore_gas: false,
            all: false,
            backend: crate::Backend::Auto,
        }
    }
}

/// One difference between the log and the replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Where: `ecalli #3` (1-based, with the logged index), `termination`, ….
    pub what: String,
    /// Logged vs replayed values.
    pub message: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "divergence at {}: {}", self.what, self.message)
    }
}

impl From<Divergence> for Jip7Error {
    fn from(d: Divergence) -> Self {
        Jip7Error::Divergence {
            what: d.what,
            message: d.message,
        }
    }
}

/// The outcome of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// Host calls replayed.
    pub host_calls: usize,
    /// How the run ended.
    pub exit: Exit,
    /// Final pc, gas and registers.
    pub end: VmState,
    /// The divergences found (at most one unless [`ReplayOptions::all`]); empty: the replay
    /// matches the log.
    pub divergences: Vec<Divergence>,
}

fn diff_state(logged: &VmState, got: &VmState, ignore_gas: bool) -> Option<String> {
    let mut d = Vec::new();
    if logged.pc != got.pc {
        d.push(format!("pc: logged {}, replayed {}", logged.pc, got.pc));
    }
    if logged.gas != got.gas && !ignore_gas {
        d.push(format!("gas: logged {}, replayed {}", logged.gas, got.gas));
    }
    for i in 0..13 {
        if logged.regs[i] != got.regs[i] {
            d.push(format!(
                "r{i}: logged {:#x}, replayed {:#x}",
                logged.regs[i], got.regs[i]
            ));
        }
    }
    (!d.is_empty()).then(|| d.join("; "))
}

/// Applies logged page-map changes (`x-pages`) to a memory.
pub fn apply_page_changes(mem: &mut Memory, changes: &[PageChange]) -> Result<(), String> {
    for c in changes {
        let r = match c.access {
            None => match u32::try_from(c.len) {
                Ok(len) => mem.unmap(c.address, len).map_err(|e| e.to_string()),
                Err(_) => Err("the range is too long".to_string()),
            },
            Some(a) => mem
                .map_range(c.address as u64, c.len, a.into())
                .map_err(|e| e.to_string()),
        };
        r.map_err(|e| format!("x-pages {:#x} len={}: {e}", c.address, c.len))?;
    }
    Ok(())
}

/// Applies one logged host call to an instance stopped at that `ecalli`: page-map changes,
/// memory writes, register writes and the gas overwrite. With `check_reads`, every logged memory
/// read must match the instance's memory (checked first, against the memory the host saw).
pub fn apply_entry(vm: &mut Instance, e: &HostCallEntry, check_reads: bool) -> Result<(), String> {
    if check_reads {
        check_reads_of(vm, e)?;
    }
    apply_page_changes(vm.memory_mut(), &e.page_changes)?;
    for (a, d) in &e.writes {
        vm.memory_mut()
            .write(*a, d)
            .map_err(|err| format!("memwrite {a:#x}: {err}"))?;
    }
    for (r, v) in &e.set_regs {
        vm.registers_mut()[*r as usize] = *v;
    }
    if let Some(g) = e.set_gas {
        vm.set_gas(g as i64);
    }
    Ok(())
}

fn check_reads_of(vm: &Instance, e: &HostCallEntry) -> Result<(), String> {
    for (a, d) in &e.reads {
        let mut buf = vec![0u8; d.len()];
        match vm.memory().read(*a, &mut buf) {
            Ok(()) if &buf == d => {}
            Ok(()) => {
                let at = buf.iter().zip(d).position(|(x, y)| x != y).unwrap_or(0);
                return Err(format!(
                    "memread {a:#x} len={}: first difference at {:#x}: logged 0x{}, memory holds 0x{}",
                    d.len(),
                    *a as u64 + at as u64,
                    crate::trace::hex(&d[at..(at + 16).min(d.len())]),
                    crate::trace::hex(&buf[at..(at + 16).min(buf.len())])
                ));
            }
            Err(err) => return Err(format!("memread {a:#x}: {err}")),
        }
    }
    Ok(())
}

/// Compares the effects of a re-executed built-in with the logged ones.
fn diff_effects(logged: &HostCallEntry, got: &HostCallEntry, ignore_gas: bool) -> Option<String> {
    let mut d = Vec::new();
    let addrs = |v: &[(u32, Vec<u8>)]| {
        v.iter()
            .map(|(a, x)| format!("{a:#x}+{}", x.len()))
            .collect::<Vec<_>>()
            .join(",")
    };
    if logged.reads != got.reads {
        d.push(format!(
            "reads: logged [{}], re-executed [{}]",
            addrs(&logged.reads),
            addrs(&got.reads)
        ));
    }
    if logged.writes != got.writes {
        let first = logged
            .writes
            .iter()
            .zip(&got.writes)
            .find(|(x, y)| x != y)
            .map(|(x, _)| format!(" (first at {:#x})", x.0))
            .unwrap_or_default();
        d.push(format!(
            "writes differ{first}: logged [{}], re-executed [{}]",
            addrs(&logged.writes),
            addrs(&got.writes)
        ));
    }
    if logged.set_regs != got.set_regs {
        d.push(format!(
            "setreg: logged {:x?}, re-executed {:x?}",
            logged.set_regs, got.set_regs
        ));
    }
    if logged.set_gas != got.set_gas && !ignore_gas {
        d.push(format!(
            "setgas: logged {:?}, re-executed {:?}",
            logged.set_gas, got.set_gas
        ));
    }
    if logged.page_changes != got.page_changes {
        d.push(format!(
            "x-pages: logged {:?}, re-executed {:?}",
            logged.page_changes, got.page_changes
        ));
    }
    (!d.is_empty()).then(|| d.join("; "))
}

fn outcome_of(t: &Termination) -> Option<HostOutcome> {
    match t {
        Termination::Halt => Some(HostOutcome::Halt),
        Termination::Panic(_) => Some(HostOutcome::Panic),
        Termination::OutOfGas => Some(HostOutcome::OutOfGas),
        Termination::Fault(_) => None,
    }
}

struct Run<'a> {
    opts: &'a ReplayOptions,
    divergences: Vec<Divergence>,
}

impl Run<'_> {
    /// Records a divergence; false if the replay must stop here.
    fn diverge(&mut self, what: String, message: String) -> bool {
        self.divergences.push(Divergence { what, message });
        self.opts.all
    }
}

/// Re-executes a log statelessly: loads the program, applies the prelude, runs, and answers each
/// `ecalli` with the logged actions. What is compared is set by `opts`; divergences are
/// returned in the report (only load errors are `Err`).
pub fn replay_with(log: &Jip7Log, opts: &ReplayOptions) -> Result<ReplayReport, Jip7Error> {
    let program = load_program_with(
        &log.program,
        ProgramOptions {
            spec: opts.spec,
            backend: opts.backend,
        },
    )?;
    // A standard program's argument area is sized by the arguments: take them from an initial
    // write at the argument address.
    let args_at = program.standard_layout().map(|l| l.args_start());
    let args = log
        .initial_writes
        .iter()
        .find(|(a, _)| Some(*a) == args_at)
        .map(|(_, d)| d.clone())
        .unwrap_or_default();
    let mut vm = program
        .instantiate(&args)
        .map_err(|e| Jip7Error::Program(e.to_string()))?;
    apply_page_changes(vm.memory_mut(), &log.initial_pages)
        .map_err(|e| Jip7Error::Program(format!("initial page map: {e}")))?;
    for (a, d) in &log.initial_writes {
        if Some(*a) != args_at {
            vm.memory_mut()
                .write_unchecked(*a, d)
                .map_err(|e| Jip7Error::Program(format!("initial write at {a:#x}: {e}")))?;
        }
    }
    match &log.start {
        Some(st) => {
            vm.set_pc(st.pc);
            vm.set_gas(st.gas as i64);
            *vm.registers_mut() = st.regs;
        }
        None => vm.set_gas(opts.gas.unwrap_or(DEFAULT_REPLAY_GAS)),
    }
    let mut run = Run {
        opts,
        divergences: Vec::new(),
    };
    let mut inner = InnerPvms::new(opts.spec);
    let mut n = 0usize;
    let exit = 'run: loop {
        let exit = vm.run();
        let Exit::HostCall(id) = exit else { break exit };
        let what = format!("ecalli #{}", n + 1);
        let Some(e) = log.entries.get(n) else {
            if opts.verify || opts.verify_end {
                run.diverge(
                    what,
                    format!(
                        "replay reached host call {id} at pc {}, the log has no more host calls",
                        vm.pc()
                    ),
                );
            }
            break exit;
        };
        let what = format!("ecalli #{} (ecalli={})", n + 1, e.index);
        let mut host_exit = None;
        if opts.verify {
            if e.index != id {
                let go_on = run.diverge(
                    what.clone(),
                    format!("index: logged {}, replayed {id} at pc {}", e.index, vm.pc()),
                );
                if !go_on {
                    break exit;
                }
            }
            if let Some(d) = e
                .state
                .as_ref()
                .and_then(|st| diff_state(st, &state_of(&vm), opts.ignore_gas))
            {
                if !run.diverge(what.clone(), d) {
                    break exit;
                }
            }
            if let Err(m) = check_reads_of(&vm, e) {
                if !run.diverge(what.clone(), m) {
                    break exit;
                }
            }
            // Re-execute a call libpvm's built-ins answered and compare its effects; the logged
            // effects are applied on top, so the replay follows the log either way.
            if e.builtin.is_some() && e.index == id {
                let before = state_of(&vm);
                let pages = PageMap::of(vm.memory());
                let mut rec = CallRecorder::default();
                let outcome =
                    inner.handle(id, &mut HostCallContext::with_recorder(&mut vm, &mut rec));
                if let Some(outcome) = outcome {
                    let mut got = rec.finish(id, before, &vm);
                    got.page_changes = pages.changes_to(vm.memory());
                    let name = e.builtin.as_deref().unwrap_or("");
                    if let Some(d) = diff_effects(e, &got, opts.ignore_gas) {
                        if !run.diverge(format!("{what} x-builtin {name}"), d) {
                            break exit;
                        }
                    }
                    host_exit = outcome.exit();
                }
            }
        }
        if let Err(m) = apply_entry(&mut vm, e, false) {
            run.diverge(what, m);
            break exit;
        }
        n += 1;
        if let Some(x) = host_exit {
            vm.finish_host_call(outcome_for(x));
            break 'run x;
        }
        // After the last logged host call, a termination logged at this same pc means the
        // handler ended the run (GP Ψ_H: halt, panic or oog from the host call).
        if n == log.entries.len() {
            if let Some((t, st)) = &log.end {
                if let (Some(o), true) = (outcome_of(t), st.pc == vm.pc()) {
                    let x = vm.finish_host_call(o).unwrap_or(Exit::Panic);
                    break x;
                }
            }
        }
    };
    let end = termination_of(exit, &vm)
        .map(|(_, st)| st)
        .unwrap_or_else(|| state_of(&vm));
    if opts.verify_end && (run.divergences.is_empty() || opts.all) {
        if let Some((t, st)) = &log.end {
            let kind_ok = match (t, exit) {
                (Termination::Halt, Exit::Halt) | (Termination::OutOfGas, Exit::OutOfGas) => true,
                // JIP-7 has no fault termination: writers log a page fault as a panic.
                (Termination::Panic(_), Exit::Panic | Exit::PageFault(_)) => true,
                (Termination::Fault(a), Exit::PageFault(b)) => *a == b,
                _ => false,
            };
            if !kind_ok {
                run.diverge(
                    "termination".into(),
                    format!("logged {}, replayed {}", describe_t(t), describe_x(exit)),
                );
            }
            if let Some(d) = diff_state(st, &end, opts.ignore_gas) {
                run.diverge("termination".into(), d);
            }
        }
        if n < log.entries.len() && !matches!(exit, Exit::HostCall(_)) {
            run.diverge(
                format!("ecalli #{}", n + 1),
                format!(
                    "the log has {} host calls, the replay ended after {n} ({})",
                    log.entries.len(),
                    describe_x(exit)
                ),
            );
        }
    }
    if !opts.all {
        run.divergences.truncate(1);
    }
    Ok(ReplayReport {
        host_calls: n,
        exit,
        end,
        divergences: run.divergences,
    })
}

fn outcome_for(x: Exit) -> HostOutcome {
    match x {
        Exit::Halt => HostOutcome::Halt,
        Exit::OutOfGas => HostOutcome::OutOfGas,
        _ => HostOutcome::Panic,
    }
}

fn describe_t(t: &Termination) -> String {
    match t {
        Termination::Halt => "HALT".into(),
        Termination::Panic(Some(c)) => format!("PANIC={c}"),
        Termination::Panic(None) => "PANIC".into(),
        Termination::OutOfGas => "OOG".into(),
        Termination::Fault(a) => format!("page fault at {a:#x}"),
    }
}

fn describe_x(x: Exit) -> String {
    match x {
        Exit::PageFault(a) => format!("page fault at {a:#x}"),
        Exit::HostCall(id) => format!("stopped at host call {id}"),
        other => other.name().to_uppercase(),
    }
}

/// Re-executes a log (see [`replay_with`]) and returns the first divergence as an error. With
/// `verify`, every `ecalli` line, logged memory read and the termination must match; without,
/// nothing is compared. `default_gas` is the initial gas if the log has no `start` line.
pub fn replay(
    log: &Jip7Log,
    spec: Spec,
    default_gas: i64,
    verify: bool,
) -> Result<ReplayReport, Jip7Error> {
    let opts = ReplayOptions {
        spec,
        gas: Some(default_gas),
        verify,
        verify_end: verify,
        ..ReplayOptions::default()
    };
    let mut r = replay_with(log, &opts)?;
    if r.divergences.is_empty() {
        Ok(r)
    } else {
        Err(r.divergences.swap_remove(0).into())
    }
}
