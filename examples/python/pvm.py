"""pvm.py - a small ctypes wrapper around libpvm's C API (include/pvm.h).

The library is found through $PVM_LIB (a path to libpvm.so), else
$CARGO_TARGET_DIR/release/libpvm.so, else <repo>/target/release/libpvm.so.

    from pvm import VM, HOST_CONTINUE
    vm = VM.from_parts(code, bitmask, gas=1000)
    vm.set_host_callback(lambda vm, func_id: HOST_CONTINUE)
    result = vm.execute(0)

A VM must be used from one thread at a time. Host callbacks run synchronously inside
execute/resume/step; an exception raised by a callback ends the run (the callback answers
PVM_HOST_ERROR, so the run panics) and is re-raised by the method that ran the VM.

Inner PVMs: inside a callback, vm.handle_builtin_host_call(func_id) performs the PVM-level host
calls (gas, machine, peek, poke, pages, invoke, expunge, ...) and returns a BUILTIN_* code; or
vm.set_builtin_host_calls(True) lets a non-child run perform them itself. Tracing: vm.hash(),
vm.dump_state(), vm.set_tracing(True, sink=lambda line: ...). JIP-6: vm.set_jip6_recording(True),
vm.jip6_log(), jip6_replay(text).
"""

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_int, c_size_t, c_uint8, c_uint32, c_uint64,
                    c_void_p)

# pvm_result_t
RESULT_OK, RESULT_OOG, RESULT_PANIC, RESULT_HOST_CALL, RESULT_ERROR, RESULT_FAULT, \
    RESULT_STEPPED = range(7)
RESULT_NAMES = {RESULT_OK: "OK", RESULT_OOG: "OOG", RESULT_PANIC: "PANIC",
                RESULT_HOST_CALL: "HOST_CALL", RESULT_ERROR: "ERROR", RESULT_FAULT: "FAULT",
                RESULT_STEPPED: "STEPPED"}
# pvm_host_result_t
HOST_CONTINUE, HOST_TERMINATE, HOST_ERROR, HOST_OOG = range(4)
# machine states
HALT, PANIC, FAULT, HOST, OOG, READY = range(6)
# specs, page access, *error_code values
SPEC_0_8_0, SPEC_0_7_2 = 0, 1
ACCESS_NONE, ACCESS_READ, ACCESS_WRITE = 0, 1, 2
MEM_OK, MEM_OOB, MEM_ERROR = 0, 1, 2
# host result codes (GP B.1)
NONE, WHAT, OOB, WHO, FULL, CORE, CASH, LOW, HUH = (2**64 - i for i in range(1, 10))
REG_SIZE = 13
# pvm_handle_builtin_host_call
BUILTIN_ERROR, BUILTIN_NOT_HANDLED, BUILTIN_CONTINUE, BUILTIN_PANIC, BUILTIN_OOG = range(-1, 4)

CALLBACK = CFUNCTYPE(c_int, c_void_p, c_int)
TRACE_SINK = CFUNCTYPE(None, c_void_p, c_char_p)


def _library_path():
    if os.environ.get("PVM_LIB"):
        return os.environ["PVM_LIB"]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    return os.path.join(target, "release", "libpvm.so")


_lib = ctypes.CDLL(_library_path())

