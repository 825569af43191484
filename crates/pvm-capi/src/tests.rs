//! Unit tests calling the extern functions directly, as C would.

use std::cell::RefCell;
use std::ffi::{c_int, CStr};
use std::ptr::{null, null_mut};

use crate::*;

/// Tests run one at a time: some use destroyed pointers on purpose, and a parallel test could
/// otherwise get a new VM at the same (reused) address.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Assembles instructions (each a byte vector starting with its opcode) into code + packed mask.
pub(crate) fn asm(instrs: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
    let mut code = Vec::new();
    let mut starts = Vec::new();
    for i in instrs {
        starts.push(code.len());
        code.extend_from_slice(i);
    }
    let mut mask = vec![0u8; code.len().div_ceil(8)];
    for s in starts {
        mask[s / 8] |= 1 << (s % 8);
    }
    (code, mask)
}

// Instruction helpers (GP 0.8.0 opcode numbers).
const TRAP: &[u8] = &[0];
pub(crate) fn load_imm(r: u8, imm: u32) -> Vec<u8> {
    let mut v = vec![51, r];
    v.extend_from_slice(&imm.to_le_bytes());
    v
}
pub(crate) fn ecalli(id: u8) -> Vec<u8> {
    vec![10, id]
}
fn add_64(d: u8, a: u8, b: u8) -> Vec<u8> {
    vec![200, a | (b << 4), d]
}
fn load_ind_u8(dst: u8, base: u8) -> Vec<u8> {
    vec![124, dst | (base << 4)]
}
fn store_ind_u8(src: u8, base: u8) -> Vec<u8> {
    vec![120, src | (base << 4)]
}
/// `load_imm r12, 0xFFFF0000; jump_ind r12, 0`: halt.
pub(crate) fn halt() -> Vec<Vec<u8>> {
    vec![load_imm(12, 0xFFFF_0000), vec![50, 12]]
}

pub(crate) fn program(body: Vec<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let refs: Vec<&[u8]> = body.iter().map(|v| v.as_slice()).collect();
    asm(&refs)
}

pub(crate) fn create(body: Vec<Vec<u8>>, gas: u64) -> *mut pvm_vm_t {
    let (code, mask) = program(body);
    // SAFETY: valid slices with their lengths.
    let vm = unsafe {
        pvm_create(
            7,
            code.as_ptr(),
            code.len(),
            null(),
            mask.as_ptr(),
            mask.len(),
            null(),
            0,
            gas,
        )
    };
    assert!(!vm.is_null(), "create failed: {}", last_error());
    vm
}

