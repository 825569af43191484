/*
 * test_pvm.c - exercises every function of include/pvm.h from C.
 *
 *   gcc -Wall -Wextra -Werror -Iinclude examples/c/test_pvm.c -Ltarget/release -lpvm -o test_pvm
 *   ./test_pvm [path/to/hostcalls.jam]
 *
 * The PVM programs are hand-assembled (GP 0.8.0 opcode numbers, see crates/pvm-core/src/isa.rs);
 * the refine-style guest of the inner-PVM test is in refine_guest.h. With PVM_TEST_DUMP_DIR set,
 * the state-dump test writes dump.txt (pvm_dump_state) and hash.txt (pvm_hash as hex) there, so
 * that crates/pvm-capi/tests/run.sh can check the hash with an independent blake2b.
 * Prints one line per failed check and a final "N passed, M failed"; exits non-zero on failure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvm.h"
#include "refine_guest.h"

static int passed, failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            passed++;                                                                  \
        } else {                                                                       \
            failed++;                                                                  \
            const char* e_ = pvm_last_error();                                         \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    e_ ? e_ : "none");                                                 \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b) CHECK((uint64_t)(a) == (uint64_t)(b))

static int error_contains(const char* needle) {
    const char* e = pvm_last_error();
    return e != NULL && strstr(e, needle) != NULL;
}

/* ---- a tiny assembler: records instruction starts for the opcode bitmask ---- */

typedef struct {
    uint8_t code[256];
    uint8_t mask[32];   /* packed, LSB first */
    uint8_t unpacked[256];
    size_t len;
} prog_t;

static void ins(prog_t* p, const uint8_t* bytes, size_t n) {
    p->mask[p->len / 8] |= (uint8_t)(1u << (p->len % 8));
    p->unpacked[p->len] = 1;
    memcpy(p->code + p->len, bytes, n);
    p->len += n;
}

#define INS(p, ...)                                \
    do {                                           \
        const uint8_t b_[] = {__VA_ARGS__};        \
        ins((p), b_, sizeof b_);                   \
    } while (0)

#define U32LE(v) (uint8_t)(v), (uint8_t)((v) >> 8), (uint8_t)((v) >> 16), (uint8_t)((v) >> 24)
/* load_imm rA, imm32 (opcode 51; the immediate is sign-extended from 4 bytes) */
#define LOAD_IMM(p, r, v) INS(p, 51, (r), U32LE((uint32_t)(v)))
/* ecalli id (opcode 10; a 1-byte immediate, id < 128) */
#define ECALLI(p, id) INS(p, 10, (id))
/* add_64 rD = rA + rB (opcode 200) */
#define ADD_64(p, d, a, b) INS(p, 200, (uint8_t)((a) | ((b) << 4)), (d))
/* load_ind_u8 rA = mem[rB] (opcode 124), store_ind_u8 mem[rB] = rA (opcode 120) */
#define LOAD_IND_U8(p, d, base) INS(p, 124, (uint8_t)((d) | ((base) << 4)))
#define STORE_IND_U8(p, s, base) INS(p, 120, (uint8_t)((s) | ((base) << 4)))
#define TRAP(p) INS(p, 0)
/* halt: r12 = 0xFFFF0000 (sign-extended), jump_ind r12 + 0 (opcode 50) */
#define EXIT(p)                          \
    do {                                 \
        LOAD_IMM(p, 12, 0xFFFF0000u);    \
        INS(p, 50, 12);                  \
    } while (0)

static pvm_vm_t* create(const prog_t* p, uint64_t gas) {
    pvm_vm_t* vm = pvm_create(42, p->code, p->len, NULL, p->mask, (p->len + 7) / 8, NULL, 0, gas);
    if (!vm) fprintf(stderr, "create failed: %s\n", pvm_last_error());
    return vm;
}

/* r9 = 5 + 37, halt */
static void add_program(prog_t* p) {
    memset(p, 0, sizeof *p);
    LOAD_IMM(p, 7, 5);
    LOAD_IMM(p, 8, 37);
    ADD_64(p, 9, 7, 8);
    EXIT(p);
}

/* r7 = 0x20000, r8 = 3, ecalli 1 (at pc 12), r9 = mem[r7] (pc 14), halt */
static void host_program(prog_t* p) {
    memset(p, 0, sizeof *p);
    LOAD_IMM(p, 7, 0x20000);
    LOAD_IMM(p, 8, 3);
    ECALLI(p, 1);
    LOAD_IND_U8(p, 9, 7);
    EXIT(p);
}
#define ECALLI_PC 12u
#define AFTER_ECALLI_PC 14u

/* ---- constants and names ---- */

static void test_constants_and_names(void) {
    CHECK_EQ(REG_SIZE, 13);
    CHECK_EQ(PVM_REG_SIZE, 13);
    CHECK_EQ(Z_P, 4096);
    CHECK_EQ(Z_A, 2);
    CHECK_EQ(Z_Q, 1u << 16);
    CHECK_EQ(Z_I, 1u << 24);
    CHECK_EQ(Z_Z, 1u << 16);
    CHECK(NONE == UINT64_MAX && PVM_NONE == NONE);
    CHECK(WHAT == UINT64_MAX - 1 && OOB == UINT64_MAX - 2 && WHO == UINT64_MAX - 3);
    CHECK(FULL == UINT64_MAX - 4 && CORE == UINT64_MAX - 5 && CASH == UINT64_MAX - 6);
    CHECK(LOW == UINT64_MAX - 7 && HUH == UINT64_MAX - 8 && PVM_HUH == HUH);
    CHECK(HALT == 0 && PANIC == 1 && FAULT == 2 && HOST == 3 && OOG == 4);
    CHECK(PVM_RESULT_OK == 0 && PVM_RESULT_OOG == 1 && PVM_RESULT_PANIC == 2);
    CHECK(PVM_RESULT_HOST_CALL == 3 && PVM_RESULT_ERROR == 4 && PVM_RESULT_FAULT == 5);
    CHECK(PVM_HOST_CONTINUE == 0 && PVM_HOST_TERMINATE == 1 && PVM_HOST_ERROR == 2);

    static const char* names[13] = {"ra", "sp", "t0", "t1", "t2", "s0", "s1",
                                    "a0", "a1", "a2", "a3", "a4", "a5"};
    for (int i = 0; i < 13; i++) {
        CHECK(strcmp(reg_name(i), names[i]) == 0);
        CHECK(strcmp(pvm_reg_name(i), names[i]) == 0);
    }
    CHECK(strcmp(reg_name(13), "unknown") == 0);
    CHECK(strcmp(reg_name(-1), "unknown") == 0);
    CHECK(strcmp(get_opcode_name(200), "add_64") == 0);
    CHECK(strcmp(get_opcode_name(0), "trap") == 0);
    CHECK(strcmp(get_opcode_name(10), "ecalli") == 0);
    CHECK(strcmp(get_opcode_name(2), "unlikely") == 0);
    CHECK(strcmp(get_opcode_name(255), "unknown") == 0);
    CHECK(strcmp(pvm_opcode_name(101, PVM_SPEC_0_7_2), "sbrk") == 0);
    CHECK(strcmp(pvm_opcode_name(101, PVM_SPEC_0_8_0), "count_set_bits_64") == 0);
    CHECK(strcmp(pvm_opcode_name(0, 7), "unknown") == 0);
    CHECK(pvm_version() != NULL && strlen(pvm_version()) >= 5);
}

/* ---- plain runs ---- */

