//! A running PVM: registers, pc, gas, the gas-charged flag χ and memory, over a shared
//! [`Program`]. [`Instance::run`] is GP Ψ (A.1) made resumable; [`Instance::step`] executes one
//! instruction.
//!
//! Where the conformance vectors and the GP text differ, the vectors win (see
//! `tests/vectors/README.md`, "Discrepancies"):
//! - after a panic or halt the pc is the exiting instruction's, not 0 (GP A.1 sets ı = 0);
//! - GP 0.7.2 gas is exact per instruction, as the text, anan-as and typeberry have it (see
//!   `Instance::execute_gp072`), with one deviation from the 0.7.2 text: the instruction that
//!   faults is charged (GP errata after 0.7.2, anan-as, typeberry), where the 0.7.2 text charges
//!   nothing and the 0.7 vectors charge its whole block.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::ProgramError;
use crate::memory::{Access, Memory, Trap};
use crate::program::{Op, Program, ProgramInner, INVALID_TARGET, K, UNCOMPILED};
use crate::Spec;

/// Number of PVM registers.
pub const NUM_REGISTERS: usize = 13;
/// The address whose dynamic jump halts the machine: 2^32 − 2^16.
pub const HALT_ADDRESS: u32 = 0xffff_0000;

/// Why a run stopped (GP ε). All exits are resumable: after `HostCall` the next run continues at
/// the following instruction; after `PageFault` or `OutOfGas` it retries the same instruction or
/// block once memory or gas has been adjusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// Regular halt (a dynamic jump to 2^32 − 2^16).
    Halt,
    /// Panic (trap, invalid jump, memory access below 2^16, invalid code).
    Panic,
    /// Not enough gas: under GP 0.8.0 for the next basic block, under GP 0.7.2 for the next
    /// instruction (the pc). Gas is unchanged.
    OutOfGas,
    /// Page fault at this page address.
    PageFault(u32),
    /// `ecalli` with this host-call id; the pc is the `ecalli`'s.
    HostCall(u32),
    /// [`InterruptHandle::interrupt`] was called: the run stopped at the start of the next basic
    /// block it was about to enter (pc = that block, nothing of it charged, χ = ⊥). Not a GP exit:
    /// the next run continues exactly where this one stopped.
    Interrupted,
}

impl Exit {
    /// A short lowercase name: `halt`, `panic`, `oog`, `fault`, `host`.
    pub fn name(&self) -> &'static str {
        match self {
            Exit::Halt => "halt",
            Exit::Panic => "panic",
            Exit::OutOfGas => "oog",
            Exit::PageFault(_) => "fault",
            Exit::HostCall(_) => "host",
            Exit::Interrupted => "interrupted",
        }
    }
}

/// A thread-safe handle that stops a running [`Instance`] from another thread (see
/// [`Instance::interrupt_handle`]).
#[derive(Clone, Debug)]
pub struct InterruptHandle(Arc<AtomicBool>);

