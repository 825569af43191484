//! The PVM-level host calls (GP 0.8.0 B.5–B.6, gas from I.4.5): every branch of each call, with
//! the gas the GP formulas give; and a refine-style guest that drives an inner PVM end to end.

use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::inner::{codes, mem_gas, HostCallIds, InnerPvms};
use pvm_core::isa::Opcode as O;
use pvm_core::{
    Access, Exit, HostCallContext, HostOutcome, Instance, Program, ProgramOptions, Spec,
};

const GAS: i64 = 1_000_000;

/// An outer instance of a standard program with 4 writable heap pages at `rw()`.
fn outer(spec: Spec) -> Instance {
    let mut a = Assembler::for_spec(spec);
    a.inst(O::Trap, Ops::none());
    let bytes = standard_program(None, &[1, 2, 3], &[], 4, 4096, &a.finish());
    let p = Program::from_standard(&bytes, false, ProgramOptions::new(spec)).unwrap();
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(GAS);
    vm
}

fn rw(vm: &Instance) -> u64 {
    vm.program().standard_layout().unwrap().rw_start() as u64
}

/// Calls host function `id` with φ7.. = `args`; returns the outcome and the gas charged.
fn call(
    inner: &mut InnerPvms,
    vm: &mut Instance,
    id: u32,
    args: &[u64],
) -> (Option<HostOutcome>, i64) {
    for (i, v) in args.iter().enumerate() {
        vm.registers_mut()[7 + i] = *v;
    }
    let before = vm.gas();
    let out = inner.handle(id, &mut HostCallContext::new(vm));
    (out, before - vm.gas())
}

/// A small inner program: r8 = μ[r1]; r9 = r8 + 2; μ[r1+8] = r9; ecalli 77;
/// r9 = μ[r1+8] + 100; μ[r1+8] = r9; halt.
fn inner_blob() -> Vec<u8> {
    let mut a = Assembler::new();
    a.inst(O::LoadIndU64, Ops::reg_reg_imm(8, 1, 0));
    a.inst(O::AddImm64, Ops::reg_reg_imm(9, 8, 2));
    a.inst(O::StoreIndU64, Ops::reg_reg_imm(9, 1, 8));
    a.inst(O::Ecalli, Ops::imm(77));
    a.inst(O::LoadIndU64, Ops::reg_reg_imm(9, 1, 8));
    a.inst(O::AddImm64, Ops::reg_reg_imm(9, 9, 100));
    a.inst(O::StoreIndU64, Ops::reg_reg_imm(9, 1, 8));
    a.inst(O::LoadImm, Ops::reg_imm(0, -65536));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    a.finish()
}

/// Writes the inner blob into the outer heap and creates a machine from it.
fn new_machine(inner: &mut InnerPvms, vm: &mut Instance) -> u64 {
    let blob = inner_blob();
    let at = rw(vm) + 0x2000;
    vm.memory_mut().write(at as u32, &blob).unwrap();
    let (out, _) = call(inner, vm, 9, &[at, blob.len() as u64, 0]);
    assert_eq!(out, Some(HostOutcome::Continue));
    vm.registers()[7]
}

#[test]
fn unknown_ids_are_left_to_the_host() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    for id in [2, 3, 8, 15, 100] {
        assert_eq!(call(&mut inner, &mut vm, id, &[]).0, None, "id {id}");
    }
}

#[test]
fn gas_call() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let (out, charged) = call(&mut inner, &mut vm, 0, &[]);
    assert_eq!((out, charged), (Some(HostOutcome::Continue), 48));
    assert_eq!(vm.registers()[7], (GAS - 48) as u64);
    vm.set_gas(47);
    assert_eq!(
        call(&mut inner, &mut vm, 0, &[]).0,
        Some(HostOutcome::OutOfGas)
    );
    assert_eq!(vm.gas(), -1, "ϱ' = ϱ − g on out-of-gas");
}