pub(crate) fn last_error() -> String {
    let p = pvm_last_error();
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the library returns a NUL-terminated string valid until the next failing call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

pub(crate) fn add_program() -> Vec<Vec<u8>> {
    let mut p = vec![load_imm(7, 5), load_imm(8, 37), add_64(9, 7, 8)];
    p.extend(halt());
    p
}

#[test]
fn halts_and_reports_state() {
    let _serial = serial();
    let vm = create(add_program(), 1000);
    // SAFETY: `vm` is live throughout and destroyed once at the end.
    unsafe {
        assert_eq!(pvm_get_machine_state(vm), PVM_READY);
        assert_eq!(pvm_get_result_code(vm), -1);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert_eq!(pvm_get_register(vm, 9), 42);
        let regs = pvm_get_registers(vm);
        assert_eq!(*regs.add(9), 42);
        assert_eq!(pvm_get_machine_state(vm), PVM_HALT);
        assert_eq!(pvm_is_terminated(vm), 1);
        let mut pcs = [0u32; 4];
        let mut costs = [0u32; 4];
        let n = pvm_block_gas_costs(vm, pcs.as_mut_ptr(), costs.as_mut_ptr(), 4);
        assert_eq!(n, 1);
        assert_eq!(pcs[0], 0);
        assert_eq!(pvm_get_gas(vm), 1000 - costs[0] as u64);
        assert_eq!(pvm_get_service_index(vm), 7);
        // resume after halt is refused, execute starts again
        assert_eq!(pvm_resume(vm), PVM_RESULT_ERROR);
        assert!(last_error().contains("terminated"));
        assert_eq!(pvm_execute(vm, 0, 1), PVM_RESULT_OK);
        assert_eq!(pvm_is_child(vm), 1);
        assert_eq!(pvm_get_gas(vm), 1000 - 2 * costs[0] as u64);
        pvm_destroy(vm);
        let vm = create(vec![TRAP.to_vec()], 10);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
        assert_eq!(pvm_get_machine_state(vm), PVM_PANIC);
        assert_eq!(pvm_step(vm), PVM_RESULT_ERROR);
        pvm_destroy(vm);
    }
}

#[test]
fn null_and_destroyed_handles_are_errors() {
    let _serial = serial();
    // SAFETY: every call is given NULL or a destroyed pointer, which the API must reject.
    unsafe {
        assert_eq!(pvm_execute(null_mut(), 0, 0), PVM_RESULT_ERROR);
        assert!(last_error().contains("NULL"));
        assert_eq!(pvm_get_gas(null_mut()), 0);
        assert!(pvm_get_registers(null_mut()).is_null());
        pvm_destroy(null_mut());
        let vm = create(add_program(), 10);
        pvm_destroy(vm);
        pvm_clear_error();
        pvm_destroy(vm); // double destroy: detected
        assert!(last_error().contains("not a live"));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
        assert_eq!(pvm_write_ram_bytes_8(vm, 0x10000, 1), PVM_OOB);
        let mut code = 0;
        assert_eq!(pvm_read_ram_bytes_32(vm, 0x10000, &mut code), 0);
        assert_eq!(code, PVM_MEM_ERROR);
        // a pointer that was never a VM
        let mut fake = 0u64;
        let fake_vm = &mut fake as *mut u64 as *mut pvm_vm_t;
        assert_eq!(pvm_step(fake_vm), PVM_RESULT_ERROR);
        pvm_destroy(fake_vm);
    }
}

#[test]
fn invalid_inputs_give_null() {
    let _serial = serial();
    let (code, mask) = program(add_program());
    // SAFETY: pointers are valid for the lengths passed, or NULL.
    unsafe {
        let vm = pvm_create(
            0,
            null(),
            5,
            null(),
            mask.as_ptr(),
            mask.len(),
            null(),
            0,
            0,
        );
        assert!(vm.is_null());
        assert!(last_error().contains("code is NULL"));
        let vm = pvm_create(
            0,
            code.as_ptr(),
            code.len(),
            null(),
            mask.as_ptr(),
            1,
            null(),
            0,
            0,
        );
        assert!(vm.is_null());
        assert!(
            last_error().contains("bitmask is 1 bytes"),
            "{}",
            last_error()
        );
        let vm = pvm_create(
            0,
            code.as_ptr(),
            code.len(),
            null(),
            mask.as_ptr(),
            mask.len(),
            null(),
            3,
            0,
        );
        assert!(vm.is_null());
        assert!(last_error().contains("jump_table is NULL"));
        // no terminator at the end: invalid under GP 0.8.0, fine under 0.7.2
        let (c2, m2) = program(vec![load_imm(7, 1)]);
        let vm = pvm_create(
            0,
            c2.as_ptr(),
            c2.len(),
            null(),
            m2.as_ptr(),
            m2.len(),
            null(),
            0,
            0,
        );
        assert!(vm.is_null());
        assert!(last_error().contains("terminator"), "{}", last_error());
        let vm = pvm_create_ex(
            0,
            c2.as_ptr(),
            c2.len(),
            null(),
            m2.as_ptr(),
            m2.len(),
            null(),
            0,
            10,
            PVM_SPEC_0_7_2,
        );
        assert!(!vm.is_null());
        assert_eq!(pvm_get_spec(vm), PVM_SPEC_0_7_2);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
        pvm_destroy(vm);
        let junk = [0xffu8, 1, 2];
        assert!(pvm_create_from_blob(junk.as_ptr(), junk.len(), 0, 0).is_null());
        assert!(pvm_create_from_blob(junk.as_ptr(), junk.len(), 9, 0).is_null());
        assert!(last_error().contains("unknown spec"));
        // an absurd length with a NULL pointer is caught before any read
        assert!(pvm_create_standard(null(), usize::MAX, 0, null(), 0, 0, 0).is_null());
    }
}

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn note(s: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(s.into()));
}