impl InterruptHandle {
    /// Asks the instance to stop: its current run (or, if it is not running, its next run) ends
    /// with [`Exit::Interrupted`] at the next basic-block boundary, within one block of guest
    /// execution. The request is consumed by that exit.
    pub fn interrupt(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The interrupt flag of one instance. Cloning an instance gives the clone a flag of its own.
#[derive(Debug, Default)]
struct InterruptFlag(Arc<AtomicBool>);

impl Clone for InterruptFlag {
    fn clone(&self) -> Self {
        InterruptFlag::default()
    }
}

/// One PVM instance.
#[derive(Clone, Debug)]
pub struct Instance {
    program: Program,
    /// Registers; indices 13..16 are padding so that masked indexing needs no bounds check.
    regs: [u64; 16],
    pc: u32,
    gas: i64,
    gas_charged: bool,
    resume_after_host: bool,
    /// With `resume_after_host`: the slot of the instruction after the `ecalli`, so resuming
    /// needs no lookup.
    resume_slot: u32,
    memory: Memory,
    heap_top: u32,
    last_exit: Option<Exit>,
    interrupt: InterruptFlag,
}

impl Instance {
    /// Creates an instance of `program` (see [`Program::instantiate`]).
    pub fn new(program: Program, args: &[u8]) -> Result<Instance, ProgramError> {
        let mut inst = Instance {
            program,
            regs: [0; 16],
            pc: 0,
            gas: 0,
            gas_charged: false,
            resume_after_host: false,
            resume_slot: 0,
            memory: Memory::new(),
            heap_top: 0,
            last_exit: None,
            interrupt: InterruptFlag::default(),
        };
        let Some(layout) = inst.program.inner.standard.clone() else {
            if !args.is_empty() {
                return Err(ProgramError::ArgumentsWithoutLayout { len: args.len() });
            }
            return Ok(inst);
        };
        if args.len() as u64 > crate::program::INPUT_SIZE {
            return Err(ProgramError::ArgumentsTooLong { len: args.len() });
        }
        let m = &mut inst.memory;
        let map = |m: &mut Memory, start: u32, len: usize, access: Access| {
            m.map(start, (len as u32).div_ceil(4096) * 4096, access)
                .expect("layout checked at load")
        };
        map(m, layout.ro_start(), layout.ro_data.len(), Access::Read);
        m.write_unchecked(layout.ro_start(), &layout.ro_data)
            .expect("mapped above");
        let rw_len = layout.heap_end() - layout.rw_start();
        map(m, layout.rw_start(), rw_len as usize, Access::Write);
        m.write_unchecked(layout.rw_start(), &layout.rw_data)
            .expect("mapped above");
        map(
            m,
            layout.stack_start(),
            (layout.stack_end() - layout.stack_start()) as usize,
            Access::Write,
        );
        map(m, layout.args_start(), args.len(), Access::Read);
        m.write_unchecked(layout.args_start(), args)
            .expect("mapped above");
        inst.regs[0] = HALT_ADDRESS as u64;
        inst.regs[1] = layout.stack_end() as u64;
        inst.regs[7] = layout.args_start() as u64;
        inst.regs[8] = args.len() as u64;
        inst.heap_top = layout.heap_end();
        Ok(inst)
    }

    /// A handle that interrupts this instance's runs from any thread (see
    /// [`InterruptHandle::interrupt`]).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle(self.interrupt.0.clone())
    }

    /// The program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The 13 registers.
    pub fn registers(&self) -> &[u64; NUM_REGISTERS] {
        self.regs[..NUM_REGISTERS].try_into().expect("13 registers")
    }

    /// The 13 registers, mutable.
    pub fn registers_mut(&mut self) -> &mut [u64; NUM_REGISTERS] {
        (&mut self.regs[..NUM_REGISTERS])
            .try_into()
            .expect("13 registers")
    }

    /// Register `i` (0..13); `None` if out of range.
    pub fn reg(&self, i: usize) -> Option<u64> {
        (i < NUM_REGISTERS).then(|| self.regs[i])
    }

    /// Sets register `i`; returns false if `i` is out of range.
    pub fn set_reg(&mut self, i: usize, value: u64) -> bool {
        if i < NUM_REGISTERS {
            self.regs[i] = value;
            true
        } else {
            false
        }
    }

    /// The instruction counter ı. After a host call it is the `ecalli`'s pc until the next run.
    pub fn pc(&self) -> u32 {
        self.pc
    }

    /// Sets ı. This also cancels the pending "continue after the host call" of a `HostCall` exit.
    /// On a finished instance (after a halt or panic) it also clears χ, so that entering the
    /// program again charges the block it enters (the exit left χ set for the exiting block).
    pub fn set_pc(&mut self, pc: u32) {
        if self.is_finished() {
            self.gas_charged = false;
        }
        self.pc = pc;
        self.resume_after_host = false;
    }

    /// The pc the next run starts at.
    pub fn next_pc(&self) -> u32 {
        if self.resume_after_host {
            self.program.next_pc(self.pc)
        } else {
            self.pc
        }
    }

    /// Remaining gas ϱ.
    pub fn gas(&self) -> i64 {
        self.gas
    }

    /// Sets ϱ.
    pub fn set_gas(&mut self, gas: i64) {
        self.gas = gas;
    }

    /// The gas-charged flag χ (GP 0.8.0 A.4): whether the current block has been paid for.
    pub fn gas_charged(&self) -> bool {
        self.gas_charged
    }

    /// Sets χ.
    pub fn set_gas_charged(&mut self, charged: bool) {
        self.gas_charged = charged;
    }

    /// The memory.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The memory, mutable.
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }

    /// The last exit, if the instance has run.
    pub fn last_exit(&self) -> Option<Exit> {
        self.last_exit
    }

    /// Forgets the last exit (as for a fresh instance), for a new invocation
    /// ([`Instance::invoke`]).
    pub(crate) fn clear_last_exit(&mut self) {
        self.last_exit = None;
    }

    /// Whether the last run ended the program (halt, panic).
    pub fn is_finished(&self) -> bool {
        matches!(self.last_exit, Some(Exit::Halt | Exit::Panic))
    }

    /// The current heap end used by GP 0.7.2 `sbrk`.
    pub fn heap_top(&self) -> u32 {
        self.heap_top
    }

    /// Sets the heap end used by GP 0.7.2 `sbrk`.
    pub fn set_heap_top(&mut self, top: u32) {
        self.heap_top = top;
    }

    /// GP Ψ_M's result after a halt: μ[φ7 .. φ7+φ8] if readable, else empty (A.8). This builds
    /// the whole output (up to 4 GiB for a guest that says so); to ask for its length only, use
    /// [`Instance::output_len`], and to copy a bounded prefix, [`Instance::output_into`].
    pub fn output(&self) -> Option<Vec<u8>> {
        let len = self.output_len()?;
        let mut buf = vec![0u8; len as usize];
        self.output_into(&mut buf)?;
        Some(buf)
    }

    /// The length of [`Instance::output`] without building it: `None` unless the last exit was a
    /// halt, 0 if μ[φ7 .. φ7+φ8] is not readable. Allocates nothing; costs O(pages of the range).
    pub fn output_len(&self) -> Option<u64> {
        if self.last_exit != Some(Exit::Halt) {
            return None;
        }
        let (addr, len) = (self.regs[7], self.regs[8]);
        if addr > u32::MAX as u64
            || len > 1 << 32
            || !self.memory.is_accessible(addr as u32, len, false)
        {
            return Some(0);
        }
        Some(len)
    }

    /// Copies the first `min(buf.len(), output_len)` bytes of [`Instance::output`] into `buf` and
    /// returns the full output length (`None` unless the last exit was a halt).
    pub fn output_into(&self, buf: &mut [u8]) -> Option<u64> {
        let len = self.output_len()?;
        let n = (len.min(buf.len() as u64)) as usize;
        if n > 0 {
            self.memory.read(self.regs[7] as u32, &mut buf[..n]).ok()?;
        }
        Some(len)
    }

    /// Runs until an exit (GP Ψ).
    pub fn run(&mut self) -> Exit {
        self.execute::<false>()
            .expect("run mode always ends in an exit")
    }

    /// Executes one instruction; `None` if the machine can continue.
    pub fn step(&mut self) -> Option<Exit> {
        self.execute::<true>()
    }

