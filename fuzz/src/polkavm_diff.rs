//! Target `polkavm_diff`: libpvm against PolkaVM 0.37's interpreter on generated valid GP 0.8.0
//! standard programs, comparing the exit (halt, panic, out of gas, page fault with its page),
//! the pc of a panic or fault, the 13 registers, the gas left (GP 0.8.0 block gas: PolkaVM's
//! `CostModelKind::Full(CacheModel::L2Hit)`, which matches libpvm's A.9 costs) and the
//! read-write data, heap and stack memory.
//!
//! libpvm runs on its default backend (the recompiler where supported).
//!
//! The generator never produces the classes of the known PolkaVM deviations (README, "Known
//! PolkaVM deviations"), in each of which libpvm follows the GP text:
//! - the last instruction is never a branch or `fallthrough` (it is `jump_ind`);
//! - no instruction is longer than 25 bytes, so no skip of exactly 24 arises;
//! - register fields are always < 13 (the assembler encodes them), so A.5.13's r_D masking does
//!   not arise;
//! - memory accesses use absolute, naturally aligned addresses below 2^32 − 2^16, so none ends
//!   exactly at 2^32 and none straddles two pages (a read-only page and an unmapped one).
//!
//! One class is normalised rather than avoided: PolkaVM run without dynamic paging (so that it
//! maps the GP A.7 layout itself) reports a page fault as a trap; a libpvm page fault therefore
//! matches a PolkaVM trap at the same pc with the same gas, registers and memory.
//!
//! GP 0.7.2 is not compared: PolkaVM has no per-instruction gas (its naive cost model charges
//! per block), so out-of-gas states differ by design.

use polkavm::program::InstructionSetKind;
use polkavm::{
    ArcBytes, BackendKind, CacheModel, Config, CostModelKind, Engine, GasMeteringKind,
    InterruptKind, Module, ModuleConfig, ProgramBlob, ProgramCounter, ProgramParts, Reg,
};
use pvm_core::asm::{standard_program, Assembler, Label, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Exit, HostOutcome, Program, ProgramOptions};

const PAGE: u32 = 4096;
const HALT: u64 = 0xFFFF_0000;
const RO_LEN: usize = 64;
const RW_LEN: usize = 256;
const HEAP_PAGES: u16 = 2;
const STACK: u32 = 8192;

use crate::Bytes;

/// The program generator's readers.
impl Bytes<'_> {
    fn imm(&mut self) -> i64 {
        match self.u8() % 4 {
            0 => self.u8() as i64,
            1 => -(self.u8() as i64),
            2 => self.u32() as i32 as i64,
            _ => (self.u32() as i64) << 32 | self.u32() as i64,
        }
    }
    fn reg(&mut self) -> u8 {
        self.u8() % 13
    }
}

/// The GP A.7 layout of the generated programs (ro 64 bytes, rw 256 bytes + 2 heap pages, 8 KiB
/// stack).
struct Layout {
    ro: u32,
    rw: u32,
    heap_end: u32,
    stack_lo: u32,
    stack_hi: u32,
}

fn layout(p: &Program) -> Layout {
    let l = p.standard_layout().expect("a standard program");
    Layout {
        ro: l.ro_start(),
        rw: l.rw_start(),
        heap_end: l.heap_end(),
        stack_lo: l.stack_start(),
        stack_hi: l.stack_end(),
    }
}

/// An aligned absolute address for an access of `n` bytes: in a mapped region, just past one
/// (unmapped), in the read-only data, or below 2^16.
fn address(d: &mut Bytes, l: &Layout, n: u32) -> i64 {
    let off = (d.u32() % (2 * PAGE)) / n * n;
    let a = match d.u8() % 8 {
        0 => l.ro + off % PAGE,
        1 | 2 => l.rw + off,
        3 => l.heap_end + off,
        4 | 5 => l.stack_lo + off,
        6 => l.stack_hi - PAGE + off,
        _ => off,
    };
    a as i64
}

