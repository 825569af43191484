"""Tests of the libpvm C API through the ctypes wrapper: python3 -m unittest test_pvm (from this
directory) or python3 test_pvm.py. Set PVM_LIB to choose the library."""

import hashlib
import os
import re
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pvm  # noqa: E402
from pvm import VM, assemble  # noqa: E402

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTCALLS_JAM = os.path.join(EXAMPLES, "guests", "hostcalls.jam")


def refine_guest():
    """The refine-style guest of examples/c/refine_guest.h: (program bytes, initial gas, gas left,
    host-call ids)."""
    with open(os.path.join(EXAMPLES, "c", "refine_guest.h")) as f:
        header = f.read()
    array = re.search(r"REFINE_GUEST\[\] = \{([^}]*)\}", header).group(1)
    program = bytes(int(b, 16) for b in array.replace(",", " ").split())

    def define(name):
        return re.search(r"#define %s (\{[^}]*\}|\d+)" % name, header).group(1)
    calls = [int(x) for x in define("REFINE_GUEST_CALLS").strip("{}").split(",")]
    return program, int(define("REFINE_GUEST_GAS")), int(define("REFINE_GUEST_GAS_LEFT")), calls


def preimage(dump):
    """The PVM hash preimage from a pvm_dump_state text."""
    return b"".join(bytes.fromhex(line.split(":", 1)[1].replace(" ", ""))
                    for line in dump.splitlines() if line.strip())


# GP 0.8.0 instructions (opcode numbers from crates/pvm-core/src/isa.rs)
def load_imm(r, imm):
    return bytes([51, r]) + struct.pack("<I", imm & 0xFFFFFFFF)


def ecalli(i):
    return bytes([10, i])


def add_64(d, a, b):
    return bytes([200, a | (b << 4), d])


def load_ind_u8(d, base):
    return bytes([124, d | (base << 4)])


TRAP = bytes([0])
HALT = [load_imm(12, 0xFFFF0000), bytes([50, 12])]  # jump_ind to 0xFFFF0000

ADD = [load_imm(7, 5), load_imm(8, 37), add_64(9, 7, 8)] + HALT
# r7 = 0x20000, r8 = 3, ecalli 1 (pc 12), r9 = mem[r7], halt
HOSTPROG = [load_imm(7, 0x20000), load_imm(8, 3), ecalli(1), load_ind_u8(9, 7)] + HALT