    fn execute<const STEP: bool>(&mut self) -> Option<Exit> {
        let mut resume = None;
        if self.resume_after_host {
            self.pc = self.program.next_pc(self.pc);
            self.resume_after_host = false;
            resume = Some(self.resume_slot);
        }
        let exit = self.execute_inner::<STEP>(resume);
        if let Some(e) = exit {
            self.last_exit = Some(e);
            if let Exit::HostCall(_) = e {
                self.resume_after_host = true;
            }
        }
        exit
    }

    /// Runs from `self.pc`; `resume` is the slot of the instruction at the pc when it is known
    /// (resuming after a host call).
    fn execute_inner<const STEP: bool>(&mut self, resume: Option<u32>) -> Option<Exit> {
        if self.program.inner.spec == Spec::Gp0_7_2 {
            return self.execute_gp072::<STEP>(resume);
        }
        let program = &*self.program.inner;
        let pc = self.pc;
        let code_len = program.blob.code.len() as u32;
        // 𝔳_inst(ı) (GP 0.8.0 A.1): entering anywhere but an instruction start is an immediate
        // panic with gas untouched. Looking the pc up also compiles its block if it is not
        // compiled yet.
        let op_index = match resume.or_else(|| program.op_for_pc(pc)) {
            Some(i) if pc < code_len => i,
            _ => return Some(Exit::Panic),
        };
        if !self.gas_charged {
            let cost = program.cost_at(pc) as i64;
            if self.gas < cost {
                return Some(Exit::OutOfGas);
            }
            self.gas -= cost;
            self.gas_charged = true;
        }
        let (exit, pc, charged, slot) = self.interpret_at::<STEP>(op_index);
        self.pc = pc;
        self.gas_charged = charged;
        self.resume_slot = slot;
        exit
    }

    /// GP 0.7.2 gas (0.7.2 A.1, A.6): one gas per executed instruction, charged before the
    /// instruction executes, so a faulting or panicking instruction is paid for (as anan-as,
    /// typeberry and the GP errata after 0.7.2 do; the 0.7 vectors' page-fault cases expect a
    /// whole block to be charged, see the README); running out of gas stops at exactly the
    /// instruction that cannot be paid, with the gas unchanged (0 unless a host set it below).
    ///
    /// The fast path still charges per block: it pre-charges the rest of the gas block from the
    /// entry instruction, runs, and at an exit refunds the instructions of the block that did not
    /// execute. Gas blocks end at every `ecalli` under GP 0.7.2 (see `program/lazy.rs`), so a host
    /// call sees exact gas without a refund. Only a block whose rest cannot be paid in full is
    /// walked instruction by instruction, which is also what [`Instance::step`] does. χ plays no
    /// part: it is false after every exit and ignored on entry.
    fn execute_gp072<const STEP: bool>(&mut self, resume: Option<u32>) -> Option<Exit> {
        self.gas_charged = false;
        let program = self.program.inner.clone();
        let table = &program.table;
        // Resuming after an `ecalli` lands on the `Charge` slot of the next gas block, which may
        // not be compiled yet: look its first instruction up by pc (which compiles it); the
        // charge is made below.
        let resume = resume.filter(|&s| !table.is_charge_slot(s));
        let mut slot = match resume {
            Some(s) => s,
            None => match program.op_for_pc(self.pc) {
                Some(s) => s,
                // Not a position of the instruction walk: executes as `trap` (1 gas), as
                // anan-as does.
                None => return Some(self.charge_one().unwrap_or(Exit::Panic)),
            },
        };
        loop {
            let rest = (table.block_end_slot(slot) - slot) as i64;
            if !STEP && self.gas >= rest {
                self.gas -= rest;
                let (exit, pc, _, next) = self.interpret_at::<false>(slot);
                self.pc = pc;
                self.resume_slot = next;
                match exit.expect("run mode always ends in an exit") {
                    // The next block cannot be paid in full: walk it.
                    Exit::OutOfGas => {
                        slot = program.op_for_pc(pc).expect("a block start");
                        continue;
                    }
                    // At a block entry: the previous block ran in full, nothing to refund.
                    Exit::Interrupted => return Some(Exit::Interrupted),
                    e => {
                        // Refund the instructions after the exiting one (`next - 1`) in its block.
                        self.gas += (table.block_end_slot(next - 1) - next) as i64;
                        return Some(e);
                    }
                }
            }
            if let Some(e) = self.charge_one() {
                return Some(e);
            }
            let (exit, pc, sequential, next) = self.interpret_at::<true>(slot);
            self.pc = pc;
            self.resume_slot = next;
            if exit.is_some() || STEP {
                return exit;
            }
            // After a sequential step `next` is the next instruction's slot; after a jump,
            // branch or fallthrough the step stopped at the target block's start.
            slot = if sequential {
                next
            } else {
                program.op_for_pc(pc).expect("a block start")
            };
        }
    }

    /// GP 0.7.2: pays for one instruction, or returns the out-of-gas exit (gas unchanged).
    fn charge_one(&mut self) -> Option<Exit> {
        if self.gas < 1 {
            return Some(Exit::OutOfGas);
        }
        self.gas -= 1;
        None
    }

    /// Runs the dispatch loop from op slot `slot` with this instance's registers, memory and gas;
    /// returns the exit, the pc, χ and the slot after the last op executed (see [`interpret`]).
    fn interpret_at<const STEP: bool>(&mut self, slot: u32) -> (Option<Exit>, u32, bool, u32) {
        let mut state = State {
            regs: &mut self.regs,
            memory: &mut self.memory,
            gas: self.gas,
            heap_top: &mut self.heap_top,
            interrupt: &self.interrupt.0,
        };
        let r = interpret::<STEP>(&self.program.inner, &mut state, slot as usize);
        self.gas = state.gas;
        r
    }