#[test]
fn grow_heap_call() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let a = rw(&vm) / 4096;
    let h = a + 4; // 4 heap pages
                   // no-op: at or below the current end
    let (out, charged) = call(&mut inner, &mut vm, 1, &[h]);
    assert_eq!(
        (out, charged, vm.registers()[7]),
        (Some(HostOutcome::Continue), 275, h)
    );
    // no-op: beyond the limit b
    let (_, charged) = call(&mut inner, &mut vm, 1, &[1 << 20]);
    assert_eq!((charged, vm.registers()[7]), (275, h));
    // grow by 3 pages
    assert_eq!(vm.memory().access(((h + 2) * 4096) as u32), Access::None);
    let (out, charged) = call(&mut inner, &mut vm, 1, &[h + 3]);
    assert_eq!(
        (out, charged, vm.registers()[7]),
        (Some(HostOutcome::Continue), 275 + 3 * 121, h + 3)
    );
    assert_eq!(vm.memory().access(((h + 2) * 4096) as u32), Access::Write);
    // not enough gas: OOG with ϱ' = 0 (erratum GP #533) and φ7 = h
    vm.set_gas(275 + 121 - 1);
    let (out, charged) = call(&mut inner, &mut vm, 1, &[h + 4]);
    assert_eq!(
        (out, charged, vm.gas(), vm.registers()[7]),
        (Some(HostOutcome::OutOfGas), 275 + 121 - 1, 0, h + 3)
    );
    // GP 0.7.2 has no grow_heap host call (id 1 is fetch there).
    let mut inner07 = InnerPvms::new(Spec::Gp0_7_2);
    let mut vm07 = outer(Spec::Gp0_7_2);
    assert_eq!(call(&mut inner07, &mut vm07, 1, &[h + 3]).0, None);
}

#[test]
fn machine_call_branches() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let blob = inner_blob();
    let at = rw(&vm) + 0x2000;
    vm.memory_mut().write(at as u32, &blob).unwrap();
    let g = 1862 + mem_gas(112, blob.len() as u64) as i64;
    let (out, charged) = call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 0]);
    assert_eq!(
        (out, charged, vm.registers()[7]),
        (Some(HostOutcome::Continue), g, 0)
    );
    let (_, _) = call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 0]);
    assert_eq!(vm.registers()[7], 1, "the least unused index");
    // entry pc not an instruction start → HUH (GP 0.8.0 deblob(p, i))
    call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 1]);
    assert_eq!(vm.registers()[7], codes::HUH);
    // invalid blob (truncated) → HUH
    call(&mut inner, &mut vm, 9, &[at, 3, 0]);
    assert_eq!(vm.registers()[7], codes::HUH);
    // unreadable program memory → panic
    assert_eq!(
        call(&mut inner, &mut vm, 9, &[0x7000_0000, 10, 0]).0,
        Some(HostOutcome::Panic)
    );
    // out of gas: ϱ < g
    vm.set_gas(g - 1);
    assert_eq!(
        call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 0]).0,
        Some(HostOutcome::OutOfGas)
    );
    assert_eq!(vm.gas(), -1);
    // FULL at 63 machines
    vm.set_gas(GAS * 100);
    while inner.len() < 63 {
        call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 0]);
    }
    call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 0]);
    assert_eq!((vm.registers()[7], inner.len()), (codes::FULL, 63));
    // expunge frees an index that is reused
    call(&mut inner, &mut vm, 14, &[5]);
    call(&mut inner, &mut vm, 9, &[at, blob.len() as u64, 0]);
    assert_eq!(vm.registers()[7], 5);
    // a huge length saturates the gas formula instead of overflowing
    vm.set_gas(GAS);
    assert_eq!(
        call(&mut inner, &mut vm, 9, &[at, u64::MAX, 0]).0,
        Some(HostOutcome::OutOfGas)
    );
}

