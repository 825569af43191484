/*
 * hostcalls.c - a small JAM standard program that makes host calls (`ecalli`).
 *
 * Host calls it expects (PVM register numbers; r7 = a0, r8 = a1):
 *   ecalli 100  "log":        r7 = address of a message, r8 = its length in bytes;
 *                             the result (r7) is ignored.
 *   ecalli 1001 "get_number": no arguments; returns a u64 in r7.
 * Like any call, a host call may clobber r2-r4 (t0-t2) and r7-r12 (a0-a5); the guest relies only
 * on r0 (ra), r1 (sp), r5 and r6 (s0, s1) being preserved.
 *
 * Args: optional u32 LE K = how many numbers to fetch (default 3, at most 16).
 * Behaviour: logs "hostcalls: start", calls get_number K times, then logs and returns the message
 *   "numbers: n1, n2, ..., nK; sum = S"   (decimal, S = wrapping u64 sum).
 * With a host whose get_number returns 100, 200, 300 (pvm-bench-tool run --hosts demo), the output
 * is the ASCII text "numbers: 100, 200, 300; sum = 600".
 */
#include "pvm_guest.h"

PVM_IMPORT2(host_log, "log", 100)
PVM_IMPORT0(host_get_number, "get_number", 1001)

static char message[512];
static const char START[] = "hostcalls: start";

static usize put_str(char *out, usize pos, const char *s) {
    while (*s) out[pos++] = *s++;
    return pos;
}

static usize put_dec(char *out, usize pos, u64 v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) out[pos++] = tmp[--n];
    return pos;
}

static pvm_output hostcalls_main(u64 args_ptr, u64 args_len) {
    u32 k = pvm_arg_u32(args_ptr, args_len, 3);
    if (k > 16) k = 16;

    host_log((u64)(usize)START, sizeof(START) - 1);

    u64 sum = 0;
    usize pos = put_str(message, 0, "numbers: ");
    for (u32 i = 0; i < k; i++) {
        u64 x = host_get_number();
        sum += x;
        if (i) pos = put_str(message, pos, ", ");
        pos = put_dec(message, pos, x);
    }
    pos = put_str(message, pos, "; sum = ");
    pos = put_dec(message, pos, sum);

    host_log((u64)(usize)message, pos);
    return PVM_OUTPUT(message, pos);
}

__attribute__((used)) pvm_output hostcalls_entry(u64 args_ptr, u64 args_len) {
    return hostcalls_main(args_ptr, args_len);
}
PVM_EXPORT(hostcalls_entry, "hostcalls");
