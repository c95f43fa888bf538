/*
 * fuzz_driver.c - runs fuzz_trace.c's target without libFuzzer: makes a
 * valid segment and a valid trace file with the writer, then feeds the
 * target a bounded number of random mutations of them (bit flips,
 * interesting values at aligned offsets, truncation, chunk splicing).
 * Deterministic: the seed is argv[2] (default 1).
 * Usage: fuzz_trace [iterations] [seed]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mutate(uint8_t *b, size_t *len, size_t cap)
{
    static const uint64_t interesting[] = {
        0,          1,          0x7f,       0x80,
        0xff,       0x7fff,     0xffff,     0x7fffffff,
        0xffffffff, 0x80000000, UINT64_MAX, UINT64_MAX - 31,
        1u << 20,   4096,       32,         64};
    if (*len == 0)
        return;
    switch (rnd() % 5) {
    case 0: /* flip a bit */
        b[rnd() % *len] ^= (uint8_t)(1u << (rnd() % 8));
        break;
    case 1: { /* an interesting 32-bit value at an aligned offset */
        size_t off = (size_t)(rnd() % *len) & ~(size_t)3;
        uint32_t v = (uint32_t)interesting[rnd() % 16];
        if (off + 4 <= *len)
            memcpy(b + off, &v, 4);
        break;
    }
    case 2: { /* an interesting 64-bit value in the header */
        size_t off = (size_t)(rnd() % 1024) & ~(size_t)7;
        uint64_t v = interesting[rnd() % 16];
        if (off + 8 <= *len)
            memcpy(b + off, &v, 8);
        break;
    }
    case 3: /* truncate */
        *len = (size_t)(rnd() % (*len + 1));
        break;
    default: { /* copy a block over another (chunk splicing) */
        size_t n = (size_t)(rnd() % 256), from = (size_t)(rnd() % *len),
               to = (size_t)(rnd() % *len);
        if (from + n <= *len && to + n <= cap && to + n <= *len)
            memmove(b + to, b + from, n);
        break;
    }
    }
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (rng_state == 0)
        rng_state = 1;

    /* Seeds: a live segment and its flight dump. */
    tl_start(4, 2);
    cs__tr_ring *r0 = cs__tr_ring_acquire();
    cs__tr_ring *r1 = cs__tr_ring_acquire();
    uint32_t name = cs__tr_intern("seed");
    uint64_t ips[4] = {1, 2, 3, 4};
    uint32_t stack = cs__tr_stack_put(ips, 4);
    cs__tr_task_alloc(1, name, name, 0, 0, 0);
    for (uint64_t i = 1; i <= 200; i++)
        cs__tr_emit(i % 3 ? r0 : r1, i, i, CS_REC_INFO(i % 14, i % 19, 0),
                    i % 2 ? name : stack);
    const char *dump = tl_path("seed.cst");
    if (cs__tr_flight_dump(dump, 0) != 0)
        return 1;
    size_t seg_len, file_len;
    uint8_t *seeds[2];
    seeds[0] = tl_slurp(cs__tr_segment_path(), &seg_len);
    seeds[1] = tl_slurp(dump, &file_len);
    cs__tr_stop();
    size_t lens[2] = {seg_len, file_len};

    size_t cap = seg_len > file_len ? seg_len : file_len;
    uint8_t *buf = malloc(cap);
    LLVMFuzzerTestOneInput(seeds[0], seg_len);
    LLVMFuzzerTestOneInput(seeds[1], file_len);
    for (long i = 0; i < iters; i++) {
        int which = (int)(rnd() % 2);
        size_t len = lens[which];
        memcpy(buf, seeds[which], len);
        int k = 1 + (int)(rnd() % 8);
        for (int m = 0; m < k; m++)
            mutate(buf, &len, cap);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_trace: %ld mutated inputs, no crash\n", iters);
    free(buf);
    free(seeds[0]);
    free(seeds[1]);
    return 0;
}
