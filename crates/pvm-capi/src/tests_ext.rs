//! Unit tests of the inner-PVM, tracing and JIP-6 entry points, calling them as C would.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::{null, null_mut};

use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::inner::{HostCallIds, InnerPvms};
use pvm_core::isa::Opcode as O;
use pvm_core::{Exit, HostOutcome, Program, ProgramOptions, Spec};

use crate::tests::{add_program, create, ecalli, halt, last_error, load_imm, serial};
use crate::*;

const REFINE_GAS: u64 = 10_000_000;

/// The inner program of the refine-style guest (as in pvm-core's tests/inner.rs):
/// r8 = μ[r1]; r9 = r8 + 2; μ[r1+8] = r9; ecalli 77; r9 = μ[r1+8] + 100; μ[r1+8] = r9; halt.
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

/// The refine-style guest of pvm-core's `refine_style_guest_end_to_end`, as a standard program:
/// machine (from its ro data), pages, poke 40, invoke until HALT (the inner program's host call
/// 77 makes the first invoke return HOST), peek, expunge; output μ[heap + 8..+8] = 142 (u64 LE).
pub(crate) fn refine_guest(spec: Spec) -> Vec<u8> {
    let ids = HostCallIds::of(spec);
    let blob = inner_blob();
    let mut a = Assembler::for_spec(spec);
    let ro = 0x10000i64;
    let heap = 0x30000i64;
    let area = heap + 0x100;
    let call = |a: &mut Assembler, id: u32| a.inst(O::Ecalli, Ops::imm(id as i64));
    a.inst(O::LoadImm, Ops::reg_imm(7, ro));
    a.inst(O::LoadImm, Ops::reg_imm(8, blob.len() as i64));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0));
    call(&mut a, ids.machine);
    a.inst(O::MoveReg, Ops::dst_src(5, 7));
    a.inst(O::LoadImm, Ops::reg_imm(8, 0x20));
    a.inst(O::LoadImm, Ops::reg_imm(9, 1));
    a.inst(O::LoadImm, Ops::reg_imm(10, 2));
    call(&mut a, ids.pages);
    let store = |imm1, imm2| Ops {
        imm1,
        imm2,
        ..Ops::default()
    };
    a.inst(O::StoreImmU64, store(heap, 40));
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    a.inst(O::LoadImm, Ops::reg_imm(8, heap));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0x20000));
    a.inst(O::LoadImm, Ops::reg_imm(10, 8));
    call(&mut a, ids.poke);
    a.inst(O::StoreImmU64, store(area, 100_000));
    a.inst(O::StoreImmU64, store(area + 16, 0x20000));
    a.inst(O::Fallthrough, Ops::none());
    let again = a.here();
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    a.inst(O::LoadImm, Ops::reg_imm(8, area));
    call(&mut a, ids.invoke);
    let done = a.label();
    a.inst(O::BranchEqImm, Ops::branch_imm(7, 0, done));
    a.inst(O::Jump, Ops::to(again));
    a.bind(done);
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    a.inst(O::LoadImm, Ops::reg_imm(8, heap + 8));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0x20008));
    a.inst(O::LoadImm, Ops::reg_imm(10, 8));
    call(&mut a, ids.peek);
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    call(&mut a, ids.expunge);
    a.inst(O::LoadImm, Ops::reg_imm(7, heap + 8));
    a.inst(O::LoadImm, Ops::reg_imm(8, 8));
    a.inst(O::LoadImm, Ops::reg_imm(0, -65536));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    standard_program(None, &blob, &[], 1, 4096, &a.finish())
}

