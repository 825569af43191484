//! The x86-64 recompiler backend: translates every block of a program to machine code that runs
//! over the same instance state as the interpreter (registers, pc, gas, χ, memory), so that
//! either backend, or both in turn, give the same results.
//!
//! - `x64.rs`: the instruction encoder;
//! - `codegen.rs`: blocks → code (what compiled code does itself, and what it leaves to the
//!   interpreter: see its documentation);
//! - `exec_memory.rs`: W^X executable mappings.
//!
//! The driver that alternates compiled code and interpreter steps is `Instance::run_native` in
//! `instance.rs`; the design is written down in `docs/ARCHITECTURE.md`.

/// Whether this build can run recompiled code (x86-64 Unix).
pub const SUPPORTED: bool = cfg!(all(target_arch = "x86_64", unix));

#[cfg(all(target_arch = "x86_64", unix))]
mod codegen;
#[cfg(all(target_arch = "x86_64", unix))]
mod exec_memory;
#[cfg(all(target_arch = "x86_64", unix))]
mod mem_groups;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64;

use crate::error::ProgramError;
use crate::program::OpTable;

/// The state compiled code reads on entry and writes on exit (layout shared with
/// `codegen::ctx`).
#[repr(C)]
pub(crate) struct Ctx {
    pub regs: [u64; 13],
    pub gas: i64,
    pub table: *const usize,
    pub exit_pc: u32,
    pub exit_kind: u32,
    /// The executed-instruction counter: compiled code adds each block's instruction count
    /// when it charges the block (the driver corrects exits inside a block).
    pub instructions: u64,
}

// The generated code addresses `Ctx` by these offsets.
#[cfg(all(target_arch = "x86_64", unix))]
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(Ctx, regs) == codegen::ctx::REGS as usize);
    assert!(offset_of!(Ctx, gas) == codegen::ctx::GAS as usize);
    assert!(offset_of!(Ctx, table) == codegen::ctx::TABLE as usize);
    assert!(offset_of!(Ctx, exit_pc) == codegen::ctx::EXIT as usize);
    assert!(offset_of!(Ctx, instructions) == codegen::ctx::INSTRUCTIONS as usize);
};

/// How compiled code stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
pub(crate) enum NativeExit {
    /// Before the instruction at this pc, inside a block whose gas was charged: the interpreter
    /// executes it.
    Yield(u32),
    /// At the entry of the block at this pc, nothing of it charged: the gas slice could not pay
    /// it.
    Entry(u32),
    /// At the `ecalli` at this pc (executed: its gas is paid).
    HostCall(u32),
}

/// A program's machine code.
pub(crate) struct Compiled {
    #[cfg(all(target_arch = "x86_64", unix))]
    mem: exec_memory::ExecMemory,
    /// Native offset of each block of the op table's block list.
    block_offsets: Vec<u32>,
    /// (pc after an `ecalli`, native offset), sorted by pc (GP 0.8.0 only).
    resume_points: Vec<(u32, u32)>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("blocks", &self.block_offsets.len())
            .field("code_bytes", &self.code_len())
            .finish()
    }
}

/// The three guest registers with the fewest uses in the program's ops, each use weighted by
/// 8^(loop depth) of its block (compiled code keeps them in its frame rather than in host
/// registers); the higher-numbered first on a tie. `uses` holds every use at weight 1 (counted
/// while lowering); only the blocks inside loops are decoded again here, for their extra weight.
#[cfg(all(target_arch = "x86_64", unix))]
fn least_used_registers(
    mut uses: [u64; 13],
    table: &OpTable,
    loops: &codegen::Loops,
    code: &crate::isa::Code<'_>,
    spec: crate::Spec,
) -> [usize; 3] {
    for (b, block) in table.blocks.iter().enumerate() {
        if loops.depth[b] == 0 {
            continue;
        }
        let end = table
            .blocks
            .get(b + 1)
            .map_or(table.len() as u32, |x| x.slot);
        let weight = (1u64 << (3 * loops.depth[b].min(6))) - 1;
        for slot in block.slot + 1..end {
            // `register_uses` reads only the opcode and the register operands.
            let ins = code.decode_registers(table.op(slot).pc, spec);
            count_uses(&mut uses, &ins, weight);
        }
    }
    let mut order: Vec<usize> = (0..13).rev().collect();
    order.sort_by_key(|&r| uses[r]);
    [order[0], order[1], order[2]]
}

/// Adds `weight` to `uses` for every register `ins` reads or writes.
#[cfg(all(target_arch = "x86_64", unix))]
fn count_uses(uses: &mut [u64; 13], ins: &crate::isa::Instruction, weight: u64) {
    if let Some(opcode) = ins.opcode {
        for r in crate::gas::simulator::register_uses(opcode, ins) {
            uses[r.min(12) as usize] += weight;
        }
    }
}

