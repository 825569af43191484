//! JIP-6 PVM I/O traces: record every host call of a run (what the handler read and wrote), and
//! replay a log statelessly, answering each `ecalli` from the log and checking that the VM reaches
//! every `ecalli` and the termination with the logged pc, gas and registers.
//!
//! Text format (the JIP-6 revision with `memread`/`memwrite`/`setreg`/`setgas` and
//! `ecalli={index}`; the parser also accepts the earlier `read_memory`/`write_memory`/
//! `set_register`/`set_gas` spelling):
//! ```text
//! program 0x<program blob, with metadata if any>
//! memwrite 0x<address, 8 digits> len=<n> <- 0x<bytes>      (initial writes: the arguments)
//! start pc=<pc> gas=<gas> <register dump>                   (libpvm/typeberry prelude extension)
//! ecalli=<index> pc=<pc> gas=<gas> <register dump>
//! memread 0x<address> len=<n> -> 0x<bytes>                  (ascending address)
//! memwrite 0x<address> len=<n> <- 0x<bytes>                 (ascending address)
//! setreg r<idx, 2 digits> <- 0x<value>                     (ascending index)
//! setgas <- <gas>
//! HALT|PANIC|OOG pc=<pc> gas=<gas> <register dump>         (FAULT=0x<address> for a page fault)
//! ```
//! A register dump lists `r<idx>=0x<value>` for every non-zero register (2-digit indices, values
//! in hex without leading zeros). Lines that match nothing are ignored, and a keyword may be
//! preceded by a logger prefix.

use std::fmt::Write as _;

use thiserror::Error;

use crate::host::{HostCallContext, HostOutcome};
use crate::instance::{Exit, Instance};
use crate::program::{Program, ProgramOptions};
use crate::Spec;

/// pc, gas and registers as a JIP-6 line shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmState {
    /// Program counter.
    pub pc: u32,
    /// Gas (saturated at 0 on termination lines).
    pub gas: u64,
    /// The 13 registers.
    pub regs: [u64; 13],
}

/// One host call and the handler's observable effects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostCallEntry {
    /// Host-call index (the `ecalli` immediate).
    pub index: u32,
    /// State when the `ecalli` was reached (before the host call).
    pub state: Option<VmState>,
    /// Memory the handler read, ascending by address.
    pub reads: Vec<(u32, Vec<u8>)>,
    /// Memory the handler wrote, ascending by address.
    pub writes: Vec<(u32, Vec<u8>)>,
    /// Registers the handler wrote, ascending by index.
    pub set_regs: Vec<(u8, u64)>,
    /// The gas after the host call, if the handler changed it.
    pub set_gas: Option<u64>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// `HALT`.
    Halt,
    /// `PANIC` (or `PANIC=<code>`).
    Panic(Option<u64>),
    /// `OOG`.
    OutOfGas,
    /// `FAULT=0x<address>` (a libpvm extension: JIP-6 lists only halt, panic and OOG).
    Fault(u32),
}

/// A whole JIP-6 log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jip6Log {
    /// Context lines (anything before `program` that is not a record), kept for display.
    pub context: Vec<String>,
    /// The program blob.
    pub program: Vec<u8>,
    /// Initial memory writes.
    pub initial_writes: Vec<(u32, Vec<u8>)>,
    /// The initial state, if logged.
    pub start: Option<VmState>,
    /// The host calls, in order.
    pub entries: Vec<HostCallEntry>,
    /// The termination, if logged.
    pub end: Option<(Termination, VmState)>,
}

fn reg_dump(regs: &[u64; 13]) -> String {
    let mut s = String::new();
    for (i, r) in regs.iter().enumerate() {
        if *r != 0 {
            let _ = write!(s, " r{i:02}={r:#x}");
        }
    }
    s
}

fn state_fields(st: &VmState) -> String {
    format!("pc={} gas={}{}", st.pc, st.gas, reg_dump(&st.regs))
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", crate::trace::hex(b))
}