class PvmTest(unittest.TestCase):
    def test_names_and_version(self):
        self.assertEqual([pvm.reg_name(i) for i in (0, 1, 7, 12, 13)],
                         ["ra", "sp", "a0", "a5", "unknown"])
        self.assertEqual(pvm.opcode_name(200), "add_64")
        self.assertEqual(pvm.opcode_name(255), "unknown")
        self.assertRegex(pvm.version(), r"^\d+\.\d+\.\d+")

    def test_halt(self):
        code, mask = assemble(ADD)
        with VM.from_parts(code, mask, gas=1000) as vm:
            self.assertEqual(vm.state, pvm.READY)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.reg(9), 42)
            self.assertEqual(vm.registers[7:10], [5, 37, 42])
            self.assertEqual(vm.state, pvm.HALT)
            self.assertTrue(vm.terminated)
            [(pc, cost)] = vm.block_gas_costs()
            self.assertEqual((pc, vm.gas), (0, 1000 - cost))

    def test_host_callback_reads_and_writes(self):
        code, mask = assemble(HOSTPROG)
        calls = []

        def host(vm, func_id):
            calls.append(func_id)
            self.assertEqual(vm.state, pvm.HOST)
            # re-entering the running VM is refused
            self.assertEqual(vm.execute(0), pvm.RESULT_ERROR)
            self.assertIn("already running", pvm.last_error())
            addr, length = vm.reg(7), vm.reg(8)
            data = vm.read(addr, length)
            self.assertIsNone(vm.try_read(0x900000, 4))      # OOB is a value, not a crash
            self.assertEqual(vm.write(0x900000, b"x"), pvm.OOB)
            vm.write(addr, bytes([sum(data)]))
            vm.set_reg(8, sum(data) * 10)
            vm.gas = vm.gas - 10
            return pvm.HOST_CONTINUE

        with VM.from_parts(code, mask, gas=100000) as vm:
            vm.set_memory_bounds(rw=(0x20000, 0x21000), ro=(0x10000, 0x11000))
            vm.write(0x20000, bytes([1, 2, 3]))
            vm.set_host_callback(host)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(calls, [1])
            self.assertEqual((vm.reg(8), vm.reg(9)), (60, 6))

    def test_terminate_and_resume(self):
        code, mask = assemble(HOSTPROG)
        with VM.from_parts(code, mask, gas=100000) as vm:
            vm.map_pages(0x20000, 4096, pvm.ACCESS_WRITE)
            vm.write(0x20000, b"\x63")
            vm.set_host_callback(lambda vm, i: pvm.HOST_TERMINATE)
            self.assertEqual(vm.execute(0), pvm.RESULT_HOST_CALL)
            self.assertEqual((vm.pc, vm.host_call_id, vm.state), (12, 1, pvm.HOST))
            self.assertEqual(vm.resume(), pvm.RESULT_OK)
            self.assertEqual(vm.reg(9), 0x63)
            # without a callback, and resuming via execute(pc after the ecalli)
            vm.set_host_callback(None)
            self.assertEqual(vm.execute(0), pvm.RESULT_HOST_CALL)
            self.assertEqual(vm.execute(14), pvm.RESULT_OK)

    def test_callback_exception_propagates(self):
        code, mask = assemble(HOSTPROG)
        with VM.from_parts(code, mask, gas=100000) as vm:
            def boom(vm, i):
                raise ValueError("boom")
            vm.set_host_callback(boom)
            with self.assertRaises(ValueError):
                vm.execute(0)
            self.assertEqual(vm.state, pvm.PANIC)

    def test_fault_oog_step(self):
        code, mask = assemble([load_imm(7, 0x30000), load_ind_u8(9, 7)] + HALT)
        with VM.from_parts(code, mask, gas=0) as vm:
            self.assertEqual(vm.execute(0), pvm.RESULT_OOG)
            vm.gas = 1000
            self.assertEqual(vm.resume(), pvm.RESULT_FAULT)
            self.assertEqual(vm.fault_address, 0x30000)
            vm.map_pages(0x30000, 1, pvm.ACCESS_READ)
            self.assertEqual(vm.write(0x30000, b"\x07"), pvm.OOB)
            self.assertEqual(vm.write_unchecked(0x30000, b"\x07"), 0)
            self.assertEqual(vm.resume(), pvm.RESULT_OK)
            self.assertEqual(vm.reg(9), 7)
            vm.pc = 0
            results = []
            while True:
                r = vm.step()
                results.append(r)
                if r != pvm.RESULT_STEPPED:
                    break
            self.assertEqual(results, [pvm.RESULT_STEPPED] * 3 + [pvm.RESULT_OK])

    def test_invalid_inputs(self):
        code, mask = assemble(ADD)
        with self.assertRaisesRegex(pvm.PvmError, "bitmask"):
            VM.from_parts(code, mask + b"\0")
        with self.assertRaisesRegex(pvm.PvmError, "terminator"):
            VM.from_parts(*assemble([load_imm(7, 1)]))
        with self.assertRaises(pvm.PvmError):
            VM.from_blob(b"\xff\xff\x01")
        with self.assertRaises(pvm.PvmError):
            VM.standard(b"\x00" * 5)
        vm = VM.from_parts(code, mask)
        vm.close()
        vm.close()  # idempotent in the wrapper
        # a destroyed handle is detected by the library itself
        raw = VM.from_parts(code, mask)
        handle = raw._vm
        pvm._lib.pvm_destroy(handle)
        pvm._lib.pvm_destroy(handle)
        self.assertIn("not a live", pvm.last_error())
        self.assertEqual(pvm._lib.pvm_execute(handle, 0, 0), pvm.RESULT_ERROR)
        raw._vm = None

    def test_standard_program_output(self):
        blob = bytes([0, 0, 2, 50, 0, 1])  # jump_ind r0 (= 0xFFFF0000): halt
        prog = bytes([2, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]) + b"hi" + struct.pack("<I", len(blob)) \
            + blob
        with VM.standard(prog, args=b"hello", gas=100) as vm:
            self.assertEqual(vm.read(0x10000, 2), b"hi")
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.output(), b"hello")
        with VM.standard(b"\x03abc" + prog, args=b"x", metadata=True, gas=100) as vm:
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.output(), b"x")

    @unittest.skipUnless(os.path.exists(HOSTCALLS_JAM), "examples/guests/hostcalls.jam not built")
    def test_hostcalls_guest(self):
        with open(HOSTCALLS_JAM, "rb") as f:
            program = f.read()
        logs, numbers = [], iter([100, 200, 300])

        def host(vm, func_id):
            if func_id == 100:  # log(r7 = message, r8 = length)
                msg = vm.try_read(vm.reg(7), vm.reg(8))
                logs.append(msg)
                vm.set_reg(7, 0 if msg is not None else pvm.OOB)
            elif func_id == 1001:  # get_number() -> r7
                vm.set_reg(7, next(numbers))
            else:
                vm.set_reg(7, pvm.WHAT)
            return pvm.HOST_CONTINUE

        with VM.standard(program, gas=10**8) as vm:
            vm.set_host_callback(host)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            expected = b"numbers: 100, 200, 300; sum = 600"
            self.assertEqual(vm.output(), expected)
            self.assertEqual(logs, [b"hostcalls: start", expected])
            # K = 2 numbers through the argument data
            numbers = iter([7, 8])
            logs.clear()
        with VM.standard(program, args=struct.pack("<I", 2), gas=10**8) as vm:
            vm.set_host_callback(host)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.output(), b"numbers: 7, 8; sum = 15")


    # ---- inner PVMs ----

    def test_refine_guest_with_builtin_host_calls(self):
        program, gas, gas_left, calls = refine_guest()
        seen = []

        def host(vm, func_id):
            b = vm.handle_builtin_host_call(func_id)
            seen.append((func_id, b))
            if b == pvm.BUILTIN_CONTINUE:
                return pvm.HOST_CONTINUE
            if b != pvm.BUILTIN_NOT_HANDLED:
                return pvm.HOST_OOG if b == pvm.BUILTIN_OOG else pvm.HOST_ERROR
            vm.set_reg(7, pvm.WHAT)
            return pvm.HOST_CONTINUE

        with VM.standard(program, gas=gas) as vm:
            # outside a callback: an error
            self.assertEqual(vm.handle_builtin_host_call(0), pvm.BUILTIN_ERROR)
            self.assertIn("only allowed inside", pvm.last_error())
            vm.set_host_callback(host)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.output(), struct.pack("<Q", 142))
            self.assertEqual(vm.gas, gas_left)
            self.assertEqual(seen, [(i, pvm.BUILTIN_CONTINUE) for i in calls])
            self.assertEqual(vm.inner_machine_count, 0)
        # automatic handling for a non-child, never for a child
        with VM.standard(program, gas=gas) as vm:
            vm.set_builtin_host_calls(True)
            self.assertEqual(vm.execute(0, is_child=True), pvm.RESULT_HOST_CALL)
            self.assertEqual(vm.host_call_id, calls[0])
            vm.gas = gas  # the child run used some
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.output(), struct.pack("<Q", 142))
            self.assertEqual(vm.gas, gas_left)

    # ---- tracing ----

    def test_hash_matches_blake2b_of_the_dump(self):
        program, gas, _, _ = refine_guest()
        with VM.standard(program, gas=gas) as vm:
            vm.set_builtin_host_calls(True)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            dump = vm.dump_state()
            self.assertTrue(dump.startswith("regs+gas: "))
            self.assertEqual(vm.hash(), hashlib.blake2b(preimage(dump), digest_size=32).digest())
            before = vm.hash()
            vm.set_reg(3, 1)
            self.assertNotEqual(vm.hash(), before)

    def test_trace_lines(self):
        code, mask = assemble(ADD)
        lines = []
        with VM.from_parts(code, mask, gas=1000) as vm:
            vm.set_tracing(True, sink=lines.append, hash_every=1)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual(vm.reg(9), 42)
        self.assertEqual(len(lines), 5)
        self.assertRegex(lines[0], r'^1: PC 0 LOAD_IMM g=\d+ pvmHash=0x[0-9a-f]{64} reg="\[0 0 0 0 0 0 0 5 ')
        self.assertRegex(lines[2], r"^3: PC 12 ADD_64 ")
        self.assertRegex(lines[4], r"^EXIT halt pc=\d+ g=\d+ pvmHash=0x[0-9a-f]{64} steps=5$")

    # ---- JIP-6 ----

    def _record_hello(self):
        """A standard program: log(ro "hello", 5) as host call 100, get_number (1001), halt."""
        # code: load_imm r7, 0x10000; load_imm r8, 5; ecalli 100; ecalli 1001;
        #       add_imm_64 r9, r7, 1; jump_ind r0 (halt)
        code = bytes([51, 7, 0, 0, 1, 51, 8, 5, 10, 100, 10, 0xe9, 0x03, 149, 0x79, 1, 50, 0])
        _, mask = assemble([code[0:5], code[5:8], code[8:10], code[10:13], code[13:16],
                            code[16:18]])
        blob = bytes([0, 0, len(code)]) + code + mask
        # E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|p|) p
        prog = struct.pack("<I", 5)[:3] + bytes(3) + bytes(2) + struct.pack("<I", 4096)[:3] \
            + b"hello" + struct.pack("<I", len(blob)) + blob
        msgs = []

        def host(vm, func_id):
            if func_id == 100:
                msgs.append(vm.read(vm.reg(7), vm.reg(8)))
                vm.set_reg(7, 0)
            else:
                vm.set_reg(7, 100)
                vm.gas = vm.gas - 10
            return pvm.HOST_CONTINUE

        with VM.standard(prog, gas=10000) as vm:
            vm.set_jip6_recording(True)
            vm.set_host_callback(host)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            self.assertEqual((msgs, vm.reg(9)), ([b"hello"], 101))
            return vm.jip6_log()

    def test_jip6_round_trip(self):
        log = self._record_hello()
        self.assertIn("memread 0x00010000 len=5 -> 0x68656c6c6f", log)
        self.assertIn("setreg r07 <- 0x64", log)
        code, report = pvm.jip6_replay(log)
        self.assertEqual(code, 0, report)
        self.assertIn("2 host calls", report)
        # a register changed in the second ecalli line
        bad = re.sub(r"(ecalli=1001 .* r08=0x)5", r"\g<1>6", log)
        self.assertNotEqual(bad, log)
        code, report = pvm.jip6_replay(bad)
        self.assertEqual(code, 1)
        self.assertIn("ecalli #2", report)
        self.assertEqual(pvm.jip6_replay("garbage")[0], -1)

    @unittest.skipUnless(os.path.exists(HOSTCALLS_JAM), "examples/guests/hostcalls.jam not built")
    def test_jip6_hostcalls_guest(self):
        with open(HOSTCALLS_JAM, "rb") as f:
            program = f.read()
        numbers = iter([100, 200, 300])

        def host(vm, func_id):
            if func_id == 100:
                vm.read(vm.reg(7), vm.reg(8))
                vm.set_reg(7, 0)
            else:
                vm.set_reg(7, next(numbers))
            return pvm.HOST_CONTINUE

        with VM.standard(program, gas=10**8) as vm:
            vm.set_jip6_recording(True)
            vm.set_host_callback(host)
            self.assertEqual(vm.execute(0), pvm.RESULT_OK)
            log = vm.jip6_log()
        self.assertEqual(log.count("\necalli="), 5)
        self.assertEqual(pvm.jip6_replay(log)[0], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