static void test_halt_registers_gas(void) {
    prog_t p;
    add_program(&p);
    uint64_t regs[13];
    for (int i = 0; i < 13; i++) regs[i] = 1000 + (uint64_t)i;
    /* unpacked bitmask and initial registers */
    pvm_vm_t* vm = pvm_create(7, p.code, p.len, regs, p.unpacked, p.len, NULL, 0, 10000);
    CHECK(vm != NULL);
    if (!vm) return;
    CHECK_EQ(pvm_get_register(vm, 12), 1012);
    CHECK_EQ(pvm_get_service_index(vm), 7);
    CHECK_EQ(pvm_get_spec(vm), PVM_SPEC_0_8_0);
    CHECK_EQ(pvm_get_machine_state(vm), PVM_READY);
    CHECK_EQ(pvm_get_result_code(vm), -1);
    CHECK_EQ(pvm_is_terminated(vm), 0);
    CHECK_EQ(pvm_get_gas(vm), 10000);

    uint32_t pcs[8], costs[8];
    size_t nblocks = pvm_block_gas_costs(vm, pcs, costs, 8);
    CHECK_EQ(nblocks, 1);
    CHECK_EQ(pcs[0], 0);
    CHECK(costs[0] > 0);
    CHECK_EQ(pvm_block_gas_costs(vm, NULL, NULL, 0), 1);

    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(pvm_get_result_code(vm), PVM_RESULT_OK);
    CHECK_EQ(pvm_get_machine_state(vm), HALT);
    CHECK_EQ(pvm_is_terminated(vm), 1);
    CHECK_EQ(pvm_get_register(vm, 9), 42);
    CHECK_EQ(pvm_get_gas(vm), 10000 - costs[0]);
    const uint64_t* live = pvm_get_registers(vm);
    CHECK(live != NULL && live[7] == 5 && live[8] == 37 && live[9] == 42);
    pvm_set_register(vm, 3, 77);
    CHECK(live[3] == 77); /* the view is live */
    uint64_t copy[13];
    CHECK_EQ(pvm_get_registers_copy(vm, copy), 0);
    CHECK(memcmp(copy, live, sizeof copy) == 0);
    /* r7 = 5 is not readable memory: the Psi_M output is empty */
    uint8_t out[4];
    CHECK_EQ(pvm_output(vm, out, sizeof out), 0);

    /* out-of-range registers */
    pvm_clear_error();
    CHECK_EQ(pvm_get_register(vm, 13), 0);
    CHECK(error_contains("out of range"));
    pvm_set_register(vm, -1, 1);
    CHECK_EQ(pvm_get_register(vm, 12), 0xFFFFFFFFFFFF0000ull);

    /* resume after halt is refused; execute runs again from the entry point */
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_ERROR);
    CHECK_EQ(pvm_step(vm), PVM_RESULT_ERROR);
    CHECK_EQ(pvm_execute(vm, 0, 1), PVM_RESULT_OK);
    CHECK_EQ(pvm_is_child(vm), 1);
    CHECK_EQ(pvm_get_gas(vm), 10000 - 2 * costs[0]);

    /* pc and the gas-charged flag */
    pvm_set_pc(vm, 6);
    CHECK_EQ(pvm_get_pc(vm), 6);
    CHECK_EQ(pvm_get_gas_charged(vm), 0);
    CHECK_EQ(pvm_get_machine_state(vm), PVM_READY);
    pvm_set_gas_charged(vm, 1);
    CHECK_EQ(pvm_get_gas_charged(vm), 1);
    uint64_t gas = pvm_get_gas(vm);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_OK); /* block already "paid": no charge */
    CHECK_EQ(pvm_get_gas(vm), gas);
    pvm_set_gas(vm, UINT64_MAX);
    CHECK_EQ(pvm_get_gas(vm), (uint64_t)INT64_MAX);

    /* logging prints to stderr; the tracing flag (tracing itself: test_tracing) */
    pvm_set_logging(vm, 1);
    CHECK_EQ(pvm_get_logging(vm), 1);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    pvm_set_logging(vm, 0);
    pvm_set_tracing(vm, 1);
    CHECK_EQ(pvm_get_tracing(vm), 1);
    pvm_set_tracing(vm, 0);
    pvm_destroy(vm);
}

static void test_step_oog_panic(void) {
    prog_t p;
    add_program(&p);
    pvm_vm_t* vm = create(&p, 0);
    if (!vm) return;
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OOG);
    CHECK_EQ(pvm_get_machine_state(vm), OOG);
    CHECK_EQ(pvm_is_terminated(vm), 1);
    CHECK_EQ(pvm_get_gas(vm), 0);
    pvm_set_gas(vm, 1000);
    int steps = 0;
    pvm_result_t r;
    while ((r = pvm_step(vm)) == PVM_RESULT_STEPPED) steps++;
    CHECK_EQ(r, PVM_RESULT_OK);
    CHECK_EQ(steps, 4); /* load_imm, load_imm, add_64, load_imm; jump_ind halts */
    CHECK_EQ(pvm_get_register(vm, 9), 42);
    pvm_destroy(vm);

    prog_t t;
    memset(&t, 0, sizeof t);
    TRAP(&t);
    vm = create(&t, 10);
    if (!vm) return;
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
    CHECK_EQ(pvm_get_machine_state(vm), PANIC);
    CHECK_EQ(pvm_execute(vm, 3, 0), PVM_RESULT_PANIC); /* not an instruction start */
    pvm_destroy(vm);
}

/* ---- host calls ---- */

static int callback_calls;

/* Host function 1: r7 = address, r8 = length. Writes the byte sum to mem[r7] and sum * 10 to r8.
 * Also checks the "inside a host call" state and that re-entry is refused. */
static pvm_host_result_t sum_callback(pvm_vm_t* vm, int func_id) {
    callback_calls++;
    CHECK_EQ(func_id, 1);
    CHECK_EQ(pvm_get_host_call_id(vm), 1);
    CHECK_EQ(pvm_get_machine_state(vm), HOST);
    CHECK_EQ(pvm_get_pc(vm), ECALLI_PC);
    /* re-entrancy is refused without touching the VM */
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
    CHECK(error_contains("already running"));
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_ERROR);
    CHECK_EQ(pvm_step(vm), PVM_RESULT_ERROR);

    const uint64_t* regs = pvm_get_registers(vm);
    uint32_t addr = (uint32_t)regs[7];
    size_t len = (size_t)pvm_get_register(vm, 8);
    uint8_t buf[16];
    int err = -1;
    if (len > sizeof buf) return PVM_HOST_ERROR;
    if (pvm_read_ram_bytes(vm, addr, buf, len, &err) != 0 || err != PVM_MEM_OK) {
        pvm_set_register(vm, 7, OOB);
        return PVM_HOST_CONTINUE;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i++) sum += buf[i];
    /* memory errors are return codes, never crashes */
    CHECK_EQ(pvm_read_ram_bytes_32(vm, 0x900000, &err), 0);
    CHECK_EQ(err, PVM_MEM_OOB);
    CHECK_EQ(pvm_read_ram_bytes_8(vm, 0x10, NULL), 0);
    CHECK_EQ(pvm_write_ram_bytes_64(vm, 0x900000, 1), OOB);
    CHECK_EQ(pvm_write_ram_bytes_8(vm, 0x10000, 1), OOB); /* read-only region */
    CHECK_EQ(pvm_write_ram_bytes_8(vm, addr, (uint8_t)sum), 0);
    pvm_set_register(vm, 8, sum * 10);
    pvm_set_gas(vm, pvm_get_gas(vm) - 10); /* host calls charge gas */
    return PVM_HOST_CONTINUE;
}