/// The pvm-core reference run: (exit, output, gas left, host-call ids).
fn reference_run(spec: Spec) -> (Exit, Vec<u8>, i64, Vec<u32>) {
    let bytes = refine_guest(spec);
    let program = Program::from_standard(&bytes, false, ProgramOptions::new(spec)).unwrap();
    let mut inner = InnerPvms::new(spec);
    let mut seen = Vec::new();
    let mut vm = program.instantiate(&[]).unwrap();
    vm.set_gas(REFINE_GAS as i64);
    let exit = vm.run_with_host(|id, ctx| {
        seen.push(id);
        inner.handle(id, ctx).unwrap_or(HostOutcome::Panic)
    });
    (exit, vm.output().unwrap_or_default(), vm.gas(), seen)
}

fn c_spec(spec: Spec) -> c_int {
    match spec {
        Spec::Gp0_8_0 => PVM_SPEC_0_8_0,
        Spec::Gp0_7_2 => PVM_SPEC_0_7_2,
    }
}

fn create_standard(bytes: &[u8], spec: c_int, gas: u64) -> *mut pvm_vm_t {
    // SAFETY: valid slice with its length, no arguments.
    let vm = unsafe { pvm_create_standard(bytes.as_ptr(), bytes.len(), 0, null(), 0, spec, gas) };
    assert!(!vm.is_null(), "create failed: {}", last_error());
    vm
}

fn output(vm: *mut pvm_vm_t) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    // SAFETY: `out` holds 64 bytes.
    let n = unsafe { pvm_output(vm, out.as_mut_ptr(), out.len()) };
    out.truncate(n);
    out
}

thread_local! {
    static SEEN: RefCell<Vec<(c_int, c_int)>> = const { RefCell::new(Vec::new()) };
}

fn take_seen() -> Vec<(c_int, c_int)> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// The documented idiom: builtin first, then the host's own calls (here: WHAT for everything).
unsafe extern "C" fn idiom_callback(vm: *mut pvm_vm_t, id: c_int) -> c_int {
    // SAFETY: `vm` is the running VM handed to its callback.
    let b = unsafe { pvm_handle_builtin_host_call(vm, id) };
    SEEN.with(|s| s.borrow_mut().push((id, b)));
    if b == PVM_BUILTIN_CONTINUE {
        return PVM_HOST_CONTINUE;
    }
    if b != PVM_BUILTIN_NOT_HANDLED {
        return if b == PVM_BUILTIN_OOG {
            PVM_HOST_OOG
        } else {
            PVM_HOST_ERROR
        };
    }
    // SAFETY: as above.
    unsafe { pvm_set_register(vm, 7, PVM_WHAT) };
    PVM_HOST_CONTINUE
}

/// examples/c/refine_guest.h holds the GP 0.8.0 guest's bytes and the gas the pvm-core run leaves:
/// the C and Python tests use it, so check it against the assembler and the engine.
#[test]
fn refine_guest_header_matches_the_assembler_and_the_engine() {
    let bytes = refine_guest(Spec::Gp0_8_0);
    let (exit, out, gas_left, seen) = reference_run(Spec::Gp0_8_0);
    assert_eq!(exit, Exit::Halt);
    assert_eq!(out, 142u64.to_le_bytes());
    let header = include_str!("../../../examples/c/refine_guest.h");
    let open = header.find("REFINE_GUEST[] = {").expect("array") + "REFINE_GUEST[] = {".len();
    let close = open + header[open..].find('}').expect("end of array");
    let parsed: Vec<u8> = header[open..close]
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| u8::from_str_radix(t.trim_start_matches("0x"), 16).expect("hex byte"))
        .collect();
    let lines: Vec<String> = bytes
        .chunks(12)
        .map(|c| {
            let v: Vec<String> = c.iter().map(|b| format!("0x{b:02x}")).collect();
            format!("    {},", v.join(", "))
        })
        .collect();
    assert_eq!(
        parsed,
        bytes,
        "refine_guest.h is stale; the array should be:\n{}",
        lines.join("\n")
    );
    let define = |name: &str| -> u64 {
        let at = header.find(&format!("#define {name} ")).expect(name) + name.len() + 9;
        let digits: String = header[at..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().expect("number")
    };
    assert_eq!(define("REFINE_GUEST_GAS"), REFINE_GAS);
    assert_eq!(define("REFINE_GUEST_GAS_LEFT"), gas_left as u64);
    let calls: Vec<String> = seen.iter().map(|id| id.to_string()).collect();
    let calls = format!("#define REFINE_GUEST_CALLS {{{}}}", calls.join(", "));
    assert!(header.contains(&calls), "expected {calls}");
}

