/*
 * sieve.c - sieve of Eratosthenes with one byte per number over a large zero-initialised
 * (.bss, i.e. heap pages of the standard program) array. Stresses big memory and first-touch
 * page faults: at the default size it touches 16 MiB + a little.
 *
 * Args: u32 LE N = sieve limit: counts the primes p < N (default SIEVE_DEFAULT_N; at most
 *       SIEVE_MAX_N).
 * Output: 24 bytes = three u64 LE: the number of primes below N, their sum, the largest one.
 */
#include "pvm_guest.h"

#define SIEVE_DEFAULT_N (16u * 1024u * 1024u)
#define SIEVE_MAX_N (32u * 1024u * 1024u)

static u8 composite[SIEVE_MAX_N];
static u8 result[24];

static pvm_output sieve_main(u64 args_ptr, u64 args_len) {
    u32 n = pvm_arg_u32(args_ptr, args_len, SIEVE_DEFAULT_N);
    if (n > SIEVE_MAX_N) n = SIEVE_MAX_N;

    for (u64 i = 2; i * i < n; i++) {
        if (composite[i]) continue;
        for (u64 j = i * i; j < n; j += i) composite[j] = 1;
    }

    u64 count = 0, sum = 0, largest = 0;
    for (u64 i = 2; i < n; i++) {
        if (!composite[i]) {
            count++;
            sum += i;
            largest = i;
        }
    }
    pvm_put_u64(result + 0, count);
    pvm_put_u64(result + 8, sum);
    pvm_put_u64(result + 16, largest);
    return PVM_OUTPUT(result, 24);
}

__attribute__((used)) pvm_output sieve_entry(u64 args_ptr, u64 args_len) {
    return sieve_main(args_ptr, args_len);
}
PVM_EXPORT(sieve_entry, "sieve");
