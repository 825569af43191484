/*
 * sort.c - sorts N pseudo-random u64 values with an iterative quicksort (median of three,
 * insertion sort for short ranges). Stresses unpredictable branches and memory traffic.
 *
 * Args: u32 LE N = number of elements (default SORT_DEFAULT_N; at most SORT_MAX_N).
 * Data: a[i] = the i-th output of xorshift64 seeded with 0x9E3779B97F4A7C15 (state updated
 *       before each output).
 * Output: 32 bytes = four u64 LE: N, FNV-style hash of the sorted array, number of adjacent
 *         out-of-order pairs after sorting (must be 0), the median a[N/2] (0 if N = 0).
 */
#include "pvm_guest.h"

#define SORT_DEFAULT_N 1000000u
#define SORT_MAX_N (2u * 1024u * 1024u) /* 16 MiB of u64 in .bss */

static u64 data[SORT_MAX_N];
static u8 result[32];

static void insertion_sort(u64 *a, i64 lo, i64 hi) {
    for (i64 i = lo + 1; i <= hi; i++) {
        u64 v = a[i];
        i64 j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static inline void swap(u64 *a, i64 i, i64 j) {
    u64 t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void quicksort(u64 *a, i64 n) {
    /* Explicit stack of (lo, hi) ranges; pushing the larger half first and processing the
       smaller one keeps the depth below 2*log2(n). */
    i64 stack[2 * 64];
    int sp = 0;
    i64 lo = 0, hi = n - 1;
    for (;;) {
        while (hi - lo > 16) {
            i64 mid = lo + ((hi - lo) >> 1);
            if (a[mid] < a[lo]) swap(a, mid, lo);
            if (a[hi] < a[lo]) swap(a, hi, lo);
            if (a[hi] < a[mid]) swap(a, hi, mid);
            u64 pivot = a[mid];
            i64 i = lo, j = hi;
            while (i <= j) {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j) {
                    swap(a, i, j);
                    i++;
                    j--;
                }
            }
            /* [lo, j] and [i, hi] remain. */
            if (j - lo < hi - i) {
                stack[sp++] = i;
                stack[sp++] = hi;
                hi = j;
            } else {
                stack[sp++] = lo;
                stack[sp++] = j;
                lo = i;
            }
        }
        insertion_sort(a, lo, hi);
        if (sp == 0) break;
        hi = stack[--sp];
        lo = stack[--sp];
    }
}

static pvm_output sort_main(u64 args_ptr, u64 args_len) {
    u32 n = pvm_arg_u32(args_ptr, args_len, SORT_DEFAULT_N);
    if (n > SORT_MAX_N) n = SORT_MAX_N;

    u64 x = 0x9E3779B97F4A7C15ull;
    for (u32 i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = x;
    }

    quicksort(data, (i64)n);

    u64 hash = 0xcbf29ce484222325ull, disorder = 0;
    for (u32 i = 0; i < n; i++) {
        hash = (hash ^ data[i]) * 0x100000001b3ull;
        if (i > 0 && data[i - 1] > data[i]) disorder++;
    }
    pvm_put_u64(result + 0, n);
    pvm_put_u64(result + 8, hash);
    pvm_put_u64(result + 16, disorder);
    pvm_put_u64(result + 24, n ? data[n / 2] : 0);
    return PVM_OUTPUT(result, 32);
}

__attribute__((used)) pvm_output sort_entry(u64 args_ptr, u64 args_len) {
    return sort_main(args_ptr, args_len);
}
PVM_EXPORT(sort_entry, "sort");
