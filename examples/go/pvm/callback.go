package pvm

// This file holds the exported trampoline; cgo allows only declarations in its preamble.

/*
#include "pvm.h"
*/
import "C"

//export goPvmHostCallback
func goPvmHostCallback(ptr *C.pvm_vm_t, funcID C.int) (answer C.pvm_host_result_t) {
	vm := lookup(ptr)
	if vm == nil || vm.handler == nil {
		return C.PVM_HOST_ERROR
	}
	// A Go panic must not unwind through the C frames of libpvm: record it, end the run with a
	// host error, and re-raise it when the run returns (VM.finish).
	defer func() {
		if p := recover(); p != nil {
			vm.panicked = p
			answer = C.PVM_HOST_ERROR
		}
	}()
	return C.pvm_host_result_t(vm.handler(vm, uint32(C.pvm_get_host_call_id(ptr))))
}