_SIGNATURES = {
    "pvm_create": (c_void_p, [c_uint32, c_void_p, c_size_t, c_void_p, c_void_p, c_size_t,
                              c_void_p, c_size_t, c_uint64]),
    "pvm_create_ex": (c_void_p, [c_uint32, c_void_p, c_size_t, c_void_p, c_void_p, c_size_t,
                                 c_void_p, c_size_t, c_uint64, c_int]),
    "pvm_create_from_blob": (c_void_p, [c_void_p, c_size_t, c_int, c_uint64]),
    "pvm_create_standard": (c_void_p, [c_void_p, c_size_t, c_int, c_void_p, c_size_t, c_int,
                                       c_uint64]),
    "pvm_destroy": (None, [c_void_p]),
    "pvm_execute": (c_int, [c_void_p, c_uint32, c_uint32]),
    "pvm_resume": (c_int, [c_void_p]),
    "pvm_step": (c_int, [c_void_p]),
    "pvm_set_host_callback": (None, [c_void_p, CALLBACK]),
    "pvm_get_gas": (c_uint64, [c_void_p]),
    "pvm_set_gas": (None, [c_void_p, c_uint64]),
    "pvm_get_machine_state": (c_uint8, [c_void_p]),
    "pvm_get_result_code": (c_int, [c_void_p]),
    "pvm_is_terminated": (c_int, [c_void_p]),
    "pvm_set_register": (None, [c_void_p, c_int, c_uint64]),
    "pvm_get_register": (c_uint64, [c_void_p, c_int]),
    "pvm_get_registers": (POINTER(c_uint64), [c_void_p]),
    "pvm_get_pc": (c_uint32, [c_void_p]),
    "pvm_set_pc": (None, [c_void_p, c_uint32]),
    "pvm_get_fault_address": (c_uint32, [c_void_p]),
    "pvm_get_host_call_id": (c_uint32, [c_void_p]),
    "pvm_map_pages": (c_int, [c_void_p, c_uint32, c_uint64, c_int]),
    "pvm_unmap_pages": (c_int, [c_void_p, c_uint32, c_uint64]),
    "pvm_set_memory_bounds": (None, [c_void_p] + [c_uint32] * 8),
    "pvm_read_ram_bytes": (c_uint64, [c_void_p, c_uint32, c_void_p, c_size_t, POINTER(c_int)]),
    "pvm_write_ram_bytes": (c_uint64, [c_void_p, c_uint32, c_void_p, c_size_t]),
    "pvm_read_ram_bytes_64": (c_uint64, [c_void_p, c_uint32, POINTER(c_int)]),
    "pvm_write_ram_bytes_64": (c_uint64, [c_void_p, c_uint32, c_uint64]),
    "pvm_write_ram_unchecked": (c_uint64, [c_void_p, c_uint32, c_void_p, c_size_t]),
    "pvm_output": (c_size_t, [c_void_p, c_void_p, c_size_t]),
    "pvm_block_gas_costs": (c_size_t, [c_void_p, POINTER(c_uint32), POINTER(c_uint32),
                                       c_size_t]),
    "pvm_handle_builtin_host_call": (c_int, [c_void_p, c_int]),
    "pvm_set_builtin_host_calls": (None, [c_void_p, c_int]),
    "pvm_inner_machine_count": (c_int, [c_void_p]),
    "pvm_is_child": (c_int, [c_void_p]),
    "pvm_hash": (c_int, [c_void_p, c_void_p]),
    "pvm_dump_state": (c_size_t, [c_void_p, c_void_p, c_size_t]),
    "pvm_set_tracing": (None, [c_void_p, c_int]),
    "pvm_set_trace_sink": (None, [c_void_p, TRACE_SINK, c_void_p]),
    "pvm_set_trace_hash_interval": (None, [c_void_p, c_uint64]),
    "pvm_set_jip6_recording": (None, [c_void_p, c_int]),
    "pvm_jip6_log": (c_size_t, [c_void_p, c_void_p, c_size_t]),
    "pvm_jip6_replay": (c_int, [c_char_p, c_size_t, c_int, c_int, c_void_p, c_size_t]),
    "pvm_last_error": (c_char_p, []),
    "pvm_clear_error": (None, []),
    "pvm_version": (c_char_p, []),
    "reg_name": (c_char_p, [c_int]),
    "get_opcode_name": (c_char_p, [c_uint8]),
}
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(_lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes


class PvmError(Exception):
    """An error reported by libpvm (the message comes from pvm_last_error)."""


def last_error():
    msg = _lib.pvm_last_error()
    return msg.decode() if msg else None


def version():
    return _lib.pvm_version().decode()


def reg_name(index):
    return _lib.reg_name(index).decode()


def opcode_name(opcode):
    return _lib.get_opcode_name(opcode).decode()


def jip6_replay(text, spec=SPEC_0_8_0, verify=True):
    """pvm_jip6_replay: (0 | 1 | -1, report) - replayed cleanly, divergence, malformed."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    report = ctypes.create_string_buffer(1024)
    code = _lib.pvm_jip6_replay(data, len(data), spec, int(verify), report, len(report))
    return code, report.value.decode()


def _text(fn):
    """Calls an snprintf-style fn(buf, len) twice: to size, then to fill."""
    n = fn(None, 0)
    if n == 0:
        raise PvmError(last_error())
    buf = ctypes.create_string_buffer(n + 1)
    fn(buf, n + 1)
    return buf.value.decode()


def _buffer(data):
    data = bytes(data)
    return (ctypes.c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0"), len(data)


def _checked(handle):
    if not handle:
        raise PvmError(last_error())
    return handle


class VM:
    """One PVM instance (owns a pvm_vm_t*)."""

    def __init__(self, handle):
        self._vm = handle
        self._callback = None      # keeps the ctypes trampoline alive
        self._sink = None          # keeps the trace-sink trampoline alive
        self._pending = None       # exception raised inside a callback

    # ---- construction ----

    @classmethod
    def from_parts(cls, code, bitmask, jump_table=(), regs=None, gas=0, spec=SPEC_0_8_0,
                   service_index=0):
        """pvm_create_ex: code bytes, packed or unpacked bitmask, jump table, registers."""
        code_buf, code_len = _buffer(code)
        mask_buf, mask_len = _buffer(bitmask)
        jt = (c_uint32 * max(len(jump_table), 1))(*jump_table)
        regs_buf = (c_uint64 * 13)(*regs) if regs is not None else None
        return cls(_checked(_lib.pvm_create_ex(service_index, code_buf, code_len, regs_buf,
                                               mask_buf, mask_len, jt, len(jump_table), gas,
                                               spec)))

    @classmethod
    def from_blob(cls, blob, gas=0, spec=SPEC_0_8_0):
        buf, n = _buffer(blob)
        return cls(_checked(_lib.pvm_create_from_blob(buf, n, spec, gas)))

    @classmethod
    def standard(cls, program, args=b"", metadata=False, gas=0, spec=SPEC_0_8_0):
        buf, n = _buffer(program)
        abuf, alen = _buffer(args)
        return cls(_checked(_lib.pvm_create_standard(buf, n, int(metadata), abuf, alen, spec,
                                                     gas)))

    def close(self):
        if self._vm:
            _lib.pvm_destroy(self._vm)
            self._vm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    # ---- running ----

    def _run(self, result):
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending
        return result

    def execute(self, entry_point=0, is_child=False):
        return self._run(_lib.pvm_execute(self._vm, entry_point, int(is_child)))

    def resume(self):
        return self._run(_lib.pvm_resume(self._vm))

    def step(self):
        return self._run(_lib.pvm_step(self._vm))

    def set_host_callback(self, fn):
        """fn(vm: VM, func_id: int) -> HOST_CONTINUE | HOST_TERMINATE | HOST_ERROR (None means
        continue). Pass None to remove the callback."""
        if fn is None:
            self._callback = None
            _lib.pvm_set_host_callback(self._vm, CALLBACK())
            return

        def trampoline(_raw_vm, func_id):
            try:
                answer = fn(self, func_id)
                return HOST_CONTINUE if answer is None else int(answer)
            except BaseException as e:  # noqa: BLE001 - re-raised after the run
                self._pending = e
                return HOST_ERROR

        self._callback = CALLBACK(trampoline)
        _lib.pvm_set_host_callback(self._vm, self._callback)

    # ---- inner PVMs ----

    def handle_builtin_host_call(self, func_id):
        """Inside the host callback: performs a PVM-level host call; a BUILTIN_* code."""
        return _lib.pvm_handle_builtin_host_call(self._vm, func_id)

    def set_builtin_host_calls(self, enabled):
        _lib.pvm_set_builtin_host_calls(self._vm, int(enabled))

    @property
    def inner_machine_count(self):
        return _lib.pvm_inner_machine_count(self._vm)

    @property
    def is_child(self):
        return bool(_lib.pvm_is_child(self._vm))

    # ---- tracing and JIP-6 ----

    def hash(self):
        """PVM hash v1 of the current state (32 bytes)."""
        out = (c_uint8 * 32)()
        if _lib.pvm_hash(self._vm, out) != 0:
            raise PvmError(last_error())
        return bytes(out)

    def dump_state(self):
        """The hash preimage as text (pvm_dump_state)."""
        return _text(lambda buf, n: _lib.pvm_dump_state(self._vm, buf, n))

    def set_tracing(self, enabled, sink=None, hash_every=0):
        """Traces runs: sink(line) gets each trace line (None: stderr); pvmHash every
        hash_every steps (0: never)."""
        if sink is None:
            self._sink = None
            _lib.pvm_set_trace_sink(self._vm, TRACE_SINK(), None)
        else:
            self._sink = TRACE_SINK(lambda _user, line: sink(line.decode()))
            _lib.pvm_set_trace_sink(self._vm, self._sink, None)
        _lib.pvm_set_trace_hash_interval(self._vm, hash_every)
        _lib.pvm_set_tracing(self._vm, int(enabled))

    def set_jip6_recording(self, enabled):
        _lib.pvm_set_jip6_recording(self._vm, int(enabled))

    def jip6_log(self):
        """The JIP-6 log as text."""
        return _text(lambda buf, n: _lib.pvm_jip6_log(self._vm, buf, n))

    # ---- state ----

    @property
    def gas(self):
        return _lib.pvm_get_gas(self._vm)

    @gas.setter
    def gas(self, value):
        _lib.pvm_set_gas(self._vm, value)

    @property
    def pc(self):
        return _lib.pvm_get_pc(self._vm)

    @pc.setter
    def pc(self, value):
        _lib.pvm_set_pc(self._vm, value)

    @property
    def state(self):
        return _lib.pvm_get_machine_state(self._vm)

    @property
    def result_code(self):
        return _lib.pvm_get_result_code(self._vm)

    @property
    def terminated(self):
        return bool(_lib.pvm_is_terminated(self._vm))

    @property
    def fault_address(self):
        return _lib.pvm_get_fault_address(self._vm)

    @property
    def host_call_id(self):
        return _lib.pvm_get_host_call_id(self._vm)

    def reg(self, index):
        return _lib.pvm_get_register(self._vm, index)

    def set_reg(self, index, value):
        _lib.pvm_set_register(self._vm, index, value & (2**64 - 1))

    @property
    def registers(self):
        """A copy of the 13 registers (read through pvm_get_registers' live view)."""
        view = _lib.pvm_get_registers(self._vm)
        if not view:
            raise PvmError(last_error())
        return [view[i] for i in range(REG_SIZE)]

    # ---- memory ----

    def map_pages(self, addr, length, access=ACCESS_WRITE):
        if _lib.pvm_map_pages(self._vm, addr, length, access) != 0:
            raise PvmError(last_error())

    def unmap_pages(self, addr, length):
        if _lib.pvm_unmap_pages(self._vm, addr, length) != 0:
            raise PvmError(last_error())

    def set_memory_bounds(self, rw=(0, 0), ro=(0, 0), output=(0, 0), stack=(0, 0)):
        _lib.pvm_set_memory_bounds(self._vm, *rw, *ro, *output, *stack)

    def read(self, addr, length):
        """Guest-view read; raises PvmError if any byte is not readable."""
        buf = (c_uint8 * max(length, 1))()
        err = c_int(-1)
        if _lib.pvm_read_ram_bytes(self._vm, addr, buf, length, ctypes.byref(err)) != 0:
            raise PvmError(last_error())
        return bytes(buf[:length])

    def try_read(self, addr, length):
        """Guest-view read; None if the memory is not readable (for host calls answering OOB)."""
        buf = (c_uint8 * max(length, 1))()
        err = c_int(-1)
        _lib.pvm_read_ram_bytes(self._vm, addr, buf, length, ctypes.byref(err))
        return bytes(buf[:length]) if err.value == MEM_OK else None

    def write(self, addr, data):
        """Guest-view write; returns 0 or OOB (nothing written)."""
        buf, n = _buffer(data)
        return _lib.pvm_write_ram_bytes(self._vm, addr, buf, n)

    def write_unchecked(self, addr, data):
        buf, n = _buffer(data)
        return _lib.pvm_write_ram_unchecked(self._vm, addr, buf, n)

    def read_u64(self, addr):
        err = c_int(-1)
        value = _lib.pvm_read_ram_bytes_64(self._vm, addr, ctypes.byref(err))
        return value if err.value == MEM_OK else None

    def write_u64(self, addr, value):
        return _lib.pvm_write_ram_bytes_64(self._vm, addr, value)

    # ---- program information ----

    def output(self):
        n = _lib.pvm_output(self._vm, None, 0)
        buf = (c_uint8 * max(n, 1))()
        _lib.pvm_output(self._vm, buf, n)
        return bytes(buf[:n])

    def block_gas_costs(self):
        n = _lib.pvm_block_gas_costs(self._vm, None, None, 0)
        pcs, costs = (c_uint32 * max(n, 1))(), (c_uint32 * max(n, 1))()
        _lib.pvm_block_gas_costs(self._vm, pcs, costs, n)
        return list(zip(pcs[:n], costs[:n]))


def assemble(instructions):
    """Concatenates instructions (byte sequences starting with their opcode) into (code, packed
    bitmask)."""
    code, starts = bytearray(), []
    for ins in instructions:
        starts.append(len(code))
        code += bytes(ins)
    mask = bytearray((len(code) + 7) // 8)
    for s in starts:
        mask[s // 8] |= 1 << (s % 8)
    return bytes(code), bytes(mask)