impl Jip6Log {
    /// Renders the log as JIP-6 text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in &self.context {
            let _ = writeln!(s, "{c}");
        }
        let _ = writeln!(s, "program {}", hex0x(&self.program));
        for (a, d) in &self.initial_writes {
            let _ = writeln!(s, "memwrite {a:#010x} len={} <- {}", d.len(), hex0x(d));
        }
        if let Some(st) = &self.start {
            let _ = writeln!(s, "start {}", state_fields(st));
        }
        for e in &self.entries {
            s.push('\n');
            if let Some(st) = &e.state {
                let _ = writeln!(s, "ecalli={} {}", e.index, state_fields(st));
            }
            for (a, d) in &e.reads {
                let _ = writeln!(s, "memread {a:#010x} len={} -> {}", d.len(), hex0x(d));
            }
            for (a, d) in &e.writes {
                let _ = writeln!(s, "memwrite {a:#010x} len={} <- {}", d.len(), hex0x(d));
            }
            for (i, v) in &e.set_regs {
                let _ = writeln!(s, "setreg r{i:02} <- {v:#x}");
            }
            if let Some(g) = e.set_gas {
                let _ = writeln!(s, "setgas <- {g}");
            }
        }
        if let Some((t, st)) = &self.end {
            s.push('\n');
            let kind = match t {
                Termination::Halt => "HALT".to_string(),
                Termination::Panic(None) => "PANIC".to_string(),
                Termination::Panic(Some(c)) => format!("PANIC={c}"),
                Termination::OutOfGas => "OOG".to_string(),
                Termination::Fault(a) => format!("FAULT={a:#x}"),
            };
            let _ = writeln!(s, "{kind} {}", state_fields(st));
        }
        s
    }

    /// Parses JIP-6 text. Unknown lines are ignored; a line that starts a known record but is
    /// malformed is an error naming its line number.
    pub fn parse(text: &str) -> Result<Jip6Log, Jip6Error> {
        let mut log = Jip6Log::default();
        let mut seen_program = false;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let err = |msg: String| Jip6Error::Parse {
                line: line_no,
                message: msg,
            };
            let tokens: Vec<&str> = raw.split_whitespace().collect();
            let Some((pos, kw)) = tokens
                .iter()
                .enumerate()
                .find_map(|(i, t)| keyword(t).map(|k| (i, k)))
            else {
                if !seen_program && !raw.trim().is_empty() {
                    log.context.push(raw.trim().to_string());
                }
                continue;
            };
            let rest = &tokens[pos..];
            match kw {
                Kw::Program => {
                    log.program = parse_hex(rest.get(1).copied().unwrap_or("")).map_err(err)?;
                    seen_program = true;
                }
                Kw::Start => log.start = Some(parse_state(&rest[1..]).map_err(err)?),
                Kw::Ecalli(idx) => {
                    let (idx, fields) = match idx {
                        Some(i) => (i, &rest[1..]),
                        None => (0, &rest[1..]),
                    };
                    log.entries.push(HostCallEntry {
                        index: idx,
                        state: Some(parse_state(fields).map_err(err)?),
                        ..Default::default()
                    });
                }
                Kw::Read | Kw::Write => {
                    let (addr, data) = parse_mem(rest).map_err(err)?;
                    match (kw, log.entries.last_mut()) {
                        (Kw::Write, None) => log.initial_writes.push((addr, data)),
                        (Kw::Write, Some(e)) => e.writes.push((addr, data)),
                        (_, Some(e)) => e.reads.push((addr, data)),
                        (_, None) => return Err(err("memory read before any ecalli".into())),
                    }
                }
                Kw::SetReg => {
                    let e = log
                        .entries
                        .last_mut()
                        .ok_or_else(|| err("setreg before any ecalli".into()))?;
                    let r = rest
                        .get(1)
                        .and_then(|t| t.strip_prefix('r'))
                        .and_then(|t| t.parse::<u8>().ok())
                        .filter(|r| *r < 13);
                    let r = r.ok_or_else(|| err("setreg needs a register r00..r12".into()))?;
                    let v = rest
                        .get(3)
                        .ok_or_else(|| err("setreg needs a value".into()))
                        .and_then(|t| parse_num(t).map_err(err))?;
                    e.set_regs.push((r, v));
                }
                Kw::SetGas => {
                    let e = log
                        .entries
                        .last_mut()
                        .ok_or_else(|| err("setgas before any ecalli".into()))?;
                    let v = rest
                        .get(2)
                        .ok_or_else(|| err("setgas needs a value".into()))
                        .and_then(|t| parse_num(t).map_err(err))?;
                    e.set_gas = Some(v);
                }
                Kw::End(t) => log.end = Some((t, parse_state(&rest[1..]).map_err(err)?)),
            }
        }
        if !seen_program {
            return Err(Jip6Error::Parse {
                line: 0,
                message: "no `program` line".into(),
            });
        }
        Ok(log)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Program,
    Start,
    Ecalli(Option<u32>),
    Read,
    Write,
    SetReg,
    SetGas,
    End(Termination),
}