#[test]
fn refine_guest_through_the_callback_idiom_matches_pvm_core() {
    let _serial = serial();
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let (_, ref_out, ref_gas, ref_seen) = reference_run(spec);
        let vm = create_standard(&refine_guest(spec), c_spec(spec), REFINE_GAS);
        // SAFETY: `vm` is live until destroyed at the end.
        unsafe {
            pvm_set_host_callback(vm, Some(idiom_callback));
            assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK, "{}", last_error());
            assert_eq!(output(vm), ref_out);
            assert_eq!(output(vm), 142u64.to_le_bytes());
            assert_eq!(pvm_get_gas(vm), ref_gas as u64, "{spec:?}");
            assert_eq!(pvm_inner_machine_count(vm), 0);
            let seen = take_seen();
            assert_eq!(
                seen.iter().map(|(id, _)| *id as u32).collect::<Vec<_>>(),
                ref_seen
            );
            assert!(seen.iter().all(|(_, b)| *b == PVM_BUILTIN_CONTINUE));
            pvm_destroy(vm);
        }
    }
}

#[test]
fn automatic_builtins_for_non_children_only() {
    let _serial = serial();
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let (_, _, ref_gas, _) = reference_run(spec);
        let ids = HostCallIds::of(spec);
        let vm = create_standard(&refine_guest(spec), c_spec(spec), REFINE_GAS);
        // SAFETY: `vm` is live until destroyed at the end.
        unsafe {
            assert_eq!(pvm_get_builtin_host_calls(vm), 0);
            // Off by default: without a callback the run stops at `machine`.
            assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
            assert_eq!(pvm_get_host_call_id(vm), ids.machine);
            pvm_set_builtin_host_calls(vm, 1);
            assert_eq!(pvm_get_builtin_host_calls(vm), 1);
            // As a child: still every ecalli goes to the caller.
            assert_eq!(pvm_execute(vm, 0, 1), PVM_RESULT_HOST_CALL);
            assert_eq!(pvm_get_host_call_id(vm), ids.machine);
            assert_eq!(pvm_inner_machine_count(vm), 0);
            // As a non-child: performed inside the run, no callback needed.
            pvm_set_gas(vm, REFINE_GAS);
            assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK, "{}", last_error());
            assert_eq!(output(vm), 142u64.to_le_bytes());
            assert_eq!(pvm_get_gas(vm), ref_gas as u64);
            // The callback is not called for them.
            pvm_set_host_callback(vm, Some(idiom_callback));
            pvm_set_gas(vm, REFINE_GAS);
            assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
            assert!(take_seen().is_empty());
            pvm_destroy(vm);
        }
    }
}

/// A program making host calls `ids` in order (r7 = 0 each time), then halting.
fn ecalli_program(ids: &[u8]) -> Vec<Vec<u8>> {
    let mut p = Vec::new();
    for id in ids {
        p.push(load_imm(7, 0));
        p.push(ecalli(*id));
    }
    p.extend(halt());
    p
}

