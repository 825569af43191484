/*
 * interp.c - a small register-machine bytecode interpreter. The dispatch `switch` over dense
 * opcodes compiles to a jump table, i.e. PVM `jump_ind` through the program's jump table on
 * every bytecode instruction. The bytecode program lives in read-only data.
 *
 * Args: u32 LE N = number of iterations of the bytecode's main loop (default INTERP_DEFAULT_N;
 *       0 is treated as 1).
 * The 256-word VM memory starts with a few non-zero words (initialised read-write data).
 * Output: 32 bytes = four u64 LE: r1 (loop accumulator), r8 (hash of the VM memory), r13 (sum
 *         accumulated by the subroutine), number of bytecode instructions executed.
 */
#include "pvm_guest.h"

#define INTERP_DEFAULT_N 600000u

enum {
    OP_HALT, /* stop */
    OP_LI,   /* r[a] = sign-extended next word */
    OP_MOV,  /* r[a] = r[b] */
    OP_ADD,  /* r[a] = r[b] + r[c] */
    OP_SUB,  /* r[a] = r[b] - r[c] */
    OP_MUL,  /* r[a] = r[b] * r[c] */
    OP_XOR,  /* r[a] = r[b] ^ r[c] */
    OP_AND,  /* r[a] = r[b] & r[c] */
    OP_OR,   /* r[a] = r[b] | r[c] */
    OP_SHL,  /* r[a] = r[b] << c */
    OP_SHR,  /* r[a] = r[b] >> c */
    OP_ROTL, /* r[a] = rotl(r[b], c) */
    OP_ADDI, /* r[a] = r[b] + (i8)c */
    OP_JNZ,  /* if r[a] != 0: pc = next word */
    OP_JZ,   /* if r[a] == 0: pc = next word */
    OP_JLT,  /* if r[a] < r[b] (unsigned): pc = next word */
    OP_DJNZ, /* r[a] -= 1; if r[a] != 0: pc = next word */
    OP_LOAD, /* r[a] = mem[(r[b] + c) & 255] */
    OP_STORE,/* mem[(r[b] + c) & 255] = r[a] */
    OP_CALL, /* push return pc; pc = next word */
    OP_RET,  /* pc = pop */
};

#define I(op, a, b, c) ((u32)(op) | ((u32)(a) << 8) | ((u32)(b) << 16) | ((u32)(c) << 24))

/* Padded with HALT (0) to 64 words so that `pc & 63` keeps every fetch in bounds. */
static const u32 PROGRAM[64] = {
    /*  0 */ I(OP_LI, 1, 0, 0), 0x12345678,
    /*  2 */ I(OP_LI, 2, 0, 0), 0,
    /*  4 */ I(OP_LI, 3, 0, 0), 0x5bd1e995,
    /*  6 */ I(OP_LI, 9, 0, 0), 255,
    /*  8 */ I(OP_LI, 10, 0, 0), 3,
    /* 10 */ I(OP_LI, 13, 0, 0), 0,
    /* 12: loop */
    /* 12 */ I(OP_MUL, 4, 1, 3),
    /* 13 */ I(OP_XOR, 1, 4, 2),
    /* 14 */ I(OP_ROTL, 1, 1, 13),
    /* 15 */ I(OP_AND, 5, 2, 9),
    /* 16 */ I(OP_LOAD, 6, 5, 0),
    /* 17 */ I(OP_ADD, 6, 6, 1),
    /* 18 */ I(OP_STORE, 6, 5, 0),
    /* 19 */ I(OP_ADDI, 2, 2, 1),
    /* 20 */ I(OP_AND, 7, 1, 10),
    /* 21 */ I(OP_JZ, 7, 0, 0), 25,
    /* 23 */ I(OP_CALL, 0, 0, 0), 40,
    /* 25: skip */
    /* 25 */ I(OP_DJNZ, 0, 0, 0), 12,
    /* 27 */ I(OP_LI, 5, 0, 0), 0,
    /* 29 */ I(OP_LI, 8, 0, 0), 0,
    /* 31 */ I(OP_LI, 11, 0, 0), 256,
    /* 33: sumloop */
    /* 33 */ I(OP_LOAD, 6, 5, 0),
    /* 34 */ I(OP_XOR, 8, 8, 6),
    /* 35 */ I(OP_ROTL, 8, 8, 7),
    /* 36 */ I(OP_ADDI, 5, 5, 1),
    /* 37 */ I(OP_JLT, 5, 11, 0), 33,
    /* 39 */ I(OP_HALT, 0, 0, 0),
    /* 40: sub */
    /* 40 */ I(OP_SHR, 12, 1, 17),
    /* 41 */ I(OP_XOR, 13, 13, 12),
    /* 42 */ I(OP_ADD, 13, 13, 2),
    /* 43 */ I(OP_RET, 0, 0, 0),
};


