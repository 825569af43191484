/*
 * pvm.h - the C API of libpvm, a JAM PVM (Gray Paper appendix A) library.
 *
 * Link with -lpvm (libpvm.so or libpvm.a; see docs/C-API.md, or `pkg-config --cflags --libs pvm`).
 * This header is hand-maintained and must match crates/pvm-capi.
 *
 * The API follows the community proposal "PVM FFI-able library for JAM Implementers" (the
 * proposal's functions keep their exact signatures) plus `pvm_`-prefixed extensions, marked
 * [ext] below. docs/C-API.md describes the semantics and the differences from the proposal.
 *
 * Conventions
 *  - pvm_vm_t is opaque. Every function validates its pvm_vm_t* against a registry of live VMs:
 *    NULL, destroyed (including a second pvm_destroy) and foreign pointers are errors, not
 *    undefined behaviour (unless the address was reused by a newer VM).
 *  - Failures are reported by the return value (NULL, PVM_RESULT_ERROR, PVM_OOB, -1, 0, ...)
 *    and a message from pvm_last_error() on the calling thread. Successful calls do not clear it.
 *  - Threads: a VM must only be used by one thread at a time (it is not internally locked).
 *    Different VMs may run in parallel on different threads.
 *  - Host callbacks run synchronously on the thread that runs the VM. Inside a callback every
 *    function of this header may be used on the same VM except running it again:
 *    pvm_execute / pvm_resume / pvm_step on that VM return PVM_RESULT_ERROR. pvm_destroy of that VM
 *    is allowed: the VM becomes invalid at once and is freed when the run returns (with
 *    PVM_RESULT_ERROR).
 *  - No Rust panic ever crosses this boundary; an internal error becomes an error return with
 *    an "internal error" message in pvm_last_error, and nothing is printed on stderr.
 *  - Address ranges [addr, addr + len) must end at or below 2^32 (GP addresses are 32-bit): a
 *    range past 2^32 is an argument error (computed without overflow), never wrapped to 0.
 */
#ifndef PVM_H
#define PVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Constants                                                                                   */
/* ------------------------------------------------------------------------------------------ */

#define PVM_REG_SIZE 13              /* number of registers */
#define PVM_Z_P 4096u                /* Z_P: page size */
#define PVM_Z_A 2u                   /* Z_A: dynamic jump alignment */
#define PVM_Z_Q 65536u               /* Z_Q: 2^16 */
#define PVM_Z_I 16777216u            /* Z_I: 2^24, maximum argument data size */
#define PVM_Z_Z 65536u               /* Z_Z: 2^16, standard-program zone size */

/* Host-call result codes (GP B.1), written to a register by host functions. */
#define PVM_NONE UINT64_C(0xFFFFFFFFFFFFFFFF) /* 2^64 - 1 */
#define PVM_WHAT UINT64_C(0xFFFFFFFFFFFFFFFE) /* 2^64 - 2 */
#define PVM_OOB  UINT64_C(0xFFFFFFFFFFFFFFFD) /* 2^64 - 3 */
#define PVM_WHO  UINT64_C(0xFFFFFFFFFFFFFFFC) /* 2^64 - 4 */
#define PVM_FULL UINT64_C(0xFFFFFFFFFFFFFFFB) /* 2^64 - 5 */
#define PVM_CORE UINT64_C(0xFFFFFFFFFFFFFFFA) /* 2^64 - 6 */
#define PVM_CASH UINT64_C(0xFFFFFFFFFFFFFFF9) /* 2^64 - 7 */
#define PVM_LOW  UINT64_C(0xFFFFFFFFFFFFFFF8) /* 2^64 - 8 */
#define PVM_HUH  UINT64_C(0xFFFFFFFFFFFFFFF7) /* 2^64 - 9 */

/* Machine states (pvm_get_machine_state): the exit of the last run. */
#define PVM_HALT 0
#define PVM_PANIC 1
#define PVM_FAULT 2
#define PVM_HOST 3
#define PVM_OOG 4
#define PVM_READY 5 /* [ext] not stopped at an exit: new, after pvm_step, or after pvm_set_pc */

/* The proposal's unprefixed names. They are short and may clash with other code: define
 * PVM_NO_SHORT_NAMES before including this header to get only the PVM_-prefixed ones. */