    /// Runs with a host-call handler until halt, panic, out-of-gas or page fault (GP Ψ_H, A.6).
    /// On each `ecalli` the handler gets the id and a context to read and write registers, gas and
    /// memory; [`HostOutcome::Continue`] resumes at the next instruction, anything else ends the
    /// run with that exit and the pc at the `ecalli`.
    pub fn run_with_host<H>(&mut self, mut handler: H) -> Exit
    where
        H: FnMut(u32, &mut crate::host::HostCallContext<'_>) -> crate::host::HostOutcome,
    {
        loop {
            let exit = self.run();
            let Exit::HostCall(id) = exit else {
                return exit;
            };
            let outcome = handler(id, &mut crate::host::HostCallContext::new(self));
            if let Some(e) = self.finish_host_call(outcome) {
                return e;
            }
        }
    }

    /// Completes a host call that a `HostCall` exit stopped at (GP Ψ_H): `Continue` lets the next
    /// run resume after the `ecalli` and returns `None`; any other outcome ends the run there —
    /// the pc stays at the `ecalli`, the next run would execute it again — and returns the exit,
    /// which also becomes [`Instance::last_exit`].
    pub fn finish_host_call(&mut self, outcome: crate::host::HostOutcome) -> Option<Exit> {
        let e = outcome.exit()?;
        self.resume_after_host = false;
        self.last_exit = Some(e);
        Some(e)
    }
}

struct State<'a> {
    regs: &'a mut [u64; 16],
    memory: &'a mut Memory,
    gas: i64,
    heap_top: &'a mut u32,
    interrupt: &'a AtomicBool,
}

#[inline(always)]
fn sx32(x: u64) -> u64 {
    x as u32 as i32 as i64 as u64
}

