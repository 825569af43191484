//! Entering a standard program again: [`Instance::invoke`] sets up a new GP Ψ_M invocation
//! (A.7's registers and argument area for new argument data) on an existing instance and runs it,
//! so a host does not hard-code 0xFFFF0000, the stack top or the argument address.

use crate::error::ProgramError;
use crate::host::{HostCallContext, HostOutcome};
use crate::instance::{Exit, Instance, HALT_ADDRESS};
use crate::memory::{Access, PAGE_SIZE};
use crate::program::INPUT_SIZE;

impl Instance {
    /// Prepares a new invocation at `pc` with argument data `args` and gas `gas`, as GP Ψ_M
    /// (A.8) starts one with Y(p, a) (A.7), without running it:
    ///
    /// - registers: φ0 = 2^32 − 2^16 (the halt address), φ1 = 2^32 − 2Z_Z − Z_I (the stack top),
    ///   φ7 = 2^32 − Z_Z − Z_I (the argument address), φ8 = |a|, every other register 0;
    /// - the argument zone [φ7, φ7 + Z_I) is unmapped, then its first P(|a|) bytes are mapped
    ///   read-only and hold `args` (zero-padded to the page), as GP A.7 lays it out;
    /// - ı = `pc`, ϱ = `gas`, χ = ⊥ (the entered block is charged), the last exit is cleared and
    ///   a pending "continue after the host call" is dropped.
    ///
    /// The rest of memory (read-only and read-write data, heap, stack, pages a host mapped) and
    /// the GP 0.7.2 heap end are kept as the previous invocation left them: for a fresh memory,
    /// instantiate the program again.
    ///
    /// Errors, with the instance unchanged: [`ProgramError::InvokeWithoutLayout`] for a program
    /// without the standard layout, [`ProgramError::ArgumentsTooLong`] for more than Z_I bytes.
    pub fn prepare_invoke(&mut self, pc: u32, args: &[u8], gas: i64) -> Result<(), ProgramError> {
        let layout = self
            .program()
            .standard_layout()
            .ok_or(ProgramError::InvokeWithoutLayout)?;
        if args.len() as u64 > INPUT_SIZE {
            return Err(ProgramError::ArgumentsTooLong { len: args.len() });
        }
        let (args_start, stack_end) = (layout.args_start(), layout.stack_end());
        let memory = self.memory_mut();
        memory
            .unmap(args_start, INPUT_SIZE as u32)
            .expect("the argument zone is below 2^32");
        let mapped = (args.len() as u32).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        memory
            .map(args_start, mapped, Access::Read)
            .expect("the argument zone is below 2^32");
        memory
            .write_unchecked(args_start, args)
            .expect("mapped above");
        let regs = self.registers_mut();
        *regs = [0; crate::NUM_REGISTERS];
        regs[0] = HALT_ADDRESS as u64;
        regs[1] = stack_end as u64;
        regs[7] = args_start as u64;
        regs[8] = args.len() as u64;
        // `set_pc` also drops a pending host-call continuation.
        self.set_pc(pc);
        self.set_gas_charged(false);
        self.set_gas(gas);
        self.clear_last_exit();
        Ok(())
    }

    /// A new invocation of this standard program (see [`Instance::prepare_invoke`]), run until
    /// its first exit ([`Instance::run`]): a host call stops it with [`Exit::HostCall`], and the
    /// next `run` continues after the `ecalli`.
    pub fn invoke(&mut self, pc: u32, args: &[u8], gas: i64) -> Result<Exit, ProgramError> {
        self.prepare_invoke(pc, args, gas)?;
        Ok(self.run())
    }

    /// [`Instance::invoke`] answering host calls with `handler`, as
    /// [`Instance::run_with_host`] does (GP Ψ_M over Ψ_H).
    pub fn invoke_with_host<H>(
        &mut self,
        pc: u32,
        args: &[u8],
        gas: i64,
        handler: H,
    ) -> Result<Exit, ProgramError>
    where
        H: FnMut(u32, &mut HostCallContext<'_>) -> HostOutcome,
    {
        self.prepare_invoke(pc, args, gas)?;
        Ok(self.run_with_host(handler))
    }
}