static void test_host_callback(void) {
    prog_t p;
    host_program(&p);
    pvm_vm_t* vm = create(&p, 100000);
    if (!vm) return;
    /* rw [0x20000, 0x21000), ro [0x10000, 0x10800), output [0x30000, 0x30010),
       stack [0xFE000, 0x100000) */
    pvm_set_memory_bounds(vm, 0x20000, 0x21000, 0x10000, 0x10800, 0x30000, 0x30010, 0xFE000,
                          0x100000);
    CHECK_EQ(pvm_get_page_access(vm, 0x10000), PVM_ACCESS_READ);
    CHECK_EQ(pvm_get_page_access(vm, 0x20000), PVM_ACCESS_WRITE);
    CHECK_EQ(pvm_get_page_access(vm, 0x30000), PVM_ACCESS_WRITE);
    CHECK_EQ(pvm_get_page_access(vm, 0xFF000), PVM_ACCESS_WRITE);
    CHECK_EQ(pvm_get_page_access(vm, 0x21000), PVM_ACCESS_NONE);
    const uint8_t args[3] = {10, 20, 30};
    CHECK_EQ(pvm_write_ram_bytes(vm, 0x20000, args, 3), 0);

    pvm_set_host_callback(vm, sum_callback);
    callback_calls = 0;
    uint64_t gas0 = pvm_get_gas(vm);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(callback_calls, 1);
    CHECK_EQ(pvm_get_register(vm, 8), 600);
    CHECK_EQ(pvm_get_register(vm, 9), 60);
    CHECK_EQ(pvm_read_ram_bytes_8(vm, 0x20000, NULL), 60);
    CHECK(pvm_get_gas(vm) < gas0 - 10);

    /* typed accessors round-trip (little-endian) */
    int err = -1;
    CHECK_EQ(pvm_write_ram_bytes_16(vm, 0x20100, 0xBEEF), 0);
    CHECK_EQ(pvm_read_ram_bytes_16(vm, 0x20100, &err), 0xBEEF);
    CHECK_EQ(err, PVM_MEM_OK);
    CHECK_EQ(pvm_read_ram_bytes_8(vm, 0x20100, NULL), 0xEF);
    CHECK_EQ(pvm_write_ram_bytes_32(vm, 0x20104, 0xDEADBEEFu), 0);
    CHECK_EQ(pvm_read_ram_bytes_32(vm, 0x20104, &err), 0xDEADBEEFu);
    CHECK_EQ(pvm_write_ram_bytes_64(vm, 0x20ff8, 0x0102030405060708ull), 0);
    CHECK_EQ(pvm_read_ram_bytes_64(vm, 0x20ff8, &err), 0x0102030405060708ull);
    CHECK_EQ(pvm_read_ram_bytes_64(vm, 0x20ffc, &err), 0); /* crosses into an unmapped page */
    CHECK_EQ(err, PVM_MEM_OOB);
    /* read-only region: checked write fails, unchecked succeeds */
    const uint8_t hello[5] = {'h', 'e', 'l', 'l', 'o'};
    CHECK_EQ(pvm_write_ram_bytes(vm, 0x10000, hello, 5), OOB);
    CHECK_EQ(pvm_write_ram_unchecked(vm, 0x10000, hello, 5), 0);
    uint8_t back[5] = {0};
    CHECK_EQ(pvm_read_ram_bytes(vm, 0x10000, back, 5, NULL), 0);
    CHECK(memcmp(back, hello, 5) == 0);
    memset(back, 0, sizeof back);
    CHECK_EQ(pvm_read_ram_unchecked(vm, 0x10000, back, 5), 0);
    CHECK(memcmp(back, hello, 5) == 0);
    CHECK_EQ(pvm_read_ram_unchecked(vm, 0x40000, back, 5), OOB);
    CHECK_EQ(pvm_read_ram_bytes(vm, 0x20000, NULL, 0, &err), 0); /* empty read */
    CHECK_EQ(pvm_read_ram_bytes(vm, 0x20000, NULL, 4, &err), OOB); /* NULL buffer */
    CHECK_EQ(err, PVM_MEM_ERROR);
    CHECK_EQ(pvm_write_ram_bytes(vm, 0x20000, NULL, 4), OOB);
    CHECK_EQ(pvm_read_ram_bytes(vm, 0x20000, back, SIZE_MAX, &err), OOB); /* absurd length */
    pvm_destroy(vm);
}

static pvm_host_result_t terminate_callback(pvm_vm_t* vm, int func_id) {
    (void)func_id;
    callback_calls++;
    pvm_set_register(vm, 7, 0x20000); /* results are kept */
    return PVM_HOST_TERMINATE;
}

static pvm_host_result_t error_callback(pvm_vm_t* vm, int func_id) {
    (void)vm;
    (void)func_id;
    return PVM_HOST_ERROR;
}

static void test_terminate_and_resume(void) {
    prog_t p;
    host_program(&p);
    pvm_vm_t* vm = create(&p, 100000);
    if (!vm) return;
    CHECK_EQ(pvm_map_pages(vm, 0x20000, 4096, PVM_ACCESS_WRITE), 0);
    CHECK_EQ(pvm_write_ram_bytes_8(vm, 0x20000, 99), 0);

    /* TERMINATE: HOST_CALL with pc at the ecalli, then resume after it */
    pvm_set_host_callback(vm, terminate_callback);
    callback_calls = 0;
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
    CHECK_EQ(callback_calls, 1);
    CHECK_EQ(pvm_get_machine_state(vm), HOST);
    CHECK_EQ(pvm_get_pc(vm), ECALLI_PC);
    CHECK_EQ(pvm_get_host_call_id(vm), 1);
    CHECK_EQ(pvm_is_terminated(vm), 0);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_OK);
    CHECK_EQ(callback_calls, 1);
    CHECK_EQ(pvm_get_register(vm, 9), 99);

    /* the same, resuming with pvm_execute(pc after the ecalli) */
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
    uint64_t gas = pvm_get_gas(vm);
    CHECK_EQ(pvm_execute(vm, AFTER_ECALLI_PC, 0), PVM_RESULT_OK);
    CHECK_EQ(pvm_get_gas(vm), gas); /* same block: not charged again */
    CHECK_EQ(pvm_get_register(vm, 9), 99);

    /* no callback: HOST_CALL at each ecalli */
    pvm_set_host_callback(vm, NULL);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL);
    CHECK_EQ(pvm_get_pc(vm), ECALLI_PC);
    pvm_set_register(vm, 7, 0x20000);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_OK);
    CHECK_EQ(pvm_get_register(vm, 9), 99);

    /* ERROR: the run panics */
    pvm_set_host_callback(vm, error_callback);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
    CHECK_EQ(pvm_get_machine_state(vm), PANIC);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_ERROR);
    pvm_destroy(vm);
}

static pvm_host_result_t destroy_callback(pvm_vm_t* vm, int func_id) {
    (void)func_id;
    pvm_destroy(vm);
    CHECK_EQ(pvm_get_gas(vm), 0); /* the handle is already invalid */
    CHECK(error_contains("not a live"));
    return PVM_HOST_CONTINUE;
}

static void test_destroy_inside_callback(void) {
    prog_t p;
    host_program(&p);
    pvm_vm_t* vm = create(&p, 100000);
    if (!vm) return;
    pvm_set_host_callback(vm, destroy_callback);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
    CHECK(error_contains("destroyed inside"));
    pvm_destroy(vm); /* already freed: detected, no double free */
    CHECK(error_contains("not a live"));
}

/* ---- page faults and memory maps ---- */