#[test]
fn peek_and_poke_branches() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let n = new_machine(&mut inner, &mut vm);
    let base = rw(&vm);
    // inner page 0x20 (address 0x20000) writable
    call(&mut inner, &mut vm, 12, &[n, 0x20, 1, 2]);
    vm.memory_mut().write(base as u32, b"hello").unwrap();
    // poke 5 bytes: gas 297 + ⌈224·5/1024⌉ = 297 + ⌈1.09⌉ = 299
    let (out, charged) = call(&mut inner, &mut vm, 11, &[n, base, 0x20000, 5]);
    assert_eq!(
        (out, charged, vm.registers()[7]),
        (Some(HostOutcome::Continue), 299, codes::OK)
    );
    // peek it back elsewhere: 377 + ⌈336·5/1024⌉ = 377 + ⌈1.64⌉ = 379
    let (_, charged) = call(&mut inner, &mut vm, 10, &[n, base + 100, 0x20000, 5]);
    assert_eq!((charged, vm.registers()[7]), (379, codes::OK));
    let mut buf = [0u8; 5];
    vm.memory().read(base as u32 + 100, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    // unknown machine → WHO
    call(&mut inner, &mut vm, 11, &[99, base, 0x20000, 5]);
    assert_eq!(vm.registers()[7], codes::WHO);
    call(&mut inner, &mut vm, 10, &[99, base, 0x20000, 5]);
    assert_eq!(vm.registers()[7], codes::WHO);
    // inner range not accessible → OOB
    call(&mut inner, &mut vm, 11, &[n, base, 0x21000 - 2, 5]);
    assert_eq!(vm.registers()[7], codes::OOB);
    call(&mut inner, &mut vm, 10, &[n, base, 0x30000, 5]);
    assert_eq!(vm.registers()[7], codes::OOB);
    // outer range not accessible → panic (checked before WHO)
    assert_eq!(
        call(&mut inner, &mut vm, 11, &[99, 0x7000_0000, 0x20000, 5]).0,
        Some(HostOutcome::Panic)
    );
    assert_eq!(
        call(&mut inner, &mut vm, 10, &[99, 0x10000, 0x20000, 5]).0,
        Some(HostOutcome::Panic)
    ); // read-only
       // zero length is always fine
    call(&mut inner, &mut vm, 10, &[n, u64::MAX, u64::MAX, 0]);
    assert_eq!(vm.registers()[7], codes::OK);
}

#[test]
fn pages_branches_and_gas() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let n = new_machine(&mut inner, &mut vm);
    let (_, g) = call(&mut inner, &mut vm, 12, &[n, 0x20, 3, 2]);
    assert_eq!((g, vm.registers()[7]), (275 + 3 * 121, codes::OK));
    let m = inner.machine(n).unwrap();
    assert_eq!(m.memory().access(0x22000), Access::Write);
    // set mode keeps contents: write, then r = 3 (read-only)
    let base = rw(&vm);
    vm.memory_mut().write(base as u32, &[9]).unwrap();
    call(&mut inner, &mut vm, 11, &[n, base, 0x21000, 1]);
    let (_, g) = call(&mut inner, &mut vm, 12, &[n, 0x21, 1, 3]);
    assert_eq!((g, vm.registers()[7]), (130 + 29, codes::OK));
    let m = inner.machine(n).unwrap();
    assert_eq!(m.memory().access(0x21000), Access::Read);
    assert_eq!(m.memory().page_bytes(0x21).unwrap()[0], 9);
    // r = 1 zeroes
    call(&mut inner, &mut vm, 12, &[n, 0x21, 1, 1]);
    assert_eq!(
        inner.machine(n).unwrap().memory().page_bytes(0x21).unwrap()[0],
        0
    );
    // r = 0 frees: 212 + 118c
    let (_, g) = call(&mut inner, &mut vm, 12, &[n, 0x20, 3, 0]);
    assert_eq!((g, vm.registers()[7]), (212 + 3 * 118, codes::OK));
    assert_eq!(
        inner.machine(n).unwrap().memory().access(0x20000),
        Access::None
    );
    // HUH: r > 2 on an inaccessible page; bad r; p < 16; p + c beyond 2^20
    for args in [
        [n, 0x20, 1, 4],
        [n, 0x20, 1, 5],
        [n, 15, 1, 2],
        [n, (1 << 20) - 1, 1, 2],
        [n, (1 << 20) - 2, 2, 3],
    ] {
        call(&mut inner, &mut vm, 12, &args);
        assert_eq!(vm.registers()[7], codes::HUH, "{args:?}");
    }
    let (_, g) = call(&mut inner, &mut vm, 12, &[n, 0x20, 1, 7]);
    assert_eq!(g, 80);
    // WHO before HUH
    call(&mut inner, &mut vm, 12, &[42, 0, 0, 9]);
    assert_eq!(vm.registers()[7], codes::WHO);
    // huge c saturates the gas formula: out of gas, no overflow
    assert_eq!(
        call(&mut inner, &mut vm, 12, &[n, 0x20, u64::MAX, 1]).0,
        Some(HostOutcome::OutOfGas)
    );
}

