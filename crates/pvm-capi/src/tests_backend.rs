//! Unit tests of the backend choice, `pvm_invoke` and `pvm_metadata`, calling them as C would.

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr::{null, null_mut};

use pvm_core::metadata::ProgramMetadata;

use crate::tests::{last_error, serial};
use crate::*;

fn guest() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/guests/hostcalls.jam"
    ))
    .unwrap()
}

fn create_standard_ex(bytes: &[u8], meta: c_int, args: &[u8], backend: c_int) -> *mut pvm_vm_t {
    // SAFETY: valid slices with their lengths.
    unsafe {
        pvm_create_standard_ex(
            bytes.as_ptr(),
            bytes.len(),
            meta,
            args.as_ptr(),
            args.len(),
            PVM_SPEC_0_8_0,
            1_000_000,
            backend,
        )
    }
}

#[test]
fn backend_constants_and_queries() {
    let _s = serial();
    let bytes = guest();
    for (backend, want) in [
        (PVM_BACKEND_AUTO, None),
        (PVM_BACKEND_INTERPRETER, Some(PVM_BACKEND_INTERPRETER)),
    ] {
        let vm = create_standard_ex(&bytes, 0, &[], backend);
        assert!(!vm.is_null(), "{}", last_error());
        // SAFETY: a live VM.
        let got = unsafe { pvm_get_backend(vm) };
        assert!(got == PVM_BACKEND_INTERPRETER || got == PVM_BACKEND_RECOMPILER);
        if let Some(w) = want {
            assert_eq!(got, w);
        }
        // SAFETY: a live VM, destroyed once.
        unsafe { pvm_destroy(vm) };
    }
    // SAFETY: NULL is reported, not dereferenced.
    assert_eq!(unsafe { pvm_get_backend(null_mut()) }, -1);
}

#[test]
fn recompiler_is_either_used_or_a_clear_error() {
    let _s = serial();
    let bytes = guest();
    let vm = create_standard_ex(&bytes, 0, &[], PVM_BACKEND_RECOMPILER);
    if pvm_recompiler_supported() == 1 {
        assert!(!vm.is_null(), "{}", last_error());
        // SAFETY: a live VM.
        assert_eq!(unsafe { pvm_get_backend(vm) }, PVM_BACKEND_RECOMPILER);
        // SAFETY: a live VM, destroyed once.
        unsafe { pvm_destroy(vm) };
    } else {
        assert_eq!(pvm_recompiler_supported(), 0);
        assert!(vm.is_null());
        assert!(last_error().contains("recompiler"), "{}", last_error());
        assert!(last_error().contains("not supported"), "{}", last_error());
    }
    let blob = {
        let mut a = pvm_core::asm::Assembler::new();
        a.inst(pvm_core::isa::Opcode::Trap, Default::default());
        a.finish()
    };
    // SAFETY: a valid slice.
    let vm = unsafe {
        pvm_create_from_blob_ex(blob.as_ptr(), blob.len(), 0, 10, PVM_BACKEND_RECOMPILER)
    };
    assert_eq!(vm.is_null(), pvm_recompiler_supported() == 0);
    if !vm.is_null() {
        // SAFETY: a live VM, destroyed once.
        unsafe { pvm_destroy(vm) };
    }
}

#[test]
fn unknown_backend_values_are_errors() {
    let _s = serial();
    let bytes = guest();
    for bad in [-1, 3, 99] {
        assert!(create_standard_ex(&bytes, 0, &[], bad).is_null());
        assert!(last_error().contains("unknown backend"), "{}", last_error());
        // SAFETY: a valid slice.
        let vm = unsafe { pvm_create_from_blob_ex(bytes.as_ptr(), bytes.len(), 0, 0, bad) };
        assert!(vm.is_null());
        assert!(last_error().contains("unknown backend"), "{}", last_error());
    }
}

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

extern "C" fn numbers(vm: *mut pvm_vm_t, id: c_int) -> pvm_host_result_t {
    if id == 1001 {
        let n = NEXT.get() + 100;
        NEXT.set(n);
        // SAFETY: called by the library with the live VM.
        unsafe { pvm_set_register(vm, 7, n) };
    }
    PVM_HOST_CONTINUE
}

fn output(vm: *mut pvm_vm_t) -> String {
    // SAFETY: length query, then a buffer of that length.
    let n = unsafe { pvm_output(vm, null_mut(), 0) };
    let mut out = vec![0u8; n];
    // SAFETY: `out` holds n bytes.
    unsafe { pvm_output(vm, out.as_mut_ptr(), n) };
    String::from_utf8(out).unwrap()
}