#ifndef PVM_NO_SHORT_NAMES
#define REG_SIZE PVM_REG_SIZE
#define Z_P PVM_Z_P
#define Z_A PVM_Z_A
#define Z_Q PVM_Z_Q
#define Z_I PVM_Z_I
#define Z_Z PVM_Z_Z
#define NONE PVM_NONE
#define WHAT PVM_WHAT
#define OOB PVM_OOB
#define WHO PVM_WHO
#define FULL PVM_FULL
#define CORE PVM_CORE
#define CASH PVM_CASH
#define LOW PVM_LOW
#define HUH PVM_HUH
#define HALT PVM_HALT
#define PANIC PVM_PANIC
#define FAULT PVM_FAULT
#define HOST PVM_HOST
#define OOG PVM_OOG
#endif

/* [ext] Gray Paper version whose PVM rules a VM follows (fixed at creation). */
#define PVM_SPEC_0_8_0 0 /* default: prevalidated code, block gas (A.9), no sbrk */
#define PVM_SPEC_0_7_2 1 /* sbrk, invalid opcodes trap, one gas per instruction */

/* [ext] Execution backend of a VM's program (pvm_create_*_ex, pvm_get_backend). The backend
 * changes speed, never results. AUTO: the recompiler where supported (x86-64 Unix), else the
 * interpreter; the environment variable LIBPVM_BACKEND (interpreter | recompiler | auto)
 * overrides AUTO. Every constructor without a backend argument uses AUTO. */
#define PVM_BACKEND_AUTO 0
#define PVM_BACKEND_INTERPRETER 1
#define PVM_BACKEND_RECOMPILER 2 /* creation fails (NULL, pvm_last_error) where unsupported */

/* [ext] Page access for pvm_map_pages / pvm_get_page_access. WRITE implies READ. */
#define PVM_ACCESS_NONE 0
#define PVM_ACCESS_READ 1
#define PVM_ACCESS_WRITE 2

/* [ext] Values stored in *error_code by the read functions. */
#define PVM_MEM_OK 0    /* success */
#define PVM_MEM_OOB 1   /* memory not accessible: a host function should answer OOB */
#define PVM_MEM_ERROR 2 /* invalid handle or arguments (see pvm_last_error) */

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct pvm_vm pvm_vm_t; /* opaque */

/* Result of pvm_execute / pvm_resume / pvm_step. */
typedef enum {
    PVM_RESULT_OK = 0,        /* halted (jump to 0xFFFF0000) */
    PVM_RESULT_OOG = 1,       /* out of gas; gas unchanged, pc at the block (GP 0.8.0) or the
                                 instruction (GP 0.7.2) that could not start */
    PVM_RESULT_PANIC = 2,     /* trap, invalid jump, access below 0x10000, or host ERROR */
    PVM_RESULT_HOST_CALL = 3, /* stopped at an ecalli (no callback, or callback TERMINATE) */
    PVM_RESULT_ERROR = 4,     /* API misuse / invalid handle / re-entrancy; VM state unchanged */
    PVM_RESULT_FAULT = 5,     /* page fault, address: pvm_get_fault_address */
    PVM_RESULT_STEPPED = 6,   /* [ext] pvm_step only: one instruction done, machine can continue */
    PVM_RESULT_INTERRUPTED = 7 /* [ext] pvm_interrupt was called: stopped at a block start, nothing
                                  of it charged; pvm_resume continues exactly there */
} pvm_result_t;

/* What a host callback decides. */
typedef enum {
    PVM_HOST_CONTINUE = 0,  /* continue at the instruction after the ecalli */
    PVM_HOST_TERMINATE = 1, /* stop: the run returns PVM_RESULT_HOST_CALL, pc at the ecalli;
                               pvm_resume continues after the ecalli */
    PVM_HOST_ERROR = 2,     /* the run ends with PVM_RESULT_PANIC (any unknown value too) */
    PVM_HOST_OOG = 3        /* [ext] the host call ran out of gas: PVM_RESULT_OOG, pc at the
                               ecalli (a resume re-executes the host call) */
} pvm_host_result_t;

/* Called synchronously on each ecalli. func_id is the ecalli immediate as int (use
 * pvm_get_host_call_id for the full unsigned 32-bit value). Arguments and results are exchanged
 * through registers and memory with the accessors below. */
typedef pvm_host_result_t (*pvm_host_callback_t)(pvm_vm_t* vm, int func_id);

/* [ext] Receives one trace line (NUL-terminated, no trailing newline), valid during the call.
 * `user` is the pointer given to pvm_set_trace_sink. */
typedef void (*pvm_trace_sink_t)(void* user, const char* line);