unsafe extern "C" fn reentrant_cb(vm: *mut pvm_vm_t, id: c_int) -> c_int {
    // SAFETY: called by the library with a live VM during its run.
    unsafe {
        note(format!("id {id}"));
        // re-entering the same VM is refused without disturbing it
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
        assert!(last_error().contains("already running"));
        assert_eq!(pvm_resume(vm), PVM_RESULT_ERROR);
        assert_eq!(pvm_step(vm), PVM_RESULT_ERROR);
        assert_eq!(pvm_get_machine_state(vm), PVM_HOST);
        assert_eq!(pvm_get_host_call_id(vm), id as u32);
        // arguments: r7 = address, r8 = length
        let addr = pvm_get_register(vm, 7) as u32;
        let len = pvm_get_register(vm, 8) as usize;
        let mut buf = vec![0u8; len];
        let mut err = -1;
        assert_eq!(
            pvm_read_ram_bytes(vm, addr, buf.as_mut_ptr(), len, &mut err),
            0
        );
        assert_eq!(err, PVM_MEM_OK);
        let sum: u64 = buf.iter().map(|b| *b as u64).sum();
        // an inaccessible address is an error code, not a crash
        assert_eq!(pvm_read_ram_bytes_64(vm, 0x9000_0000, &mut err), 0);
        assert_eq!(err, PVM_MEM_OOB);
        assert_eq!(pvm_write_ram_bytes_8(vm, 0x9000_0000, 1), PVM_OOB);
        assert_eq!(pvm_write_ram_bytes_8(vm, addr, sum as u8), 0);
        pvm_set_register(vm, 8, sum * 10);
        PVM_HOST_CONTINUE
    }
}

fn host_program() -> Vec<Vec<u8>> {
    let mut p = vec![
        load_imm(7, 0x20000),
        load_imm(8, 3),
        ecalli(1),
        load_ind_u8(9, 7),
    ];
    p.extend(halt());
    p
}

#[test]
fn host_callback_reads_writes_and_reentry_is_refused() {
    let _serial = serial();
    let vm = create(host_program(), 10_000);
    // SAFETY: `vm` is live until the final destroy.
    unsafe {
        assert_eq!(pvm_map_pages(vm, 0x20000, 4096, PVM_ACCESS_WRITE), 0);
        let data = [1u8, 2, 3];
        assert_eq!(pvm_write_ram_bytes(vm, 0x20000, data.as_ptr(), 3), 0);
        pvm_set_host_callback(vm, Some(reentrant_cb));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK, "{}", last_error());
        assert_eq!(pvm_get_register(vm, 9), 6);
        assert_eq!(pvm_get_register(vm, 8), 60);
        assert_eq!(LOG.with(|l| l.borrow().clone()), vec!["id 1".to_string()]);
        // stepping over the ecalli runs the callback and moves past it
        pvm_set_pc(vm, 0);
        assert_eq!(pvm_step(vm), PVM_RESULT_STEPPED);
        assert_eq!(pvm_step(vm), PVM_RESULT_STEPPED);
        assert_eq!(pvm_step(vm), PVM_RESULT_STEPPED);
        assert_eq!(pvm_get_pc(vm), 14);
        // memory now holds [6, 2, 3]
        assert_eq!(pvm_get_register(vm, 8), 110);
        assert_eq!(pvm_execute(vm, 14, 0), PVM_RESULT_OK);
        assert_eq!(pvm_get_register(vm, 9), 11);
        pvm_destroy(vm);
    }
}

