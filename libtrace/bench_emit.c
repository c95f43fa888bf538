/*
 * bench_emit.c - what one event costs.  In one run, best of several rounds:
 *   empty    a loop that only defeats the optimiser (the baseline to subtract)
 *   bare     the trace clock read plus one 32-byte store into a ring array
 *   emit     cs__tr_emit() with cs__tr_now(), into a real segment
 * Prints ns per iteration of each and emit / bare (issue 4 asks <= 1.5).
 * Usage: coscope_bench_emit [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "writer.h"

#define ROUNDS 7

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static cs_record bare_ring[1 << 15];

static double run_empty(uint64_t n)
{
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++)
        __asm__ __volatile__("" : : "r"(i) : "memory");
    return (double)(now_ns() - t0) / (double)n;
}

static double run_bare(uint64_t n)
{
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        cs_record *r = &bare_ring[i & ((1 << 15) - 1)];
        r->seq = i + 1;
        r->ts = cs__tr_now();
        r->task_id = i;
        r->info = CS_REC_INFO(CS_EV_STEP, CS_WAIT_YIELD, 0);
        r->arg = (uint32_t)i;
        __asm__ __volatile__("" : : "r"(r) : "memory");
    }
    return (double)(now_ns() - t0) / (double)n;
}

static double run_emit(cs__tr_ring *ring, uint64_t n)
{
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++)
        cs__tr_emit(ring, cs__tr_now(), i,
                    CS_REC_INFO(CS_EV_STEP, CS_WAIT_YIELD, 0), (uint32_t)i);
    return (double)(now_ns() - t0) / (double)n;
}

static double min3(double a, double b)
{
    return a < b ? a : b;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000;
    cs__tr_config cfg;
    cs__tr_config_env(&cfg);
    cfg.enabled = 1;
    cfg.record = NULL;
    cfg.flight = NULL;
    int err = cs__tr_start_with(&cfg);
    cs__tr_ring *ring = cs__tr_ring_acquire();
    if (err != 0 || ring == NULL) {
        fprintf(stderr, "bench_emit: cannot create the segment (%d)\n", err);
        return 1;
    }
    double e = 1e9, b = 1e9, m = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        e = min3(e, run_empty(n));
        b = min3(b, run_bare(n));
        m = min3(m, run_emit(ring, n));
    }
    printf("clock: %s\n", cs__tr_g.clock_tsc ? "tsc" : "monotonic");
    printf("empty loop   %6.2f ns/iter\n", e);
    printf("bare ts+store%6.2f ns/iter\n", b);
    printf("emit         %6.2f ns/iter  (%.2f ns over the empty loop)\n", m,
           m - e);
    printf("emit / bare  %6.2f\n", m / b);
    cs__tr_stop();
    return 0;
}