#[test]
fn ids_outside_the_spec_set_are_not_handled() {
    let _serial = serial();
    // GP 0.8.0: 0, 1, 9..14 are PVM-level; GP 0.7.2: 0, 8..13.
    let cases: [(c_int, &[u8]); 2] = [
        (PVM_SPEC_0_8_0, &[2, 3, 4, 5, 6, 7, 8, 15, 100]),
        (PVM_SPEC_0_7_2, &[1, 2, 7, 14, 100]),
    ];
    for (spec, ids) in cases {
        let (code, mask) = crate::tests::program(ecalli_program(ids));
        // SAFETY: valid slices; the VM is destroyed at the end.
        unsafe {
            let vm = pvm_create_ex(
                0,
                code.as_ptr(),
                code.len(),
                null(),
                mask.as_ptr(),
                mask.len(),
                null(),
                0,
                100_000,
                spec,
            );
            assert!(!vm.is_null(), "{}", last_error());
            pvm_set_host_callback(vm, Some(idiom_callback));
            assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
            let seen = take_seen();
            assert_eq!(seen.len(), ids.len());
            for ((id, b), want) in seen.iter().zip(ids) {
                assert_eq!((*id, *b), (*want as c_int, PVM_BUILTIN_NOT_HANDLED));
            }
            assert_eq!(pvm_get_register(vm, 7), PVM_WHAT);
            pvm_destroy(vm);
        }
    }
}

