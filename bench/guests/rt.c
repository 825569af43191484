/*
 * rt.c - the few C runtime functions that clang may call even in freestanding code
 * (struct copies, zero-initialised locals). Linked into every PVM guest; not used natively.
 * Compiled with -fno-builtin so these loops are not turned back into calls to themselves.
 */
#include "pvm_guest.h"

void *memset(void *dst, int c, usize n);
void *memcpy(void *dst, const void *src, usize n);
void *memmove(void *dst, const void *src, usize n);
int memcmp(const void *a, const void *b, usize n);

__attribute__((visibility("hidden"))) void *memset(void *dst, int c, usize n) {
    u8 *d = (u8 *)dst;
    u64 v = (u8)c;
    v |= v << 8;
    v |= v << 16;
    v |= v << 32;
    while (n > 0 && ((usize)d & 7) != 0) {
        *d++ = (u8)c;
        n--;
    }
    while (n >= 8) {
        *(u64 *)d = v;
        d += 8;
        n -= 8;
    }
    while (n > 0) {
        *d++ = (u8)c;
        n--;
    }
    return dst;
}

__attribute__((visibility("hidden"))) void *memcpy(void *dst, const void *src, usize n) {
    u8 *d = (u8 *)dst;
    const u8 *s = (const u8 *)src;
    if ((((usize)d | (usize)s) & 7) == 0) {
        while (n >= 8) {
            *(u64 *)d = *(const u64 *)s;
            d += 8;
            s += 8;
            n -= 8;
        }
    }
    while (n > 0) {
        *d++ = *s++;
        n--;
    }
    return dst;
}

__attribute__((visibility("hidden"))) void *memmove(void *dst, const void *src, usize n) {
    u8 *d = (u8 *)dst;
    const u8 *s = (const u8 *)src;
    if (d == s || n == 0) return dst;
    if (d < s || d >= s + n) return memcpy(dst, src, n);
    while (n > 0) {
        n--;
        d[n] = s[n];
    }
    return dst;
}

__attribute__((visibility("hidden"))) int memcmp(const void *a, const void *b, usize n) {
    const u8 *x = (const u8 *)a;
    const u8 *y = (const u8 *)b;
    for (usize i = 0; i < n; i++) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}