/// Profiling aid (`LIBPVM_NATIVE_DUMP=DIR`): writes the machine code to `DIR/native-PID-N.bin`,
/// its block list (native offset, guest pc) to `DIR/native-PID-N.blocks` and appends a symbol
/// per block to `/tmp/perf-PID.map` (so `perf report` names blocks `pvm_pc_<pc>`). Errors are
/// reported on stderr and otherwise ignored: this never changes what a program does.
#[cfg(all(target_arch = "x86_64", unix))]
fn dump_native(
    dir: &std::path::Path,
    table: &OpTable,
    code: &[u8],
    offsets: &[u32],
    mem: &exec_memory::ExecMemory,
) {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let stem = dir.join(format!("native-{pid}-{n}"));
    let mut blocks = String::new();
    let mut map = String::new();
    let base = mem.base() as usize;
    for (b, &off) in offsets.iter().enumerate() {
        let end = offsets
            .get(b + 1)
            .map_or(code.len() as u32, |&e| e.max(off));
        let pc = table.blocks[b].pc;
        blocks.push_str(&format!("{off:x} {pc}\n"));
        map.push_str(&format!(
            "{:x} {:x} pvm_pc_{pc}\n",
            base + off as usize,
            end - off
        ));
    }
    let result = std::fs::write(stem.with_extension("bin"), code)
        .and_then(|()| std::fs::write(stem.with_extension("blocks"), blocks))
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(format!("/tmp/perf-{pid}.map"))?
                .write_all(map.as_bytes())
        });
    if let Err(e) = result {
        eprintln!("libpvm: LIBPVM_NATIVE_DUMP: {e}");
    }
}

impl Compiled {
    /// Compiles every block of `table` (lowering the ones not lowered yet).
    #[cfg(all(target_arch = "x86_64", unix))]
    pub fn new(
        table: &OpTable,
        code: &crate::isa::Code<'_>,
        spec: crate::Spec,
    ) -> Result<Compiled, ProgramError> {
        // Register uses at weight 1, counted while lowering (the loop blocks' extra weight is
        // added by `least_used_registers`).
        let mut uses = [0u64; 13];
        table.compile_all(code, spec, |ins| count_uses(&mut uses, ins, 1));
        let loops = codegen::Loops::of(table);
        let spilled = least_used_registers(uses, table, &loops, code, spec);
        let out = codegen::generate(table, &loops, codegen::Features::detect(), spec, spilled)
            .ok_or(ProgramError::ExecutableMemory)?;
        let mem = exec_memory::ExecMemory::new(&out.code).ok_or(ProgramError::ExecutableMemory)?;
        if let Some(dir) = std::env::var_os("LIBPVM_NATIVE_DUMP") {
            dump_native(
                std::path::Path::new(&dir),
                table,
                &out.code,
                &out.block_offsets,
                &mem,
            );
        }
        Ok(Compiled {
            mem,
            block_offsets: out.block_offsets,
            resume_points: out.resume_points,
        })
    }

    /// Not supported on this target (never called: `Backend::resolve` refuses the recompiler).
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    pub fn new(
        _: &OpTable,
        _: &crate::isa::Code<'_>,
        _: crate::Spec,
    ) -> Result<Compiled, ProgramError> {
        Err(ProgramError::BackendUnsupported)
    }

    /// The native entry of block `b`.
    pub fn block_entry(&self, b: usize) -> u32 {
        self.block_offsets[b]
    }

    /// The native code that continues after the `ecalli` before `pc` (GP 0.8.0).
    pub fn resume_entry(&self, pc: u32) -> Option<u32> {
        let i = self.resume_points.partition_point(|&(p, _)| p < pc);
        self.resume_points
            .get(i)
            .filter(|&&(p, _)| p == pc)
            .map(|&(_, o)| o)
    }

    /// Bytes of machine code (mapped).
    pub fn code_len(&self) -> usize {
        #[cfg(all(target_arch = "x86_64", unix))]
        return self.mem.len();
        #[cfg(not(all(target_arch = "x86_64", unix)))]
        0
    }

    /// Runs compiled code from native offset `entry` (a [`Compiled::block_entry`] or
    /// [`Compiled::resume_entry`]) until it yields or exits.
    ///
    /// # Safety
    /// `ctx.table` must be the page table of a live `Memory` that the caller holds exclusively
    /// for the duration of the call, and `entry` an offset returned by this `Compiled`'s entry
    /// functions.
    #[cfg(all(target_arch = "x86_64", unix))]
    pub unsafe fn run(&self, ctx: &mut Ctx, entry: u32) -> NativeExit {
        type Entry = unsafe extern "sysv64" fn(*mut Ctx, *const u8);
        let base = self.mem.base();
        // SAFETY: offset 0 of the mapping is the trampoline, generated with exactly this
        // signature (System V: ctx in rdi, entry in rsi; callee-saved registers restored).
        let trampoline: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(base) };
        debug_assert!((entry as usize) < self.mem.len());
        // SAFETY: entry offsets are inside the mapping (produced by the generator).
        let entry = unsafe { base.add(entry as usize) };
        // SAFETY: the generated code touches only the frame it builds on this stack, `ctx`, the
        // page table and the guest pages it maps (READ/WRITE bits checked, in-page offsets) —
        // all valid per this function's contract — and jumps only inside
        // the mapping; it returns through the trampoline's epilogue.
        unsafe { trampoline(ctx, entry) };
        match ctx.exit_kind {
            codegen::EXIT_YIELD => NativeExit::Yield(ctx.exit_pc),
            codegen::EXIT_HOST => NativeExit::HostCall(ctx.exit_pc),
            _ => NativeExit::Entry(ctx.exit_pc),
        }
    }

    /// Not supported on this target.
    ///
    /// # Safety
    /// Never called.
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    pub unsafe fn run(&self, _: &mut Ctx, _: u32) -> NativeExit {
        unreachable!("the recompiler is not supported on this target")
    }
}