/// Sets up the 112-byte invoke area: gas limit and registers (r1 = data pointer).
fn invoke_area(vm: &mut Instance, at: u64, gas: u64, r1: u64) {
    let mut b = vec![0u8; 112];
    b[..8].copy_from_slice(&gas.to_le_bytes());
    b[16..24].copy_from_slice(&r1.to_le_bytes());
    vm.memory_mut().write(at as u32, &b).unwrap();
}

fn read_u64(vm: &Instance, at: u64) -> u64 {
    let mut b = [0u8; 8];
    vm.memory().read(at as u32, &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn invoke_branches_gas_and_resumption() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let n = new_machine(&mut inner, &mut vm);
    let base = rw(&vm);
    let area = base + 0x1000;
    // inner page for data; poke 40 into it
    call(&mut inner, &mut vm, 12, &[n, 0x20, 1, 2]);
    vm.memory_mut()
        .write(base as u32, &40u64.to_le_bytes())
        .unwrap();
    call(&mut inner, &mut vm, 11, &[n, base, 0x20000, 8]);

    // First invoke: runs to the inner ecalli 77.
    invoke_area(&mut vm, area, 10_000, 0x20000);
    let gas_before = vm.gas();
    let (out, _) = call(&mut inner, &mut vm, 13, &[n, area]);
    assert_eq!(out, Some(HostOutcome::Continue));
    assert_eq!((vm.registers()[7], vm.registers()[8]), (codes::HOST, 77));
    let g_left = read_u64(&vm, area);
    assert!(g_left < 10_000);
    assert_eq!(
        vm.gas(),
        gas_before - 968 - 10_000 + g_left as i64,
        "ϱ' = ϱ − (968 + g_R) + g_R'"
    );
    assert_eq!(
        read_u64(&vm, area + 8 + 9 * 8),
        42,
        "registers written back"
    );
    let m = inner.machine(n).unwrap();
    // The ecalli sits at pc 8 (after load_ind_u64 (2 bytes), add_imm_64 (3), store_ind_u64 (3))
    // and is 2 bytes long: the machine continues at 10.
    assert_eq!(m.program().instruction_at(8).opcode, Some(O::Ecalli));
    assert_eq!(m.pc(), 10, "pc after the ecalli");
    assert!(m.gas_charged(), "mid-block: the flag persists");

    // Second invoke continues after the ecalli and halts.
    let (_, _) = call(&mut inner, &mut vm, 13, &[n, area]);
    assert_eq!(vm.registers()[7], codes::HALT);
    call(&mut inner, &mut vm, 10, &[n, base + 200, 0x20008, 8]);
    assert_eq!(read_u64(&vm, base + 200), 142);
    assert_eq!(
        inner.machine(n).unwrap().pc(),
        0,
        "GP Ψ returns ı = 0 after halt"
    );

    // Fault: r1 points at an unmapped page.
    let n2 = new_machine(&mut inner, &mut vm);
    invoke_area(&mut vm, area, 10_000, 0x50000);
    call(&mut inner, &mut vm, 13, &[n2, area]);
    assert_eq!(
        (vm.registers()[7], vm.registers()[8]),
        (codes::FAULT, 0x50000)
    );
    // Retrying the faulted machine does not charge its block again (χ persists): with 1 gas it
    // still reaches the faulting load.
    invoke_area(&mut vm, area, 1, 0x50000);
    call(&mut inner, &mut vm, 13, &[n2, area]);
    assert_eq!((vm.registers()[7], read_u64(&vm, area)), (codes::FAULT, 1));
    // Inner out of gas: a fresh machine with limit 1 cannot pay its first block.
    let n3 = new_machine(&mut inner, &mut vm);
    invoke_area(&mut vm, area, 1, 0x50000);
    let before = vm.gas();
    call(&mut inner, &mut vm, 13, &[n3, area]);
    assert_eq!(vm.registers()[7], codes::OOG);
    assert_eq!(read_u64(&vm, area), 1, "gas unchanged by the failed charge");
    assert_eq!(vm.gas(), before - 968 - 1 + 1);
    // WHO, charging 968 + g_R
    invoke_area(&mut vm, area, 500, 0);
    let (_, g) = call(&mut inner, &mut vm, 13, &[99, area]);
    assert_eq!((g, vm.registers()[7]), (968 + 500, codes::WHO));
    // Unwritable area → panic (charged 968)
    let (out, g) = call(&mut inner, &mut vm, 13, &[n2, 0x10000]);
    assert_eq!((out, g), (Some(HostOutcome::Panic), 968));
    // Outer gas below 968 + g_R → OOG
    invoke_area(&mut vm, area, 10_000, 0);
    vm.set_gas(10_000);
    assert_eq!(
        call(&mut inner, &mut vm, 13, &[n2, area]).0,
        Some(HostOutcome::OutOfGas)
    );
}

#[test]
fn expunge_returns_pc_and_removes() {
    let mut vm = outer(Spec::Gp0_8_0);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let n = new_machine(&mut inner, &mut vm);
    let (_, g) = call(&mut inner, &mut vm, 14, &[n]);
    assert_eq!((g, vm.registers()[7], inner.len()), (335, 0, 0));
    call(&mut inner, &mut vm, 14, &[n]);
    assert_eq!(vm.registers()[7], codes::WHO);
}

#[test]
fn gp072_numbering_and_flat_gas() {
    let mut vm = outer(Spec::Gp0_7_2);
    let mut inner = InnerPvms::new(Spec::Gp0_7_2);
    let mut a = Assembler::for_spec(Spec::Gp0_7_2);
    a.inst(O::Ecalli, Ops::imm(3));
    let blob = a.finish(); // no terminator: fine in GP 0.7.2
    let at = rw(&vm) + 0x2000;
    vm.memory_mut().write(at as u32, &blob).unwrap();
    let (out, g) = call(&mut inner, &mut vm, 8, &[at, blob.len() as u64, 1000]);
    assert_eq!(
        (out, g, vm.registers()[7]),
        (Some(HostOutcome::Continue), 10, 0),
        "no entry check in 0.7.2"
    );
    let (_, g) = call(&mut inner, &mut vm, 0, &[]);
    assert_eq!(g, 10);
    let area = rw(&vm) + 0x1000;
    invoke_area(&mut vm, area, 500, 0);
    let (_, g) = call(&mut inner, &mut vm, 12, &[0, area]);
    assert_eq!(
        (g, vm.registers()[7]),
        (10, codes::PANIC),
        "flat 10, inner gas not deducted; pc 1000 traps"
    );
    let (_, g) = call(&mut inner, &mut vm, 13, &[0]);
    assert_eq!((g, vm.registers()[7]), (10, 0));
}

/// A refine-style guest: creates an inner machine from a blob in its read-only data, maps a page
/// and pokes data into it, invokes it (the inner program makes host call 77, which the outer
/// guest answers by invoking again), peeks the result, expunges the machine and returns the
/// result as its output. All host calls are answered by `InnerPvms`.
#[test]
fn refine_style_guest_end_to_end() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let ids = HostCallIds::of(spec);
        let blob = inner_blob();
        let mut a = Assembler::for_spec(spec);
        let ro = 0x10000i64;
        let heap = 0x30000i64; // 2Z_Z + Q(|o|)
        let area = heap + 0x100;
        let call = |a: &mut Assembler, id: u32| a.inst(O::Ecalli, Ops::imm(id as i64));
        // n = machine(ro, |blob|, 0)
        a.inst(O::LoadImm, Ops::reg_imm(7, ro));
        a.inst(O::LoadImm, Ops::reg_imm(8, blob.len() as i64));
        a.inst(O::LoadImm, Ops::reg_imm(9, 0));
        call(&mut a, ids.machine);
        a.inst(O::MoveReg, Ops::dst_src(5, 7));
        // pages(n, 0x20, 1, 2)
        a.inst(O::LoadImm, Ops::reg_imm(8, 0x20));
        a.inst(O::LoadImm, Ops::reg_imm(9, 1));
        a.inst(O::LoadImm, Ops::reg_imm(10, 2));
        call(&mut a, ids.pages);
        // μ[heap] = 40; poke(n, heap, 0x20000, 8)
        a.inst(
            O::StoreImmU64,
            Ops {
                imm1: heap,
                imm2: 40,
                ..Ops::default()
            },
        );
        a.inst(O::MoveReg, Ops::dst_src(7, 5));
        a.inst(O::LoadImm, Ops::reg_imm(8, heap));
        a.inst(O::LoadImm, Ops::reg_imm(9, 0x20000));
        a.inst(O::LoadImm, Ops::reg_imm(10, 8));
        call(&mut a, ids.poke);
        // invoke area: gas 100000, r1 = 0x20000
        a.inst(
            O::StoreImmU64,
            Ops {
                imm1: area,
                imm2: 100_000,
                ..Ops::default()
            },
        );
        a.inst(
            O::StoreImmU64,
            Ops {
                imm1: area + 16,
                imm2: 0x20000,
                ..Ops::default()
            },
        );
        // loop: invoke until HALT
        a.inst(O::Fallthrough, Ops::none());
        let again = a.here();
        a.inst(O::MoveReg, Ops::dst_src(7, 5));
        a.inst(O::LoadImm, Ops::reg_imm(8, area));
        call(&mut a, ids.invoke);
        let done = a.label();
        a.inst(O::BranchEqImm, Ops::branch_imm(7, 0, done));
        a.inst(O::Jump, Ops::to(again));
        a.bind(done);
        // peek(n, heap + 8, 0x20008, 8)
        a.inst(O::MoveReg, Ops::dst_src(7, 5));
        a.inst(O::LoadImm, Ops::reg_imm(8, heap + 8));
        a.inst(O::LoadImm, Ops::reg_imm(9, 0x20008));
        a.inst(O::LoadImm, Ops::reg_imm(10, 8));
        call(&mut a, ids.peek);
        // expunge(n)
        a.inst(O::MoveReg, Ops::dst_src(7, 5));
        call(&mut a, ids.expunge);
        // return (heap + 8, 8)
        a.inst(O::LoadImm, Ops::reg_imm(7, heap + 8));
        a.inst(O::LoadImm, Ops::reg_imm(8, 8));
        a.inst(O::LoadImm, Ops::reg_imm(0, -65536));
        a.inst(O::JumpInd, Ops::reg_imm(0, 0));
        let outer_blob = a.finish();
        let bytes = standard_program(None, &blob, &[], 1, 4096, &outer_blob);
        let program = Program::from_standard(&bytes, false, ProgramOptions::new(spec)).unwrap();
        let mut inner = InnerPvms::new(spec);
        let mut seen = Vec::new();
        let mut vm = program.instantiate(&[]).unwrap();
        vm.set_gas(10_000_000);
        let exit = vm.run_with_host(|id, ctx| {
            seen.push(id);
            inner.handle(id, ctx).unwrap_or(HostOutcome::Panic)
        });
        assert_eq!(exit, Exit::Halt, "{spec:?}");
        assert_eq!(vm.output().unwrap(), 142u64.to_le_bytes().to_vec());
        assert_eq!(
            seen,
            vec![
                ids.machine,
                ids.pages,
                ids.poke,
                ids.invoke,
                ids.invoke,
                ids.peek,
                ids.expunge
            ],
            "{spec:?}"
        );
        assert!(inner.is_empty());
    }
}
