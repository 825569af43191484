//! The interpreter backend: the dispatch loop over a program's pre-decoded ops (`program/lower.rs`,
//! the decoded form both backends consume). It executes GP A.5 instruction by instruction with the
//! block gas of `program/` charged at block entries, and produces every exit; the recompiler
//! leaves every exit to it (see `recompiler/codegen.rs`).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::instance::{Exit, HALT_ADDRESS};
use crate::memory::{Memory, Trap};
use crate::program::{Op, ProgramInner, INVALID_TARGET, K, UNCOMPILED};

/// The instance state the loop works on.
pub(crate) struct State<'a> {
    pub regs: &'a mut [u64; 16],
    pub memory: &'a mut Memory,
    pub gas: i64,
    pub heap_top: &'a mut u32,
    pub interrupt: &'a AtomicBool,
    /// The executed-instruction counter; the loop adds the instructions it executed.
    pub instructions: u64,
}

#[inline(always)]
fn sx32(x: u64) -> u64 {
    x as u32 as i32 as i64 as u64
}

/// The dispatch loop. Returns the exit (None only in step mode), the pc to store, χ, and the slot
/// after the last op executed (after an `ecalli`: the next instruction's).
#[inline(always)]
pub(crate) fn interpret<const STEP: bool>(
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
    // Executed instructions, counted by op position: one slot per instruction, and `ip` is
    // advanced past an op before it executes (so an op that exits counts). `moved` accumulates
    // the byte distance of every block entry (`ip` jumping from after the terminator to the
    // target's first op), so at any point the count is `(ip - start) - moved` ops: one
    // subtraction per block entry, nothing per instruction.
    let start_ip = ip;
    let mut moved: isize = 0;

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
            // SAFETY: as above, `ip` and `start_ip` are in the same allocation.
            let span = unsafe { ip.offset_from(start_ip) };
            let executed = (span - moved / std::mem::size_of::<Op>() as isize) as u64;
            st.instructions = st.instructions.wrapping_add(executed);
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
            let first = unsafe { target.add(1) };
            moved += (first as isize).wrapping_sub(ip as isize);
            ip = first;
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
        macro_rules! load_at {
            ($n:literal, $addr:expr, $dst:expr, $conv:expr, $pc:expr) => {{
                let addr: u32 = $addr;
                // SAFETY: `table_view` is the table of `mem`, borrowed for the whole loop.
                let fast = unsafe { table_view.load::<$n>(addr) };
                match fast.map_or_else(|| mem.load_slow::<$n>(addr), Ok) {
                    Ok(b) => r!($dst) = $conv(b),
                    Err(t) => trap!(t, $pc),
                }
            }};
        }
        macro_rules! load {
            ($n:literal, $addr:expr, $dst:expr, $conv:expr) => {
                load_at!($n, $addr, $dst, $conv, op.pc)
            };
        }
        macro_rules! store_at {
            ($n:literal, $addr:expr, $bytes:expr, $pc:expr) => {{
                let (addr, bytes): (u32, [u8; $n]) = ($addr, $bytes);
                // SAFETY: `table_view` is the table of `mem`, borrowed exclusively for the whole
                // loop.
                let fast = unsafe { table_view.store::<$n>(addr, bytes) };
                if !fast {
                    if let Err(t) = mem.store_slow(addr, &bytes) {
                        trap!(t, $pc);
                    }
                }
            }};
        }
        macro_rules! store {
            ($n:literal, $addr:expr, $bytes:expr) => {
                store_at!($n, $addr, $bytes, op.pc)
            };
        }
        // The semantics of the kinds that take part in fused pairs, for an op `$o` (the same as
        // their arms below).
        macro_rules! sem {
            (Nop, $o:ident) => {{
                let _ = $o;
            }};
            (Add64, $o:ident) => {
                r!($o.d) = r!($o.a).wrapping_add(r!($o.b))
            };
            (Sub64, $o:ident) => {
                r!($o.d) = r!($o.a).wrapping_sub(r!($o.b))
            };
            (LoadImm, $o:ident) => {
                r!($o.a) = $o.imm()
            };
            (Xor, $o:ident) => {
                r!($o.d) = r!($o.a) ^ r!($o.b)
            };
            (Or, $o:ident) => {
                r!($o.d) = r!($o.a) | r!($o.b)
            };
            (Mul64, $o:ident) => {
                r!($o.d) = r!($o.a).wrapping_mul(r!($o.b))
            };
            (MulUpperSS, $o:ident) => {
                r!($o.d) = (((r!($o.a) as i64 as i128) * (r!($o.b) as i64 as i128)) >> 64) as u64
            };
            (AddImm64, $o:ident) => {
                r!($o.a) = r!($o.b).wrapping_add($o.imm())
            };
            (AndImm, $o:ident) => {
                r!($o.a) = r!($o.b) & $o.imm()
            };
            (ShloLImm64, $o:ident) => {
                r!($o.a) = r!($o.b) << ($o.imm() & 63)
            };
            (ShloRImm64, $o:ident) => {
                r!($o.a) = r!($o.b) >> ($o.imm() & 63)
            };
            (RotR64Imm, $o:ident) => {
                r!($o.a) = r!($o.b).rotate_right(($o.imm() & 63) as u32)
            };
            (LoadIndU8, $o:ident) => {
                load_at!(
                    1,
                    r!($o.b).wrapping_add($o.imm()) as u32,
                    $o.a,
                    |b: [u8; 1]| b[0] as u64,
                    $o.pc
                )
            };
            (LoadIndU64, $o:ident) => {
                load_at!(
                    8,
                    r!($o.b).wrapping_add($o.imm()) as u32,
                    $o.a,
                    u64::from_le_bytes,
                    $o.pc
                )
            };
            (StoreIndU8, $o:ident) => {
                store_at!(
                    1,
                    r!($o.b).wrapping_add($o.imm()) as u32,
                    [r!($o.a) as u8],
                    $o.pc
                )
            };
            (StoreIndU64, $o:ident) => {
                store_at!(
                    8,
                    r!($o.b).wrapping_add($o.imm()) as u32,
                    r!($o.a).to_le_bytes(),
                    $o.pc
                )
            };
            (BranchLtU, $o:ident) => {{
                let t = if r!($o.a) < r!($o.b) {
                    op_at!($o.imm() as usize)
                } else {
                    ip
                };
                goto_block!(t, $o.pc);
            }};
            (BranchNe, $o:ident) => {{
                let t = if r!($o.a) != r!($o.b) {
                    op_at!($o.imm() as usize)
                } else {
                    ip
                };
                goto_block!(t, $o.pc);
            }};
            (BranchLtS, $o:ident) => {{
                let t = if (r!($o.a) as i64) < (r!($o.b) as i64) {
                    op_at!($o.imm() as usize)
                } else {
                    ip
                };
                goto_block!(t, $o.pc);
            }};
        }
        // A fused pair: the first half with `op`, then the op of the next slot.
        macro_rules! pair {
            ($first:ident, $second:ident) => {{
                sem!($first, op);
                // SAFETY: a pair is fused only inside a block, so the second op is in the same
                // compiled block, at `ip`.
                let second = unsafe { &*ip };
                // SAFETY: `ip` points at an op of the array, so one past it is in bounds or one
                // past the end (dereferenced only if it is an op of the block, as above).
                ip = unsafe { ip.add(1) };
                sem!($second, second);
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
        // Step mode executes one instruction: only the first half of a fused pair (the second
        // half's op is the next slot).
        let k = if STEP { op.k.first() } else { op.k };
        match k {
            // Execution ran into the next block's `Charge` slot (no instruction does this today:
            // blocks end in terminators, which jump, branch or trap). Enter it like a jump would.
            K::Charge => {
                // The `Charge` slot is no instruction: do not count it.
                moved += std::mem::size_of::<Op>() as isize;
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
            K::Add64LoadIndU64 => pair!(Add64, LoadIndU64),
            K::XorRotR64Imm => pair!(Xor, RotR64Imm),
            K::LoadIndU64Add64 => pair!(LoadIndU64, Add64),
            K::RotR64ImmAdd64 => pair!(RotR64Imm, Add64),
            K::Add64Xor => pair!(Add64, Xor),
            K::ShloLImm64Add64 => pair!(ShloLImm64, Add64),
            K::Add64StoreIndU64 => pair!(Add64, StoreIndU64),
            K::LoadIndU8ShloLImm64 => pair!(LoadIndU8, ShloLImm64),
            K::LoadIndU64Xor => pair!(LoadIndU64, Xor),
            K::Mul64MulUpperSS => pair!(Mul64, MulUpperSS),
            K::ShloLImm64ShloRImm64 => pair!(ShloLImm64, ShloRImm64),
            K::ShloRImm64Or => pair!(ShloRImm64, Or),
            K::OrMul64 => pair!(Or, Mul64),
            K::Add64BranchLtS => pair!(Add64, BranchLtS),
            K::AddImm64AddImm64 => pair!(AddImm64, AddImm64),
            K::LoadIndU64AddImm64 => pair!(LoadIndU64, AddImm64),
            K::AddImm64BranchLtU => pair!(AddImm64, BranchLtU),
            K::NopLoadIndU64 => pair!(Nop, LoadIndU64),
            K::Add64StoreIndU8 => pair!(Add64, StoreIndU8),
            K::Add64Add64 => pair!(Add64, Add64),
            K::StoreIndU8BranchLtU => pair!(StoreIndU8, BranchLtU),
            K::AndImmShloLImm64 => pair!(AndImm, ShloLImm64),
            K::ShloRImm64StoreIndU8 => pair!(ShloRImm64, StoreIndU8),
            K::RotR64ImmLoadIndU64 => pair!(RotR64Imm, LoadIndU64),
            K::StoreIndU64LoadIndU8 => pair!(StoreIndU64, LoadIndU8),
            K::StoreIndU64Add64 => pair!(StoreIndU64, Add64),
            K::LoadIndU64RotR64Imm => pair!(LoadIndU64, RotR64Imm),
            K::XorAdd64 => pair!(Xor, Add64),
            K::MulUpperSSShloLImm64 => pair!(MulUpperSS, ShloLImm64),
            K::OrAdd64 => pair!(Or, Add64),
            K::OrAndImm => pair!(Or, AndImm),
            K::AndImmAdd64 => pair!(AndImm, Add64),
            K::Add64Sub64 => pair!(Add64, Sub64),
            K::Sub64AddImm64 => pair!(Sub64, AddImm64),
            K::AddImm64LoadImm => pair!(AddImm64, LoadImm),
            K::LoadImmAdd64 => pair!(LoadImm, Add64),
            K::Add64BranchNe => pair!(Add64, BranchNe),
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
