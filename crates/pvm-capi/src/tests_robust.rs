//! Issue #12 regressions at the C boundary: range arguments that overflow or run past 2^32
//! (F4), and panics that must stay silent.

use std::ffi::{c_int, CStr};
use std::ptr::null_mut;

use crate::tests::{halt, program, serial};
use crate::*;

fn last_error() -> String {
    let p = pvm_last_error();
    assert!(!p.is_null(), "an error message is set");
    // SAFETY: libpvm's message is a NUL-terminated string valid until the next failing call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn new_vm() -> *mut pvm_vm_t {
    let (code, mask) = program(halt());
    // SAFETY: valid slices; no registers or jump table.
    let vm = unsafe {
        pvm_create(
            0,
            code.as_ptr(),
            code.len(),
            null_mut(),
            mask.as_ptr(),
            mask.len(),
            null_mut(),
            0,
            100,
        )
    };
    assert!(!vm.is_null());
    vm
}

/// F4: `pvm_unmap_pages(vm, 1, UINT64_MAX)` wrapped `addr + len` to 0, passed the range check,
/// returned 0 and unmapped every page. Every C range is now checked without overflow.
#[test]
fn overflowing_ranges_are_errors_and_change_nothing() {
    let _s = serial();
    let vm = new_vm();
    // SAFETY: `vm` is live; all pointers are valid for their lengths.
    unsafe {
        assert_eq!(pvm_map_pages(vm, 0x20000, 0x2000, PVM_ACCESS_WRITE), 0);
        assert_eq!(pvm_map_pages(vm, 0xffff_f000, 0x1000, PVM_ACCESS_READ), 0);
        for (addr, len) in [
            (1u32, u64::MAX),
            (0x20000, u64::MAX),
            (0x20000, u64::MAX - 0x1_0000),
            (0xffff_f000, 0x1001),
            (0xffff_ffff, 2),
            (0, (1 << 32) + 1),
        ] {
            pvm_clear_error();
            assert_eq!(
                pvm_unmap_pages(vm, addr, len),
                -1,
                "unmap {addr:#x} + {len}"
            );
            assert!(last_error().contains("2^32"), "{}", last_error());
            assert_eq!(
                pvm_map_pages(vm, addr, len, PVM_ACCESS_NONE),
                -1,
                "map {addr:#x} + {len}"
            );
            assert!(last_error().contains("2^32"), "{}", last_error());
        }
        // Nothing was unmapped or re-protected.
        assert_eq!(pvm_get_page_access(vm, 0x20000), PVM_ACCESS_WRITE);
        assert_eq!(pvm_get_page_access(vm, 0x21000), PVM_ACCESS_WRITE);
        assert_eq!(pvm_get_page_access(vm, 0xffff_f000), PVM_ACCESS_READ);
        // Ranges ending exactly at 2^32 are fine, the whole space included.
        assert_eq!(pvm_map_pages(vm, 0xffff_f000, 0x1000, PVM_ACCESS_WRITE), 0);
        assert_eq!(pvm_get_page_access(vm, 0xffff_ffff), PVM_ACCESS_WRITE);
        assert_eq!(pvm_unmap_pages(vm, 0xffff_f000, 0x1000), 0);
        assert_eq!(pvm_get_page_access(vm, 0xffff_f000), PVM_ACCESS_NONE);
        assert_eq!(pvm_unmap_pages(vm, 0, 1 << 32), 0);
        assert_eq!(pvm_get_page_access(vm, 0x20000), PVM_ACCESS_NONE);
        pvm_destroy(vm);
    }
}

/// Reads and writes past 2^32 are argument errors (as `RangeError`-like `INVALID_ARGUMENT` in
/// the Node API), not accesses that wrap to address 0: the reads report `PVM_MEM_ERROR` (they
/// reported `PVM_MEM_OOB` for the wrapped address 0), the writes `PVM_OOB`, nothing is written,
/// and the message says why.
#[test]
fn accesses_past_2_pow_32_are_argument_errors() {
    let _s = serial();
    let vm = new_vm();
    // SAFETY: `vm` is live; all pointers are valid for their lengths.
    unsafe {
        assert_eq!(pvm_map_pages(vm, 0xffff_f000, 0x1000, PVM_ACCESS_WRITE), 0);
        let data = [1u8, 2, 3, 4];
        // Ends exactly at 2^32: fine.
        assert_eq!(pvm_write_ram_bytes(vm, 0xffff_fffc, data.as_ptr(), 4), 0);
        let mut out = [0u8; 4];
        let mut err: c_int = -1;
        assert_eq!(
            pvm_read_ram_bytes(vm, 0xffff_fffc, out.as_mut_ptr(), 4, &mut err),
            0
        );
        assert_eq!((out, err), (data, PVM_MEM_OK));

        let zeros = [0u8; 4];
        assert_eq!(
            pvm_write_ram_bytes(vm, 0xffff_fffe, zeros.as_ptr(), 4),
            PVM_OOB
        );
        assert!(last_error().contains("2^32"), "{}", last_error());
        assert_eq!(
            pvm_write_ram_unchecked(vm, 0xffff_fffe, zeros.as_ptr(), 4),
            PVM_OOB
        );
        assert_eq!(pvm_write_ram_bytes_32(vm, 0xffff_fffe, 0), PVM_OOB);
        assert_eq!(pvm_write_ram_bytes_64(vm, 0xffff_fffc, 0), PVM_OOB);
        assert_eq!(pvm_write_ram_bytes_16(vm, 0xffff_ffff, 0), PVM_OOB);
        assert_eq!(
            pvm_read_ram_bytes_32(vm, 0xffff_fffc, &mut err),
            0x0403_0201
        );
        assert_eq!(err, PVM_MEM_OK, "nothing was written");

        err = -1;
        assert_eq!(
            pvm_read_ram_bytes(vm, 0xffff_fffe, out.as_mut_ptr(), 4, &mut err),
            PVM_OOB
        );
        assert_eq!(err, PVM_MEM_ERROR);
        assert!(last_error().contains("2^32"), "{}", last_error());
        err = -1;
        assert_eq!(pvm_read_ram_bytes_16(vm, 0xffff_ffff, &mut err), 0);
        assert_eq!(err, PVM_MEM_ERROR);
        err = -1;
        assert_eq!(pvm_read_ram_bytes_64(vm, 0xffff_fffc, &mut err), 0);
        assert_eq!(err, PVM_MEM_ERROR);
        assert_eq!(
            pvm_read_ram_unchecked(vm, 0xffff_fffe, out.as_mut_ptr(), 4),
            PVM_OOB
        );
        // An inaccessible range inside the space is still OOB, not an argument error.
        err = -1;
        assert_eq!(
            pvm_read_ram_bytes(vm, 0x50000, out.as_mut_ptr(), 4, &mut err),
            PVM_OOB
        );
        assert_eq!(err, PVM_MEM_OOB);
        pvm_destroy(vm);
    }
}