fn keyword(t: &str) -> Option<Kw> {
    Some(match t {
        "program" => Kw::Program,
        "start" => Kw::Start,
        "ecalli" => Kw::Ecalli(None),
        "memread" | "read_memory" => Kw::Read,
        "memwrite" | "write_memory" => Kw::Write,
        "setreg" | "set_register" => Kw::SetReg,
        "setgas" | "set_gas" => Kw::SetGas,
        "HALT" => Kw::End(Termination::Halt),
        "PANIC" => Kw::End(Termination::Panic(None)),
        "OOG" => Kw::End(Termination::OutOfGas),
        _ => {
            if let Some(i) = t.strip_prefix("ecalli=") {
                return i.parse().ok().map(|i| Kw::Ecalli(Some(i)));
            }
            if let Some(c) = t.strip_prefix("PANIC=") {
                return parse_num(c)
                    .ok()
                    .map(|c| Kw::End(Termination::Panic(Some(c))));
            }
            if let Some(a) = t.strip_prefix("FAULT=") {
                return parse_num(a)
                    .ok()
                    .map(|a| Kw::End(Termination::Fault(a as u32)));
            }
            return None;
        }
    })
}

fn parse_num(t: &str) -> Result<u64, String> {
    let r = match t.strip_prefix("0x") {
        Some(h) if !h.is_empty() => u64::from_str_radix(h, 16),
        Some(_) => return Err(format!("`{t}` is not a number")),
        None => t.parse(),
    };
    r.map_err(|_| format!("`{t}` is not a number"))
}

fn parse_hex(t: &str) -> Result<Vec<u8>, String> {
    let h = t
        .strip_prefix("0x")
        .ok_or_else(|| format!("`{t}` is not 0x-prefixed hex"))?;
    if h.len() % 2 != 0 {
        return Err(format!("hex `{t}` has an odd number of digits"));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| format!("`{t}` is not hex")))
        .collect()
}

/// `0x<addr> [len=<n>] (->|<-) 0x<data>`
fn parse_mem(rest: &[&str]) -> Result<(u32, Vec<u8>), String> {
    let addr = rest.get(1).ok_or("missing address")?;
    let addr = parse_num(addr)?;
    let addr = u32::try_from(addr).map_err(|_| format!("address {addr:#x} is not 32-bit"))?;
    let mut i = 2;
    let mut len = None;
    if let Some(l) = rest.get(i).and_then(|t| t.strip_prefix("len=")) {
        len = Some(parse_num(l)? as usize);
        i += 1;
    }
    if !matches!(rest.get(i), Some(&"->") | Some(&"<-")) {
        return Err("expected `->` or `<-`".into());
    }
    let data = parse_hex(rest.get(i + 1).ok_or("missing data")?)?;
    if let Some(l) = len {
        if l != data.len() {
            return Err(format!("len={l} but the data holds {} bytes", data.len()));
        }
    }
    Ok((addr, data))
}

/// `pc=<pc> gas=<gas> r00=0x.. …` (other tokens ignored).
fn parse_state(fields: &[&str]) -> Result<VmState, String> {
    let mut st = VmState {
        pc: 0,
        gas: 0,
        regs: [0; 13],
    };
    let (mut pc, mut gas) = (false, false);
    for f in fields {
        if let Some(v) = f.strip_prefix("pc=") {
            st.pc = u32::try_from(parse_num(v)?).map_err(|_| "pc is not 32-bit".to_string())?;
            pc = true;
        } else if let Some(v) = f.strip_prefix("gas=") {
            st.gas = parse_num(v)?;
            gas = true;
        } else if let Some((r, v)) = f.strip_prefix('r').and_then(|x| x.split_once('=')) {
            if let Ok(r) = r.parse::<usize>() {
                if r < 13 {
                    st.regs[r] = parse_num(v)?;
                }
            }
        }
    }
    if !pc || !gas {
        return Err("expected pc=… and gas=…".into());
    }
    Ok(st)
}

