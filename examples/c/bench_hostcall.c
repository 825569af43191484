/*
 * Host-call round trip through the C ABI, per backend: a guest loop `ecalli 1; jump back` whose
 * host calls are answered (1) by an empty pvm_host_callback_t and (2) without a callback, by
 * pvm_execute/pvm_resume stopping at every ecalli. Prints the median ns per host call of 5 runs
 * (the loop's own two instructions included).
 *
 *   cargo build --release -p pvm-capi
 *   gcc -O2 -Wall -Wextra -I include examples/c/bench_hostcall.c -L target/release -lpvm \
 *       -o /tmp/bench_hostcall
 *   LD_LIBRARY_PATH=target/release /tmp/bench_hostcall [CALLS]     (default 1000000)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pvm.h"

static long calls_wanted;
static long calls_seen;

/* Continues until `calls_wanted` calls were answered, then ends the run (PVM_RESULT_PANIC). */
static pvm_host_result_t answer(pvm_vm_t* vm, int id) {
    (void)vm;
    (void)id;
    return ++calls_seen < calls_wanted ? PVM_HOST_CONTINUE : PVM_HOST_ERROR;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

/* The program blob E(|j|) E1(z) E(|c|) c k: pc 0 `ecalli 1`, pc 2 `jump 0` (offset -2). */
static const uint8_t BLOB[] = {0, 0, 4, 10, 1, 40, 0xfe, 0x05};

static pvm_vm_t* create(int backend) {
    pvm_vm_t* vm =
        pvm_create_from_blob_ex(BLOB, sizeof BLOB, PVM_SPEC_0_8_0, UINT64_C(1) << 62, backend);
    if (!vm) {
        fprintf(stderr, "create failed: %s\n", pvm_last_error());
        exit(1);
    }
    return vm;
}

/* ns per host call answered by the callback (one run of `calls` calls). */
static double with_callback(int backend, long calls) {
    pvm_vm_t* vm = create(backend);
    pvm_set_host_callback(vm, answer);
    calls_wanted = calls;
    calls_seen = 0;
    double t = now_ns();
    pvm_result_t r = pvm_execute(vm, 0, 0);
    t = now_ns() - t;
    if (r != PVM_RESULT_PANIC || calls_seen != calls) {
        fprintf(stderr, "unexpected end: result %d after %ld calls\n", (int)r, calls_seen);
        exit(1);
    }
    pvm_destroy(vm);
    return t / (double)calls;
}

/* ns per host call as a run that stops at the ecalli and is resumed. */
static double resumed(int backend, long calls) {
    pvm_vm_t* vm = create(backend);
    double t = now_ns();
    pvm_result_t r = pvm_execute(vm, 0, 0);
    for (long i = 1; i < calls && r == PVM_RESULT_HOST_CALL; i++) r = pvm_resume(vm);
    t = now_ns() - t;
    if (r != PVM_RESULT_HOST_CALL) {
        fprintf(stderr, "unexpected result %d\n", (int)r);
        exit(1);
    }
    pvm_destroy(vm);
    return t / (double)calls;
}

int main(int argc, char** argv) {
    long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (calls < 1) {
        fprintf(stderr, "usage: %s [CALLS >= 1]\n", argv[0]);
        return 2;
    }
    const int backends[2] = {PVM_BACKEND_INTERPRETER, PVM_BACKEND_RECOMPILER};
    const char* names[2] = {"interpreter", "recompiler"};
    for (int b = 0; b < 2; b++) {
        if (backends[b] == PVM_BACKEND_RECOMPILER && !pvm_recompiler_supported()) {
            printf("%-11s  (not supported here)\n", names[b]);
            continue;
        }
        double cb[5], rs[5];
        for (int i = 0; i < 5; i++) {
            cb[i] = with_callback(backends[b], calls);
            rs[i] = resumed(backends[b], calls);
        }
        qsort(cb, 5, sizeof cb[0], cmp_double);
        qsort(rs, 5, sizeof rs[0], cmp_double);
        printf("%-11s  callback %6.1f ns per host call   execute/resume %6.1f ns per host call\n",
               names[b], cb[2], rs[2]);
    }
    return 0;
}
