/*
 * metrics_target.c - a process for bench/bench_metrics.py: publishes a
 * coscope segment through libtrace's writer, as the runtime does, with N
 * tasks (a mix of waiting, ready and finished ones) and a full ring of
 * steps and loop iterations, so that a scrape has everything to read.
 * No coroutines: fifty of these with 10,000 tasks each fit in a little
 * memory.  Prints "ready" when done, then waits for the end of its input.
 *
 *   metrics_target N
 */
#include <stdio.h>
#include <stdlib.h>

#include "writer.h"

int main(int argc, char **argv)
{
    long n = argc == 2 ? atol(argv[1]) : 0;
    if (n <= 0 || n > 1000000) {
        fprintf(stderr, "usage: metrics_target N\n");
        return 2;
    }
    /* the same segment whatever the environment says (no COSCOPE_*): one
     * ring of 8192 records, room for the tasks, the default string and
     * stack areas, no record or flight file */
    cs__tr_config cfg = {.enabled = 1,
                         .rings = 1,
                         .ring_kb = 256,
                         .task_slots = (uint32_t)n + 16,
                         .strings_kb = 256,
                         .stacks_kb = 256};
    if (cs__tr_start_with(&cfg) != 0) {
        fprintf(stderr, "metrics_target: cannot create the segment\n");
        return 3;
    }
    cs__tr_ring *ring = cs__tr_ring_acquire();
    uint32_t name = cs__tr_intern("worker"),
             site = cs__tr_intern("service.c:42");
    static const unsigned reasons[] = {CS_WAIT_SLEEP, CS_WAIT_FD_READ,
                                       CS_WAIT_QUEUE_GET, CS_WAIT_LOCK};
    for (long i = 1; i <= n; i++) {
        uint64_t t0 = cs__tr_now();
        uint32_t ref = cs__tr_task_alloc((uint64_t)i, name, site, 0, 0, t0);
        if (ref == 0)
            return 3;
        unsigned state = i % 10 == 0   ? CS_TASK_READY
                         : i % 10 == 1 ? CS_TASK_DONE
                                       : CS_TASK_WAITING;
        unsigned reason = state == CS_TASK_WAITING ? reasons[i % 4]
                          : state == CS_TASK_READY ? CS_WAIT_YIELD
                                                   : CS_WAIT_NONE;
        cs__tr_task_running(ref, t0);
        cs__tr_task_stopped(ref, state, reason, 0, 0, t0, cs__tr_now());
    }
    for (int i = 0; i < 8192; i++) {
        uint64_t t = cs__tr_now();
        if (i % 8 == 0)
            cs__tr_loop_iter(ring, t, 1000);
        else
            cs__tr_step(ring, (uint64_t)(i % n) + 1, CS_WAIT_SLEEP,
                        t - 100 * (uint64_t)(i % 100), t);
    }
    printf("ready\n");
    fflush(stdout);
    while (getchar() != EOF)
        ;
    return 0;
}
