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
use crate::memory::{Access, Memory};
use crate::program::{Program, ProgramInner};
use crate::recompiler::NativeExit;
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
    /// [`InterruptHandle::interrupt`] was called: the run stopped at the start of a basic block
    /// (pc = that block, nothing of it charged, χ = ⊥): with the interpreter the next block it was
    /// about to enter; with the recompiler the block where its current gas slice ends (within
    /// [`NATIVE_GAS_SLICE`] gas of guest execution). Not a GP exit: the next run continues exactly
    /// where this one stopped.
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
    /// with [`Exit::Interrupted`] at a basic-block boundary: the next one (interpreter) or within
    /// [`NATIVE_GAS_SLICE`] gas (recompiler). The request is consumed by that exit.
    pub fn interrupt(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How much gas compiled code gets per entry (more only for a block that costs more): it exits
/// at the entry of the block that its slice cannot pay, and the driver looks at interrupt
/// requests before giving it the next slice. So compiled code never reads the interrupt flag (no
/// check in any loop), and a request is seen within this much gas (about a millisecond of guest
/// execution); the exits add one driver round trip (~0.1 µs) per slice.
pub const NATIVE_GAS_SLICE: i64 = 1 << 20;

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
    /// See [`Instance::instruction_count`].
    instructions: u64,
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
            instructions: 0,
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

    /// The number of instructions executed since creation (or the last
    /// [`Instance::set_instruction_count`]), the same with either backend, `run` or `step`. An
    /// instruction counts once each time it executes, including the one that exits (`trap`,
    /// `ecalli`, the halting jump, a faulting load or store, an invalid jump; a retried
    /// instruction counts again); one not started (out of gas, interrupted, or a GP 0.8.0 entry
    /// at a non-instruction pc) does not. Under GP 0.7.2 every counted instruction is one gas.
    pub fn instruction_count(&self) -> u64 {
        self.instructions
    }

    /// Sets the executed-instruction counter (e.g. to 0 before an invocation); it wraps at 2^64.
    pub fn set_instruction_count(&mut self, count: u64) {
        self.instructions = count;
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
        if self.program.inner.native.is_some() {
            return self.run_native();
        }
        self.execute::<false>()
            .expect("run mode always ends in an exit")
    }

    /// The recompiler's run loop: compiled code from every block entry it can take, interpreter
    /// steps for whatever it yields (see `recompiler/codegen.rs`), back to compiled code at the
    /// next block entry. Both work on this instance's state, so the result is the interpreter's.
    fn run_native(&mut self) -> Exit {
        let program = self.program.inner.clone();
        let native = program.native.as_ref().expect("a recompiled program");
        let table = &program.table;
        let gp072 = program.spec == Spec::Gp0_7_2;
        // The interpreter looks at interrupt requests when it enters a block from another one,
        // not for the block a run starts in. So a run that starts with a request pending takes
        // its first block in the interpreter; after that, every entry into compiled code checks.
        // Compiled code never checks: it runs on gas slices and exits when one runs out.
        let mut first = true;
        // The least gas slice for the next entry (the cost of the block a slice could not pay).
        let mut min_slice = 0i64;
        loop {
            let pending = self.interrupt.0.load(Ordering::Relaxed);
            if pending && !first && self.native_entry_block(&program).is_some() {
                self.interrupt.0.store(false, Ordering::Relaxed);
                self.gas_charged = false;
                self.last_exit = Some(Exit::Interrupted);
                return Exit::Interrupted;
            }
            first = false;
            // With a request pending the interpreter takes this block (`native_entry` must not
            // even be asked: resuming after a host call it moves the pc and the count).
            let entry = if pending {
                None
            } else {
                self.native_entry(&program, native)
            };
            if let Some(entry) = entry {
                // Compiled code runs on a slice of the gas (`NATIVE_GAS_SLICE`); the rest is
                // held back here and added again afterwards.
                let want = NATIVE_GAS_SLICE.max(min_slice);
                let slice = if self.gas > want { want } else { self.gas };
                let held_back = self.gas - slice;
                min_slice = 0;
                let mut ctx = crate::recompiler::Ctx {
                    regs: self.regs[..NUM_REGISTERS].try_into().expect("13 registers"),
                    gas: slice,
                    table: self.memory.guest_table().as_ptr(),
                    exit_pc: 0,
                    exit_kind: 0,
                    instructions: self.instructions,
                };
                // SAFETY: the table is `self.memory`'s, borrowed exclusively by `&mut self` for
                // the call; `entry` comes from `native`.
                let exit = unsafe { native.run(&mut ctx, entry) };
                self.regs[..NUM_REGISTERS].copy_from_slice(&ctx.regs);
                self.gas = ctx.gas + held_back;
                // Compiled code counts a block's instructions when it charges its gas; an exit
                // inside a block takes back the ones that did not execute there. Under GP 0.7.2
                // a block's gas is its instruction count, and compiled code leaves the counter
                // alone: the gas it used is the count.
                self.instructions = if gp072 {
                    self.instructions.wrapping_add((slice - ctx.gas) as u64)
                } else {
                    ctx.instructions
                };
                match exit {
                    NativeExit::HostCall(pc) => {
                        // As the interpreter leaves a host call: pc at the `ecalli`, χ set
                        // (GP 0.8.0), resumption at the next op.
                        let slot = program.op_for_pc(pc).expect("an ecalli is an instruction");
                        self.instructions = self
                            .instructions
                            .wrapping_sub((table.block_end_slot(slot) - slot - 1) as u64);
                        let id = table.op(slot).imm() as u32;
                        self.pc = pc;
                        self.gas_charged = !gp072;
                        self.resume_slot = slot + 1;
                        self.resume_after_host = true;
                        self.last_exit = Some(Exit::HostCall(id));
                        return Exit::HostCall(id);
                    }
                    NativeExit::Entry(pc) => {
                        self.pc = pc;
                        self.gas_charged = false;
                        if held_back > 0 {
                            // The slice ran out: look at interrupt requests (the loop's top),
                            // then give compiled code a slice that pays at least this block
                            // (or all the gas there is: then it exits here again, uncharged).
                            let b = table.block_containing(pc);
                            min_slice = table.slot_cost(table.blocks[b].slot) as i64;
                            continue;
                        }
                        // Otherwise the block is unaffordable: the interpreter's steps below
                        // produce the exact out-of-gas exit (GP 0.8.0) or walk the block
                        // instruction by instruction (GP 0.7.2).
                    }
                    NativeExit::Yield(pc) => {
                        self.pc = pc;
                        // The instructions from `pc` on did not execute in compiled code; the
                        // step below executes (and counts) the one at `pc`.
                        let slot = program.op_for_pc(pc).expect("a yield is at an instruction");
                        let rest = table.block_end_slot(slot) - slot;
                        self.instructions = self.instructions.wrapping_sub(rest as u64);
                        if gp072 {
                            // Give back the pre-charged instructions from `pc` on; the step
                            // below charges the one at `pc`.
                            self.gas += rest as i64;
                        } else {
                            self.gas_charged = true;
                        }
                    }
                }
            }
            loop {
                if let Some(e) = self.step() {
                    return e;
                }
                // (Never resuming a host call here: the step did that.)
                if self.native_entry_block(&program).is_some() {
                    break;
                }
            }
        }
    }

    /// Where compiled code can continue this instance: the entry of the block at the pc when
    /// nothing of it is charged yet (GP 0.7.2: any gas-block start), or, resuming after a GP
    /// 0.8.0 host call, the code after the `ecalli` (which moves the pc past it).
    fn native_entry(
        &mut self,
        program: &ProgramInner,
        native: &crate::recompiler::Compiled,
    ) -> Option<u32> {
        if self.resume_after_host {
            if program.spec != Spec::Gp0_8_0 {
                return None; // the interpreter step moves to the next gas block
            }
            let next = program.code().skip(self.pc) + self.pc + 1;
            let entry = native.resume_entry(next)?;
            self.pc = next;
            self.resume_after_host = false;
            // Compiled code continues the block after the `ecalli`: count the rest of it again,
            // as the host-call exit took it back.
            let slot = self.resume_slot;
            self.instructions = self
                .instructions
                .wrapping_add((program.table.block_end_slot(slot) - slot) as u64);
            return Some(entry);
        }
        self.native_entry_block(program)
            .map(|b| native.block_entry(b))
    }

    /// The block starting at the pc when nothing of it is charged yet (GP 0.7.2: any gas-block
    /// start) and no host call is pending resumption.
    fn native_entry_block(&self, program: &ProgramInner) -> Option<usize> {
        if self.resume_after_host || (self.gas_charged && program.spec == Spec::Gp0_8_0) {
            return None;
        }
        let table = &program.table;
        let b = table.block_containing(self.pc);
        (table.blocks[b].pc == self.pc).then_some(b)
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
                // Not a position of the instruction walk: executes as `trap` (1 gas, one
                // instruction), as anan-as does.
                None => {
                    if let Some(e) = self.charge_one() {
                        return Some(e);
                    }
                    self.instructions = self.instructions.wrapping_add(1);
                    return Some(Exit::Panic);
                }
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
        let mut state = crate::interpreter::State {
            regs: &mut self.regs,
            memory: &mut self.memory,
            gas: self.gas,
            heap_top: &mut self.heap_top,
            interrupt: &self.interrupt.0,
            instructions: self.instructions,
        };
        let r =
            crate::interpreter::interpret::<STEP>(&self.program.inner, &mut state, slot as usize);
        self.gas = state.gas;
        self.instructions = state.instructions;
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