/// Generates the code of a standard program from `data` (the layout is fixed, so it is
/// computed from a first build).
fn generate(data: &[u8], l: Option<&Layout>) -> Vec<u8> {
    let mut d = Bytes(data);
    let mut a = Assembler::new();
    let mut block_starts: Vec<Label> = vec![a.here()];
    let mut pending: Vec<Label> = Vec::new();
    let n = (d.u8() % 64) as usize + 1;
    // Binds the labels that wait for the next block start, right after a terminator.
    let after_terminator =
        |a: &mut Assembler, pending: &mut Vec<Label>, starts: &mut Vec<Label>| {
            for l in pending.drain(..) {
                a.bind(l);
            }
            starts.push(a.here());
        };
    for _ in 0..n {
        let op = d.u8() % 24;
        let (rd, ra, rb) = (d.reg(), d.reg(), d.reg());
        match op {
            0 => a.inst(O::LoadImm, Ops::reg_imm(rd, d.imm() as i32 as i64)),
            1 => a.inst(O::LoadImm64, Ops::reg_imm(rd, d.imm())),
            2 => a.inst(O::AddImm64, Ops::reg_reg_imm(rd, ra, d.imm() as i32 as i64)),
            3 => a.inst(O::Add64, Ops::three(rd, ra, rb)),
            4 => a.inst(O::Sub64, Ops::three(rd, ra, rb)),
            5 => a.inst(O::Mul64, Ops::three(rd, ra, rb)),
            6 => a.inst(O::Xor, Ops::three(rd, ra, rb)),
            7 => a.inst(O::And, Ops::three(rd, ra, rb)),
            8 => a.inst(O::Or, Ops::three(rd, ra, rb)),
            9 => a.inst(
                O::ShloLImm64,
                Ops::reg_reg_imm(rd, ra, (d.u8() % 70) as i64),
            ),
            10 => a.inst(
                O::SharRImm64,
                Ops::reg_reg_imm(rd, ra, (d.u8() % 70) as i64),
            ),
            11 => a.inst(O::DivU64, Ops::three(rd, ra, rb)),
            12 => a.inst(O::RemS64, Ops::three(rd, ra, rb)),
            13 => a.inst(O::SetLtU, Ops::three(rd, ra, rb)),
            14 => a.inst(O::CmovIz, Ops::three(rd, ra, rb)),
            15 | 16 => match l {
                Some(l) => {
                    let at = address(&mut d, l, 8);
                    a.inst(O::StoreU64, Ops::reg_imm(rd, at));
                }
                None => a.inst(O::StoreU64, Ops::reg_imm(rd, 0x20000)),
            },
            17 => match l {
                Some(l) => {
                    let at = address(&mut d, l, 8);
                    a.inst(O::LoadU64, Ops::reg_imm(rd, at));
                }
                None => a.inst(O::LoadU64, Ops::reg_imm(rd, 0x20000)),
            },
            18 => a.inst(O::Ecalli, Ops::imm(d.u8() as i64)),
            19 | 20 => {
                // A forward branch to the next block start.
                let target = a.label();
                pending.push(target);
                a.inst(
                    O::BranchEqImm,
                    Ops::branch_imm(ra, d.imm() as i32 as i64, target),
                );
                after_terminator(&mut a, &mut pending, &mut block_starts);
            }
            21 => {
                // A backward branch (loops end by running out of gas).
                let target = block_starts[d.u8() as usize % block_starts.len()];
                a.inst(
                    O::BranchNeImm,
                    Ops::branch_imm(ra, d.imm() as i32 as i64, target),
                );
                after_terminator(&mut a, &mut pending, &mut block_starts);
            }
            22 => {
                a.inst(O::Fallthrough, Ops::none());
                after_terminator(&mut a, &mut pending, &mut block_starts);
            }
            _ => a.inst(O::Trap, Ops::none()),
        }
        if op == 23 {
            after_terminator(&mut a, &mut pending, &mut block_starts);
        }
    }
    // The end: a block start for the pending labels, then halt (the last instruction is
    // `jump_ind`, never a branch or fallthrough).
    a.inst(O::Fallthrough, Ops::none());
    for l in pending {
        a.bind(l);
    }
    a.inst(O::LoadImm64, Ops::reg_imm(0, HALT as i64));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    let ro: Vec<u8> = (0..RO_LEN as u8).collect();
    let rw: Vec<u8> = (0..RW_LEN).map(|i| (i * 7) as u8).collect();
    standard_program(None, &ro, &rw, HEAP_PAGES, STACK, &a.finish())
}

/// What is compared.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: String,
    pc: Option<u32>,
    regs: [u64; 13],
    gas: i64,
    rw: Vec<u8>,
    stack: Vec<u8>,
}

fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(|| {
        let mut config = Config::new();
        config.set_backend(Some(BackendKind::Interpreter));
        Engine::new(&config).expect("PolkaVM interpreter engine")
    })
}