/// Errors of parsing or replaying a log.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Jip6Error {
    /// The text is malformed.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number (0: the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The program in the log cannot be loaded.
    #[error("the logged program cannot be loaded: {0}")]
    Program(String),
    /// Replay diverged from the log.
    #[error("divergence at {what}: {message}")]
    Divergence {
        /// Which entry (e.g. `ecalli #3` or `termination`).
        what: String,
        /// Logged vs replayed values.
        message: String,
    },
}

fn vm_state(vm: &Instance, saturate: bool) -> VmState {
    let gas = if saturate {
        vm.gas().max(0) as u64
    } else {
        vm.gas() as u64
    };
    VmState {
        pc: vm.pc(),
        gas,
        regs: *vm.registers(),
    }
}

/// What a handler did during one host call. [`HostCallContext::with_recorder`] fills it in;
/// bindings whose host callbacks reach the VM through their own accessors record with the
/// `record_*` methods, then build the log entry with [`CallRecorder::finish`].
#[derive(Clone, Debug, Default)]
pub struct CallRecorder {
    pub(crate) reads: Vec<(u32, Vec<u8>)>,
    pub(crate) writes: Vec<(u32, Vec<u8>)>,
    pub(crate) touched_regs: [bool; 13],
    pub(crate) gas_set: bool,
}

impl CallRecorder {
    /// A successful guest-memory read by the handler.
    pub fn record_read(&mut self, address: u32, data: &[u8]) {
        self.reads.push((address, data.to_vec()));
    }

    /// A successful guest-memory write by the handler.
    pub fn record_write(&mut self, address: u32, data: &[u8]) {
        self.writes.push((address, data.to_vec()));
    }

    /// The handler set register `i` (logged even if the value did not change).
    pub fn record_set_reg(&mut self, i: usize) {
        if i < 13 {
            self.touched_regs[i] = true;
        }
    }

    /// The handler set the gas.
    pub fn record_set_gas(&mut self) {
        self.gas_set = true;
    }

    /// Builds the log entry of host call `index`, given the state at the `ecalli` (`before`,
    /// from [`state_of`]) and the instance after the handler ran: registers that were set or
    /// changed, the gas if set or changed, reads and writes in JIP-6 order.
    pub fn finish(self, index: u32, before: VmState, after: &Instance) -> HostCallEntry {
        self.entry(index, before, after)
    }

    /// Like [`CallRecorder::finish`] without consuming the recorder (for a call still open).
    pub fn entry(&self, index: u32, before: VmState, after: &Instance) -> HostCallEntry {
        let regs = after.registers();
        let set_regs = (0..13u8)
            .filter(|&i| {
                self.touched_regs[i as usize] || regs[i as usize] != before.regs[i as usize]
            })
            .map(|i| (i, regs[i as usize]))
            .collect();
        let set_gas =
            (self.gas_set || after.gas() as u64 != before.gas).then_some(after.gas() as u64);
        HostCallEntry {
            index,
            state: Some(before),
            reads: sorted(self.reads.clone()),
            writes: sorted(self.writes.clone()),
            set_regs,
            set_gas,
        }
    }

    /// Adds the effects of an entry recorded separately (e.g. a built-in host call run through
    /// [`HostCallContext::with_recorder`] inside a binding's own host call).
    pub fn merge(&mut self, e: &HostCallEntry) {
        self.reads.extend(e.reads.iter().cloned());
        self.writes.extend(e.writes.iter().cloned());
        for (i, _) in &e.set_regs {
            self.record_set_reg(*i as usize);
        }
        if e.set_gas.is_some() {
            self.gas_set = true;
        }
    }
}

/// A host call whose log entry is still open: the state at its `ecalli` and what the host has
/// done so far. Bindings keep one while their host callback runs (or while a run is stopped at a
/// host call) and close it into a [`HostCallEntry`] when the VM moves on.
#[derive(Clone, Debug)]
pub struct OpenCall {
    index: u32,
    before: VmState,
    effects: CallRecorder,
}

impl OpenCall {
    /// Opens the record of host call `index` for a VM stopped at its `ecalli`.
    pub fn new(index: u32, vm: &Instance) -> OpenCall {
        OpenCall {
            index,
            before: state_of(vm),
            effects: CallRecorder::default(),
        }
    }