/* ------------------------------------------------------------------------------------------ */
/* Creation                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Creates a VM from instruction bytes `code`, opcode `bitmask` and dynamic `jump_table`
 * (GP 0.8.0 rules). The bitmask is packed (LSB first, bitmask_len == ceil(code_len / 8)) or
 * unpacked (one 0/1 byte per code byte, bitmask_len == code_len). initial_regs: NULL (all zero)
 * or 13 values. jump_table may be NULL if jump_table_len is 0. Memory starts empty: map it with
 * pvm_set_memory_bounds or pvm_map_pages. Returns NULL on invalid input (NULL code/bitmask, bad
 * bitmask length, code failing GP 0.8.0 prevalidation, ...); see pvm_last_error. */
pvm_vm_t* pvm_create(uint32_t service_index, const uint8_t* code, size_t code_len,
                     const uint64_t* initial_regs, const uint8_t* bitmask, size_t bitmask_len,
                     const uint32_t* jump_table, size_t jump_table_len, uint64_t initial_gas);

/* [ext] pvm_create with a spec (PVM_SPEC_0_8_0 or PVM_SPEC_0_7_2). */
pvm_vm_t* pvm_create_ex(uint32_t service_index, const uint8_t* code, size_t code_len,
                        const uint64_t* initial_regs, const uint8_t* bitmask, size_t bitmask_len,
                        const uint32_t* jump_table, size_t jump_table_len, uint64_t initial_gas,
                        int spec);

/* [ext] Creates a VM from a generic program blob E(|j|) E1(z) E(|c|) E_z(j) c k (GP A.1).
 * Registers zero, memory empty. NULL on invalid input. */
pvm_vm_t* pvm_create_from_blob(const uint8_t* bytes, size_t len, int spec, uint64_t initial_gas);

/* [ext] Creates a VM from a GP A.7 standard program E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|p|) p,
 * preceded by the JAM service-blob metadata E(|m|) m if has_metadata != 0, with argument data
 * `args` (at most Z_I bytes; may be NULL if args_len is 0). Memory and registers are laid out as
 * GP A.7 says (r0 = 0xFFFF0000, r1 = stack top, r7 = args address, r8 = args length); start it
 * with pvm_execute(vm, entry_pc, 0). NULL on invalid input. */
pvm_vm_t* pvm_create_standard(const uint8_t* bytes, size_t len, int has_metadata,
                              const uint8_t* args, size_t args_len, int spec,
                              uint64_t initial_gas);

/* [ext] pvm_create_from_blob / pvm_create_standard on a chosen backend (PVM_BACKEND_*). NULL on
 * invalid input, an unknown backend value, PVM_BACKEND_RECOMPILER where it is not supported, or
 * (AUTO) an invalid LIBPVM_BACKEND; pvm_last_error says which. */
pvm_vm_t* pvm_create_from_blob_ex(const uint8_t* bytes, size_t len, int spec, uint64_t initial_gas,
                                  int backend);
pvm_vm_t* pvm_create_standard_ex(const uint8_t* bytes, size_t len, int has_metadata,
                                 const uint8_t* args, size_t args_len, int spec,
                                 uint64_t initial_gas, int backend);
/* [ext] The backend running vm's program: PVM_BACKEND_INTERPRETER or PVM_BACKEND_RECOMPILER
 * (never AUTO); -1 on error. */
int pvm_get_backend(pvm_vm_t* vm);
/* [ext] 1 if PVM_BACKEND_RECOMPILER can be used on this machine, else 0. */
int pvm_recompiler_supported(void);
/* [ext] The metadata m of a JAM service blob (pvm_create_standard with has_metadata): copies
 * min(len, |m|) bytes into buf and returns |m|; buf may be NULL (length query). 0 without
 * metadata or on error. JIP-6 ("Program metadata") defines its content as a format byte 0 then
 * the length-prefixed UTF-8 strings name, version, licence and a length-prefixed list of
 * authors; `pvm info FILE` prints the fields. */
size_t pvm_metadata(pvm_vm_t* vm, uint8_t* buf, size_t len);

/* Destroys a VM. NULL is ignored; a second destroy of the same pointer is detected and reported
 * through pvm_last_error. Inside the VM's own host callback: see "Conventions". */
void pvm_destroy(pvm_vm_t* vm);

/* ------------------------------------------------------------------------------------------ */
/* Running                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Runs from entry_point until halt, panic, out-of-gas, page fault, or a host call that is not
 * continued, calling the host callback (if set) on each ecalli.
 * If entry_point is the VM's current resume point (the pc after an ecalli the VM stopped at, the
 * faulting instruction, the block that ran out of gas, or the pc after pvm_step / pvm_set_pc) and
 * the VM has not halted or panicked, the run continues from the current state without resetting
 * anything, exactly like pvm_resume. Otherwise it starts at entry_point with the gas-charged flag
 * cleared (the first block is charged). Registers, memory and gas are never reset.
 * is_child is recorded (pvm_is_child) for future inner-PVM support; it changes nothing yet.
 * Returns PVM_RESULT_ERROR (state unchanged) when called on a VM from inside its own callback. */
