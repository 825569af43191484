package pvm

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// GP 0.8.0 instructions (opcode numbers from crates/pvm-core/src/isa.rs).
func loadImm(r byte, imm uint32) []byte {
	b := []byte{51, r, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[2:], imm)
	return b
}
func ecalli(id byte) []byte         { return []byte{10, id} }
func add64(d, a, b byte) []byte     { return []byte{200, a | b<<4, d} }
func loadIndU8(d, base byte) []byte { return []byte{124, d | base<<4} }

var halt = [][]byte{loadImm(12, 0xFFFF0000), {50, 12}}

// assemble concatenates instructions into code and a packed bitmask.
func assemble(instrs ...[]byte) (code, mask []byte) {
	var starts []int
	for _, in := range instrs {
		starts = append(starts, len(code))
		code = append(code, in...)
	}
	mask = make([]byte, (len(code)+7)/8)
	for _, s := range starts {
		mask[s/8] |= 1 << (s % 8)
	}
	return
}

func hostProgram() (code, mask []byte) {
	// r7 = 0x20000, r8 = 3, ecalli 1 (pc 12), r9 = mem[r7], halt
	return assemble(append([][]byte{loadImm(7, 0x20000), loadImm(8, 3), ecalli(1), loadIndU8(9, 7)}, halt...)...)
}

func TestNames(t *testing.T) {
	if RegName(0) != "ra" || RegName(12) != "a5" || RegName(13) != "unknown" {
		t.Fatal("reg_name")
	}
	if OpcodeName(200) != "add_64" || OpcodeName(255) != "unknown" {
		t.Fatal("get_opcode_name")
	}
	if Version() == "" {
		t.Fatal("version")
	}
}

func TestHalt(t *testing.T) {
	code, mask := assemble(append([][]byte{loadImm(7, 5), loadImm(8, 37), add64(9, 7, 8)}, halt...)...)
	vm, err := New(code, mask, nil, nil, 1000, Spec080)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if r := vm.Execute(0); r != ResultOK {
		t.Fatalf("result %v", r)
	}
	if regs := vm.Registers(); regs[9] != 42 || vm.State() != StateHalt || vm.Gas() >= 1000 {
		t.Fatalf("regs %v state %d gas %d", regs, vm.State(), vm.Gas())
	}
}

func TestHostHandler(t *testing.T) {
	code, mask := hostProgram()
	vm, err := New(code, mask, nil, nil, 100000, Spec080)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	vm.SetMemoryBounds([2]uint32{0x20000, 0x21000}, [2]uint32{0x10000, 0x11000}, [2]uint32{}, [2]uint32{})
	if err := vm.Write(0x20000, []byte{4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	vm.SetHostHandler(func(vm *VM, id uint32) HostResult {
		calls++
		if id != 1 || vm.State() != StateHost {
			t.Errorf("id %d state %d", id, vm.State())
		}
		if r := vm.Execute(0); r != ResultError {
			t.Errorf("re-entry gave %v", r)
		}
		data, err := vm.Read(uint32(vm.Reg(7)), int(vm.Reg(8)))
		if err != nil {
			return HostError
		}
		if _, err := vm.Read(0x900000, 4); err != ErrOOB {
			t.Errorf("expected ErrOOB, got %v", err)
		}
		if err := vm.Write(0x10000, []byte{1}); err != ErrOOB {
			t.Errorf("write to read-only memory: %v", err)
		}
		sum := uint64(0)
		for _, b := range data {
			sum += uint64(b)
		}
		_ = vm.Write(uint32(vm.Reg(7)), []byte{byte(sum)})
		vm.SetReg(8, sum*10)
		return HostContinue
	})
	if r := vm.Execute(0); r != ResultOK {
		t.Fatalf("result %v: %s", r, LastError())
	}
	if calls != 1 || vm.Reg(8) != 150 || vm.Reg(9) != 15 {
		t.Fatalf("calls %d r8 %d r9 %d", calls, vm.Reg(8), vm.Reg(9))
	}
}

func TestTerminateResumeAndPanicPropagation(t *testing.T) {
	code, mask := hostProgram()
	vm, err := New(code, mask, nil, nil, 100000, Spec080)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.MapPages(0x20000, 4096, AccessWrite); err != nil {
		t.Fatal(err)
	}
	_ = vm.Write(0x20000, []byte{9})
	vm.SetHostHandler(func(*VM, uint32) HostResult { return HostTerminate })
	if r := vm.Execute(0); r != ResultHostCall || vm.PC() != 12 || vm.HostCallID() != 1 {
		t.Fatalf("result %v pc %d", r, vm.PC())
	}
	if r := vm.Resume(); r != ResultOK || vm.Reg(9) != 9 {
		t.Fatalf("resume %v r9 %d", r, vm.Reg(9))
	}
	vm.SetHostHandler(func(*VM, uint32) HostResult { panic("boom") })
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v", p)
			}
		}()
		vm.Execute(0)
	}()
	if vm.State() != StatePanic {
		t.Fatalf("state %d", vm.State())
	}
}