static void test_page_fault(void) {
    prog_t p;
    memset(&p, 0, sizeof p);
    LOAD_IMM(&p, 7, 0x30000);
    LOAD_IND_U8(&p, 9, 7);
    STORE_IND_U8(&p, 9, 7);
    EXIT(&p);
    pvm_vm_t* vm = create(&p, 100000);
    if (!vm) return;
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_FAULT);
    CHECK_EQ(pvm_get_machine_state(vm), FAULT);
    CHECK_EQ(pvm_get_fault_address(vm), 0x30000);
    CHECK_EQ(pvm_get_pc(vm), 6);
    CHECK_EQ(pvm_is_terminated(vm), 0);
    /* map the page read-only with a value, retry: the store then faults */
    CHECK_EQ(pvm_map_pages(vm, 0x30123, 1, PVM_ACCESS_READ), 0);
    const uint8_t v = 0x5A;
    CHECK_EQ(pvm_write_ram_unchecked(vm, 0x30000, &v, 1), 0);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_FAULT);
    CHECK_EQ(pvm_get_pc(vm), 8);
    CHECK_EQ(pvm_get_register(vm, 9), 0x5A);
    CHECK_EQ(pvm_map_pages(vm, 0x30000, 4096, PVM_ACCESS_WRITE), 0);
    CHECK_EQ(pvm_execute(vm, 8, 0), PVM_RESULT_OK); /* execute at the faulting pc resumes */
    /* protect to NONE keeps contents, unmap frees them */
    CHECK_EQ(pvm_map_pages(vm, 0x30000, 4096, PVM_ACCESS_NONE), 0);
    CHECK_EQ(pvm_read_ram_bytes_8(vm, 0x30000, NULL), 0);
    uint8_t b = 0;
    CHECK_EQ(pvm_read_ram_unchecked(vm, 0x30000, &b, 1), 0);
    CHECK_EQ(b, 0x5A);
    CHECK_EQ(pvm_unmap_pages(vm, 0x30000, 4096), 0);
    CHECK_EQ(pvm_read_ram_unchecked(vm, 0x30000, &b, 1), OOB);
    /* invalid map requests */
    CHECK_EQ(pvm_map_pages(vm, 0x1000, 4096, PVM_ACCESS_READ), -1); /* below 0x10000 */
    CHECK_EQ(pvm_map_pages(vm, 0x30000, 4096, 3), -1);
    CHECK_EQ(pvm_map_pages(vm, 0xFFFFF000u, 0x2000, PVM_ACCESS_READ), -1);
    CHECK_EQ(pvm_unmap_pages(vm, 0xFFFFF000u, UINT64_MAX), -1);
    /* an access below 0x10000 is a panic, not a fault */
    pvm_set_register(vm, 7, 0x100);
    CHECK_EQ(pvm_execute(vm, 6, 0), PVM_RESULT_PANIC);
    /* memory bounds with an invalid region: the others are still mapped */
    pvm_clear_error();
    pvm_set_memory_bounds(vm, 0x100, 0x200, 0, 0, 0x50000, 0x50001, 0, 0);
    CHECK(error_contains("rw range"));
    CHECK_EQ(pvm_get_page_access(vm, 0x50000), PVM_ACCESS_WRITE);
    pvm_destroy(vm);
}

/* ---- invalid inputs and handles ---- */

static void test_invalid_inputs(void) {
    prog_t p;
    add_program(&p);
    size_t mlen = (p.len + 7) / 8;
    CHECK(pvm_create(0, NULL, p.len, NULL, p.mask, mlen, NULL, 0, 0) == NULL);
    CHECK(error_contains("code is NULL"));
    CHECK(pvm_create(0, p.code, p.len, NULL, NULL, mlen, NULL, 0, 0) == NULL);
    CHECK(pvm_create(0, p.code, p.len, NULL, p.mask, mlen + 1, NULL, 0, 0) == NULL);
    CHECK(error_contains("bitmask"));
    CHECK(pvm_create(0, p.code, p.len, NULL, p.mask, mlen, NULL, 2, 0) == NULL);
    CHECK(pvm_create(0, p.code, SIZE_MAX, NULL, p.mask, mlen, NULL, 0, 0) == NULL);
    CHECK(pvm_create(0, p.code, 0, NULL, p.mask, 0, NULL, 0, 0) == NULL); /* empty code */

    /* GP 0.8.0 prevalidation: no terminator at the end / unknown opcode */
    prog_t bad;
    memset(&bad, 0, sizeof bad);
    LOAD_IMM(&bad, 7, 1);
    CHECK(pvm_create(0, bad.code, bad.len, NULL, bad.mask, 1, NULL, 0, 0) == NULL);
    CHECK(error_contains("terminator"));
    const uint8_t unknown_op[2] = {255, 0};
    const uint8_t unknown_mask[1] = {3};
    CHECK(pvm_create(0, unknown_op, 2, NULL, unknown_mask, 1, NULL, 0, 0) == NULL);
    CHECK(error_contains("opcode"));
    /* ... but valid for GP 0.7.2 (the implicit trap ends it) */
    pvm_vm_t* vm = pvm_create_ex(0, bad.code, bad.len, NULL, bad.mask, 1, NULL, 0, 10,
                                 PVM_SPEC_0_7_2);
    CHECK(vm != NULL);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
    CHECK_EQ(pvm_get_register(vm, 7), 1);
    pvm_destroy(vm);
    CHECK(pvm_create_ex(0, p.code, p.len, NULL, p.mask, mlen, NULL, 0, 0, 9) == NULL);
    CHECK(error_contains("unknown spec"));

    /* generic blobs */
    const uint8_t junk[4] = {0xFF, 0xFF, 0x01, 0x02};
    CHECK(pvm_create_from_blob(junk, sizeof junk, PVM_SPEC_0_8_0, 0) == NULL);
    CHECK(pvm_create_from_blob(NULL, 0, PVM_SPEC_0_8_0, 0) == NULL);
    /* E(|j|)=0 E1(z)=0 E(|c|)=3 c = load_imm r7, 42; trap  k = 0b101 */
    const uint8_t blob[7] = {0, 0, 4, 51, 7, 42, 0};
    const uint8_t blob_ok[8] = {0, 0, 4, 51, 7, 42, 0, 0x09};
    CHECK(pvm_create_from_blob(blob, sizeof blob, PVM_SPEC_0_8_0, 0) == NULL); /* truncated */
    vm = pvm_create_from_blob(blob_ok, sizeof blob_ok, PVM_SPEC_0_8_0, 100);
    CHECK(vm != NULL);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
    CHECK_EQ(pvm_get_register(vm, 7), 42);
    pvm_destroy(vm);

    /* NULL handles: errors, no crash */
    pvm_clear_error();
    CHECK(pvm_last_error() == NULL);
    CHECK_EQ(pvm_execute(NULL, 0, 0), PVM_RESULT_ERROR);
    CHECK(error_contains("NULL"));
    CHECK_EQ(pvm_resume(NULL), PVM_RESULT_ERROR);
    CHECK_EQ(pvm_step(NULL), PVM_RESULT_ERROR);
    CHECK_EQ(pvm_get_gas(NULL), 0);
    CHECK_EQ(pvm_get_register(NULL, 0), 0);
    CHECK(pvm_get_registers(NULL) == NULL);
    CHECK_EQ(pvm_get_registers_copy(NULL, NULL), -1);
    CHECK_EQ(pvm_write_ram_bytes_8(NULL, 0x10000, 1), OOB);
    int err = 0;
    CHECK_EQ(pvm_read_ram_bytes_16(NULL, 0x10000, &err), 0);
    CHECK_EQ(err, PVM_MEM_ERROR);
    CHECK_EQ(pvm_map_pages(NULL, 0x10000, 1, PVM_ACCESS_READ), -1);
    CHECK_EQ(pvm_output(NULL, NULL, 0), 0);
    CHECK_EQ(pvm_get_result_code(NULL), -1);
    pvm_set_register(NULL, 0, 0);
    pvm_set_host_callback(NULL, NULL);
    pvm_set_memory_bounds(NULL, 0, 0, 0, 0, 0, 0, 0, 0);
    pvm_destroy(NULL);

    /* double destroy and use after destroy are detected */
    vm = create(&p, 0);
    pvm_destroy(vm);
    pvm_destroy(vm);
    CHECK(error_contains("not a live"));
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_ERROR);
    CHECK_EQ(pvm_get_machine_state(vm), PVM_READY);
}

