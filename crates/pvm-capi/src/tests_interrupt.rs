//! `pvm_interrupt` from another thread stops a run of an endless loop with
//! `PVM_RESULT_INTERRUPTED`, which `pvm_resume` continues.

use std::time::Duration;

use crate::tests::{create, serial};
use crate::*;

#[test]
fn pvm_interrupt_stops_an_endless_loop_from_another_thread() {
    let _serial = serial();
    // `jump` to itself (offset 0) at pc 0: an endless loop of one-instruction blocks.
    let vm = create(vec![vec![40]], 1 << 62);
    let addr = vm as usize;
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: any pointer value is accepted; this one is live until the main thread destroys
        // it after joining this thread.
        unsafe { pvm_interrupt(addr as *mut pvm_vm_t) }
    });
    // SAFETY: `vm` is live throughout and destroyed once at the end.
    unsafe {
        assert_eq!(pvm_execute(vm, 0, 0), PVM_RESULT_INTERRUPTED);
        assert_eq!(t.join().unwrap(), 0);
        assert_eq!(pvm_get_pc(vm), 0);
        assert_eq!(pvm_is_terminated(vm), 0);
        let gas = pvm_get_gas(vm);
        assert!(gas < 1 << 62);
        // Resumable: with little gas it now runs out.
        pvm_set_gas(vm, 100);
        assert_eq!(pvm_resume(vm), PVM_RESULT_OOG);
        pvm_destroy(vm);
        // A destroyed (or never created) VM is rejected.
        assert_eq!(pvm_interrupt(vm), -1);
        assert_eq!(pvm_interrupt(std::ptr::null_mut()), -1);
    }
}
