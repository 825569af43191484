// Package pvm is a small cgo wrapper around libpvm's C API (include/pvm.h).
//
// Build libpvm first (cargo build --release -p pvm-capi). The package links
// <repo>/target/release/libpvm.so; with another target directory, set
// CGO_LDFLAGS="-L$DIR -Wl,-rpath,$DIR" (environment flags come first).
//
// A VM must be used from one goroutine at a time. Host handlers run synchronously on the goroutine
// that runs the VM; a Go panic inside a handler ends the run (the handler answers
// PVM_HOST_ERROR, so the run panics) and is re-raised by the method that ran the VM.
package pvm

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -L${SRCDIR}/../../../target/release -Wl,-rpath,${SRCDIR}/../../../target/release -lpvm
#include <stdlib.h>
#include "pvm.h"

// Implemented in Go (callback.go).
extern pvm_host_result_t goPvmHostCallback(pvm_vm_t* vm, int func_id);

static void pvm_go_set_callback(pvm_vm_t* vm, int enabled) {
    pvm_set_host_callback(vm, enabled ? goPvmHostCallback : NULL);
}
*/
import "C"

import (
	"errors"
	"runtime"
	"sync"
	"unsafe"
)

// Result is pvm_result_t.
type Result int

// Results of Execute, Resume and Step.
const (
	ResultOK       Result = C.PVM_RESULT_OK
	ResultOOG      Result = C.PVM_RESULT_OOG
	ResultPanic    Result = C.PVM_RESULT_PANIC
	ResultHostCall Result = C.PVM_RESULT_HOST_CALL
	ResultError    Result = C.PVM_RESULT_ERROR
	ResultFault    Result = C.PVM_RESULT_FAULT
	ResultStepped  Result = C.PVM_RESULT_STEPPED
)

func (r Result) String() string {
	switch r {
	case ResultOK:
		return "OK"
	case ResultOOG:
		return "OOG"
	case ResultPanic:
		return "PANIC"
	case ResultHostCall:
		return "HOST_CALL"
	case ResultError:
		return "ERROR"
	case ResultFault:
		return "FAULT"
	case ResultStepped:
		return "STEPPED"
	}
	return "unknown"
}

// HostResult is pvm_host_result_t.
type HostResult int

// Answers of a host handler.
const (
	HostContinue  HostResult = C.PVM_HOST_CONTINUE
	HostTerminate HostResult = C.PVM_HOST_TERMINATE
	HostError     HostResult = C.PVM_HOST_ERROR
)

// Machine states.
const (
	StateHalt  = C.PVM_HALT
	StatePanic = C.PVM_PANIC
	StateFault = C.PVM_FAULT
	StateHost  = C.PVM_HOST
	StateOOG   = C.PVM_OOG
	StateReady = C.PVM_READY
)

// Specs, page access and host result codes.
const (
	Spec080     = C.PVM_SPEC_0_8_0
	Spec072     = C.PVM_SPEC_0_7_2
	AccessNone  = C.PVM_ACCESS_NONE
	AccessRead  = C.PVM_ACCESS_READ
	AccessWrite = C.PVM_ACCESS_WRITE
	NONE        = uint64(C.PVM_NONE)
	WHAT        = uint64(C.PVM_WHAT)
	OOB         = uint64(C.PVM_OOB)
	RegSize     = C.PVM_REG_SIZE
)

// ErrOOB is returned by memory accesses to inaccessible memory.
var ErrOOB = errors.New("pvm: memory not accessible (OOB)")

// HostHandler answers an ecalli. It may use every VM method except Execute/Resume/Step on the
// same VM (those return ResultError).
type HostHandler func(vm *VM, funcID uint32) HostResult

// VM owns one pvm_vm_t.
type VM struct {
	ptr      *C.pvm_vm_t
	handler  HostHandler
	panicked interface{}
}

var (
	registryMu sync.Mutex
	registry   = map[uintptr]*VM{}
)