/* ---- GP 0.7.2: sbrk and the heap pointer ---- */

static void test_sbrk_072(void) {
    prog_t p;
    memset(&p, 0, sizeof p);
    LOAD_IMM(&p, 7, 4097);
    INS(&p, 101, (uint8_t)(8 | (7 << 4))); /* sbrk r8 <- size r7 (0.7.2 numbering) */
    STORE_IND_U8(&p, 7, 8);                /* mem[r8] = r7 (low byte 1) */
    TRAP(&p);
    pvm_vm_t* vm = pvm_create_ex(0, p.code, p.len, NULL, p.mask, (p.len + 7) / 8, NULL, 0, 100,
                                 PVM_SPEC_0_7_2);
    CHECK(vm != NULL);
    if (!vm) return;
    pvm_set_heap_pointer(vm, 0x50000);
    CHECK_EQ(pvm_get_heap_pointer(vm), 0x50000);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_PANIC);
    CHECK_EQ(pvm_get_register(vm, 8), 0x50000);
    CHECK_EQ(pvm_read_ram_bytes_8(vm, 0x50000, NULL), 1);
    CHECK_EQ(pvm_get_page_access(vm, 0x51000), PVM_ACCESS_WRITE);
    CHECK_EQ(pvm_get_heap_pointer(vm), 0x50000 + 4097);
    /* 0.7.2 gas: one per instruction */
    CHECK_EQ(pvm_get_gas(vm), 100 - 4);
    pvm_destroy(vm);
}

/* ---- standard programs ---- */

static size_t standard_program(uint8_t* out, int with_metadata) {
    size_t n = 0;
    if (with_metadata) {
        out[n++] = 3; /* E(|m|) m */
        out[n++] = 'a';
        out[n++] = 'b';
        out[n++] = 'c';
    }
    const uint8_t header[11] = {2, 0, 0, /* |o| = 2 */ 0, 0, 0, /* |w| = 0 */ 0, 0, /* z = 0 */
                                0, 0x10, 0 /* s = 4096 */};
    memcpy(out + n, header, sizeof header);
    n += sizeof header;
    out[n++] = 'h';
    out[n++] = 'i';
    /* p = blob: |j| = 0, z = 0, |c| = 2, c = jump_ind r0 + 0 (r0 = 0xFFFF0000: halt), k = 0b01 */
    const uint8_t blob[6] = {0, 0, 2, 50, 0, 1};
    const uint8_t blob_len[4] = {6, 0, 0, 0};
    memcpy(out + n, blob_len, 4);
    n += 4;
    memcpy(out + n, blob, sizeof blob);
    n += sizeof blob;
    return n;
}

static void test_standard_program(void) {
    uint8_t prog[64];
    const uint8_t args[5] = {'h', 'e', 'l', 'l', 'o'};
    for (int meta = 0; meta <= 1; meta++) {
        size_t n = standard_program(prog, meta);
        pvm_vm_t* vm = pvm_create_standard(prog, n, meta, args, sizeof args, PVM_SPEC_0_8_0, 1000);
        CHECK(vm != NULL);
        if (!vm) continue;
        CHECK_EQ(pvm_get_register(vm, 0), 0xFFFF0000u);
        CHECK_EQ(pvm_get_register(vm, 1), 0xFEFE0000u);
        CHECK_EQ(pvm_get_register(vm, 7), 0xFEFF0000u);
        CHECK_EQ(pvm_get_register(vm, 8), 5);
        CHECK_EQ(pvm_read_ram_bytes_16(vm, 0x10000, NULL), 'h' | ('i' << 8));
        CHECK_EQ(pvm_write_ram_bytes_8(vm, 0x10000, 0), OOB); /* read-only data */
        CHECK_EQ(pvm_output(vm, NULL, 0), 0); /* not halted yet */
        CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
        uint8_t out[8] = {0};
        CHECK_EQ(pvm_output(vm, NULL, 0), 5);
        CHECK_EQ(pvm_output(vm, out, 2), 5);
        CHECK(out[0] == 'h' && out[1] == 'e' && out[2] == 0);
        CHECK_EQ(pvm_output(vm, out, sizeof out), 5);
        CHECK(memcmp(out, args, 5) == 0);
        pvm_destroy(vm);
    }
    size_t n = standard_program(prog, 0);
    /* with_metadata on a program without it, truncated input, NULL args with a length */
    CHECK(pvm_create_standard(prog, n, 1, NULL, 0, 0, 0) == NULL);
    CHECK(pvm_create_standard(prog, n - 1, 0, NULL, 0, 0, 0) == NULL);
    CHECK(pvm_create_standard(prog, n, 0, NULL, 3, 0, 0) == NULL);
}

/* ---- the guest examples/guests/hostcalls.jam (if given) ---- */

static char hc_log[2][128];
static int hc_logs, hc_numbers;

static pvm_host_result_t hostcalls_callback(pvm_vm_t* vm, int func_id) {
    if (func_id == 100) { /* log(r7 = message, r8 = length) */
        uint64_t len = pvm_get_register(vm, 8);
        int err = 0;
        if (hc_logs < 2 && len < sizeof hc_log[0]) {
            pvm_read_ram_bytes(vm, (uint32_t)pvm_get_register(vm, 7), (uint8_t*)hc_log[hc_logs],
                               (size_t)len, &err);
            hc_log[hc_logs][len] = 0;
        }
        hc_logs++;
        pvm_set_register(vm, 7, err == PVM_MEM_OK ? 0 : OOB);
        return PVM_HOST_CONTINUE;
    }
    if (func_id == 1001) { /* get_number() -> r7 */
        pvm_set_register(vm, 7, 100 * (uint64_t)(++hc_numbers));
        return PVM_HOST_CONTINUE;
    }
    pvm_set_register(vm, 7, WHAT);
    return PVM_HOST_CONTINUE;
}