pvm_result_t pvm_execute(pvm_vm_t* vm, uint32_t entry_point, uint32_t is_child);

/* [ext] Continues without resetting anything: after PVM_RESULT_HOST_CALL at the instruction
 * after the ecalli (set result registers first), after PVM_RESULT_FAULT at the faulting
 * instruction (map the page first), after PVM_RESULT_OOG at the block that could not start (add
 * gas first), after pvm_step / pvm_set_pc at the current pc. PVM_RESULT_ERROR after a halt or
 * panic (use pvm_execute or pvm_set_pc to start again) or inside the VM's own callback. */
pvm_result_t pvm_resume(pvm_vm_t* vm);
/* [ext] A new invocation of a standard program (GP A.7 / A.8 Psi_M): sets r0 = 0xFFFF0000 (the
 * halt address), r1 = the stack top, r7 = the argument address, r8 = args_len and the other
 * registers to 0; unmaps the argument zone and maps ceil(args_len / 4096) read-only pages there
 * holding args; sets pc, gas (saturating at 2^63 - 1) and clears the gas-charged flag; then runs
 * as pvm_execute(vm, pc, 0) does (host callback, built-in host calls, tracing; a JIP-7 recording
 * starts a new log with the new arguments). The rest of memory is kept from the previous
 * invocation (create a new VM for a fresh one). args may be NULL if args_len is 0 (at most Z_I
 * bytes). PVM_RESULT_ERROR (pvm_last_error) if vm has no standard layout (created from code or a
 * code blob), args is too long, or inside vm's own host callback; the VM is unchanged then. */
pvm_result_t pvm_invoke(pvm_vm_t* vm, uint32_t pc, const uint8_t* args, size_t args_len,
                        uint64_t gas);

/* [ext] Asks a running VM to stop, from any thread (the one exception to "a VM is used by one
 * thread at a time"): the run on the VM's own thread returns PVM_RESULT_INTERRUPTED at a
 * basic-block boundary (interpreter: the next one; recompiler: within 2^20 gas, about a
 * millisecond); if the VM is not running, its next run does. The request is consumed by that
 * result. Returns 0, or -1 if vm is not a live VM. Safe
 * to call concurrently with pvm_destroy of the same VM (then -1 or a no-op). */
int pvm_interrupt(pvm_vm_t *vm);

/* [ext] Executes one instruction (an ecalli includes its callback; CONTINUE moves past it).
 * PVM_RESULT_STEPPED if the machine can continue, otherwise the exit as for pvm_execute.
 * PVM_RESULT_ERROR after a halt or panic, or inside the VM's own callback. */
pvm_result_t pvm_step(pvm_vm_t* vm);

/* Installs the host callback (NULL removes it; without a callback a run stops with
 * PVM_RESULT_HOST_CALL at each ecalli). */
void pvm_set_host_callback(pvm_vm_t* vm, pvm_host_callback_t cb);

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                       */
/* ------------------------------------------------------------------------------------------ */

uint64_t pvm_get_gas(pvm_vm_t* vm);                 /* remaining gas (0 if negative) */
void pvm_set_gas(pvm_vm_t* vm, uint64_t gas);       /* [ext] saturates at 2^63 - 1 */
uint8_t pvm_get_machine_state(pvm_vm_t* vm);        /* PVM_HALT..PVM_OOG, or PVM_READY; READY
                                                       also for an invalid handle */
int pvm_get_result_code(pvm_vm_t* vm);              /* last pvm_result_t of a run, -1 before */
int pvm_is_terminated(pvm_vm_t* vm);                /* 1 after halt, panic or out-of-gas */

/* Registers: index 0..12. Out-of-range indices are ignored / return 0 (pvm_last_error). */
void pvm_set_register(pvm_vm_t* vm, int index, uint64_t value);
uint64_t pvm_get_register(pvm_vm_t* vm, int index);
/* Direct, read-only view of the 13 registers (NULL on error). It shows pvm_set_register writes
 * and run results; it is valid until the next call that runs the VM (pvm_execute, pvm_resume,
 * pvm_step) or destroys it - fetch it again after those. Do not write through it. */
const uint64_t* pvm_get_registers(pvm_vm_t* vm);
/* [ext] Copies the 13 registers into out[13]. 0 on success, -1 on error. */
int pvm_get_registers_copy(pvm_vm_t* vm, uint64_t* out);