/// The dispatch loop. Returns the exit (None only in step mode), the pc to store, χ, and the slot
/// after the last op executed (after an `ecalli`: the next instruction's).
#[inline(always)]
fn interpret<const STEP: bool>(
    p: &ProgramInner,
    st: &mut State<'_>,
    start: usize,
) -> (Option<Exit>, u32, bool, u32) {
    let table = &p.table;
    // The loop walks the op array with a pointer (`ip`) rather than an index, which saves the
    // index-to-address arithmetic on every dispatch. Invariant: `ip` points at an op of the table
    // that belongs to a compiled block (`op_for_pc` compiled the entry's block). Ops continue to
    // the next op only when they are not the last of their block, so sequential execution stays
    // inside a compiled block; every other move goes through `goto_block`, which checks that the
    // target block is compiled (see `program/lazy.rs`). The last slot is always a `Trap`.
    assert!(start < table.len());
    let base = table.base();
    // SAFETY: `start < table.len()` (asserted above), so the offset stays inside the array.
    let mut ip: *const Op = unsafe { base.add(start) };
    let jt = &table.jump_table[..];
    // A local copy keeps the register file addressable from the stack frame instead of through a
    // pointer that the dispatch loop would otherwise have to reload; written back at every exit.
    let mut regs: [u64; 16] = *st.regs;
    let mem = &mut *st.memory;
    // The page table's base pointer as a local, so that it stays in a register (through `mem` it
    // would be reloaded after every guest store).
    let table_view = mem.guest_table();
    // Gas is kept non-negative inside the loop so that block costs can be compared as unsigned
    // numbers, where an uncompiled block's cost (`u64::MAX`) is never affordable. A negative
    // counter can pay for nothing, exactly like 0 (every block costs at least 1), so it is
    // carried aside and added back on exit.
    let interrupt = st.interrupt;
    let deficit = st.gas.min(0);
    let mut gas = st.gas.max(0);

    macro_rules! r {
        ($x:expr) => {
            regs[$x as usize]
        };
    }
    macro_rules! leave {
        ($e:expr, $pc:expr, $charged:expr) => {{
            *st.regs = regs;
            st.gas = gas + deficit;
            // SAFETY: `ip` points into the table or one past an op in it, the same allocation
            // as `base`.
            let slot = unsafe { ip.offset_from(base) } as u32;
            return ($e, $pc, $charged, slot);
        }};
    }
    macro_rules! exit {
        ($e:expr, $pc:expr) => {
            leave!(Some($e), $pc, true)
        };
    }
    // Enters the block whose `Charge` slot `target` points at. In run mode the block's gas is
    // charged right here, so entering a block costs no extra dispatch; an unaffordable block is an
    // out-of-gas exit at the block start with gas unchanged and χ = ⊥ (GP 0.8.0 A.4). A block
    // that is not compiled yet reads as unaffordable, and the slow path compiles it. In step mode
    // the step ends here (pc = the block start, χ = ⊥): the charge is left to the next step, as
    // Ψ_1 does. The invalid-target slot panics at the jumping instruction.
    macro_rules! goto_block {
        ($target:expr, $from_pc:expr) => {{
            let target: *const Op = $target;
            // SAFETY: `target` points at a `Charge` slot inside the table (slots are produced by
            // the scan); its cost is an atomic, its other fields are never written.
            let c = unsafe { &*target };
            debug_assert!(c.k == K::Charge);
            let mut cost = !c.imm.load(Ordering::Acquire);
            // An interrupt request also takes the slow path (one relaxed load per block entry).
            if STEP || (gas as u64) < cost || interrupt.load(Ordering::Relaxed) {
                // SAFETY: both pointers are into the same array.
                let slot = unsafe { target.offset_from(base) } as u32;
                cost = p.slot_cost_slow(slot);
                if cost == INVALID_TARGET {
                    exit!(Exit::Panic, $from_pc);
                }
                debug_assert!(cost != UNCOMPILED);
                if STEP {
                    leave!(None, table.block_pc_of_slot(slot), false);
                }
                if interrupt.swap(false, Ordering::Relaxed) {
                    leave!(Some(Exit::Interrupted), table.block_pc_of_slot(slot), false);
                }
                if (gas as u64) < cost {
                    leave!(Some(Exit::OutOfGas), table.block_pc_of_slot(slot), false);
                }
            }
            gas -= cost as i64;
            // SAFETY: the block is compiled and its first op follows its `Charge` slot.
            ip = unsafe { target.add(1) };
        }};
    }
    macro_rules! op_at {
        ($t:expr) => {{
            let t: usize = $t;
            debug_assert!(t < table.len());
            // SAFETY: `t` is a slot produced by the scan (a `Charge` slot or the invalid-target
            // slot), an in-bounds index.
            unsafe { base.add(t) }
        }};
    }
    macro_rules! trap {
        ($t:expr, $pc:expr) => {
            match $t {
                Trap::Panic => exit!(Exit::Panic, $pc),
                Trap::Fault(addr) => exit!(Exit::PageFault(addr), $pc),
            }
        };
    }
    macro_rules! djump {
        ($addr:expr, $pc:expr) => {{
            let addr: u32 = $addr;
            if addr == HALT_ADDRESS {
                exit!(Exit::Halt, $pc);
            }
            if addr == 0 || addr as u64 > jt.len() as u64 * 2 || addr & 1 != 0 {
                exit!(Exit::Panic, $pc);
            }
            let t = jt[(addr / 2 - 1) as usize];
            goto_block!(op_at!(t as usize), $pc);
        }};
    }

    // In step mode the first op is the instruction itself (entry charging is done by the caller).
    let mut executed_one = false;
    loop {
        // SAFETY: `ip` points at an op of a compiled block (the invariant above).
        let op = unsafe { &*ip };
        if STEP && executed_one && op.k != K::Charge {
            leave!(None, op.pc, true);
        }
        // SAFETY: `op` is not the last op unless it is a `Trap`, which never continues, so the
        // next position is in bounds or one past the end (never dereferenced then).
        ip = unsafe { ip.add(1) };
        executed_one = true;
        macro_rules! load {
            ($n:literal, $addr:expr, $dst:expr, $conv:expr) => {{
                let addr: u32 = $addr;
                // SAFETY: `table_view` is the table of `mem`, borrowed for the whole loop.
                let fast = unsafe { table_view.load::<$n>(addr) };
                match fast.map_or_else(|| mem.load_slow::<$n>(addr), Ok) {
                    Ok(b) => r!($dst) = $conv(b),
                    Err(t) => trap!(t, op.pc),
                }
            }};
        }
        macro_rules! store {
            ($n:literal, $addr:expr, $bytes:expr) => {{
                let (addr, bytes): (u32, [u8; $n]) = ($addr, $bytes);
                // SAFETY: `table_view` is the table of `mem`, borrowed exclusively for the whole
                // loop.
                let fast = unsafe { table_view.store::<$n>(addr, bytes) };
                if !fast {
                    if let Err(t) = mem.store_slow(addr, &bytes) {
                        trap!(t, op.pc);
                    }
                }
            }};
        }
        macro_rules! branch {
            ($cond:expr, $target:expr) => {{
                let t = if $cond { op_at!($target as usize) } else { ip };
                goto_block!(t, op.pc);
            }};
        }
        // Fields are read where a handler needs them rather than all up front.
        macro_rules! imm {
            () => {
                op.imm()
            };
        }
        macro_rules! lo {
            () => {
                sx32(op.imm())
            };
        }
        macro_rules! hi32 {
            () => {
                (op.imm() >> 32) as u32
            };
        }
        match op.k {
            // Execution ran into the next block's `Charge` slot (no instruction does this today:
            // blocks end in terminators, which jump, branch or trap). Enter it like a jump would.
            K::Charge => {
                // SAFETY: `ip` was advanced past this op, which is in the array.
                goto_block!(unsafe { ip.sub(1) }, op.pc)
            }
            K::Trap => exit!(Exit::Panic, op.pc),
            K::Nop => {}
            K::Fallthrough => goto_block!(ip, op.pc),
            K::Ecalli => exit!(Exit::HostCall(imm!() as u32), op.pc),
            K::LoadImm64 | K::LoadImm => r!(op.a) = imm!(),
            K::StoreImmU8 => store!(1, imm!() as u32, [(imm!() >> 32) as u8]),
            K::StoreImmU16 => store!(2, imm!() as u32, ((imm!() >> 32) as u16).to_le_bytes()),
            K::StoreImmU32 => store!(4, imm!() as u32, hi32!().to_le_bytes()),
            K::StoreImmU64 => store!(
                8,
                imm!() as u32,
                (hi32!() as i32 as i64 as u64).to_le_bytes()
            ),
            K::Jump => goto_block!(op_at!(imm!() as usize), op.pc),
            K::JumpInd => djump!(r!(op.a).wrapping_add(imm!()) as u32, op.pc),
            K::LoadU8 => load!(1, imm!() as u32, op.a, |b: [u8; 1]| b[0] as u64),
            K::LoadI8 => load!(1, imm!() as u32, op.a, |b: [u8; 1]| b[0] as i8 as i64
                as u64),
            K::LoadU16 => load!(2, imm!() as u32, op.a, |b| u16::from_le_bytes(b) as u64),
            K::LoadI16 => load!(2, imm!() as u32, op.a, |b| i16::from_le_bytes(b) as i64
                as u64),
            K::LoadU32 => load!(4, imm!() as u32, op.a, |b| u32::from_le_bytes(b) as u64),
            K::LoadI32 => load!(4, imm!() as u32, op.a, |b| i32::from_le_bytes(b) as i64
                as u64),
            K::LoadU64 => load!(8, imm!() as u32, op.a, u64::from_le_bytes),
            K::StoreU8 => store!(1, imm!() as u32, [r!(op.a) as u8]),
            K::StoreU16 => store!(2, imm!() as u32, (r!(op.a) as u16).to_le_bytes()),
            K::StoreU32 => store!(4, imm!() as u32, (r!(op.a) as u32).to_le_bytes()),
            K::StoreU64 => store!(8, imm!() as u32, r!(op.a).to_le_bytes()),
            K::StoreImmIndU8 => store!(1, r!(op.a).wrapping_add(lo!()) as u32, [hi32!() as u8]),
            K::StoreImmIndU16 => store!(
                2,
                r!(op.a).wrapping_add(lo!()) as u32,
                (hi32!() as u16).to_le_bytes()
            ),
            K::StoreImmIndU32 => store!(
                4,
                r!(op.a).wrapping_add(lo!()) as u32,
                hi32!().to_le_bytes()
            ),
            K::StoreImmIndU64 => {
                store!(
                    8,
                    r!(op.a).wrapping_add(lo!()) as u32,
                    (hi32!() as i32 as i64 as u64).to_le_bytes()
                )
            }
            K::LoadImmJump => {
                r!(op.a) = lo!();
                goto_block!(op_at!(hi32!() as usize), op.pc);
            }
            K::BranchEqImm => branch!(r!(op.a) == lo!(), hi32!()),
            K::BranchNeImm => branch!(r!(op.a) != lo!(), hi32!()),
            K::BranchLtUImm => branch!(r!(op.a) < lo!(), hi32!()),
            K::BranchLeUImm => branch!(r!(op.a) <= lo!(), hi32!()),
            K::BranchGeUImm => branch!(r!(op.a) >= lo!(), hi32!()),
            K::BranchGtUImm => branch!(r!(op.a) > lo!(), hi32!()),
            K::BranchLtSImm => branch!((r!(op.a) as i64) < lo!() as i64, hi32!()),
            K::BranchLeSImm => branch!((r!(op.a) as i64) <= lo!() as i64, hi32!()),
            K::BranchGeSImm => branch!((r!(op.a) as i64) >= lo!() as i64, hi32!()),
            K::BranchGtSImm => branch!((r!(op.a) as i64) > lo!() as i64, hi32!()),
            K::MoveReg => r!(op.d) = r!(op.a),
            K::Sbrk => {
                let size = r!(op.a);
                r!(op.d) = sbrk(mem, st.heap_top, size);
            }
            K::CountSetBits64 => r!(op.d) = r!(op.a).count_ones() as u64,
            K::CountSetBits32 => r!(op.d) = (r!(op.a) as u32).count_ones() as u64,
            K::LeadingZeroBits64 => r!(op.d) = r!(op.a).leading_zeros() as u64,
            K::LeadingZeroBits32 => r!(op.d) = (r!(op.a) as u32).leading_zeros() as u64,
            K::TrailingZeroBits64 => r!(op.d) = r!(op.a).trailing_zeros() as u64,
            K::TrailingZeroBits32 => r!(op.d) = (r!(op.a) as u32).trailing_zeros() as u64,
            K::SignExtend8 => r!(op.d) = r!(op.a) as u8 as i8 as i64 as u64,
            K::SignExtend16 => r!(op.d) = r!(op.a) as u16 as i16 as i64 as u64,
            K::ZeroExtend16 => r!(op.d) = r!(op.a) as u16 as u64,
            K::ReverseBytes => r!(op.d) = r!(op.a).swap_bytes(),
            K::StoreIndU8 => store!(1, r!(op.b).wrapping_add(imm!()) as u32, [r!(op.a) as u8]),
            K::StoreIndU16 => store!(
                2,
                r!(op.b).wrapping_add(imm!()) as u32,
                (r!(op.a) as u16).to_le_bytes()
            ),
            K::StoreIndU32 => store!(
                4,
                r!(op.b).wrapping_add(imm!()) as u32,
                (r!(op.a) as u32).to_le_bytes()
            ),
            K::StoreIndU64 => store!(
                8,
                r!(op.b).wrapping_add(imm!()) as u32,
                r!(op.a).to_le_bytes()
            ),
            K::LoadIndU8 => load!(
                1,
                r!(op.b).wrapping_add(imm!()) as u32,
                op.a,
                |b: [u8; 1]| b[0] as u64
            ),
            K::LoadIndI8 => load!(
                1,
                r!(op.b).wrapping_add(imm!()) as u32,
                op.a,
                |b: [u8; 1]| b[0] as i8 as i64 as u64
            ),
            K::LoadIndU16 => {
                load!(
                    2,
                    r!(op.b).wrapping_add(imm!()) as u32,
                    op.a,
                    |b| u16::from_le_bytes(b) as u64
                )
            }
            K::LoadIndI16 => {
                load!(
                    2,
                    r!(op.b).wrapping_add(imm!()) as u32,
                    op.a,
                    |b| i16::from_le_bytes(b) as i64 as u64
                )
            }
            K::LoadIndU32 => {
                load!(
                    4,
                    r!(op.b).wrapping_add(imm!()) as u32,
                    op.a,
                    |b| u32::from_le_bytes(b) as u64
                )
            }
            K::LoadIndI32 => {
                load!(
                    4,
                    r!(op.b).wrapping_add(imm!()) as u32,
                    op.a,
                    |b| i32::from_le_bytes(b) as i64 as u64
                )
            }
            K::LoadIndU64 => load!(
                8,
                r!(op.b).wrapping_add(imm!()) as u32,
                op.a,
                u64::from_le_bytes
            ),
            K::AddImm32 => r!(op.a) = sx32(r!(op.b).wrapping_add(imm!())),
            K::AndImm => r!(op.a) = r!(op.b) & imm!(),
            K::XorImm => r!(op.a) = r!(op.b) ^ imm!(),
            K::OrImm => r!(op.a) = r!(op.b) | imm!(),
            K::MulImm32 => r!(op.a) = sx32(r!(op.b).wrapping_mul(imm!())),
            K::SetLtUImm => r!(op.a) = (r!(op.b) < imm!()) as u64,
            K::SetLtSImm => r!(op.a) = ((r!(op.b) as i64) < imm!() as i64) as u64,
            K::ShloLImm32 => r!(op.a) = sx32(((r!(op.b) as u32) << (imm!() & 31)) as u64),
            K::ShloRImm32 => r!(op.a) = sx32(((r!(op.b) as u32) >> (imm!() & 31)) as u64),
            K::SharRImm32 => r!(op.a) = ((r!(op.b) as u32 as i32) >> (imm!() & 31)) as i64 as u64,
            K::NegAddImm32 => r!(op.a) = sx32(imm!().wrapping_sub(r!(op.b))),
            K::SetGtUImm => r!(op.a) = (r!(op.b) > imm!()) as u64,
            K::SetGtSImm => r!(op.a) = ((r!(op.b) as i64) > imm!() as i64) as u64,
            K::ShloLImmAlt32 => r!(op.a) = sx32(((imm!() as u32) << (r!(op.b) & 31)) as u64),
            K::ShloRImmAlt32 => r!(op.a) = sx32(((imm!() as u32) >> (r!(op.b) & 31)) as u64),
            K::SharRImmAlt32 => {
                r!(op.a) = ((imm!() as u32 as i32) >> (r!(op.b) & 31)) as i64 as u64
            }
            K::CmovIzImm => {
                if r!(op.b) == 0 {
                    r!(op.a) = imm!()
                }
            }
            K::CmovNzImm => {
                if r!(op.b) != 0 {
                    r!(op.a) = imm!()
                }
            }
            K::AddImm64 => r!(op.a) = r!(op.b).wrapping_add(imm!()),
            K::MulImm64 => r!(op.a) = r!(op.b).wrapping_mul(imm!()),
            K::ShloLImm64 => r!(op.a) = r!(op.b) << (imm!() & 63),
            K::ShloRImm64 => r!(op.a) = r!(op.b) >> (imm!() & 63),
            K::SharRImm64 => r!(op.a) = ((r!(op.b) as i64) >> (imm!() & 63)) as u64,
            K::NegAddImm64 => r!(op.a) = imm!().wrapping_sub(r!(op.b)),
            K::ShloLImmAlt64 => r!(op.a) = imm!() << (r!(op.b) & 63),
            K::ShloRImmAlt64 => r!(op.a) = imm!() >> (r!(op.b) & 63),
            K::SharRImmAlt64 => r!(op.a) = ((imm!() as i64) >> (r!(op.b) & 63)) as u64,
            K::RotR64Imm => r!(op.a) = r!(op.b).rotate_right((imm!() & 63) as u32),
            K::RotR64ImmAlt => r!(op.a) = imm!().rotate_right((r!(op.b) & 63) as u32),
            K::RotR32Imm => {
                r!(op.a) = sx32((r!(op.b) as u32).rotate_right((imm!() & 31) as u32) as u64)
            }
            K::RotR32ImmAlt => {
                r!(op.a) = sx32((imm!() as u32).rotate_right((r!(op.b) & 31) as u32) as u64)
            }
            K::BranchEq => branch!(r!(op.a) == r!(op.b), imm!()),
            K::BranchNe => branch!(r!(op.a) != r!(op.b), imm!()),
            K::BranchLtU => branch!(r!(op.a) < r!(op.b), imm!()),
            K::BranchLtS => branch!((r!(op.a) as i64) < (r!(op.b) as i64), imm!()),
            K::BranchGeU => branch!(r!(op.a) >= r!(op.b), imm!()),
            K::BranchGeS => branch!((r!(op.a) as i64) >= (r!(op.b) as i64), imm!()),
            K::LoadImmJumpInd => {
                // The jump address uses φ_B before φ_A is written (they may be the same register).
                let addr = r!(op.b).wrapping_add(sx32(hi32!() as u64)) as u32;
                r!(op.a) = lo!();
                djump!(addr, op.pc);
            }
            K::Add32 => r!(op.d) = sx32(r!(op.a).wrapping_add(r!(op.b))),
            K::Sub32 => r!(op.d) = sx32(r!(op.a).wrapping_sub(r!(op.b))),
            K::Mul32 => r!(op.d) = sx32(r!(op.a).wrapping_mul(r!(op.b))),
            K::DivU32 => {
                let (a, b) = (r!(op.a) as u32, r!(op.b) as u32);
                r!(op.d) = a.checked_div(b).map_or(u64::MAX, |q| sx32(q as u64));
            }
            K::DivS32 => {
                let (a, b) = (r!(op.a) as u32 as i32, r!(op.b) as u32 as i32);
                r!(op.d) = if b == 0 {
                    u64::MAX
                } else if a == i32::MIN && b == -1 {
                    a as i64 as u64
                } else {
                    (a / b) as i64 as u64
                };
            }
            K::RemU32 => {
                let (a, b) = (r!(op.a) as u32, r!(op.b) as u32);
                r!(op.d) = if b == 0 {
                    sx32(a as u64)
                } else {
                    sx32((a % b) as u64)
                };
            }
            K::RemS32 => {
                let (a, b) = (r!(op.a) as u32 as i32, r!(op.b) as u32 as i32);
                r!(op.d) = if a == i32::MIN && b == -1 {
                    0
                } else if b == 0 {
                    a as i64 as u64
                } else {
                    (a % b) as i64 as u64
                };
            }
            K::ShloL32 => r!(op.d) = sx32(((r!(op.a) as u32) << (r!(op.b) & 31)) as u64),
            K::ShloR32 => r!(op.d) = sx32(((r!(op.a) as u32) >> (r!(op.b) & 31)) as u64),
            K::SharR32 => r!(op.d) = ((r!(op.a) as u32 as i32) >> (r!(op.b) & 31)) as i64 as u64,
            K::Add64 => r!(op.d) = r!(op.a).wrapping_add(r!(op.b)),
            K::Sub64 => r!(op.d) = r!(op.a).wrapping_sub(r!(op.b)),
            K::Mul64 => r!(op.d) = r!(op.a).wrapping_mul(r!(op.b)),
            K::DivU64 => {
                let (a, b) = (r!(op.a), r!(op.b));
                r!(op.d) = a.checked_div(b).unwrap_or(u64::MAX);
            }
            K::DivS64 => {
                let (a, b) = (r!(op.a) as i64, r!(op.b) as i64);
                r!(op.d) = if b == 0 {
                    u64::MAX
                } else if a == i64::MIN && b == -1 {
                    a as u64
                } else {
                    (a / b) as u64
                };
            }
            K::RemU64 => {
                let (a, b) = (r!(op.a), r!(op.b));
                r!(op.d) = if b == 0 { a } else { a % b };
            }
            K::RemS64 => {
                let (a, b) = (r!(op.a) as i64, r!(op.b) as i64);
                r!(op.d) = if a == i64::MIN && b == -1 {
                    0
                } else if b == 0 {
                    a as u64
                } else {
                    (a % b) as u64
                };
            }
            K::ShloL64 => r!(op.d) = r!(op.a) << (r!(op.b) & 63),
            K::ShloR64 => r!(op.d) = r!(op.a) >> (r!(op.b) & 63),
            K::SharR64 => r!(op.d) = ((r!(op.a) as i64) >> (r!(op.b) & 63)) as u64,
            K::And => r!(op.d) = r!(op.a) & r!(op.b),
            K::Xor => r!(op.d) = r!(op.a) ^ r!(op.b),
            K::Or => r!(op.d) = r!(op.a) | r!(op.b),
            K::MulUpperSS => {
                r!(op.d) = (((r!(op.a) as i64 as i128) * (r!(op.b) as i64 as i128)) >> 64) as u64
            }
            K::MulUpperUU => r!(op.d) = (((r!(op.a) as u128) * (r!(op.b) as u128)) >> 64) as u64,
            K::MulUpperSU => {
                r!(op.d) = (((r!(op.a) as i64 as i128) * (r!(op.b) as u128 as i128)) >> 64) as u64
            }
            K::SetLtU => r!(op.d) = (r!(op.a) < r!(op.b)) as u64,
            K::SetLtS => r!(op.d) = ((r!(op.a) as i64) < (r!(op.b) as i64)) as u64,
            K::CmovIz => {
                if r!(op.b) == 0 {
                    r!(op.d) = r!(op.a)
                }
            }
            K::CmovNz => {
                if r!(op.b) != 0 {
                    r!(op.d) = r!(op.a)
                }
            }
            K::RotL64 => r!(op.d) = r!(op.a).rotate_left((r!(op.b) & 63) as u32),
            K::RotL32 => {
                r!(op.d) = sx32((r!(op.a) as u32).rotate_left((r!(op.b) & 31) as u32) as u64)
            }
            K::RotR64 => r!(op.d) = r!(op.a).rotate_right((r!(op.b) & 63) as u32),
            K::RotR32 => {
                r!(op.d) = sx32((r!(op.a) as u32).rotate_right((r!(op.b) & 31) as u32) as u64)
            }
            K::AndInv => r!(op.d) = r!(op.a) & !r!(op.b),
            K::OrInv => r!(op.d) = r!(op.a) | !r!(op.b),
            K::Xnor => r!(op.d) = !(r!(op.a) ^ r!(op.b)),
            K::Max => r!(op.d) = (r!(op.a) as i64).max(r!(op.b) as i64) as u64,
            K::MaxU => r!(op.d) = r!(op.a).max(r!(op.b)),
            K::Min => r!(op.d) = (r!(op.a) as i64).min(r!(op.b) as i64) as u64,
            K::MinU => r!(op.d) = r!(op.a).min(r!(op.b)),
        }
    }
}

/// GP 0.7.2 `sbrk` (A.5.9): φ'_D = min x ≥ h such that [x, x + φ_A) is not readable and becomes
/// writable. libpvm tracks the heap end (initially the end of the standard program's heap) and
/// maps the next `size` bytes there, page-granular; `size` 0 returns the current end. Growth past
/// the 32-bit space or into readable memory returns 0 and maps nothing.
///
/// Cost: the check asks the page table's bitmaps for the first readable page of the range
/// (O(2 MiB chunks of the range)), so a failing `sbrk` costs microseconds however large the
/// request; a successful one costs O(pages mapped).
fn sbrk(mem: &mut Memory, heap_top: &mut u32, size: u64) -> u64 {
    let x = *heap_top as u64;
    if size == 0 {
        return x;
    }
    let Some(end) = x.checked_add(size).filter(|e| *e <= u32::MAX as u64) else {
        return 0;
    };
    let first_new = (x.div_ceil(4096)) as u32;
    let last = (end.div_ceil(4096)) as u32;
    if first_new < last {
        let pages = first_new..last;
        if mem.first_readable_page(pages.clone()).is_some() || mem.make_writable(pages).is_err() {
            return 0;
        }
    }
    *heap_top = end as u32;
    x
}
