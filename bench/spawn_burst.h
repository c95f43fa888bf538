/*
 * spawn_burst.h - what bench_spawn and bench_burst time: b spawns of an
 * empty task, then their await (b == 1) or one cs_gather() of the b.
 */
#ifndef CS_BENCH_SPAWN_BURST_H
#define CS_BENCH_SPAWN_BURST_H

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

#endif