#[test]
fn host_call_without_callback_and_terminate_resume() {
    let _serial = serial();
    let vm = create(host_program(), 10_000);
    // SAFETY: `vm` is live until the final destroy.
    unsafe {
        pvm_map_pages(vm, 0x20000, 4096, PVM_ACCESS_WRITE);
        pvm_write_ram_bytes_8(vm, 0x20000, 9);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
        let ecalli_pc = pvm_get_pc(vm);
        assert_eq!(pvm_get_host_call_id(vm), 1);
        assert_eq!(pvm_is_terminated(vm), 0);
        assert_eq!(pvm_resume(vm), PVM_RESULT_OK);
        assert_eq!(pvm_get_register(vm, 9), 9);
        // again, resuming through pvm_execute at the pc after the ecalli
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
        assert_eq!(pvm_get_pc(vm), ecalli_pc);
        pvm_set_register(vm, 7, 0x20000);
        assert_eq!(pvm_execute(vm, ecalli_pc + 2, 0), PVM_RESULT_OK);
        assert_eq!(pvm_get_register(vm, 9), 9);
        pvm_destroy(vm);
    }
}

unsafe extern "C" fn destroy_cb(vm: *mut pvm_vm_t, _id: c_int) -> c_int {
    // SAFETY: `vm` is live when the callback starts.
    unsafe {
        pvm_destroy(vm);
        // the handle is invalid from now on
        assert_eq!(pvm_get_gas(vm), 0);
        assert!(last_error().contains("not a live"));
    }
    PVM_HOST_CONTINUE
}

#[test]
fn destroy_inside_callback_is_deferred() {
    let _serial = serial();
    let vm = create(host_program(), 10_000);
    // SAFETY: the VM is destroyed by its callback; the run frees it and returns ERROR.
    unsafe {
        pvm_set_host_callback(vm, Some(destroy_cb));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
        assert!(last_error().contains("destroyed inside"));
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
        pvm_destroy(vm); // detected, no double free
    }
}

unsafe extern "C" fn answer_cb(vm: *mut pvm_vm_t, _id: c_int) -> c_int {
    // SAFETY: live VM during its run.
    unsafe { pvm_get_register(vm, 10) as c_int }
}

#[test]
fn callback_outcomes() {
    let _serial = serial();
    for (answer, expect, state) in [
        (PVM_HOST_TERMINATE, PVM_RESULT_HOST_CALL, PVM_HOST),
        (PVM_HOST_ERROR, PVM_RESULT_PANIC, PVM_PANIC),
        (PVM_HOST_OOG, PVM_RESULT_OOG, PVM_OOG),
        (77, PVM_RESULT_PANIC, PVM_PANIC),
    ] {
        let vm = create(host_program(), 10_000);
        // SAFETY: live VM.
        unsafe {
            pvm_map_pages(vm, 0x20000, 4096, PVM_ACCESS_READ);
            pvm_set_register(vm, 10, answer as u64);
            pvm_set_host_callback(vm, Some(answer_cb));
            assert_eq!(pvm_execute(vm, 0, 0), expect);
            assert_eq!(pvm_get_machine_state(vm), state);
            assert_eq!(pvm_get_pc(vm), 12);
            if answer == PVM_HOST_TERMINATE {
                pvm_set_host_callback(vm, None);
                assert_eq!(pvm_resume(vm), PVM_RESULT_OK);
            }
            pvm_destroy(vm);
        }
    }
}

