/*
 * mandel.c - Mandelbrot set in 64-bit fixed point (Q7.56) with 64x64->128-bit multiplies,
 * so the PVM code is full of `mul_64` + `mul_upper_s_s` pairs. No 128-bit division.
 *
 * Args: u32 LE N = image width and height in pixels (default MANDEL_DEFAULT_N); the region is
 *       re in [-2.0, 0.5), im in [-1.25, 1.25), at most MANDEL_MAX_ITER iterations per pixel.
 * Output: 24 bytes = three u64 LE: FNV-style hash of all per-pixel iteration counts (row-major),
 *         total iterations, number of pixels that never escaped.
 */
#include "pvm_guest.h"

#define MANDEL_DEFAULT_N 300u
#define MANDEL_MAX_ITER 500u
#define FRAC 56

typedef __int128 i128;

static u8 result[24];

/* (a * b) >> FRAC with the full 128-bit product. */
static inline i64 fmul(i64 a, i64 b) { return (i64)(((i128)a * (i128)b) >> FRAC); }

static pvm_output mandel_main(u64 args_ptr, u64 args_len) {
    u32 n = pvm_arg_u32(args_ptr, args_len, MANDEL_DEFAULT_N);
    const i64 one = (i64)1 << FRAC;
    const i64 re0 = -2 * one, im0 = -(one + one / 4);
    const i64 re_span = 2 * one + one / 2, im_span = 2 * one + one / 2;
    const i64 four = 4 * one;
    i64 step_re = n ? re_span / (i64)n : 0;
    i64 step_im = n ? im_span / (i64)n : 0;

    u64 hash = 0xcbf29ce484222325ull, total = 0, inside = 0;
    for (u32 py = 0; py < n; py++) {
        i64 ci = im0 + (i64)py * step_im;
        for (u32 px = 0; px < n; px++) {
            i64 cr = re0 + (i64)px * step_re;
            i64 zr = 0, zi = 0;
            u32 it = 0;
            while (it < MANDEL_MAX_ITER) {
                i64 zr2 = fmul(zr, zr);
                i64 zi2 = fmul(zi, zi);
                if (zr2 + zi2 > four) break;
                i64 zri = fmul(zr, zi);
                zi = 2 * zri + ci;
                zr = zr2 - zi2 + cr;
                it++;
            }
            total += it;
            if (it == MANDEL_MAX_ITER) inside++;
            hash = (hash ^ it) * 0x100000001b3ull;
        }
    }
    pvm_put_u64(result + 0, hash);
    pvm_put_u64(result + 8, total);
    pvm_put_u64(result + 16, inside);
    return PVM_OUTPUT(result, 24);
}

__attribute__((used)) pvm_output mandel_entry(u64 args_ptr, u64 args_len) {
    return mandel_main(args_ptr, args_len);
}
PVM_EXPORT(mandel_entry, "mandel");