    /// Where the host's effects are recorded.
    pub fn effects(&mut self) -> &mut CallRecorder {
        &mut self.effects
    }

    /// The entry as it stands, given the VM's current state.
    pub fn entry(&self, vm: &Instance) -> HostCallEntry {
        self.effects.entry(self.index, self.before.clone(), vm)
    }
}

/// The pc, gas and registers of an instance as a JIP-6 line shows them (gas as its unsigned
/// two's-complement value).
pub fn state_of(vm: &Instance) -> VmState {
    vm_state(vm, false)
}

/// The termination record for a final exit (`None` for a host call, which is not final).
pub fn termination_of(exit: Exit, vm: &Instance) -> Option<(Termination, VmState)> {
    let t = match exit {
        Exit::Halt => Termination::Halt,
        Exit::Panic => Termination::Panic(None),
        Exit::OutOfGas => Termination::OutOfGas,
        Exit::PageFault(a) => Termination::Fault(a),
        Exit::HostCall(_) => return None,
    };
    Some((t, vm_state(vm, true)))
}

fn sorted(mut v: Vec<(u32, Vec<u8>)>) -> Vec<(u32, Vec<u8>)> {
    v.sort();
    v
}

/// Runs `instance` with `handler`, recording every host call into `log` (whose `program` and
/// initial writes the caller sets). The handler's memory reads and writes through
/// [`HostCallContext::read_memory`]/[`HostCallContext::write_memory`] (and everything built on
/// them) are captured; register and gas changes are captured by comparing the state before and
/// after each call, plus every register the handler explicitly set. Writes made through
/// [`HostCallContext::memory_mut`] bypass recording.
pub fn run_recorded<H>(instance: &mut Instance, log: &mut Jip6Log, mut handler: H) -> Exit
where
    H: FnMut(u32, &mut HostCallContext<'_>) -> HostOutcome,
{
    if log.start.is_none() {
        log.start = Some(VmState {
            pc: instance.next_pc(),
            gas: instance.gas() as u64,
            regs: *instance.registers(),
        });
    }
    let exit = loop {
        let exit = instance.run();
        let Exit::HostCall(id) = exit else { break exit };
        let before = vm_state(instance, false);
        let mut rec = CallRecorder::default();
        let outcome = handler(id, &mut HostCallContext::with_recorder(instance, &mut rec));
        let after = instance.registers();
        let set_regs = (0..13u8)
            .filter(|&i| {
                rec.touched_regs[i as usize] || after[i as usize] != before.regs[i as usize]
            })
            .map(|i| (i, after[i as usize]))
            .collect();
        let set_gas =
            (rec.gas_set || instance.gas() as u64 != before.gas).then_some(instance.gas() as u64);
        log.entries.push(HostCallEntry {
            index: id,
            state: Some(before),
            reads: sorted(rec.reads),
            writes: sorted(rec.writes),
            set_regs,
            set_gas,
        });
        if let Some(e) = instance.finish_host_call(outcome) {
            break e;
        }
    };
    log.end = termination_of(exit, instance);
    exit
}

/// Loads the logged program: a JAM service blob (with metadata), else a standard program, else
/// a plain code blob.
pub fn load_program(bytes: &[u8], spec: Spec) -> Result<Program, Jip6Error> {
    let opts = ProgramOptions { spec };
    Program::from_standard(bytes, true, opts)
        .or_else(|_| Program::from_standard(bytes, false, opts))
        .or_else(|_| Program::from_code(bytes, opts))
        .map_err(|e| Jip6Error::Program(e.to_string()))
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
}

fn diff_state(logged: &VmState, got: &VmState) -> Option<String> {
    let mut d = Vec::new();
    if logged.pc != got.pc {
        d.push(format!("pc: logged {}, replayed {}", logged.pc, got.pc));
    }
    if logged.gas != got.gas {
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

/// Applies one logged host call to an instance stopped at that `ecalli`: memory writes,
/// register writes and the gas overwrite. With `check_reads`, every logged memory read must match
/// the instance's memory.
pub fn apply_entry(vm: &mut Instance, e: &HostCallEntry, check_reads: bool) -> Result<(), String> {
    if check_reads {
        for (a, d) in &e.reads {
            let mut buf = vec![0u8; d.len()];
            match vm.memory().read(*a, &mut buf) {
                Ok(()) if &buf == d => {}
                Ok(()) => {
                    return Err(format!(
                        "memread {a:#x}: logged 0x{}, memory holds 0x{}",
                        crate::trace::hex(d),
                        crate::trace::hex(&buf)
                    ))
                }
                Err(err) => return Err(format!("memread {a:#x}: {err}")),
            }
        }
    }
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

/// Re-executes a log statelessly: loads the program, applies the prelude, runs, and answers each
/// `ecalli` with the logged actions (memory reads are checked against the VM's memory). With
/// `verify`, every `ecalli` line (index, pc, gas, registers) and the termination must match; the
/// first divergence is returned as an error.
pub fn replay(
    log: &Jip6Log,
    spec: Spec,
    default_gas: i64,
    verify: bool,
) -> Result<ReplayReport, Jip6Error> {
    let program = load_program(&log.program, spec)?;
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
        .map_err(|e| Jip6Error::Program(e.to_string()))?;
    for (a, d) in &log.initial_writes {
        if Some(*a) != args_at {
            vm.memory_mut()
                .write_unchecked(*a, d)
                .map_err(|e| Jip6Error::Program(format!("initial write: {e}")))?;
        }
    }
    match &log.start {
        Some(st) => {
            vm.set_pc(st.pc);
            vm.set_gas(st.gas as i64);
            *vm.registers_mut() = st.regs;
        }
        None => vm.set_gas(default_gas),
    }
    let diverge = |what: String, message: String| Jip6Error::Divergence { what, message };
    let mut n = 0usize;
    let exit = loop {
        let exit = vm.run();
        let Exit::HostCall(id) = exit else { break exit };
        let Some(e) = log.entries.get(n) else {
            if verify {
                return Err(diverge(
                    format!("ecalli #{}", n + 1),
                    format!(
                        "replay reached host call {id} at pc {}, the log has no more host calls",
                        vm.pc()
                    ),
                ));
            }
            break exit;
        };
        if verify {
            if e.index != id {
                return Err(diverge(
                    format!("ecalli #{}", n + 1),
                    format!("index: logged {}, replayed {id}", e.index),
                ));
            }
            if let Some(d) = e
                .state
                .as_ref()
                .and_then(|st| diff_state(st, &vm_state(&vm, false)))
            {
                return Err(diverge(format!("ecalli #{}", n + 1), d));
            }
        }
        apply_entry(&mut vm, e, verify).map_err(|m| diverge(format!("ecalli #{}", n + 1), m))?;
        n += 1;
        // After the last logged host call, a termination logged at this same pc means the
        // handler ended the run (GP Ψ_H: halt, panic or oog from the host call).
        if n == log.entries.len() {
            if let Some((t, st)) = &log.end {
                let stop = match t {
                    Termination::Halt => Some(Exit::Halt),
                    Termination::Panic(_) => Some(Exit::Panic),
                    Termination::OutOfGas => Some(Exit::OutOfGas),
                    Termination::Fault(_) => None,
                };
                if let (Some(e), true) = (stop, st.pc == vm.pc()) {
                    let outcome = match e {
                        Exit::Halt => HostOutcome::Halt,
                        Exit::Panic => HostOutcome::Panic,
                        _ => HostOutcome::OutOfGas,
                    };
                    vm.finish_host_call(outcome);
                    break e;
                }
            }
        }
    };
    let end = vm_state(&vm, true);
    if verify {
        if let Some((t, st)) = &log.end {
            let kind_ok = matches!(
                (t, exit),
                (Termination::Halt, Exit::Halt)
                    | (Termination::Panic(_), Exit::Panic)
                    | (Termination::OutOfGas, Exit::OutOfGas)
            ) || matches!((t, exit), (Termination::Fault(a), Exit::PageFault(b)) if *a == b);
            if !kind_ok {
                return Err(diverge(
                    "termination".into(),
                    format!("logged {t:?}, replayed {exit:?}"),
                ));
            }
            if let Some(d) = diff_state(st, &end) {
                return Err(diverge("termination".into(), d));
            }
        }
        if n != log.entries.len() {
            return Err(diverge(
                format!("ecalli #{}", n + 1),
                format!(
                    "the log has {} host calls, the replay made {n}",
                    log.entries.len()
                ),
            ));
        }
    }
    Ok(ReplayReport {
        host_calls: n,
        exit,
        end,
    })
}
