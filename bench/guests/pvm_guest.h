/*
 * pvm_guest.h - minimal support for writing JAM PVM guest programs in freestanding C.
 *
 * Built for the PVM with clang (--target=riscv64 -march=rv64emac... -mabi=lp64e, see
 * bench/build.sh) and linked with polkavm-linker (bench/tool), or natively with the host C
 * compiler for reference outputs (bench/native).
 *
 * Guest ABI (JAM / GP A.7):
 *   on entry  a0 (PVM r7) = address of the argument bytes, a1 (PVM r8) = their length,
 *             ra = 0xFFFF0000 (returning halts the machine), sp = top of the stack;
 *   on return a0 (r7) = address of the output bytes, a1 (r8) = their length.
 * An entry point is a function `pvm_output f(u64 args_ptr, u64 args_len)`: a 16-byte struct of
 * two u64 is returned in a0/a1 by the RISC-V LP64(E) calling convention.
 */
#ifndef PVM_GUEST_H
#define PVM_GUEST_H

typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;
typedef __INT32_TYPE__ i32;
typedef __INT64_TYPE__ i64;
typedef __SIZE_TYPE__ usize;

typedef struct {
    u64 ptr;
    u64 len;
} pvm_output;

#define PVM_OUTPUT(buf, n) ((pvm_output){(u64)(usize)(buf), (u64)(n)})

/* Reads the little-endian u32 at args[0..4], or returns `dflt` if fewer than 4 bytes were given. */
static inline u32 pvm_arg_u32(u64 ptr, u64 len, u32 dflt) {
    if (len < 4) return dflt;
    const u8 *p = (const u8 *)(usize)ptr;
    return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24);
}

static inline void pvm_put_u64(u8 *out, u64 v) {
    for (int i = 0; i < 8; i++) out[i] = (u8)(v >> (8 * i));
}

#if defined(__riscv) && !defined(PVM_NATIVE)

/*
 * PVM_EXPORT(fn, "name") makes `fn` an entry point. polkavm-linker finds entry points through
 * the `.polkavm_exports` section; each entry is
 *     u8 version (1), pointer to a metadata record, pointer to the function;
 * a metadata record (in `.polkavm_metadata`) is
 *     u8 version (1), u32 flags (0), u32 name length, pointer to the name,
 *     u8 number of input registers, u8 number of output registers.
 * `bench/tool link` puts the exports into a dispatch table: the first at pc 0, the second at
 * pc 5, and so on.
 */
#define PVM_EXPORT(fn, name)                                                                \
    __asm__(".pushsection .polkavm_metadata,\"a\",@progbits\n"                                   \
            ".Lpvm_export_meta_" #fn ":\n"                                                  \
            "  .byte 1\n"                                                                   \
            "  .4byte 0\n"                                                                  \
            "  .4byte .Lpvm_export_name_end_" #fn " - .Lpvm_export_name_" #fn "\n"           \
            "  .8byte .Lpvm_export_name_" #fn "\n"                                          \
            "  .byte 2\n"                                                                   \
            "  .byte 2\n"                                                                   \
            ".Lpvm_export_name_" #fn ":\n"                                                  \
            "  .ascii \"" name "\"\n"                                                       \
            ".Lpvm_export_name_end_" #fn ":\n"                                              \
            ".popsection\n"                                                                 \
            ".pushsection .polkavm_exports,\"a\",@progbits\n"                                    \
            "  .byte 1\n"                                                                   \
            "  .8byte .Lpvm_export_meta_" #fn "\n"                                          \
            "  .8byte " #fn "\n"                                                            \
            ".popsection\n")

/*
 * Host calls. An import call site is the custom-0 instruction `.insn r 0x0b, 0, 0, zero, zero,
 * zero` immediately followed by an 8-byte pointer to a metadata record:
 *     u8 version (2), u32 flags (0), u32 name length, pointer to the name,
 *     u8 input registers, u8 output registers, u8 has_index (1), u32 index.
 * polkavm-linker replaces the pair with `ecalli index`. (Version-1 records without an index get
 * indices 0, 1, 2, ... in the order of their sorted names, which is useless for JAM.)
 * Arguments go in a0..a5 (PVM r7..r12), the result comes back in a0 (r7) [and a1 (r8)];
 * t0-t2 and a0-a5 are treated as clobbered by the call.
 */
#define PVM_IMPORT_ASM(sym, index, n_in, n_out)                                             \
    ".pushsection .polkavm_metadata,\"a\",@progbits\n"                                           \
    "1:\n"                                                                                  \
    "  .byte 2\n"                                                                           \
    "  .4byte 0\n"                                                                          \
    "  .4byte 3f - 2f\n"                                                                    \
    "  .8byte 2f\n"                                                                         \
    "  .byte " #n_in "\n"                                                                   \
    "  .byte " #n_out "\n"                                                                  \
    "  .byte 1\n"                                                                           \
    "  .4byte " #index "\n"                                                                 \
    "2:\n"                                                                                  \
    "  .ascii \"" sym "\"\n"                                                                \
    "3:\n"                                                                                  \
    ".popsection\n"                                                                         \
    ".insn r 0x0b, 0, 0, zero, zero, zero\n"                                                \
    ".8byte 1b\n"

#define PVM_IMPORT_CLOBBERS "memory", "t0", "t1", "t2", "a2", "a3", "a4", "a5"

/* u64 cname(void) -> host call `index`, result in r7. */
#define PVM_IMPORT0(cname, sym, index)                                                     \
    static inline u64 cname(void) {                                                        \
        register u64 a0 __asm__("a0");                                                     \
        register u64 a1 __asm__("a1");                                                     \
        __asm__ volatile(PVM_IMPORT_ASM(sym, index, 0, 1)                                  \
                         : "=r"(a0), "=r"(a1)                                              \
                         :                                                                 \
                         : PVM_IMPORT_CLOBBERS);                                           \
        return a0;                                                                         \
    }

/* u64 cname(x, y) -> host call `index` with r7 = x, r8 = y, result in r7. */
#define PVM_IMPORT2(cname, sym, index)                                                     \
    static inline u64 cname(u64 x, u64 y) {                                                \
        register u64 a0 __asm__("a0") = x;                                                 \
        register u64 a1 __asm__("a1") = y;                                                 \
        __asm__ volatile(PVM_IMPORT_ASM(sym, index, 2, 1)                                  \
                         : "+r"(a0), "+r"(a1)                                              \
                         :                                                                 \
                         : PVM_IMPORT_CLOBBERS);                                           \
        return a0;                                                                         \
    }

#else /* native reference build */

/* The native wrapper (bench/native/main.c) calls `pvm_native_entry`. */
#define PVM_EXPORT(fn, name)                                                                \
    pvm_output pvm_native_entry(u64 args_ptr, u64 args_len);                                \
    pvm_output pvm_native_entry(u64 args_ptr, u64 args_len) { return fn(args_ptr, args_len); }

#endif

#endif /* PVM_GUEST_H */