#[test]
fn invoke_enters_the_program_again_with_new_arguments() {
    let _s = serial();
    let bytes = guest();
    let vm = create_standard_ex(&bytes, 0, &3u32.to_le_bytes(), PVM_BACKEND_AUTO);
    assert!(!vm.is_null(), "{}", last_error());
    // SAFETY: a live VM throughout; destroyed once at the end.
    unsafe {
        pvm_set_host_callback(vm, Some(numbers));
        NEXT.set(0);
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        assert_eq!(output(vm), "numbers: 100, 200, 300; sum = 600");
        let first_gas = 1_000_000 - pvm_get_gas(vm);

        NEXT.set(0);
        let args = 2u32.to_le_bytes();
        assert_eq!(
            pvm_invoke(vm, 0, args.as_ptr(), args.len(), 1_000_000),
            PVM_RESULT_OK
        );
        assert_eq!(output(vm), "numbers: 100, 200; sum = 300");
        assert!(1_000_000 - pvm_get_gas(vm) < first_gas);
        assert_eq!(
            pvm_get_register(vm, 8),
            28,
            "r8: the output length at the halt"
        );

        // The same arguments again give exactly the same gas as the first run.
        NEXT.set(0);
        let args = 3u32.to_le_bytes();
        assert_eq!(
            pvm_invoke(vm, 0, args.as_ptr(), args.len(), 1_000_000),
            PVM_RESULT_OK
        );
        assert_eq!(1_000_000 - pvm_get_gas(vm), first_gas);

        // NULL arguments with length 0: the guest's default K = 3.
        NEXT.set(0);
        assert_eq!(pvm_invoke(vm, 0, null(), 0, 1_000_000), PVM_RESULT_OK);
        assert_eq!(output(vm), "numbers: 100, 200, 300; sum = 600");

        // Too little gas.
        assert_eq!(pvm_invoke(vm, 0, null(), 0, 1), PVM_RESULT_OOG);
        pvm_destroy(vm);
    }
}

#[test]
fn invoke_errors() {
    let _s = serial();
    // A code blob has no standard layout.
    let vm = crate::tests::create(crate::tests::add_program(), 100);
    // SAFETY: a live VM; destroyed once.
    unsafe {
        assert_eq!(pvm_invoke(vm, 0, null(), 0, 10), PVM_RESULT_ERROR);
        assert!(
            last_error().contains("standard program"),
            "{}",
            last_error()
        );
        pvm_destroy(vm);
        assert_eq!(pvm_invoke(null_mut(), 0, null(), 0, 10), PVM_RESULT_ERROR);
    }
    let bytes = guest();
    let vm = create_standard_ex(&bytes, 0, &[], PVM_BACKEND_AUTO);
    let big = vec![0u8; (1 << 24) + 1];
    // SAFETY: a live VM; destroyed once.
    unsafe {
        pvm_set_gas(vm, 55);
        assert_eq!(
            pvm_invoke(vm, 0, big.as_ptr(), big.len(), 10),
            PVM_RESULT_ERROR
        );
        assert!(last_error().contains("16777216"), "{}", last_error());
        assert_eq!(pvm_get_gas(vm), 55, "unchanged");
        assert_eq!(
            pvm_invoke(vm, 0, null(), 5, 10),
            PVM_RESULT_ERROR,
            "NULL args with a length"
        );
        pvm_destroy(vm);
    }
}

#[test]
fn metadata_accessor() {
    let _s = serial();
    let md = ProgramMetadata {
        format: 0,
        name: "svc".into(),
        version: "0.1.0".into(),
        license: "MIT".into(),
        authors: vec!["A <a@b.c>".into()],
        trailing: 0,
    };
    let m = md.encode();
    let mut a = pvm_core::asm::Assembler::new();
    a.inst(pvm_core::isa::Opcode::Trap, Default::default());
    let bytes = pvm_core::asm::standard_program(Some(&m), &[], &[], 0, 0, &a.finish());
    let vm = create_standard_ex(&bytes, 1, &[], PVM_BACKEND_AUTO);
    assert!(!vm.is_null(), "{}", last_error());
    // SAFETY: a live VM; buffers with their lengths; destroyed once.
    unsafe {
        assert_eq!(pvm_metadata(vm, null_mut(), 0), m.len());
        let mut buf = vec![0u8; m.len() + 4];
        assert_eq!(pvm_metadata(vm, buf.as_mut_ptr(), buf.len()), m.len());
        assert_eq!(&buf[..m.len()], &m[..]);
        let mut short = [0u8; 3];
        assert_eq!(pvm_metadata(vm, short.as_mut_ptr(), 3), m.len());
        assert_eq!(short, m[..3]);
        assert_eq!(ProgramMetadata::parse(&buf[..m.len()]), Some(md));
        pvm_destroy(vm);
        assert_eq!(pvm_metadata(null_mut(), null_mut(), 0), 0);
    }
    let vm = create_standard_ex(&guest(), 0, &[], PVM_BACKEND_AUTO);
    // SAFETY: a live VM; destroyed once.
    unsafe {
        assert_eq!(pvm_metadata(vm, null_mut(), 0), 0, "no metadata");
        pvm_destroy(vm);
    }
}
