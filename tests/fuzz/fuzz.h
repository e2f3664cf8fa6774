/* What every libFuzzer harness in tests/fuzz/ shares: reading structured values out
 * of the fuzzer's bytes (zero once they run out, so every input is a valid one), and
 * invariant checks that abort with the reason, which libFuzzer then reports as a
 * crash with the input that broke it.  The harnesses include plinth's sources
 * unchanged, as the unit tests do (DESIGN.md, STYLE.md "OSS-Fuzz projects"). */
#ifndef PLINTH_TESTS_FUZZ_H
#define PLINTH_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fz_u8(struct fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(struct fuzz_in *in) { return (uint16_t)(fz_u8(in) | fz_u8(in) << 8); }
static inline uint32_t fz_u32(struct fuzz_in *in) { return fz_u16(in) | (uint32_t)fz_u16(in) << 16; }
static inline uint64_t fz_u64(struct fuzz_in *in) { return fz_u32(in) | (uint64_t)fz_u32(in) << 32; }
static inline bool fz_bool(struct fuzz_in *in) { return fz_u8(in) & 1; }
/* A value in [0, n). */
static inline unsigned fz_below(struct fuzz_in *in, unsigned n) { return n ? fz_u16(in) % n : 0; }

/* Copies up to len bytes of what is left (zero-filling the rest). */
static inline void fz_bytes(struct fuzz_in *in, void *out, size_t len)
{
    size_t k = len < in->n ? len : in->n;
    memcpy(out, in->p, k);
    memset((uint8_t *)out + k, 0, len - k);
    in->p += k;
    in->n -= k;
}

#define FUZZ_CHECK(cond, ...)                                                      \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            abort();                                                               \
        }                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