/* Initialised mutable data: lands in the standard program's `w` (read-write data) section. */
static u64 vmem[256] = {[0] = 0x0123456789ABCDEFull, [1] = 42, [100] = 0xDEADBEEFull, [255] = 7};
static u8 result[32];

static u64 run(const u32 *code, u64 *r, u64 *ops_out) {
    u32 call_stack[64];
    u32 csp = 0;
    u32 pc = 0;
    u64 ops = 0;
    for (;;) {
        u32 w = code[pc & 63];
        pc++;
        ops++;
        u32 a = (w >> 8) & 15, b = (w >> 16) & 15, c = w >> 24;
        switch (w & 0xff) {
        case OP_HALT:
            *ops_out = ops;
            return r[1];
        case OP_LI:
            r[a] = (u64)(i64)(i32)code[pc & 63];
            pc++;
            break;
        case OP_MOV: r[a] = r[b]; break;
        case OP_ADD: r[a] = r[b] + r[c & 15]; break;
        case OP_SUB: r[a] = r[b] - r[c & 15]; break;
        case OP_MUL: r[a] = r[b] * r[c & 15]; break;
        case OP_XOR: r[a] = r[b] ^ r[c & 15]; break;
        case OP_AND: r[a] = r[b] & r[c & 15]; break;
        case OP_OR: r[a] = r[b] | r[c & 15]; break;
        case OP_SHL: r[a] = r[b] << (c & 63); break;
        case OP_SHR: r[a] = r[b] >> (c & 63); break;
        case OP_ROTL: {
            u32 s = c & 63;
            r[a] = s ? (r[b] << s) | (r[b] >> (64 - s)) : r[b];
            break;
        }
        case OP_ADDI: r[a] = r[b] + (u64)(i64)(signed char)c; break;
        case OP_JNZ:
            pc = r[a] != 0 ? code[pc & 63] : pc + 1;
            break;
        case OP_JZ:
            pc = r[a] == 0 ? code[pc & 63] : pc + 1;
            break;
        case OP_JLT:
            pc = r[a] < r[b] ? code[pc & 63] : pc + 1;
            break;
        case OP_DJNZ:
            r[a]--;
            pc = r[a] != 0 ? code[pc & 63] : pc + 1;
            break;
        case OP_LOAD: r[a] = vmem[(r[b] + c) & 255]; break;
        case OP_STORE: vmem[(r[b] + c) & 255] = r[a]; break;
        case OP_CALL:
            call_stack[csp++ & 63] = pc + 1;
            pc = code[pc & 63];
            break;
        case OP_RET:
            pc = call_stack[--csp & 63];
            break;
        default:
            *ops_out = ops;
            return ~(u64)0;
        }
    }
}

static pvm_output interp_main(u64 args_ptr, u64 args_len) {
    u32 n = pvm_arg_u32(args_ptr, args_len, INTERP_DEFAULT_N);
    if (n == 0) n = 1;
    u64 r[16];
    for (int i = 0; i < 16; i++) r[i] = 0;
    r[0] = n;
    u64 ops = 0;
    run(PROGRAM, r, &ops);
    pvm_put_u64(result + 0, r[1]);
    pvm_put_u64(result + 8, r[8]);
    pvm_put_u64(result + 16, r[13]);
    pvm_put_u64(result + 24, ops);
    return PVM_OUTPUT(result, 32);
}

__attribute__((used)) pvm_output interp_entry(u64 args_ptr, u64 args_len) {
    return interp_main(args_ptr, args_len);
}
PVM_EXPORT(interp_entry, "interp");