func lookup(ptr *C.pvm_vm_t) *VM {
	registryMu.Lock()
	defer registryMu.Unlock()
	return registry[uintptr(unsafe.Pointer(ptr))]
}

// LastError is pvm_last_error() of the calling OS thread. A goroutine may move between threads
// between two cgo calls, so the wrappers below lock the thread around a call and its LastError.
func LastError() string {
	if p := C.pvm_last_error(); p != nil {
		return C.GoString(p)
	}
	return ""
}

// Version is pvm_version().
func Version() string { return C.GoString(C.pvm_version()) }

// RegName is reg_name().
func RegName(i int) string { return C.GoString(C.reg_name(C.int(i))) }

// OpcodeName is get_opcode_name().
func OpcodeName(op uint8) string { return C.GoString(C.get_opcode_name(C.uint8_t(op))) }

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

func wrap(ptr *C.pvm_vm_t) (*VM, error) {
	if ptr == nil {
		return nil, errors.New("pvm: " + LastError())
	}
	vm := &VM{ptr: ptr}
	registryMu.Lock()
	registry[uintptr(unsafe.Pointer(ptr))] = vm
	registryMu.Unlock()
	return vm, nil
}

// New is pvm_create_ex: instruction bytes, packed or unpacked bitmask, jump table, optional
// initial registers.
func New(code, bitmask []byte, jumpTable []uint32, regs *[13]uint64, gas uint64, spec int) (*VM, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var jt *C.uint32_t
	if len(jumpTable) > 0 {
		jt = (*C.uint32_t)(unsafe.Pointer(&jumpTable[0]))
	}
	var r *C.uint64_t
	if regs != nil {
		r = (*C.uint64_t)(unsafe.Pointer(&regs[0]))
	}
	// NULL code is rejected by the library; pass a valid pointer for an empty slice.
	var empty [1]byte
	c := bytesPtr(code)
	if c == nil {
		c = (*C.uint8_t)(unsafe.Pointer(&empty[0]))
	}
	return wrap(C.pvm_create_ex(0, c, C.size_t(len(code)), r, bytesPtr(bitmask),
		C.size_t(len(bitmask)), jt, C.size_t(len(jumpTable)), C.uint64_t(gas), C.int(spec)))
}

// FromBlob is pvm_create_from_blob.
func FromBlob(blob []byte, spec int, gas uint64) (*VM, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return wrap(C.pvm_create_from_blob(bytesPtr(blob), C.size_t(len(blob)), C.int(spec), C.uint64_t(gas)))
}

// Standard is pvm_create_standard.
func Standard(program, args []byte, metadata bool, spec int, gas uint64) (*VM, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m := 0
	if metadata {
		m = 1
	}
	return wrap(C.pvm_create_standard(bytesPtr(program), C.size_t(len(program)), C.int(m),
		bytesPtr(args), C.size_t(len(args)), C.int(spec), C.uint64_t(gas)))
}

// Close destroys the VM (idempotent).
func (vm *VM) Close() {
	if vm.ptr == nil {
		return
	}
	registryMu.Lock()
	delete(registry, uintptr(unsafe.Pointer(vm.ptr)))
	registryMu.Unlock()
	C.pvm_destroy(vm.ptr)
	vm.ptr = nil
}

func (vm *VM) finish(r C.pvm_result_t) Result {
	if p := vm.panicked; p != nil {
		vm.panicked = nil
		panic(p)
	}
	return Result(r)
}

// Execute is pvm_execute(vm, entry, 0).
func (vm *VM) Execute(entry uint32) Result {
	return vm.finish(C.pvm_execute(vm.ptr, C.uint32_t(entry), 0))
}

// Resume is pvm_resume.
func (vm *VM) Resume() Result { return vm.finish(C.pvm_resume(vm.ptr)) }

// Step is pvm_step.
func (vm *VM) Step() Result { return vm.finish(C.pvm_step(vm.ptr)) }

