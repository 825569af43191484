//! Host calls: the context a handler sees during an `ecalli` (GP Ψ_H, A.6) and the argument
//! invocation Ψ_M (A.8).

use crate::error::ProgramError;
use crate::instance::{Exit, Instance, NUM_REGISTERS};
use crate::jip7::CallRecorder;
use crate::memory::{Memory, MemoryError};
use crate::program::Program;

/// What a host-call handler decides (GP Ψ_H's host-call results ▸, halt, panic, oog).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostOutcome {
    /// Continue at the instruction after the `ecalli`.
    Continue,
    /// End the run with a halt.
    Halt,
    /// End the run with a panic.
    Panic,
    /// End the run out of gas.
    OutOfGas,
}

impl HostOutcome {
    /// The exit this outcome ends a run with (`None` for `Continue`).
    pub fn exit(self) -> Option<Exit> {
        match self {
            HostOutcome::Continue => None,
            HostOutcome::Halt => Some(Exit::Halt),
            HostOutcome::Panic => Some(Exit::Panic),
            HostOutcome::OutOfGas => Some(Exit::OutOfGas),
        }
    }
}

/// The VM as a host-call handler sees it: registers, gas and memory of the instance stopped at
/// an `ecalli`. All access goes through this type so that it can be recorded.
pub struct HostCallContext<'a> {
    instance: &'a mut Instance,
    record: Option<&'a mut CallRecorder>,
}

impl<'a> HostCallContext<'a> {
    /// Wraps an instance stopped at a host call.
    pub fn new(instance: &'a mut Instance) -> Self {
        HostCallContext {
            instance,
            record: None,
        }
    }

    /// Wraps an instance and records the handler's memory reads and writes and the registers and
    /// gas it sets (JIP-6).
    pub fn with_recorder(instance: &'a mut Instance, record: &'a mut CallRecorder) -> Self {
        HostCallContext {
            instance,
            record: Some(record),
        }
    }

    /// Register `i` (panics if `i >= 13`; use [`HostCallContext::registers`] to iterate).
    pub fn reg(&self, i: usize) -> u64 {
        self.instance.registers()[i]
    }

    /// Sets register `i` (panics if `i >= 13`).
    pub fn set_reg(&mut self, i: usize, value: u64) {
        self.instance.registers_mut()[i] = value;
        if let Some(r) = self.record.as_deref_mut() {
            r.record_set_reg(i);
        }
    }

    /// All 13 registers.
    pub fn registers(&self) -> &[u64; NUM_REGISTERS] {
        self.instance.registers()
    }

    /// Remaining gas.
    pub fn gas(&self) -> i64 {
        self.instance.gas()
    }

    /// Sets the remaining gas.
    pub fn set_gas(&mut self, gas: i64) {
        self.instance.set_gas(gas);
        if let Some(r) = self.record.as_deref_mut() {
            r.record_set_gas();
        }
    }

    /// Charges `amount` gas as GP host calls do: ϱ' = ϱ − g (saturating), and returns false if
    /// ϱ < g, in which case the handler should return [`HostOutcome::OutOfGas`] (B.5).
    pub fn charge(&mut self, amount: u64) -> bool {
        let gas = self.gas();
        self.set_gas(gas.saturating_sub(amount.min(i64::MAX as u64) as i64));
        gas >= 0 && gas as u64 >= amount
    }

    /// Reads guest memory (must be readable).
    pub fn read_memory(&mut self, address: u32, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.instance.memory().read(address, buf)?;
        if let Some(r) = self.record.as_deref_mut() {
            r.record_read(address, buf);
        }
        Ok(())
    }

    /// Reads `len` bytes of guest memory into a new vector (must be readable).
    pub fn read_vec(&mut self, address: u32, len: usize) -> Result<Vec<u8>, MemoryError> {
        let mut buf = vec![0u8; len];
        self.read_memory(address, &mut buf)?;
        Ok(buf)
    }

    /// Writes guest memory (must be writable).
    pub fn write_memory(&mut self, address: u32, data: &[u8]) -> Result<(), MemoryError> {
        self.instance.memory_mut().write(address, data)?;
        if let Some(r) = self.record.as_deref_mut() {
            r.record_write(address, data);
        }
        Ok(())
    }

    /// The memory, read-only.
    pub fn memory(&self) -> &Memory {
        self.instance.memory()
    }

    /// The program being run.
    pub fn program(&self) -> &Program {
        self.instance.program()
    }

    /// Direct access to the memory (mapping pages etc.).
    pub fn memory_mut(&mut self) -> &mut Memory {
        self.instance.memory_mut()
    }

    /// The instance itself.
    pub fn instance(&mut self) -> &mut Instance {
        self.instance
    }
}

/// The result of GP Ψ_M (A.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvocationResult {
    /// Halted: the output μ[φ7..+φ8], or empty if that range is not readable.
    Output(Vec<u8>),
    /// Panicked (or the standard program was invalid, or the run stopped at a page fault).
    Panic,
    /// Ran out of gas.
    OutOfGas,
}

/// Ψ_M: runs a standard program from `pc` with `gas` and argument data `args`, answering host
/// calls with `handler`. Returns the gas used u = ϱ − max(ϱ', 0) and the result. An invalid
/// program or argument blob gives `(0, Panic)` as GP A.8 says for Y = ∅.
pub fn invoke<H>(
    program: Result<&Program, &ProgramError>,
    pc: u32,
    gas: i64,
    args: &[u8],
    handler: H,
) -> (u64, InvocationResult)
where
    H: FnMut(u32, &mut HostCallContext<'_>) -> HostOutcome,
{
    let Ok(program) = program else {
        return (0, InvocationResult::Panic);
    };
    let Ok(mut instance) = program.instantiate(args) else {
        return (0, InvocationResult::Panic);
    };
    instance.set_pc(pc);
    instance.set_gas(gas);
    let exit = instance.run_with_host(handler);
    let used = (gas - instance.gas().max(0)).max(0) as u64;
    let result = match exit {
        Exit::OutOfGas => InvocationResult::OutOfGas,
        Exit::Halt => InvocationResult::Output(instance.output().unwrap_or_default()),
        _ => InvocationResult::Panic,
    };
    (used, result)
}
