/*
 * timer.c - a 4-ary min-heap of tasks keyed by deadline.  Each task has at
 * most one timer (it waits on one thing at a time) and remembers its heap
 * position, so removal on an early wake-up is O(log n).  4-ary rather than
 * binary: half the depth, and the four children share a cache line.
 */
#include "internal.h"

#include <stdlib.h>

static inline void heap_set(cs__loop *loop, uint32_t i, cs_task *t)
{
    loop->heap[i] = t;
    t->heap_index = (int32_t)i;
}

static void heap_up(cs__loop *loop, uint32_t i)
{
    cs_task *t = loop->heap[i];

    while (i > 0) {
        uint32_t p = (i - 1) / 4;
        if (loop->heap[p]->deadline <= t->deadline)
            break;
        heap_set(loop, i, loop->heap[p]);
        i = p;
    }
    heap_set(loop, i, t);
}

static void heap_down(cs__loop *loop, uint32_t i)
{
    cs_task *t = loop->heap[i];
    uint32_t n = loop->heap_len;

    for (;;) {
        uint32_t c = 4 * i + 1, best = i;
        int64_t bd = t->deadline;
        for (uint32_t k = c; k < c + 4 && k < n; k++) {
            if (loop->heap[k]->deadline < bd) {
                best = k;
                bd = loop->heap[k]->deadline;
            }
        }
        if (best == i)
            break;
        heap_set(loop, i, loop->heap[best]);
        i = best;
    }
    heap_set(loop, i, t);
}

int cs__timer_add(cs__loop *loop, cs_task *t, int64_t deadline)
{
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        cs_task **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            return CS_ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->deadline = deadline;
    loop->heap[loop->heap_len] = t;
    heap_up(loop, loop->heap_len++);
    return 0;
}

void cs__timer_del(cs__loop *loop, cs_task *t)
{
    uint32_t i = (uint32_t)t->heap_index;
    cs_task *last = loop->heap[--loop->heap_len];

    t->heap_index = -1;
    if (last == t)
        return;
    heap_set(loop, i, last);
    if (i > 0 && loop->heap[(i - 1) / 4]->deadline > last->deadline)
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

int64_t cs__timer_next(cs__loop *loop)
{
    return loop->heap_len ? loop->heap[0]->deadline : -1;
}

/* Wakes every task whose deadline is <= now: a sleeper with 0, any other
 * waiter with CS_ETIMEDOUT after taking it off what it waited on. */
void cs__timer_fire(cs__loop *loop, int64_t now)
{
    while (loop->heap_len && loop->heap[0]->deadline <= now) {
        cs_task *t = loop->heap[0];
        cs__timer_del(loop, t);
        if (t->wait.reason == CS_WAIT_SLEEP) {
            cs__wake(t, 0);
        } else {
            cs__wait_unlink(t);
            cs__wake(t, CS_ETIMEDOUT);
        }
    }
}