/// A log whose `program` hex contains a multi-byte character (`program 0xaé0`) made the JIP-6
/// parser slice inside the character and panic; at the C boundary that must be an ordinary
/// error (-1 with a message) whichever way the parser treats it. That nothing is printed is
/// checked in a child process by `panic::tests`.
#[test]
fn jip6_replay_of_a_multibyte_program_line_is_an_error() {
    let _s = serial();
    let log = "program 0xaé0\n";
    let mut report = [0 as std::ffi::c_char; 256];
    pvm_clear_error();
    // SAFETY: `log` and `report` are valid for their lengths.
    let r = unsafe {
        pvm_jip6_replay(
            log.as_ptr().cast(),
            log.len(),
            PVM_SPEC_0_8_0,
            1,
            report.as_mut_ptr(),
            report.len(),
        )
    };
    assert_eq!(r, -1);
    assert!(!last_error().is_empty());
}

/// Issue #12 item 3: the total guest memory limit from C. A guest store beyond it is
/// `PVM_RESULT_FAULT` with `pvm_memory_limit_reached`, resumable after raising the limit; host
/// writes beyond it fail.
#[test]
fn memory_limit_faults_the_guest_and_refuses_host_writes() {
    use pvm_core::asm::{Assembler, Operands};
    use pvm_core::isa::Opcode;
    let _serial = serial();
    const BASE: u32 = 0x10_0000;
    // Stores r1 at BASE, BASE + 4096, BASE + 8192, then halts.
    let mut a = Assembler::new();
    a.inst(Opcode::LoadImm64, Operands::reg_imm(1, 7));
    for k in 0..3 {
        a.inst(
            Opcode::StoreU64,
            Operands::reg_imm(1, (BASE + k * 4096) as i64),
        );
    }
    a.inst(Opcode::LoadImm64, Operands::reg_imm(0, 0xFFFF_0000));
    a.inst(Opcode::JumpInd, Operands::reg_imm(0, 0));
    let blob = a.finish_blob();
    let mask: Vec<u8> = blob.bitmask.iter().map(|&b| b as u8).collect();
    // SAFETY: valid slices; the VM is destroyed once at the end.
    unsafe {
        let vm = pvm_create(
            0,
            blob.code.as_ptr(),
            blob.code.len(),
            null_mut(),
            mask.as_ptr(),
            mask.len(),
            null_mut(),
            0,
            10_000,
        );
        assert!(!vm.is_null());
        assert_eq!(
            pvm_map_pages(vm, BASE, 3 * 4096, PVM_ACCESS_WRITE as c_int),
            0
        );
        assert_eq!(pvm_get_memory_limit(vm), u64::MAX);
        assert_eq!(pvm_set_memory_limit(vm, 2), 0);
        assert_eq!(pvm_get_memory_limit(vm), 2);
        assert_eq!(pvm_memory_limit_reached(vm), 0);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_FAULT);
        assert_eq!(pvm_get_fault_address(vm), BASE + 8192);
        assert_eq!(pvm_memory_limit_reached(vm), 1);
        // Host writes: pages with storage yes, a new page no.
        let byte = [1u8];
        assert_eq!(pvm_write_ram_bytes(vm, BASE + 1, byte.as_ptr(), 1), 0);
        assert_eq!(
            pvm_write_ram_bytes(vm, BASE + 8192, byte.as_ptr(), 1),
            PVM_OOB
        );
        assert!(
            last_error().contains("memory limit of 2 pages"),
            "{}",
            last_error()
        );
        // Raised: the store re-executes and the program halts.
        assert_eq!(pvm_set_memory_limit(vm, u64::MAX), 0);
        assert_eq!(pvm_memory_limit_reached(vm), 0);
        assert_eq!(pvm_resume(vm), PVM_RESULT_OK);
        assert_eq!(pvm_read_ram_bytes_64(vm, BASE + 8192, null_mut()), 7);
        pvm_destroy(vm);
        assert_eq!(pvm_set_memory_limit(vm, 1), -1);
        assert_eq!(pvm_memory_limit_reached(vm), -1);
    }
}
