/*
 * poll_timeout.h - the loop's poll timeout, apart so that tests can force
 * its edge cases (tests/test_loop.c) without a clock to steer.
 */
#ifndef CS_RUNTIME_POLL_TIMEOUT_H
#define CS_RUNTIME_POLL_TIMEOUT_H

#include <stdbool.h>
#include <stdint.h>

/* The poll timeout in ns, -1 meaning "no timer: until an event", for a
 * loop that has tasks ready (`ready`) or, if `timers`, an earliest
 * deadline `next`, at time `now`.  A deadline due now or past gives 0:
 * next - now may come out as any negative value, -1 included, and -1
 * must never be read as "forever". */
static inline int64_t cs__poll_timeout(bool ready, bool timers, int64_t next,
                                       int64_t now)
{
    if (ready)
        return 0;
    if (!timers)
        return -1;
    return next > now ? next - now : 0;
}

#endif