fn run_polkavm(bytes: &[u8], code: &[u8], l: &Layout, gas: i64) -> Option<Outcome> {
    let mut parts = ProgramParts::empty(InstructionSetKind::JamV1);
    let ro: Vec<u8> = bytes[11..11 + RO_LEN].to_vec();
    let rw: Vec<u8> = bytes[11 + RO_LEN..11 + RO_LEN + RW_LEN].to_vec();
    parts.ro_data_size = RO_LEN as u32;
    parts.rw_data_size = (RW_LEN as u32).div_ceil(PAGE) * PAGE + HEAP_PAGES as u32 * PAGE;
    parts.stack_size = STACK;
    parts.ro_data = ArcBytes::from(ro);
    parts.rw_data = ArcBytes::from(rw);
    parts.code_and_jump_table = ArcBytes::from(code.to_vec());
    let blob = ProgramBlob::from_parts(parts).ok()?;
    let mut mc = ModuleConfig::new();
    mc.set_page_size(PAGE);
    mc.set_aux_data_size(1 << 24);
    mc.set_gas_metering(Some(GasMeteringKind::Sync));
    mc.set_cost_model(Some(CostModelKind::Full(CacheModel::L2Hit)));
    let module = Module::from_blob(engine(), &mc, blob).ok()?;
    let map = module.memory_map();
    assert_eq!(
        map.rw_data_address(),
        l.rw,
        "PolkaVM's memory map is GP A.7's"
    );
    assert_eq!(map.stack_address_high(), l.stack_hi);
    let mut vm = module.instantiate().ok()?;
    vm.clear_regs();
    vm.set_reg(Reg::RA, HALT);
    vm.set_reg(Reg::SP, u64::from(l.stack_hi));
    vm.set_accessible_aux_size(0).ok()?;
    vm.set_reg(Reg::A0, u64::from(map.aux_data_address()));
    vm.set_gas(gas);
    vm.set_next_program_counter(ProgramCounter(0));
    let (status, pc) = loop {
        match vm.run().ok()? {
            InterruptKind::Ecalli(_) | InterruptKind::Step => {}
            InterruptKind::Finished => break ("halt".to_string(), None),
            InterruptKind::Trap => break ("panic".to_string(), vm.program_counter().map(|p| p.0)),
            InterruptKind::NotEnoughGas => break ("oog".to_string(), None),
            InterruptKind::Segfault(f) => {
                break (
                    format!("fault {:#x}", f.page_address),
                    vm.program_counter().map(|p| p.0),
                )
            }
        }
    };
    let regs = Reg::ALL.map(|r| vm.reg(r));
    let rw = vm.read_memory(l.rw, l.heap_end - l.rw).unwrap_or_default();
    let stack = vm
        .read_memory(l.stack_lo, l.stack_hi - l.stack_lo)
        .unwrap_or_default();
    Some(Outcome {
        status,
        pc,
        regs,
        gas: vm.gas(),
        rw,
        stack,
    })
}

fn run_libpvm(p: &Program, l: &Layout, gas: i64) -> Outcome {
    let mut vm = p.instantiate(&[]).expect("no arguments");
    vm.set_gas(gas);
    let exit = vm.run_with_host(|_, _| HostOutcome::Continue);
    let (status, pc) = match exit {
        Exit::Halt => ("halt".to_string(), None),
        Exit::Panic => ("panic".to_string(), Some(vm.pc())),
        Exit::OutOfGas => ("oog".to_string(), None),
        Exit::PageFault(a) => (format!("fault {a:#x}"), Some(vm.pc())),
        e => panic!("unexpected exit {e:?}"),
    };
    let mut rw = vec![0u8; (l.heap_end - l.rw) as usize];
    vm.memory()
        .read(l.rw, &mut rw)
        .expect("rw and heap readable");
    let mut stack = vec![0u8; (l.stack_hi - l.stack_lo) as usize];
    vm.memory()
        .read(l.stack_lo, &mut stack)
        .expect("stack readable");
    Outcome {
        status,
        pc,
        regs: *vm.registers(),
        gas: vm.gas(),
        rw,
        stack,
    }
}

pub fn polkavm_diff(data: &[u8]) {
    let Some((&g, data)) = data.split_first() else {
        return;
    };
    let gas = 1 + (g as i64) * 97;
    // The layout is the same for every generated program: take it from a first build.
    let first = Program::from_standard(&generate(data, None), false, ProgramOptions::default())
        .expect("generated programs are valid");
    let l = layout(&first);
    let bytes = generate(data, Some(&l));
    let p = Program::from_standard(&bytes, false, ProgramOptions::default())
        .expect("generated programs are valid");
    let code_len = u32::from_le_bytes(bytes[11 + RO_LEN + RW_LEN..][..4].try_into().unwrap());
    let code = &bytes[11 + RO_LEN + RW_LEN + 4..][..code_len as usize];
    let ours = run_libpvm(&p, &l, gas);
    let Some(mut theirs) = run_polkavm(&bytes, code, &l, gas) else {
        panic!(
            "PolkaVM rejected a valid program: {}",
            pvm_core::disasm::disassemble(&p)
        );
    };
    // PolkaVM without dynamic paging (the configuration that maps GP A.7's layout itself, as the
    // benchmarks use it) reports every invalid access as a trap; GP A.4 makes an access to an
    // inaccessible address ≥ 2^16 a page fault, which libpvm reports. Same pc, gas, registers
    // and memory are still required.
    if ours.status.starts_with("fault") && theirs.status == "panic" {
        theirs.status = ours.status.clone();
    }
    if ours != theirs {
        panic!(
            "libpvm and PolkaVM differ\nlibpvm:  {} pc {:?} gas {} regs {:x?}\npolkavm: {} pc {:?} gas {} regs {:x?}\nrw equal: {}, stack equal: {}\n{}",
            ours.status, ours.pc, ours.gas, ours.regs, theirs.status, theirs.pc, theirs.gas,
            theirs.regs, ours.rw == theirs.rw, ours.stack == theirs.stack,
            pvm_core::disasm::disassemble(&p)
        );
    }
}