// SetHostHandler installs (or, with nil, removes) the host handler.
func (vm *VM) SetHostHandler(h HostHandler) {
	vm.handler = h
	enabled := 0
	if h != nil {
		enabled = 1
	}
	C.pvm_go_set_callback(vm.ptr, C.int(enabled))
}

// Gas is pvm_get_gas.
func (vm *VM) Gas() uint64 { return uint64(C.pvm_get_gas(vm.ptr)) }

// SetGas is pvm_set_gas.
func (vm *VM) SetGas(g uint64) { C.pvm_set_gas(vm.ptr, C.uint64_t(g)) }

// PC is pvm_get_pc.
func (vm *VM) PC() uint32 { return uint32(C.pvm_get_pc(vm.ptr)) }

// SetPC is pvm_set_pc.
func (vm *VM) SetPC(pc uint32) { C.pvm_set_pc(vm.ptr, C.uint32_t(pc)) }

// State is pvm_get_machine_state.
func (vm *VM) State() int { return int(C.pvm_get_machine_state(vm.ptr)) }

// FaultAddress is pvm_get_fault_address.
func (vm *VM) FaultAddress() uint32 { return uint32(C.pvm_get_fault_address(vm.ptr)) }

// HostCallID is pvm_get_host_call_id.
func (vm *VM) HostCallID() uint32 { return uint32(C.pvm_get_host_call_id(vm.ptr)) }

// Reg is pvm_get_register.
func (vm *VM) Reg(i int) uint64 { return uint64(C.pvm_get_register(vm.ptr, C.int(i))) }

// SetReg is pvm_set_register.
func (vm *VM) SetReg(i int, v uint64) { C.pvm_set_register(vm.ptr, C.int(i), C.uint64_t(v)) }

// Registers copies the 13 registers through pvm_get_registers' live view.
func (vm *VM) Registers() (regs [13]uint64) {
	p := C.pvm_get_registers(vm.ptr)
	if p == nil {
		return
	}
	view := (*[13]C.uint64_t)(unsafe.Pointer(p))
	for i := range regs {
		regs[i] = uint64(view[i])
	}
	return
}

// MapPages is pvm_map_pages.
func (vm *VM) MapPages(addr uint32, length uint64, access int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if C.pvm_map_pages(vm.ptr, C.uint32_t(addr), C.uint64_t(length), C.int(access)) != 0 {
		return errors.New("pvm: " + LastError())
	}
	return nil
}

// SetMemoryBounds is pvm_set_memory_bounds (each range [start, end)).
func (vm *VM) SetMemoryBounds(rw, ro, output, stack [2]uint32) {
	C.pvm_set_memory_bounds(vm.ptr, C.uint32_t(rw[0]), C.uint32_t(rw[1]), C.uint32_t(ro[0]),
		C.uint32_t(ro[1]), C.uint32_t(output[0]), C.uint32_t(output[1]), C.uint32_t(stack[0]),
		C.uint32_t(stack[1]))
}

// Read is pvm_read_ram_bytes: ErrOOB if any byte is not readable.
func (vm *VM) Read(addr uint32, n int) ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, n)
	var code C.int
	C.pvm_read_ram_bytes(vm.ptr, C.uint32_t(addr), bytesPtr(buf), C.size_t(n), &code)
	switch code {
	case C.PVM_MEM_OK:
		return buf, nil
	case C.PVM_MEM_OOB:
		return nil, ErrOOB
	}
	return nil, errors.New("pvm: " + LastError())
}

// Write is pvm_write_ram_bytes: ErrOOB if any byte is not writable.
func (vm *VM) Write(addr uint32, data []byte) error {
	if C.pvm_write_ram_bytes(vm.ptr, C.uint32_t(addr), bytesPtr(data), C.size_t(len(data))) != 0 {
		return ErrOOB
	}
	return nil
}

// WriteUnchecked is pvm_write_ram_unchecked.
func (vm *VM) WriteUnchecked(addr uint32, data []byte) error {
	if C.pvm_write_ram_unchecked(vm.ptr, C.uint32_t(addr), bytesPtr(data), C.size_t(len(data))) != 0 {
		return ErrOOB
	}
	return nil
}