#[test]
fn fault_oog_step_and_memory() {
    let _serial = serial();
    let mut body = vec![load_imm(7, 0x30000), load_ind_u8(9, 7), store_ind_u8(9, 7)];
    body.extend(halt());
    let vm = create(body, 0);
    // SAFETY: live VM.
    unsafe {
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OOG);
        assert_eq!(pvm_is_terminated(vm), 1);
        pvm_set_gas(vm, 1000);
        assert_eq!(pvm_resume(vm), PVM_RESULT_FAULT);
        assert_eq!(pvm_get_fault_address(vm), 0x30000);
        assert_eq!(pvm_get_gas_charged(vm), 1);
        assert_eq!(pvm_map_pages(vm, 0x30000, 1, PVM_ACCESS_READ), 0);
        let b = [0x5au8];
        assert_eq!(pvm_write_ram_bytes(vm, 0x30000, b.as_ptr(), 1), PVM_OOB);
        assert_eq!(pvm_write_ram_unchecked(vm, 0x30000, b.as_ptr(), 1), 0);
        let gas = pvm_get_gas(vm);
        assert_eq!(pvm_resume(vm), PVM_RESULT_FAULT); // the store hits the read-only page
        assert_eq!(pvm_get_gas(vm), gas, "a resumed block is not charged again");
        assert_eq!(pvm_get_register(vm, 9), 0x5a);
        assert_eq!(pvm_get_page_access(vm, 0x30000), PVM_ACCESS_READ);
        pvm_map_pages(vm, 0x30000, 1, PVM_ACCESS_WRITE);
        assert_eq!(pvm_resume(vm), PVM_RESULT_OK);
        assert_eq!(pvm_unmap_pages(vm, 0x30000, 4096), 0);
        assert_eq!(pvm_get_page_access(vm, 0x30000), PVM_ACCESS_NONE);
        let mut out = [0u8; 1];
        assert_eq!(
            pvm_read_ram_unchecked(vm, 0x30000, out.as_mut_ptr(), 1),
            PVM_OOB
        );
        assert_eq!(pvm_map_pages(vm, 0x1000, 1, PVM_ACCESS_READ), -1);
        assert_eq!(pvm_map_pages(vm, 0x30000, 1, 9), -1);
        assert_eq!(pvm_unmap_pages(vm, 0xffff_f000, 0x2000), -1);

        // stepping
        pvm_set_pc(vm, 0);
        assert_eq!(pvm_get_machine_state(vm), PVM_READY);
        pvm_map_pages(vm, 0x30000, 1, PVM_ACCESS_WRITE);
        let mut steps = 0;
        loop {
            let r = pvm_step(vm);
            steps += 1;
            if r != PVM_RESULT_STEPPED {
                assert_eq!(r, PVM_RESULT_OK);
                break;
            }
        }
        assert_eq!(steps, 5);
        pvm_destroy(vm);
    }
}