static void test_hostcalls_guest(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        failed++;
        return;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    pvm_vm_t* vm = pvm_create_standard(buf, n, 0, NULL, 0, PVM_SPEC_0_8_0, 100000000);
    CHECK(vm != NULL);
    if (!vm) return;
    pvm_set_host_callback(vm, hostcalls_callback);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    char out[128] = {0};
    size_t len = pvm_output(vm, (uint8_t*)out, sizeof out - 1);
    const char* expected = "numbers: 100, 200, 300; sum = 600";
    CHECK(len == strlen(expected) && strcmp(out, expected) == 0);
    CHECK_EQ(hc_numbers, 3);
    CHECK_EQ(hc_logs, 2);
    CHECK(strcmp(hc_log[0], "hostcalls: start") == 0);
    CHECK(strcmp(hc_log[1], expected) == 0);
    printf("hostcalls.jam output: \"%s\", gas left %" PRIu64 "\n", out, pvm_get_gas(vm));

    /* Enter it again with new arguments (K = 2 numbers): pvm_invoke sets r0/r1/r7/r8, the
     * argument area, pc, gas and the gas-charged flag. */
    uint8_t k2[4] = {2, 0, 0, 0};
    hc_numbers = 0;
    hc_logs = 0;
    CHECK_EQ(pvm_invoke(vm, 0, k2, sizeof k2, 100000000), PVM_RESULT_OK);
    memset(out, 0, sizeof out);
    len = pvm_output(vm, (uint8_t*)out, sizeof out - 1);
    CHECK(strcmp(out, "numbers: 100, 200; sum = 300") == 0);
    CHECK_EQ(hc_numbers, 2);
    CHECK_EQ(pvm_get_register(vm, 0), 0xFFFF0000u);
    CHECK(pvm_get_backend(vm) == PVM_BACKEND_INTERPRETER || pvm_get_backend(vm) == PVM_BACKEND_RECOMPILER);
    CHECK_EQ(pvm_metadata(vm, NULL, 0), 0); /* a standard program without a metadata prefix */
    pvm_destroy(vm);

    /* The backend choice: the interpreter always; the recompiler or a clear error. */
    vm = pvm_create_standard_ex(buf, n, 0, NULL, 0, PVM_SPEC_0_8_0, 1000, PVM_BACKEND_INTERPRETER);
    CHECK(vm != NULL && pvm_get_backend(vm) == PVM_BACKEND_INTERPRETER);
    pvm_destroy(vm);
    vm = pvm_create_standard_ex(buf, n, 0, NULL, 0, PVM_SPEC_0_8_0, 1000, PVM_BACKEND_RECOMPILER);
    if (pvm_recompiler_supported()) {
        CHECK(vm != NULL && pvm_get_backend(vm) == PVM_BACKEND_RECOMPILER);
    } else {
        CHECK(vm == NULL && strstr(pvm_last_error(), "not supported") != NULL);
    }
    pvm_destroy(vm);
    CHECK(pvm_create_standard_ex(buf, n, 0, NULL, 0, PVM_SPEC_0_8_0, 1000, 7) == NULL);
    CHECK(strstr(pvm_last_error(), "unknown backend") != NULL);
}


/* ---- the executed-instruction count: pvm_step counts one per instruction, runs agree ---- */

static void test_instruction_count(void) {
    prog_t p;
    add_program(&p);
    pvm_vm_t* vm = create(&p, 0);
    if (!vm) return;
    CHECK_EQ(pvm_get_instruction_count(vm), 0);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OOG); /* out of gas: nothing executed */
    CHECK_EQ(pvm_get_instruction_count(vm), 0);
    pvm_set_gas(vm, 1000);
    uint64_t steps = 0;
    while (pvm_step(vm) == PVM_RESULT_STEPPED) {
        steps++;
        CHECK_EQ(pvm_get_instruction_count(vm), steps);
    }
    CHECK_EQ(steps, 4);
    CHECK_EQ(pvm_get_instruction_count(vm), 5); /* the halting jump_ind counts */
    pvm_set_instruction_count(vm, 7);
    CHECK_EQ(pvm_get_instruction_count(vm), 7);
    pvm_destroy(vm);
    CHECK_EQ(pvm_get_instruction_count(NULL), 0);
    pvm_set_instruction_count(NULL, 1);

    /* host_program: run to the ecalli (3 instructions, the ecalli included), resume: 6 in all */
    host_program(&p);
    vm = create(&p, 1000);
    if (!vm) return;
    pvm_set_memory_bounds(vm, 0x20000, 0x21000, 0x10000, 0x10800, 0x30000, 0x30010, 0xFE000,
                          0x100000);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_HOST_CALL); /* no callback */
    CHECK_EQ(pvm_get_instruction_count(vm), 3);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_OK);
    CHECK_EQ(pvm_get_instruction_count(vm), 6);
    pvm_destroy(vm);
}

static void test_instruction_count_guest(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        failed++;
        return;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int backends[2] = {PVM_BACKEND_INTERPRETER, PVM_BACKEND_RECOMPILER};
    for (int b = 0; b < (pvm_recompiler_supported() ? 2 : 1); b++) {
        for (int stepping = 0; stepping < 2; stepping++) {
            pvm_vm_t* vm = pvm_create_standard_ex(buf, n, 0, NULL, 0, PVM_SPEC_0_8_0, 100000000,
                                                  backends[b]);
            CHECK(vm != NULL);
            if (!vm) return;
            pvm_set_host_callback(vm, hostcalls_callback);
            hc_numbers = 0;
            hc_logs = 0;
            if (stepping) {
                pvm_result_t r;
                uint64_t steps = 0;
                while ((r = pvm_step(vm)) == PVM_RESULT_STEPPED) steps++;
                CHECK_EQ(r, PVM_RESULT_OK);
                CHECK_EQ(steps + 1, 357);
            } else {
                CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
            }
            CHECK_EQ(pvm_get_instruction_count(vm), 357); /* as PolkaVM counts (bench/README.md) */
            pvm_destroy(vm);
        }
    }
}

/* ---- inner PVMs: the PVM-level host calls ---- */

static int refine_ids[16], refine_codes[16], refine_calls;

/* The documented idiom: built-in PVM-level host calls first, then the host's own. */
static pvm_host_result_t refine_callback(pvm_vm_t* vm, int id) {
    int b = pvm_handle_builtin_host_call(vm, id);
    if (refine_calls < 16) {
        refine_ids[refine_calls] = id;
        refine_codes[refine_calls] = b;
    }
    refine_calls++;
    if (b == PVM_BUILTIN_CONTINUE) return PVM_HOST_CONTINUE;
    if (b != PVM_BUILTIN_NOT_HANDLED) return b == PVM_BUILTIN_OOG ? PVM_HOST_OOG : PVM_HOST_ERROR;
    /* own host calls: none here */
    pvm_set_register(vm, 7, WHAT);
    return PVM_HOST_CONTINUE;
}

static pvm_vm_t* create_refine_guest(void) {
    pvm_vm_t* vm = pvm_create_standard(REFINE_GUEST, sizeof REFINE_GUEST, 0, NULL, 0,
                                       PVM_SPEC_0_8_0, REFINE_GUEST_GAS);
    CHECK(vm != NULL);
    return vm;
}