// Output is pvm_output: the Psi_M result after a halt.
func (vm *VM) Output() []byte {
	n := int(C.pvm_output(vm.ptr, nil, 0))
	buf := make([]byte, n)
	C.pvm_output(vm.ptr, bytesPtr(buf), C.size_t(n))
	return buf
}

// ---- inner PVMs: the PVM-level host calls ----

// Codes of HandleBuiltinHostCall.
const (
	BuiltinError      = int(C.PVM_BUILTIN_ERROR)
	BuiltinNotHandled = int(C.PVM_BUILTIN_NOT_HANDLED)
	BuiltinContinue   = int(C.PVM_BUILTIN_CONTINUE)
	BuiltinPanic      = int(C.PVM_BUILTIN_PANIC)
	BuiltinOOG        = int(C.PVM_BUILTIN_OOG)
)

// HandleBuiltinHostCall is pvm_handle_builtin_host_call: inside the host handler, performs host
// call id if it is a PVM-level one (gas, machine, peek, poke, pages, invoke, expunge, ...).
func (vm *VM) HandleBuiltinHostCall(id uint32) int {
	return int(C.pvm_handle_builtin_host_call(vm.ptr, C.int(int32(id))))
}

// SetBuiltinHostCalls is pvm_set_builtin_host_calls.
func (vm *VM) SetBuiltinHostCalls(enabled bool) {
	e := 0
	if enabled {
		e = 1
	}
	C.pvm_set_builtin_host_calls(vm.ptr, C.int(e))
}

// InnerMachineCount is pvm_inner_machine_count.
func (vm *VM) InnerMachineCount() int { return int(C.pvm_inner_machine_count(vm.ptr)) }

// ---- tracing and JIP-6 ----

// Hash is pvm_hash: the PVM hash v1 of the current state.
func (vm *VM) Hash() (h [32]byte, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out [32]C.uint8_t
	if C.pvm_hash(vm.ptr, &out[0]) != 0 {
		return h, errors.New("pvm: " + LastError())
	}
	for i := range out {
		h[i] = byte(out[i])
	}
	return h, nil
}

// text calls an snprintf-style function twice: to size, then to fill.
func text(fill func(buf *C.char, n C.size_t) C.size_t) (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := fill(nil, 0)
	if n == 0 {
		return "", errors.New("pvm: " + LastError())
	}
	buf := (*C.char)(C.malloc(n + 1))
	defer C.free(unsafe.Pointer(buf))
	fill(buf, n+1)
	return C.GoStringN(buf, C.int(n)), nil
}

// DumpState is pvm_dump_state: the hash preimage as text.
func (vm *VM) DumpState() (string, error) {
	return text(func(buf *C.char, n C.size_t) C.size_t { return C.pvm_dump_state(vm.ptr, buf, n) })
}

// SetJip6Recording is pvm_set_jip6_recording.
func (vm *VM) SetJip6Recording(on bool) {
	e := 0
	if on {
		e = 1
	}
	C.pvm_set_jip6_recording(vm.ptr, C.int(e))
}

// Jip6Log is pvm_jip6_log: the recorded JIP-6 log as text.
func (vm *VM) Jip6Log() (string, error) {
	return text(func(buf *C.char, n C.size_t) C.size_t { return C.pvm_jip6_log(vm.ptr, buf, n) })
}

// Jip6Replay is pvm_jip6_replay: 0 (clean), 1 (divergence) or -1 (malformed), and the report.
func Jip6Replay(log string, spec int, verify bool) (int, string) {
	clog := C.CString(log)
	defer C.free(unsafe.Pointer(clog))
	v := 0
	if verify {
		v = 1
	}
	report := (*C.char)(C.malloc(1024))
	defer C.free(unsafe.Pointer(report))
	code := C.pvm_jip6_replay(clog, C.size_t(len(log)), C.int(spec), C.int(v), report, 1024)
	return int(code), C.GoString(report)
}