/* [ext] Instruction counter. After PVM_RESULT_HOST_CALL it is the ecalli's pc; after a fault the
 * faulting instruction's; after out-of-gas the first pc of the block that could not start. */
uint32_t pvm_get_pc(pvm_vm_t* vm);
/* [ext] Sets the pc, cancels a pending continuation after a host call, clears the gas-charged
 * flag (the block at pc is charged on entry) and sets the state to PVM_READY. */
void pvm_set_pc(pvm_vm_t* vm, uint32_t pc);

/* [ext] The gas-charged flag (GP 0.8.0 A.4): 1 if the current block has been paid for. */
int pvm_get_gas_charged(pvm_vm_t* vm);
void pvm_set_gas_charged(pvm_vm_t* vm, int charged);

/* [ext] Instructions executed since creation (or the last pvm_set_instruction_count), the same
 * for pvm_execute, pvm_step and either backend (GP 0.8.0 gas is not an instruction count). Each
 * execution of an instruction counts once, including the one that exits (trap, ecalli, the
 * halting jump, a faulting load/store - retried, it counts again); an instruction that does not
 * start (out of gas, interrupted, a GP 0.8.0 non-instruction pc) does not. pvm_invoke keeps
 * counting. 0 on error. */
uint64_t pvm_get_instruction_count(pvm_vm_t* vm);
void pvm_set_instruction_count(pvm_vm_t* vm, uint64_t count); /* [ext] */

/* Heap end used by GP 0.7.2 sbrk (no effect on GP 0.8.0 programs). */
void pvm_set_heap_pointer(pvm_vm_t* vm, uint32_t addr);
uint32_t pvm_get_heap_pointer(pvm_vm_t* vm); /* [ext] */

uint32_t pvm_get_fault_address(pvm_vm_t* vm);  /* page address of the last page fault */
uint32_t pvm_get_host_call_id(pvm_vm_t* vm);   /* [ext] id of the last ecalli reached */
int pvm_get_spec(pvm_vm_t* vm);                /* [ext] PVM_SPEC_*, -1 on error */
uint32_t pvm_get_service_index(pvm_vm_t* vm); /* [ext] as given to pvm_create, else 0 */
int pvm_is_child(pvm_vm_t* vm);                /* [ext] is_child of the last pvm_execute (0/1) */

/* Logging: when enabled, one line per exit and per host call on stderr. */
void pvm_set_logging(pvm_vm_t* vm, int enabled);
int pvm_get_logging(pvm_vm_t* vm); /* [ext] */
/* Tracing: when enabled, pvm_execute / pvm_resume / pvm_step execute one instruction at a time
 * (with tracing off the normal, faster run path is used) and send lines to the trace sink
 * (pvm_set_trace_sink; stderr by default):
 *   - per executed instruction that does not end the run (the format of `pvm trace`):
 *       <step>: PC <pc> <NAME> g=<gas after> [pvmHash=0x<64 hex>] reg="[r0 ... r12]"
 *     the hash is included every N-th step (pvm_set_trace_hash_interval; default 0 = never);
 *   - after a host call that continues:  ECALLI <id> g=<gas> [pvmHash=0x... if N > 0]
 *   - when the run returns:  EXIT halt|panic|oog|fault=0x<page>|host=<id> pc=<pc> g=<gas>
 *       pvmHash=0x<64 hex> steps=<step>
 * Step numbers start at 1 when tracing is enabled and whenever pvm_execute starts a new run (not
 * a continuation), and continue across pvm_resume / pvm_step. Enabling resets the numbering. */
void pvm_set_tracing(pvm_vm_t* vm, int enabled);
int pvm_get_tracing(pvm_vm_t* vm); /* [ext] */
/* [ext] Where trace lines go: sink(user, line) on the thread that runs the VM; NULL = stderr.
 * The sink may call the accessors of this header on the VM (not run it; pvm_destroy is deferred
 * like in a host callback). */
void pvm_set_trace_sink(pvm_vm_t* vm, pvm_trace_sink_t sink, void* user);
/* [ext] Include pvmHash in every n-th instruction line (0 = never, the default). Hashing digests
 * every non-zero readable page, so hashing every step (n = 1) is slow for large memories. */
void pvm_set_trace_hash_interval(pvm_vm_t* vm, uint64_t n);

/* [ext] PVM hash v1 of the current state: blake2b-256 of E8(r0) .. E8(r12) E8(gas) and, for
 * every readable page holding a non-zero byte in ascending order, E4(page index) and its 4096
 * bytes. Writes 32 bytes to out; 0 on success, -1 on error. */