static void check_refine_output(pvm_vm_t* vm) {
    uint8_t out[16] = {0};
    CHECK_EQ(pvm_output(vm, out, sizeof out), 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | out[i];
    CHECK_EQ(v, 142);
    CHECK_EQ(pvm_get_gas(vm), REFINE_GUEST_GAS_LEFT);
    CHECK_EQ(pvm_inner_machine_count(vm), 0);
}

static void test_builtin_refine_guest(void) {
    static const int expected[REFINE_GUEST_NCALLS] = REFINE_GUEST_CALLS;
    pvm_vm_t* vm = create_refine_guest();
    if (!vm) return;
    pvm_set_host_callback(vm, refine_callback);
    refine_calls = 0;
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(refine_calls, REFINE_GUEST_NCALLS);
    for (int i = 0; i < REFINE_GUEST_NCALLS && i < refine_calls; i++) {
        CHECK_EQ(refine_ids[i], expected[i]);
        CHECK_EQ(refine_codes[i], PVM_BUILTIN_CONTINUE);
    }
    check_refine_output(vm);
    pvm_destroy(vm);

    /* automatic handling: no callback needed for a non-child ... */
    vm = create_refine_guest();
    if (!vm) return;
    CHECK_EQ(pvm_get_builtin_host_calls(vm), 0);
    pvm_set_builtin_host_calls(vm, 1);
    CHECK_EQ(pvm_get_builtin_host_calls(vm), 1);
    /* ... but a child never performs them: the first ecalli (machine) goes to the caller */
    CHECK_EQ(pvm_execute(vm, 0, 1), PVM_RESULT_HOST_CALL);
    CHECK_EQ(pvm_get_host_call_id(vm), 9);
    CHECK_EQ(pvm_is_child(vm), 1);
    CHECK_EQ(pvm_inner_machine_count(vm), 0);
    /* a child's callback gets NOT_HANDLED for every id (the guest, answered WHAT, then loops on
       invoke until it runs out of gas) */
    pvm_set_host_callback(vm, refine_callback);
    refine_calls = 0;
    pvm_set_gas(vm, 5000);
    CHECK_EQ(pvm_resume(vm), PVM_RESULT_OOG);
    CHECK(refine_calls >= 4);
    for (int i = 0; i < refine_calls && i < 16; i++) CHECK_EQ(refine_codes[i], PVM_BUILTIN_NOT_HANDLED);
    pvm_set_host_callback(vm, NULL);
    pvm_set_gas(vm, REFINE_GUEST_GAS);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(pvm_is_child(vm), 0);
    check_refine_output(vm);
    pvm_destroy(vm);
}

static int oog_code;

static pvm_host_result_t oog_callback(pvm_vm_t* vm, int id) {
    oog_code = pvm_handle_builtin_host_call(vm, id);
    /* a second call for the same host call is refused */
    CHECK_EQ(pvm_handle_builtin_host_call(vm, id), PVM_BUILTIN_ERROR);
    CHECK(error_contains("already"));
    return oog_code == PVM_BUILTIN_OOG ? PVM_HOST_OOG : PVM_HOST_CONTINUE;
}

static void test_builtin_errors_and_oog(void) {
    prog_t p;
    memset(&p, 0, sizeof p);
    ECALLI(&p, 0); /* gas: costs 48 */
    EXIT(&p);
    pvm_vm_t* vm = create(&p, 0);
    if (!vm) return;
    /* outside a host callback: an error */
    pvm_clear_error();
    CHECK_EQ(pvm_handle_builtin_host_call(vm, 0), PVM_BUILTIN_ERROR);
    CHECK(error_contains("only allowed inside"));
    CHECK_EQ(pvm_handle_builtin_host_call(NULL, 0), PVM_BUILTIN_ERROR);
    uint32_t pc, cost;
    CHECK_EQ(pvm_block_gas_costs(vm, &pc, &cost, 1), 1);
    pvm_set_gas(vm, cost + 10);
    pvm_set_host_callback(vm, oog_callback);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OOG);
    CHECK_EQ(oog_code, PVM_BUILTIN_OOG);
    CHECK_EQ(pvm_get_machine_state(vm), OOG);
    CHECK_EQ(pvm_get_pc(vm), 0); /* at the ecalli */
    /* enough gas: pc 0 is the resume point (the ecalli, its block already paid for), so the host
       call runs again and answers the gas left after its own charge of 48 */
    pvm_set_gas(vm, 1000);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(oog_code, PVM_BUILTIN_CONTINUE);
    CHECK_EQ(pvm_get_register(vm, 7), 1000 - 48);
    pvm_destroy(vm);
}

/* ---- tracing ---- */

typedef struct {
    int lines, with_hash, ecalli_lines, exit_lines;
    char first[256], last[256];
} trace_count_t;

static void count_sink(void* user, const char* line) {
    trace_count_t* t = (trace_count_t*)user;
    if (t->lines == 0) snprintf(t->first, sizeof t->first, "%s", line);
    snprintf(t->last, sizeof t->last, "%s", line);
    t->lines++;
    if (strstr(line, "pvmHash=0x")) t->with_hash++;
    if (strncmp(line, "ECALLI ", 7) == 0) t->ecalli_lines++;
    if (strncmp(line, "EXIT ", 5) == 0) t->exit_lines++;
}

static pvm_host_result_t continue_callback(pvm_vm_t* vm, int id) {
    (void)id;
    pvm_set_register(vm, 7, 0x20000);
    return PVM_HOST_CONTINUE;
}

