// Command pvmgo runs a PVM program through libpvm from Go:
//
//	cargo build --release -p pvm-capi
//	cd examples/go && go run . [program.jam]
//
// With a standard program (default: ../guests/hostcalls.jam if it exists) it answers the host
// calls of examples/guests/hostcalls.c (100 = log, 1001 = get_number) and prints the output;
// otherwise it runs a tiny hand-assembled program.
package main

import (
	"fmt"
	"os"

	"libpvm.example/pvmgo/pvm"
)

func main() {
	path := "../guests/hostcalls.jam"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	fmt.Println("libpvm", pvm.Version())
	program, err := os.ReadFile(path)
	if err != nil {
		runTiny()
		return
	}
	vm, err := pvm.Standard(program, nil, false, pvm.Spec080, 100_000_000)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer vm.Close()
	n := uint64(0)
	vm.SetHostHandler(func(vm *pvm.VM, id uint32) pvm.HostResult {
		switch id {
		case 100: // log(r7 = message, r8 = length)
			msg, err := vm.Read(uint32(vm.Reg(7)), int(vm.Reg(8)))
			if err != nil {
				vm.SetReg(7, pvm.OOB)
				break
			}
			fmt.Printf("guest log: %s\n", msg)
			vm.SetReg(7, 0)
		case 1001: // get_number() -> r7
			n += 100
			vm.SetReg(7, n)
		default:
			vm.SetReg(7, pvm.WHAT)
		}
		return pvm.HostContinue
	})
	r := vm.Execute(0)
	fmt.Printf("result %v, output %q, gas left %d\n", r, vm.Output(), vm.Gas())
	if r != pvm.ResultOK {
		os.Exit(1)
	}
}

// runTiny runs: r7 = 5, r8 = 37, r9 = r7 + r8, halt.
func runTiny() {
	code := []byte{
		51, 7, 5, 0, 0, 0, // load_imm r7, 5
		51, 8, 37, 0, 0, 0, // load_imm r8, 37
		200, 7 | 8<<4, 9, // add_64 r9 = r7 + r8
		51, 12, 0, 0, 0xff, 0xff, // load_imm r12, 0xFFFF0000
		50, 12, // jump_ind r12: halt
	}
	mask := []byte{0x41, 0x90, 0x20} // instruction starts 0, 6, 12, 15, 21
	vm, err := pvm.New(code, mask, nil, nil, 1000, pvm.Spec080)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer vm.Close()
	r := vm.Execute(0)
	fmt.Printf("result %v, r9 = %d\n", r, vm.Reg(9))
	if r != pvm.ResultOK {
		os.Exit(1)
	}
}
