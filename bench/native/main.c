/*
 * Native reference wrapper: compile together with one guest source, e.g.
 *   gcc -O2 -DPVM_NATIVE -I bench/guests bench/native/main.c bench/guests/sort.c -o sort
 *   ./sort [ARGS_HEX]
 * Calls the guest's entry point with the given argument bytes and prints the output as hex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvm_guest.h"

pvm_output pvm_native_entry(u64 args_ptr, u64 args_len);

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(int argc, char **argv) {
    const char *hex = argc > 1 ? argv[1] : "";
    if (hex[0] == '0' && hex[1] == 'x') hex += 2;
    size_t n = strlen(hex);
    if (n % 2 != 0) {
        fprintf(stderr, "odd-length hex\n");
        return 2;
    }
    unsigned char *args = malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "bad hex\n");
            return 2;
        }
        args[i] = (unsigned char)(hi * 16 + lo);
    }
    pvm_output out = pvm_native_entry((u64)(usize)args, (u64)(n / 2));
    const unsigned char *p = (const unsigned char *)(usize)out.ptr;
    for (u64 i = 0; i < out.len; i++) printf("%02x", p[i]);
    printf("\n");
    free(args);
    return 0;
}