#[test]
fn registers_and_names() {
    let _serial = serial();
    let regs: [u64; 13] = std::array::from_fn(|i| i as u64 * 3);
    let (code, mask) = program(add_program());
    // SAFETY: valid slices; the VM is destroyed at the end.
    unsafe {
        let vm = pvm_create(
            0,
            code.as_ptr(),
            code.len(),
            regs.as_ptr(),
            mask.as_ptr(),
            mask.len(),
            null(),
            0,
            0,
        );
        assert_eq!(pvm_get_register(vm, 12), 36);
        assert_eq!(pvm_get_register(vm, 13), 0);
        assert!(last_error().contains("out of range"));
        pvm_set_register(vm, -1, 5);
        let mut copy = [0u64; 13];
        assert_eq!(pvm_get_registers_copy(vm, copy.as_mut_ptr()), 0);
        assert_eq!(copy, regs);
        pvm_set_heap_pointer(vm, 0x50000);
        assert_eq!(pvm_get_heap_pointer(vm), 0x50000);
        pvm_set_logging(vm, 1);
        pvm_set_tracing(vm, 1);
        assert_eq!(pvm_get_logging(vm) + pvm_get_tracing(vm), 2);
        pvm_destroy(vm);
        let name = |p: *const std::ffi::c_char| CStr::from_ptr(p).to_str().unwrap().to_string();
        assert_eq!(name(reg_name(0)), "ra");
        assert_eq!(name(reg_name(12)), "a5");
        assert_eq!(name(reg_name(13)), "unknown");
        assert_eq!(name(get_opcode_name(200)), "add_64");
        assert_eq!(name(get_opcode_name(255)), "unknown");
        assert_eq!(name(pvm_opcode_name(101, PVM_SPEC_0_7_2)), "sbrk");
        assert_eq!(name(pvm_version()), env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn standard_program_output() {
    let _serial = serial();
    // E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|p|) p with p = blob of `jump_ind r0, 0`.
    let blob = [0u8, 0, 2, 50, 0, 0b01];
    let mut std_prog = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0];
    std_prog.extend_from_slice(b"hi");
    std_prog.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    std_prog.extend_from_slice(&blob);
    let mut with_meta = vec![3, b'a', b'b', b'c'];
    with_meta.extend_from_slice(&std_prog);
    let args = b"hello";
    for (bytes, meta) in [(&std_prog, 0), (&with_meta, 1)] {
        // SAFETY: valid slices; the VM is destroyed at the end.
        unsafe {
            let vm = pvm_create_standard(
                bytes.as_ptr(),
                bytes.len(),
                meta,
                args.as_ptr(),
                args.len(),
                0,
                100,
            );
            assert!(!vm.is_null(), "{}", last_error());
            assert_eq!(pvm_output(vm, null_mut(), 0), 0);
            assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
            let mut out = [0u8; 16];
            let n = pvm_output(vm, out.as_mut_ptr(), out.len());
            assert_eq!(&out[..n], b"hello");
            assert_eq!(pvm_output(vm, out.as_mut_ptr(), 2), 5);
            let mut err = 0;
            assert_eq!(
                pvm_read_ram_bytes_16(vm, 0x10000, &mut err),
                u16::from_le_bytes(*b"hi")
            );
            pvm_destroy(vm);
        }
    }
}

#[test]
fn memory_bounds() {
    let _serial = serial();
    let vm = create(add_program(), 0);
    // SAFETY: live VM.
    unsafe {
        pvm_set_memory_bounds(
            vm, 0x20000, 0x21000, 0x10000, 0x10010, 0x30000, 0x30000, 0xfe000, 0x100000,
        );
        assert_eq!(pvm_get_page_access(vm, 0x10000), PVM_ACCESS_READ);
        assert_eq!(pvm_get_page_access(vm, 0x20fff), PVM_ACCESS_WRITE);
        assert_eq!(pvm_get_page_access(vm, 0x21000), PVM_ACCESS_NONE);
        assert_eq!(
            pvm_get_page_access(vm, 0x30000),
            PVM_ACCESS_NONE,
            "empty output range"
        );
        assert_eq!(pvm_get_page_access(vm, 0xff000), PVM_ACCESS_WRITE);
        assert_eq!(pvm_write_ram_bytes_64(vm, 0x20ff8, u64::MAX - 1), 0);
        assert_eq!(pvm_read_ram_bytes_64(vm, 0x20ff8, null_mut()), u64::MAX - 1);
        assert_eq!(
            pvm_write_ram_bytes_32(vm, 0x20ffe, 1),
            PVM_OOB,
            "crosses into an unmapped page"
        );
        pvm_clear_error();
        pvm_set_memory_bounds(vm, 0x100, 0x200, 0, 0, 0, 0, 0x40000, 0x41000);
        assert!(last_error().contains("rw range"));
        assert_eq!(pvm_get_page_access(vm, 0x40000), PVM_ACCESS_WRITE);
        pvm_destroy(vm);
    }
}