static void test_tracing(void) {
    prog_t p;
    add_program(&p);
    pvm_vm_t* vm = create(&p, 1000);
    pvm_vm_t* plain = create(&p, 1000);
    if (!vm || !plain) return;
    trace_count_t t;
    memset(&t, 0, sizeof t);
    pvm_set_trace_sink(vm, count_sink, &t);
    pvm_set_tracing(vm, 1);
    CHECK_EQ(pvm_get_tracing(vm), 1);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(pvm_execute(plain, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(pvm_get_gas(vm), pvm_get_gas(plain)); /* same result as the normal run path */
    CHECK_EQ(pvm_get_register(vm, 9), 42);
    /* load_imm, load_imm, add_64, load_imm (the halting jump_ind ends the run), EXIT */
    CHECK_EQ(t.lines, 5);
    CHECK_EQ(t.exit_lines, 1);
    CHECK_EQ(t.with_hash, 1); /* only EXIT: no hash interval */
    CHECK(strncmp(t.first, "1: PC 0 LOAD_IMM g=", 19) == 0);
    CHECK(strstr(t.first, "reg=\"[0 0 0 0 0 0 0 5 0 0 0 0 0]\"") != NULL);
    CHECK(strncmp(t.last, "EXIT halt pc=", 13) == 0 && strstr(t.last, "steps=5") != NULL);

    /* hash every 2nd step; a new pvm_execute numbers from 1 again */
    memset(&t, 0, sizeof t);
    pvm_set_trace_hash_interval(vm, 2);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(t.lines, 5);
    CHECK_EQ(t.with_hash, 3); /* steps 2, 4 and EXIT */
    CHECK(strncmp(t.first, "1: PC 0 ", 8) == 0);
    pvm_destroy(vm);
    pvm_destroy(plain);

    /* host calls: an ECALLI line after each continued one */
    host_program(&p);
    vm = create(&p, 100000);
    if (!vm) return;
    CHECK_EQ(pvm_map_pages(vm, 0x20000, 4096, PVM_ACCESS_WRITE), 0);
    memset(&t, 0, sizeof t);
    pvm_set_trace_sink(vm, count_sink, &t);
    pvm_set_tracing(vm, 1);
    pvm_set_host_callback(vm, continue_callback);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    /* load_imm, load_imm, ecalli, ECALLI, load_ind_u8, load_imm, EXIT */
    CHECK_EQ(t.lines, 7);
    CHECK_EQ(t.ecalli_lines, 1);
    /* stepping: one line per step */
    memset(&t, 0, sizeof t);
    pvm_set_pc(vm, 0);
    int steps = 0;
    while (pvm_step(vm) == PVM_RESULT_STEPPED) steps++;
    CHECK_EQ(steps, 5);
    CHECK_EQ(t.lines, 7);
    /* off: nothing */
    memset(&t, 0, sizeof t);
    pvm_set_tracing(vm, 0);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(t.lines, 0);
    pvm_destroy(vm);
}

/* ---- pvm_hash and pvm_dump_state ---- */

static void test_hash_and_dump(void) {
    pvm_vm_t* vm = create_refine_guest();
    if (!vm) return;
    pvm_set_builtin_host_calls(vm, 1);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    uint8_t h[32], h2[32];
    CHECK_EQ(pvm_hash(vm, h), 0);
    CHECK_EQ(pvm_hash(vm, h2), 0);
    CHECK(memcmp(h, h2, 32) == 0);
    CHECK_EQ(pvm_hash(NULL, h), -1);
    CHECK_EQ(pvm_hash(vm, NULL), -1);

    size_t n = pvm_dump_state(vm, NULL, 0);
    CHECK(n > 240);
    char small[16];
    memset(small, 'x', sizeof small);
    CHECK_EQ(pvm_dump_state(vm, small, sizeof small), n); /* too small: empty string */
    CHECK_EQ(small[0], 0);
    char* dump = malloc(n + 1);
    if (!dump) return;
    CHECK_EQ(pvm_dump_state(vm, dump, n + 1), n);
    CHECK_EQ(strlen(dump), n);
    CHECK(strncmp(dump, "regs+gas: ", 10) == 0);
    CHECK(strstr(dump, "\npage 0x") != NULL);

    /* changing a register changes the hash */
    pvm_set_register(vm, 3, 1);
    CHECK_EQ(pvm_hash(vm, h2), 0);
    CHECK(memcmp(h, h2, 32) != 0);
    pvm_set_register(vm, 3, 0);

    const char* dir = getenv("PVM_TEST_DUMP_DIR");
    if (dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/dump.txt", dir);
        FILE* f = fopen(path, "w");
        CHECK(f != NULL);
        if (f) {
            fputs(dump, f);
            fclose(f);
        }
        snprintf(path, sizeof path, "%s/hash.txt", dir);
        f = fopen(path, "w");
        CHECK(f != NULL);
        if (f) {
            for (int i = 0; i < 32; i++) fprintf(f, "%02x", h[i]);
            fputc('\n', f);
            fclose(f);
        }
    }
    free(dump);
    pvm_destroy(vm);
}

/* ---- JIP-6 ---- */

static char* jip6_log_text(pvm_vm_t* vm) {
    size_t n = pvm_jip6_log(vm, NULL, 0);
    CHECK(n > 0);
    char* text = malloc(n + 1);
    if (!text) return NULL;
    CHECK_EQ(pvm_jip6_log(vm, text, n + 1), n);
    return text;
}

static void test_jip6_replay_errors(void) {
    char report[256];
    const char* junk = "this is not a log";
    CHECK_EQ(pvm_jip6_replay(junk, strlen(junk), PVM_SPEC_0_8_0, 1, report, sizeof report), -1);
    CHECK(strstr(report, "program") != NULL);
    const char* bad_program = "program 0x0102\n";
    CHECK_EQ(pvm_jip6_replay(bad_program, strlen(bad_program), PVM_SPEC_0_8_0, 1, NULL, 0), -1);
    CHECK_EQ(pvm_jip6_replay(NULL, 5, PVM_SPEC_0_8_0, 1, report, sizeof report), -1);
    CHECK_EQ(pvm_jip6_replay(junk, strlen(junk), 9, 1, report, sizeof report), -1);
    CHECK(strstr(report, "unknown spec") != NULL);
    /* no log recorded */
    prog_t p;
    add_program(&p);
    pvm_vm_t* vm = create(&p, 100);
    if (!vm) return;
    CHECK_EQ(pvm_jip6_log(vm, NULL, 0), 0);
    CHECK(error_contains("no JIP-6 log"));
    pvm_destroy(vm);

    /* the refine guest's log, with the built-in host calls, replays without inner PVMs */
    vm = create_refine_guest();
    if (!vm) return;
    pvm_set_jip6_recording(vm, 1);
    pvm_set_host_callback(vm, refine_callback);
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    char* text = jip6_log_text(vm);
    if (text) {
        CHECK_EQ(pvm_jip6_replay(text, strlen(text), PVM_SPEC_0_8_0, 1, report, sizeof report), 0);
        CHECK(strstr(report, "7 host calls") != NULL);
        free(text);
    }
    pvm_destroy(vm);
}

static void test_jip6_hostcalls(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        failed++;
        return;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    pvm_vm_t* vm = pvm_create_standard(buf, n, 0, NULL, 0, PVM_SPEC_0_8_0, 100000000);
    CHECK(vm != NULL);
    if (!vm) return;
    hc_logs = hc_numbers = 0;
    pvm_set_jip6_recording(vm, 1);
    pvm_set_host_callback(vm, hostcalls_callback); /* get_number: 100, 200, 300; log: reads */
    CHECK_EQ(pvm_execute(vm, 0, 0), PVM_RESULT_OK);
    CHECK_EQ(hc_numbers, 3);
    char* text = jip6_log_text(vm);
    pvm_destroy(vm);
    if (!text) return;
    /* program, start, 5 host calls (log, 3 x get_number, log), HALT */
    CHECK(strncmp(strstr(text, "program 0x"), "program 0x", 10) == 0);
    int ecallis = 0;
    for (const char* q = text; (q = strstr(q, "\necalli=")) != NULL; q++) ecallis++;
    CHECK_EQ(ecallis, 5);
    CHECK(strstr(text, "setreg r07 <- 0x64") != NULL);  /* 100 */
    CHECK(strstr(text, "setreg r07 <- 0x12c") != NULL); /* 300 */
    CHECK(strstr(text, "\nmemread 0x") != NULL);        /* the log messages */
    CHECK(strstr(text, "\nHALT pc=") != NULL);

    char report[512];
    size_t len = strlen(text);
    CHECK_EQ(pvm_jip6_replay(text, len, PVM_SPEC_0_8_0, 1, report, sizeof report), 0);
    CHECK(strstr(report, "5 host calls") != NULL);
    printf("JIP-6 replay of hostcalls.jam: %s\n", report);

    /* corrupt a register value in the second ecalli line: a divergence there */
    char* bad = malloc(len + 1);
    if (bad) {
        memcpy(bad, text, len + 1);
        char* line = strstr(bad, "\necalli=");
        line = line ? strstr(line + 1, "\necalli=") : NULL;
        char* reg = line ? strstr(line, " r01=0x") : NULL;
        CHECK(reg != NULL);
        if (reg) {
            reg[7] = reg[7] == '1' ? '2' : '1';
            CHECK_EQ(pvm_jip6_replay(bad, len, PVM_SPEC_0_8_0, 1, report, sizeof report), 1);
            CHECK(strstr(report, "ecalli #2") != NULL && strstr(report, "r1:") != NULL);
            printf("JIP-6 replay of a corrupted copy: %s\n", report);
            /* a truncated report is still NUL-terminated */
            char tiny[8];
            CHECK_EQ(pvm_jip6_replay(bad, len, PVM_SPEC_0_8_0, 1, tiny, sizeof tiny), 1);
            CHECK_EQ(strlen(tiny), 7);
            /* without verification the ecalli lines are not compared */
            CHECK_EQ(pvm_jip6_replay(bad, len, PVM_SPEC_0_8_0, 0, NULL, 0), 0);
        }
        free(bad);
    }
    free(text);
}

int main(int argc, char** argv) {
    printf("libpvm %s\n", pvm_version());
    test_constants_and_names();
    test_halt_registers_gas();
    test_step_oog_panic();
    test_host_callback();
    test_terminate_and_resume();
    test_destroy_inside_callback();
    test_page_fault();
    test_invalid_inputs();
    test_sbrk_072();
    test_standard_program();
    test_instruction_count();
    test_builtin_refine_guest();
    test_builtin_errors_and_oog();
    test_tracing();
    test_hash_and_dump();
    test_jip6_replay_errors();
    if (argc > 1) {
        test_hostcalls_guest(argv[1]);
        test_instruction_count_guest(argv[1]);
        test_jip6_hostcalls(argv[1]);
    }
    pvm_clear_error();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
