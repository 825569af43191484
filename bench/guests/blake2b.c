/*
 * blake2b.c - BLAKE2b-512 (RFC 7693, unkeyed) over N KiB of generated data.
 * Stresses 64-bit ALU work and rotates (rori with Zbb).
 *
 * Args: u32 LE N = number of KiB to hash (default BLAKE2B_DEFAULT_KIB when args are empty).
 * Data: byte i of the message is byte (i % 8) (LE) of the (i / 8)-th output of
 *       xorshift64 seeded with 0x0123456789ABCDEF (state updated before each output).
 * Output: the 64-byte BLAKE2b-512 digest of the message.
 */
#include "pvm_guest.h"

#define BLAKE2B_DEFAULT_KIB 10000u

static const u64 IV[8] = {
    0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
    0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
};

static const u8 SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline u64 rotr64(u64 x, unsigned n) { return (x >> n) | (x << (64 - n)); }

typedef struct {
    u64 h[8];
    u64 t; /* bytes compressed so far (messages here stay far below 2^64 bytes) */
} b2b_state;

static void b2b_compress(b2b_state *s, const u8 *block, int last) {
    u64 m[16], v[16];
    for (int i = 0; i < 16; i++) {
        const u8 *p = block + 8 * i;
        m[i] = (u64)p[0] | ((u64)p[1] << 8) | ((u64)p[2] << 16) | ((u64)p[3] << 24) |
               ((u64)p[4] << 32) | ((u64)p[5] << 40) | ((u64)p[6] << 48) | ((u64)p[7] << 56);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= s->t;
    if (last) v[14] = ~v[14];

#define G(a, b, c, d, x, y)            \
    do {                               \
        v[a] = v[a] + v[b] + (x);      \
        v[d] = rotr64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];            \
        v[b] = rotr64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);      \
        v[d] = rotr64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];            \
        v[b] = rotr64(v[b] ^ v[c], 63); \
    } while (0)

    for (int r = 0; r < 12; r++) {
        const u8 *sg = SIGMA[r];
        G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);
        G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);
        G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);
        G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);
        G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);
        G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);
        G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);
        G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);
    }
#undef G
    for (int i = 0; i < 8; i++) s->h[i] ^= v[i] ^ v[i + 8];
}

#define CHUNK 1024
static u8 chunk[CHUNK];
static u8 digest[64];

static pvm_output blake2b_main(u64 args_ptr, u64 args_len) {
    u32 kib = pvm_arg_u32(args_ptr, args_len, BLAKE2B_DEFAULT_KIB);
    b2b_state s;
    for (int i = 0; i < 8; i++) s.h[i] = IV[i];
    s.h[0] ^= 0x01010000ull ^ 64; /* no key, 64-byte digest */
    s.t = 0;

    u64 x = 0x0123456789ABCDEFull;
    for (u32 k = 0; k < kib; k++) {
        for (int i = 0; i < CHUNK; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pvm_put_u64(chunk + i, x);
        }
        /* The very last block of the message must be compressed with the final flag, so every
           block is compressed eagerly except the final one of the final chunk. */
        int last_chunk = (k + 1 == kib);
        for (int off = 0; off < CHUNK; off += 128) {
            int last = last_chunk && off + 128 == CHUNK;
            s.t += 128;
            b2b_compress(&s, chunk + off, last);
        }
    }
    if (kib == 0) {
        /* Empty message: one all-zero block with t = 0 and the final flag. */
        for (int i = 0; i < 128; i++) chunk[i] = 0;
        b2b_compress(&s, chunk, 1);
    }
    for (int i = 0; i < 8; i++) pvm_put_u64(digest + 8 * i, s.h[i]);
    return PVM_OUTPUT(digest, 64);
}

__attribute__((used)) pvm_output blake2b_entry(u64 args_ptr, u64 args_len) {
    return blake2b_main(args_ptr, args_len);
}
PVM_EXPORT(blake2b_entry, "blake2b");