func TestFaultAndInvalidInput(t *testing.T) {
	code, mask := assemble(append([][]byte{loadImm(7, 0x30000), loadIndU8(9, 7)}, halt...)...)
	vm, err := New(code, mask, nil, nil, 1000, Spec080)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if r := vm.Execute(0); r != ResultFault || vm.FaultAddress() != 0x30000 {
		t.Fatalf("result %v fault %#x", r, vm.FaultAddress())
	}
	_ = vm.MapPages(0x30000, 1, AccessRead)
	_ = vm.WriteUnchecked(0x30000, []byte{0x42})
	if r := vm.Resume(); r != ResultOK || vm.Reg(9) != 0x42 {
		t.Fatalf("resume %v", r)
	}
	if _, err := New(code, mask[:0], nil, nil, 0, Spec080); err == nil || !strings.Contains(err.Error(), "bitmask") {
		t.Fatalf("expected a bitmask error, got %v", err)
	}
	if _, err := FromBlob([]byte{0xff, 1}, Spec080, 0); err == nil {
		t.Fatal("invalid blob accepted")
	}
}

func TestHostcallsGuest(t *testing.T) {
	program, err := os.ReadFile(filepath.Join("..", "..", "guests", "hostcalls.jam"))
	if err != nil {
		t.Skip("examples/guests/hostcalls.jam not built")
	}
	vm, err := Standard(program, nil, false, Spec080, 100000000)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	var logs []string
	next := uint64(0)
	vm.SetHostHandler(func(vm *VM, id uint32) HostResult {
		switch id {
		case 100:
			msg, err := vm.Read(uint32(vm.Reg(7)), int(vm.Reg(8)))
			if err != nil {
				vm.SetReg(7, OOB)
				return HostContinue
			}
			logs = append(logs, string(msg))
			vm.SetReg(7, 0)
		case 1001:
			next += 100
			vm.SetReg(7, next)
		default:
			vm.SetReg(7, WHAT)
		}
		return HostContinue
	})
	if r := vm.Execute(0); r != ResultOK {
		t.Fatalf("result %v", r)
	}
	want := []byte("numbers: 100, 200, 300; sum = 600")
	if out := vm.Output(); !bytes.Equal(out, want) {
		t.Fatalf("output %q", out)
	}
	if len(logs) != 2 || logs[0] != "hostcalls: start" {
		t.Fatalf("logs %q", logs)
	}
}

// refineGuest parses examples/c/refine_guest.h: the program, its gas and the gas left.
func refineGuest(t *testing.T) (program []byte, gas, gasLeft uint64) {
	src, err := os.ReadFile(filepath.Join("..", "..", "c", "refine_guest.h"))
	if err != nil {
		t.Fatal(err)
	}
	header := string(src)
	start := strings.Index(header, "REFINE_GUEST[] = {") + len("REFINE_GUEST[] = {")
	end := start + strings.Index(header[start:], "}")
	for _, tok := range strings.Split(header[start:end], ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		v, err := strconv.ParseUint(tok, 0, 8)
		if err != nil {
			t.Fatal(err)
		}
		program = append(program, byte(v))
	}
	define := func(name string) uint64 {
		i := strings.Index(header, "#define "+name+" ") + len("#define "+name+" ")
		digits := strings.TrimRight(strings.Fields(header[i:])[0], "u")
		v, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return program, define("REFINE_GUEST_GAS"), define("REFINE_GUEST_GAS_LEFT")
}

func TestInnerPvmsHashAndJip6(t *testing.T) {
	program, gas, gasLeft := refineGuest(t)
	vm, err := Standard(program, nil, false, Spec080, gas)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	vm.SetJip6Recording(true)
	vm.SetHostHandler(func(vm *VM, id uint32) HostResult {
		switch vm.HandleBuiltinHostCall(id) {
		case BuiltinContinue:
			return HostContinue
		case BuiltinNotHandled:
			vm.SetReg(7, WHAT)
			return HostContinue
		default:
			return HostError
		}
	})
	if r := vm.Execute(0); r != ResultOK {
		t.Fatalf("result %v", r)
	}
	if out := vm.Output(); binary.LittleEndian.Uint64(out) != 142 || vm.Gas() != gasLeft {
		t.Fatalf("output %v, gas %d (want 142, %d)", out, vm.Gas(), gasLeft)
	}
	if vm.InnerMachineCount() != 0 {
		t.Fatal("machine not expunged")
	}
	h, err := vm.Hash()
	if err != nil {
		t.Fatal(err)
	}
	dump, err := vm.DumpState()
	if err != nil || !strings.HasPrefix(dump, "regs+gas: ") || h == [32]byte{} {
		t.Fatalf("dump %q, hash %x, %v", dump[:20], h, err)
	}
	log, err := vm.Jip6Log()
	if err != nil {
		t.Fatal(err)
	}
	if code, report := Jip6Replay(log, Spec080, true); code != 0 {
		t.Fatalf("replay: %d %s", code, report)
	}
	if code, _ := Jip6Replay("garbage", Spec080, true); code != -1 {
		t.Fatal("garbage log accepted")
	}
}