int pvm_hash(pvm_vm_t* vm, uint8_t out[32]);
/* [ext] The hash preimage as text: "regs+gas: <224 hex digits>" then one line per hashed page
 * "page 0x000fe: <E4(index), 8 hex digits> <8192 hex digits>"; everything after the colons,
 * without spaces, is the preimage. If len > the dump's length, writes it NUL-terminated to buf;
 * otherwise writes an empty string (if len > 0). Returns the dump's length excluding the NUL
 * (call with NULL, 0 to size the buffer); 0 on error. */
size_t pvm_dump_state(pvm_vm_t* vm, char* buf, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* JIP-7 host-call logs ("PVM Ecalli Trace"; called JIP-6 in earlier releases)                 */
/* ------------------------------------------------------------------------------------------ */

/* [ext] Non-zero starts recording into a new, empty log; 0 stops (the log is kept). The prelude
 * is the program bytes the VM was created from (pvm_create: the encoded blob E(|j|) E1(z) E(|c|)
 * j c k) and, for a standard program with arguments, their write at the argument address; the
 * start line (pc, gas, registers) is taken when the VM first runs. Each host call is logged as
 * its ecalli line (state at the ecalli) plus what the host did until the VM continued: checked
 * memory reads and writes (pvm_read_ram_bytes*, pvm_write_ram_bytes*; the _unchecked variants are
 * not logged), pvm_set_register, pvm_set_gas, and everything pvm_handle_builtin_host_call or the
 * automatic built-in host calls did (marked "x-builtin <name>"). Page-map changes made during a
 * host call (grow_heap, pvm_map_pages, ...) are logged as "x-pages" extension records
 * (docs/JIP-7-EXTENSIONS.md). A run's final exit adds the termination line. A host call the VM
 * stopped at (PVM_RESULT_HOST_CALL) stays open until the VM runs again. A pvm_execute that
 * starts a new run (not a continuation) starts a new log. */
void pvm_set_jip7_recording(pvm_vm_t* vm, int on);
/* [ext] The log as JIP-7 text (including an open host call). Like pvm_dump_state: writes it
 * NUL-terminated if len exceeds its length, returns its length; 0 if no log was recorded. */
size_t pvm_jip7_log(pvm_vm_t* vm, char* buf, size_t len);
/* [ext] Replays a JIP-7 log (len bytes of UTF-8 text) statelessly under spec, answering each
 * ecalli from the log. With verify != 0 every ecalli line (index, pc, gas, registers), every
 * logged memory read, every x-builtin host call (re-executed with libpvm's built-ins, inner PVMs
 * included) and the termination must match. gas is the initial gas when the log has no start
 * line: 0 selects the default bound, 10^9 (values above 2^63 - 1 are an error). Returns 0
 * (replayed cleanly), 1 (divergence: report names the first entry that differs and the logged
 * vs replayed values) or -1 (malformed log: the message names the line; or its program cannot
 * be loaded; also in pvm_last_error). report (may be NULL) gets a one-line summary, truncated to
 * report_len - 1 bytes and NUL-terminated. */
int pvm_jip7_replay_ex(const char* log, size_t len, int spec, int verify, uint64_t gas,
                       char* report, size_t report_len);
/* [ext] pvm_jip7_replay_ex with gas = 0 (the default bound). */
int pvm_jip7_replay(const char* log, size_t len, int spec, int verify, char* report,
                    size_t report_len);

/* [ext] Earlier names, kept for one release: pvm_set_jip6_recording = pvm_set_jip7_recording,
 * pvm_jip6_log = pvm_jip7_log, pvm_jip6_replay = pvm_jip7_replay (a log without a start line
 * now replays with the default gas bound, no longer with 2^63 - 1). */
void pvm_set_jip6_recording(pvm_vm_t* vm, int on);
size_t pvm_jip6_log(pvm_vm_t* vm, char* buf, size_t len);
int pvm_jip6_replay(const char* log, size_t len, int spec, int verify, char* report,
                    size_t report_len);

/* ------------------------------------------------------------------------------------------ */
/* Inner PVMs: the PVM-level host calls                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Return values of pvm_handle_builtin_host_call. */
#define PVM_BUILTIN_ERROR (-1)     /* not inside this VM's host callback, already performed for
                                      this host call, or invalid handle (see pvm_last_error) */
#define PVM_BUILTIN_NOT_HANDLED 0  /* not a PVM-level host call of the VM's spec, or the VM runs
                                      as a child: handle the id yourself */
#define PVM_BUILTIN_CONTINUE 1     /* performed: return PVM_HOST_CONTINUE */
#define PVM_BUILTIN_PANIC 2        /* performed, the host call panics: return PVM_HOST_ERROR */
#define PVM_BUILTIN_OOG 3          /* performed, out of gas: return PVM_HOST_OOG */

/* [ext] Performs host call `id` (normally func_id) if it is one of the PVM-level host calls of
 * the VM's spec - GP 0.8.0: 0 gas, 1 grow_heap, 9 machine, 10 peek, 11 poke, 12 pages,
 * 13 invoke, 14 expunge; GP 0.7.2: 0 gas, 8 machine, 9 peek, 10 poke, 11 pages, 12 invoke,
 * 13 expunge - exactly as GP B.5-B.6 define them, including their gas (GP 0.7.2: 10 each).
 * Each VM owns one set of inner machines (created on first use, destroyed with the VM).
 * Only callable from inside the VM's own host callback, at most once per host call. The idiom:
 *
 *   static pvm_host_result_t host(pvm_vm_t* vm, int id) {
 *       int b = pvm_handle_builtin_host_call(vm, id);
 *       if (b == PVM_BUILTIN_CONTINUE) return PVM_HOST_CONTINUE;
 *       if (b != PVM_BUILTIN_NOT_HANDLED)
 *           return b == PVM_BUILTIN_OOG ? PVM_HOST_OOG : PVM_HOST_ERROR;
 *       ... own host calls ...
 *   }
 */
int pvm_handle_builtin_host_call(pvm_vm_t* vm, int id);
/* [ext] Non-zero: a VM run as a non-child (pvm_execute(vm, pc, 0)) performs the PVM-level host
 * calls inside pvm_execute / pvm_resume / pvm_step without calling the host callback (the other
 * ids still go to the callback, or stop the run with PVM_RESULT_HOST_CALL if there is none).
 * Never for a child. Default 0. */
void pvm_set_builtin_host_calls(pvm_vm_t* vm, int enabled);
int pvm_get_builtin_host_calls(pvm_vm_t* vm); /* [ext] 0/1 */
/* [ext] Number of live inner machines (created by machine, removed by expunge); -1 on error. */
int pvm_inner_machine_count(pvm_vm_t* vm);

/* ------------------------------------------------------------------------------------------ */
/* Memory                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Maps the pages covering four regions: [rw_addr, rw_end), [output_addr, output_end) and
 * [stack_addr, stack_end) read-write, [ro_addr, ro_end) read-only. Ends are exclusive; empty
 * ranges (end <= start) are skipped. Mapping is page-granular (4096) and applied in the order
 * ro, rw, output, stack, so on a shared page the later region's access wins. Existing contents are
 * kept, new pages are zero. Addresses below 0x10000 can never be mapped: such a region is skipped
 * and reported through pvm_last_error (the others are still mapped). A region cannot end at 2^32
 * (end is a uint32_t); use pvm_map_pages for that. */
void pvm_set_memory_bounds(pvm_vm_t* vm, uint32_t rw_addr, uint32_t rw_end, uint32_t ro_addr,
                           uint32_t ro_end, uint32_t output_addr, uint32_t output_end,
                           uint32_t stack_addr, uint32_t stack_end);

/* [ext] Maps or re-protects the pages covering [addr, addr + len) with access PVM_ACCESS_NONE
 * (inaccessible, contents kept), _READ or _WRITE. 0 on success, -1 on error (also, changing
 * nothing, for a range past 2^32). */
int pvm_map_pages(pvm_vm_t* vm, uint32_t addr, uint64_t len, int access);
/* [ext] Removes the pages covering [addr, addr + len) and frees their contents. 0 or -1 (a
 * range past 2^32, e.g. len = UINT64_MAX, is an error and unmaps nothing). */
int pvm_unmap_pages(pvm_vm_t* vm, uint32_t addr, uint64_t len);
/* [ext] Access of the page holding addr (PVM_ACCESS_*), -1 on error. */
int pvm_get_page_access(pvm_vm_t* vm, uint32_t addr);
/* [ext] Total guest memory limit: at most `pages` 4 KiB pages with storage of their own
 * (UINT64_MAX: no limit, the default; mapping costs no storage, a page gets it on its first
 * write). A guest store that would need storage beyond the limit ends the run with
 * PVM_RESULT_FAULT at the lowest such page of the store (nothing written, pc at the store; raise
 * the limit and pvm_resume re-executes it); host writes fail (PVM_OOB / -1). Clears the
 * reached flag. 0, or -1 for an invalid handle. */
int pvm_set_memory_limit(pvm_vm_t* vm, uint64_t pages);
/* [ext] The limit in pages (UINT64_MAX: none). */
uint64_t pvm_get_memory_limit(pvm_vm_t* vm);
/* [ext] 1 if a write was refused by the memory limit since it was last set (the last
 * PVM_RESULT_FAULT is then the limit's, not a GP fault), 0 if not, -1 on error. */
int pvm_memory_limit_reached(pvm_vm_t* vm);

/* Guest-view writes (little-endian): every byte must be writable. Return 0 on success or
 * PVM_OOB (nothing written; invalid handles and arguments also give PVM_OOB, see
 * pvm_last_error; so does a range past 2^32). Safe to call from a host callback: a bad guest
 * address is an error code. */
uint64_t pvm_write_ram_bytes_8(pvm_vm_t* vm, uint32_t addr, uint8_t value);
uint64_t pvm_write_ram_bytes_16(pvm_vm_t* vm, uint32_t addr, uint16_t value);
uint64_t pvm_write_ram_bytes_32(pvm_vm_t* vm, uint32_t addr, uint32_t value);
uint64_t pvm_write_ram_bytes_64(pvm_vm_t* vm, uint32_t addr, uint64_t value);
/* data may be NULL if len is 0. */
uint64_t pvm_write_ram_bytes(pvm_vm_t* vm, uint32_t addr, const uint8_t* data, size_t len);

/* Guest-view reads (little-endian): every byte must be readable. On failure they return 0 and
 * set *error_code to PVM_MEM_OOB (inaccessible) or PVM_MEM_ERROR (invalid handle/arguments,
 * including a range past 2^32); on success *error_code = PVM_MEM_OK. error_code may be NULL. A
 * host answering a guest's request treats both as the GP's "not accessible" (e.g. OOB). */
uint8_t pvm_read_ram_bytes_8(pvm_vm_t* vm, uint32_t addr, int* error_code);
uint16_t pvm_read_ram_bytes_16(pvm_vm_t* vm, uint32_t addr, int* error_code);
uint32_t pvm_read_ram_bytes_32(pvm_vm_t* vm, uint32_t addr, int* error_code);
uint64_t pvm_read_ram_bytes_64(pvm_vm_t* vm, uint32_t addr, int* error_code);
/* Reads len bytes into out (out may be NULL if len is 0). Returns 0 or PVM_OOB (then the
 * contents of out are unspecified) and sets *error_code as above. */
uint64_t pvm_read_ram_bytes(pvm_vm_t* vm, uint32_t addr, uint8_t* out, size_t len,
                            int* error_code);

/* [ext] Host initialisation, ignoring access protection: every byte must lie in a mapped page
 * (of any access, including PVM_ACCESS_NONE). 0 or PVM_OOB. */
uint64_t pvm_write_ram_unchecked(pvm_vm_t* vm, uint32_t addr, const uint8_t* data, size_t len);
uint64_t pvm_read_ram_unchecked(pvm_vm_t* vm, uint32_t addr, uint8_t* out, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Program information                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* [ext] GP Psi_M's output after a halt: mu[r7 .. r7 + r8] if readable, else empty. Copies
 * min(length, cap) bytes to out (may be NULL if cap is 0) and returns the full length; 0 if the
 * last run did not halt. Call with (NULL, 0) to query the length. */
size_t pvm_output(pvm_vm_t* vm, uint8_t* out, size_t cap);

/* [ext] Gas cost of every basic block (GP 0.8.0 A.9; GP 0.7.2: instructions per block), sorted
 * by pc. Fills min(count, cap) entries of pcs and costs (either may be NULL) and returns count. */
size_t pvm_block_gas_costs(pvm_vm_t* vm, uint32_t* pcs, uint32_t* costs, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Names, version, errors (no VM needed; returned strings are static)                          */
/* ------------------------------------------------------------------------------------------ */

/* Register ABI name: ra, sp, t0, t1, t2, s0, s1, a0, a1, a2, a3, a4, a5; "unknown" otherwise. */
const char* reg_name(int index);
const char* pvm_reg_name(int index); /* [ext] prefixed alias */
/* GP 0.8.0 instruction name of an opcode byte (e.g. "add_64"), "unknown" if not an opcode. */
const char* get_opcode_name(uint8_t opcode);
const char* pvm_opcode_name(uint8_t opcode, int spec); /* [ext] name under spec */

const char* pvm_version(void); /* [ext] e.g. "0.1.0" */

/* [ext] The calling thread's last error message, or NULL if there is none. The string is owned
 * by the library and valid until the next failing call (or pvm_clear_error) on this thread. */
const char* pvm_last_error(void);
void pvm_clear_error(void); /* [ext] */

#ifdef __cplusplus
}
#endif

#endif /* PVM_H */