#[test]
fn builtin_gas_call_and_child_vms() {
    let _serial = serial();
    let vm = create(ecalli_program(&[0]), 100_000);
    // SAFETY: `vm` is live until destroyed at the end.
    unsafe {
        pvm_set_host_callback(vm, Some(idiom_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert_eq!(take_seen(), vec![(0, PVM_BUILTIN_CONTINUE)]);
        // `gas` charged 48 and returned the gas left after charging; the halt costs nothing more
        // (one block).
        assert_eq!(pvm_get_register(vm, 7), pvm_get_gas(vm));
        // A child: never performed.
        assert_eq!(pvm_execute(vm, 0, 1), PVM_RESULT_OK);
        assert_eq!(take_seen(), vec![(0, PVM_BUILTIN_NOT_HANDLED)]);
        assert_eq!(pvm_get_register(vm, 7), PVM_WHAT);
        pvm_destroy(vm);
    }
}

unsafe extern "C" fn twice_callback(vm: *mut pvm_vm_t, id: c_int) -> c_int {
    // SAFETY: `vm` is the running VM handed to its callback.
    unsafe {
        let first = pvm_handle_builtin_host_call(vm, id);
        let second = pvm_handle_builtin_host_call(vm, id);
        SEEN.with(|s| s.borrow_mut().extend([(first, second)]));
    }
    PVM_HOST_CONTINUE
}

#[test]
fn outside_a_callback_or_twice_is_an_error() {
    let _serial = serial();
    let vm = create(ecalli_program(&[0]), 100_000);
    // SAFETY: `vm` is live until destroyed; NULL is rejected by the API.
    unsafe {
        assert_eq!(
            pvm_handle_builtin_host_call(null_mut(), 0),
            PVM_BUILTIN_ERROR
        );
        assert!(last_error().contains("NULL"));
        pvm_clear_error();
        assert_eq!(pvm_handle_builtin_host_call(vm, 0), PVM_BUILTIN_ERROR);
        assert!(
            last_error().contains("only allowed inside"),
            "{}",
            last_error()
        );
        // Stopped at the ecalli without a callback: still outside a callback.
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
        assert_eq!(pvm_handle_builtin_host_call(vm, 0), PVM_BUILTIN_ERROR);
        // A second call for the same host call is refused (the first one charged and answered).
        pvm_set_host_callback(vm, Some(twice_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert_eq!(take_seen(), vec![(PVM_BUILTIN_CONTINUE, PVM_BUILTIN_ERROR)]);
        assert!(last_error().contains("already been performed"));
        pvm_destroy(vm);
        assert_eq!(pvm_handle_builtin_host_call(vm, 0), PVM_BUILTIN_ERROR);
    }
}

#[test]
fn builtin_out_of_gas_and_panic() {
    let _serial = serial();
    // `gas` costs 48: with only the block's cost plus 10 the host call runs out of gas.
    let vm = create(ecalli_program(&[0]), 0);
    // SAFETY: `vm` is live until destroyed at the end.
    unsafe {
        let mut cost = 0u32;
        let mut pc = 0u32;
        assert_eq!(pvm_block_gas_costs(vm, &mut pc, &mut cost, 1), 1);
        pvm_set_gas(vm, cost as u64 + 10);
        pvm_set_host_callback(vm, Some(idiom_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OOG);
        assert_eq!(take_seen(), vec![(0, PVM_BUILTIN_OOG)]);
        assert_eq!(pvm_get_machine_state(vm), PVM_OOG);
        assert_eq!(pvm_get_gas(vm), 0); // ϱ − g < 0
        assert_eq!(pvm_get_pc(vm), 6); // at the ecalli
                                       // The same through automatic handling.
        pvm_set_host_callback(vm, None);
        pvm_set_builtin_host_calls(vm, 1);
        pvm_set_gas(vm, cost as u64 + 10);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OOG);
        pvm_destroy(vm);
    }
    // `machine` with an unreadable program area panics (GP B.6).
    let mut p = vec![
        load_imm(7, 0x90_0000),
        load_imm(8, 16),
        load_imm(9, 0),
        ecalli(9),
    ];
    p.extend(halt());
    let vm = create(p, 100_000);
    // SAFETY: `vm` is live until destroyed at the end.
    unsafe {
        pvm_set_host_callback(vm, Some(idiom_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
        assert_eq!(take_seen(), vec![(9, PVM_BUILTIN_PANIC)]);
        pvm_destroy(vm);
    }
}

// ---- tracing ----

unsafe extern "C" fn collect_lines(user: *mut c_void, line: *const c_char) {
    // SAFETY: `user` is the `Vec<String>` the test registered; `line` is a NUL-terminated string
    // valid for this call.
    unsafe {
        let lines = &mut *(user as *mut Vec<String>);
        lines.push(CStr::from_ptr(line).to_string_lossy().into_owned());
    }
}

#[test]
fn tracing_emits_one_line_per_instruction() {
    let _serial = serial();
    let mut lines: Vec<String> = Vec::new();
    let gas;
    let plain = create(add_program(), 1000);
    let vm = create(add_program(), 1000);
    // SAFETY: both VMs are live until destroyed; `lines` outlives the runs that write to it.
    unsafe {
        assert_eq!(pvm_execute(plain, 0, 0), PVM_RESULT_OK);
        pvm_set_trace_sink(
            vm,
            Some(collect_lines),
            &mut lines as *mut Vec<String> as *mut c_void,
        );
        pvm_set_tracing(vm, 1);
        pvm_set_trace_hash_interval(vm, 2);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        // Same result as without tracing.
        gas = pvm_get_gas(vm);
        assert_eq!(gas, pvm_get_gas(plain));
        assert_eq!(pvm_get_register(vm, 9), 42);
        pvm_destroy(plain);
        pvm_destroy(vm);
    }
    // load_imm, load_imm, add_64, load_imm; the halting jump_ind ends the run: EXIT.
    assert_eq!(lines.len(), 5, "{lines:#?}");
    // One block: its whole cost is charged before the first instruction.
    let g = format!("g={gas}");
    assert!(lines[0].starts_with(&format!("1: PC 0 LOAD_IMM {g} reg=\"[0 0 0 0 0 0 0 5 0")));
    assert!(!lines[0].contains("pvmHash"));
    assert!(lines[1].starts_with(&format!("2: PC 6 LOAD_IMM {g} pvmHash=0x")));
    assert!(lines[2].starts_with("3: PC 12 ADD_64"));
    assert!(lines[3].contains("pvmHash"));
    assert!(lines[4].starts_with("EXIT halt pc="), "{}", lines[4]);
    assert!(lines[4].ends_with("steps=5"));
}

unsafe extern "C" fn continue_callback(vm: *mut pvm_vm_t, _id: c_int) -> c_int {
    // SAFETY: `vm` is the running VM handed to its callback.
    unsafe { pvm_set_register(vm, 7, 0x2_0000) };
    PVM_HOST_CONTINUE
}

#[test]
fn tracing_host_calls_and_steps() {
    let _serial = serial();
    let mut lines: Vec<String> = Vec::new();
    let mut p = vec![load_imm(7, 0), ecalli(5)];
    p.extend(halt());
    let vm = create(p, 1000);
    // SAFETY: `vm` is live until destroyed; `lines` outlives the runs.
    unsafe {
        pvm_set_trace_sink(
            vm,
            Some(collect_lines),
            &mut lines as *mut Vec<String> as *mut c_void,
        );
        pvm_set_tracing(vm, 1);
        pvm_set_host_callback(vm, Some(continue_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines[1].starts_with("2: PC 6 ECALLI"));
        assert!(lines[2].starts_with("ECALLI 5 g="));
        assert!(lines[3].starts_with("3: PC 8 LOAD_IMM"));
        // pvm_step: one line per step, EXIT at the end; numbering restarts with pvm_execute.
        lines.clear();
        pvm_set_pc(vm, 0);
        while pvm_step(vm) == PVM_RESULT_STEPPED {}
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines[0].starts_with("5: PC 0"), "{}", lines[0]);
        lines.clear();
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert!(lines[0].starts_with("1: PC 0"));
        // Tracing off: nothing.
        lines.clear();
        pvm_set_tracing(vm, 0);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert!(lines.is_empty());
        pvm_destroy(vm);
    }
}

unsafe extern "C" fn destroying_sink(user: *mut c_void, _line: *const c_char) {
    // SAFETY: `user` is the VM being traced.
    unsafe { pvm_destroy(user as *mut pvm_vm_t) };
}

#[test]
fn destroy_inside_the_trace_sink_is_deferred() {
    let _serial = serial();
    let vm = create(add_program(), 1000);
    // SAFETY: the VM is destroyed by the sink; the run frees it and reports an error.
    unsafe {
        pvm_set_trace_sink(vm, Some(destroying_sink), vm as *mut c_void);
        pvm_set_tracing(vm, 1);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
        assert!(last_error().contains("trace sink"));
        pvm_destroy(vm);
        assert!(last_error().contains("not a live"));
    }
}

#[test]
fn hash_and_dump_match_pvm_core() {
    let _serial = serial();
    let bytes = refine_guest(Spec::Gp0_8_0);
    let vm = create_standard(&bytes, PVM_SPEC_0_8_0, REFINE_GAS);
    let program = Program::from_standard(&bytes, false, ProgramOptions::default()).unwrap();
    let mut reference = program.instantiate(&[]).unwrap();
    reference.set_gas(REFINE_GAS as i64);
    // SAFETY: `vm` is live until destroyed; buffers are sized as passed.
    unsafe {
        let mut h = [0u8; 32];
        assert_eq!(pvm_hash(vm, h.as_mut_ptr()), 0);
        assert_eq!(h, pvm_core::trace::pvm_hash(&reference));
        assert_eq!(pvm_hash(vm, null_mut()), -1);
        assert_eq!(pvm_hash(null_mut(), h.as_mut_ptr()), -1);
        let expected = pvm_core::trace::dump_state(&reference);
        let n = pvm_dump_state(vm, null_mut(), 0);
        assert_eq!(n, expected.len());
        let mut small = vec![b'x' as c_char; 10];
        assert_eq!(pvm_dump_state(vm, small.as_mut_ptr(), 10), n);
        assert_eq!(small[0], 0); // too small: empty string
        let mut buf = vec![0 as c_char; n + 1];
        assert_eq!(pvm_dump_state(vm, buf.as_mut_ptr(), n + 1), n);
        assert_eq!(
            CStr::from_ptr(buf.as_ptr()).to_str().unwrap(),
            expected.as_str()
        );
        pvm_destroy(vm);
    }
}

// ---- JIP-6 ----

fn jip6_text(vm: *mut pvm_vm_t) -> String {
    // SAFETY: the buffer is sized as passed.
    unsafe {
        let n = pvm_jip6_log(vm, null_mut(), 0);
        assert!(n > 0, "{}", last_error());
        let mut buf = vec![0 as c_char; n + 1];
        assert_eq!(pvm_jip6_log(vm, buf.as_mut_ptr(), n + 1), n);
        CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string()
    }
}

fn replay(text: &str, verify: bool) -> (c_int, String) {
    let mut report = vec![0 as c_char; 512];
    // SAFETY: valid buffers with their lengths.
    unsafe {
        let r = pvm_jip6_replay(
            text.as_ptr() as *const c_char,
            text.len(),
            PVM_SPEC_0_8_0,
            verify as c_int,
            report.as_mut_ptr(),
            report.len(),
        );
        (
            r,
            CStr::from_ptr(report.as_ptr())
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// A standard program: ro = "hello"; log(ro, 5) as host call 100; r7 = get_number() (1001);
/// halt with output (r7, r8) untouched after.
fn hello_program() -> Vec<u8> {
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x10000));
    a.inst(O::LoadImm, Ops::reg_imm(8, 5));
    a.inst(O::Ecalli, Ops::imm(100));
    a.inst(O::Ecalli, Ops::imm(1001));
    a.inst(O::AddImm64, Ops::reg_reg_imm(9, 7, 1));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    standard_program(None, b"hello", &[], 0, 4096, &a.finish())
}

unsafe extern "C" fn hello_callback(vm: *mut pvm_vm_t, id: c_int) -> c_int {
    // SAFETY: `vm` is the running VM handed to its callback.
    unsafe {
        match id {
            100 => {
                let mut buf = [0u8; 5];
                let mut err = -1;
                pvm_read_ram_bytes(
                    vm,
                    pvm_get_register(vm, 7) as u32,
                    buf.as_mut_ptr(),
                    5,
                    &mut err,
                );
                assert_eq!(&buf, b"hello");
                pvm_set_register(vm, 7, 0);
            }
            1001 => {
                pvm_set_register(vm, 7, 100);
                pvm_set_gas(vm, pvm_get_gas(vm) - 10);
            }
            _ => return PVM_HOST_ERROR,
        }
    }
    PVM_HOST_CONTINUE
}

#[test]
fn jip6_record_and_replay() {
    let _serial = serial();
    let bytes = hello_program();
    let vm = create_standard(&bytes, PVM_SPEC_0_8_0, 10_000);
    // SAFETY: `vm` is live until destroyed at the end.
    unsafe {
        assert_eq!(pvm_jip6_log(vm, null_mut(), 0), 0);
        assert!(last_error().contains("no JIP-6 log"));
        pvm_set_jip6_recording(vm, 1);
        pvm_set_host_callback(vm, Some(hello_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert_eq!(pvm_get_register(vm, 9), 101);
    }
    let text = jip6_text(vm);
    assert!(text.contains(&format!("program 0x{}", pvm_core::trace::hex(&bytes))));
    assert!(text.contains("ecalli=100 pc=8 "), "{text}");
    assert!(
        text.contains("memread 0x00010000 len=5 -> 0x68656c6c6f"),
        "{text}"
    );
    assert!(text.contains("setreg r07 <- 0x64"), "{text}");
    assert!(text.contains("setgas <- "), "{text}");
    assert!(text.contains("\nHALT pc="), "{text}");
    let (r, report) = replay(&text, true);
    assert_eq!(r, 0, "{report}");
    assert!(report.contains("2 host calls"), "{report}");
    // A register value changed in an ecalli line: a divergence.
    let bad = text.replacen(
        "ecalli=1001 pc=10 gas=",
        "ecalli=1001 pc=10 r12=0x5 gas=",
        1,
    );
    assert_ne!(bad, text);
    let (r, report) = replay(&bad, true);
    assert_eq!(r, 1, "{report}");
    assert!(report.contains("ecalli #2"), "{report}");
    assert!(report.contains("r12"), "{report}");
    // Without verification the state lines are not compared.
    assert_eq!(replay(&bad, false).0, 0);
    // Malformed input.
    let (r, report) = replay("nothing to see here", true);
    assert_eq!(r, -1);
    assert!(report.contains("program"), "{report}");
    assert_eq!(replay("program 0x12", true).0, -1);
    // SAFETY: invalid UTF-8 and NULL are rejected.
    unsafe {
        let junk = [0xffu8, 0xfe];
        let r = pvm_jip6_replay(junk.as_ptr() as *const c_char, 2, 0, 1, null_mut(), 0);
        assert_eq!(r, -1);
        assert_eq!(pvm_jip6_replay(null(), 3, 0, 1, null_mut(), 0), -1);
        pvm_destroy(vm);
    }
}

#[test]
fn jip6_host_call_stays_open_until_the_vm_runs_again() {
    let _serial = serial();
    let vm = create_standard(&hello_program(), PVM_SPEC_0_8_0, 10_000);
    // SAFETY: `vm` is live until destroyed at the end.
    unsafe {
        pvm_set_jip6_recording(vm, 1);
        // No callback: the run stops at each ecalli and the caller answers before resuming.
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
        let mut buf = [0u8; 5];
        pvm_read_ram_bytes(vm, 0x10000, buf.as_mut_ptr(), 5, null_mut());
        pvm_set_register(vm, 7, 0);
        // The open call already shows in the log.
        assert!(jip6_text(vm).contains("memread 0x00010000 len=5"));
        assert_eq!(pvm_resume(vm), PVM_RESULT_HOST_CALL);
        pvm_set_register(vm, 7, 100);
        assert_eq!(pvm_resume(vm), PVM_RESULT_OK);
        pvm_set_jip6_recording(vm, 0);
        // Not recorded any more, the log is kept.
        pvm_set_register(vm, 3, 3);
    }
    let text = jip6_text(vm);
    assert!(!text.contains("r03"));
    assert_eq!(text.matches("ecalli=").count(), 2);
    assert_eq!(replay(&text, true).0, 0, "{}", replay(&text, true).1);
    // SAFETY: destroyed once.
    unsafe { pvm_destroy(vm) };
}

#[test]
fn jip6_records_builtin_host_calls_and_replays_without_inner_pvms() {
    let _serial = serial();
    let vm = create_standard(&refine_guest(Spec::Gp0_8_0), PVM_SPEC_0_8_0, REFINE_GAS);
    // SAFETY: `vm` is live until destroyed at the end.
    unsafe {
        pvm_set_jip6_recording(vm, 1);
        pvm_set_host_callback(vm, Some(idiom_callback));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        take_seen();
    }
    let text = jip6_text(vm);
    assert_eq!(text.matches("ecalli=").count(), 7, "{text}");
    let (r, report) = replay(&text, true);
    assert_eq!(r, 0, "{report}\n{text}");
    // Automatic handling records the same log (up to nothing: same calls, same effects).
    let auto = create_standard(&refine_guest(Spec::Gp0_8_0), PVM_SPEC_0_8_0, REFINE_GAS);
    // SAFETY: `auto` is live until destroyed at the end.
    unsafe {
        pvm_set_builtin_host_calls(auto, 1);
        pvm_set_jip6_recording(auto, 1);
        assert_eq!(pvm_execute(auto, 0, 0), PVM_RESULT_OK);
    }
    assert_eq!(jip6_text(auto), text);
    // SAFETY: destroyed once each.
    unsafe {
        pvm_destroy(vm);
        pvm_destroy(auto);
    }
}
