/*
 * bench_tasks.h - what the benches time inside cs_run, private to bench/:
 * b spawns of an empty task then their await (b == 1) or one cs_gather()
 * of the b (bench_spawn, bench_burst), and the ping-pong of two tasks
 * yielding to each other (bench_switch, bench_trace).
 */
#ifndef CS_BENCH_TASKS_H
#define CS_BENCH_TASKS_H

#include "bench.h"

#include <coscope.h>

static void *bench_empty(void *arg)
{
    return arg;
}

/* Spawns b tasks into t[] and waits for them; 0 or the first error. */
static inline int bench_burst(cs_task **t, int b)
{
    for (int i = 0; i < b; i++)
        if (!(t[i] = cs_spawn("empty", bench_empty, NULL)))
            return CS_ENOMEM;
    if (b == 1)
        return cs_await(t[0], NULL);
    return cs_gather(t, (size_t)b, NULL);
}

static void *bench_yielder(void *arg)
{
    long n = *(const long *)arg;
    for (long i = 0; i < n; i++)
        cs_yield();
    return NULL;
}

/*
 * The symmetric ping-pong: two identical tasks each yield *n times, the
 * caller waits for both in cs_gather(); one round trip is A yielding to
 * B and B yielding back.  Returns ns per round trip, or a negative error
 * code.
 */
static inline double bench_pingpong(long *n)
{
    cs_task *t[2] = {cs_spawn("yield_a", bench_yielder, n),
                     cs_spawn("yield_b", bench_yielder, n)};
    if (!t[0] || !t[1])
        return CS_ENOMEM;
    int64_t t0 = bench_now_ns();
    int rc = cs_gather(t, 2, NULL);
    int64_t t1 = bench_now_ns();
    return rc != 0 ? rc : (double)(t1 - t0) / (double)*n;
}

#endif
