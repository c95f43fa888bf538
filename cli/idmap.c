/*
 * idmap.c - a map from 64-bit ids (task ids) to non-negative longs (an
 * index into the caller's array, a string id): open addressing with
 * linear probing, Fibonacci hashing (Knuth's multiplicative method), kept
 * at most half full.  The one id table of the CLI: the task snapshot, the
 * timeline, top's previous counters and the name caches of report and
 * watch.
 */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

static size_t slot_of(const struct cli_idmap *m, uint64_t id)
{
    size_t h = (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (m->cap - 1);
    while (m->slot[h].value >= 0 && m->slot[h].id != id)
        h = (h + 1) & (m->cap - 1);
    return h;
}

/* Rehashes into cap slots (a power of two above 2 * n). */
static int grow(struct cli_idmap *m, size_t cap)
{
    struct cli_idmap_slot *old = m->slot;
    size_t old_cap = m->cap;
    m->slot = malloc(cap * sizeof *m->slot);
    if (m->slot == NULL) {
        m->slot = old;
        return -ENOMEM;
    }
    m->cap = cap;
    for (size_t i = 0; i < cap; i++)
        m->slot[i].value = -1;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].value >= 0)
            m->slot[slot_of(m, old[i].id)] = old[i];
    free(old);
    return 0;
}

int cli_idmap_reserve(struct cli_idmap *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    return cap == m->cap ? 0 : grow(m, cap);
}

long cli_idmap_get(const struct cli_idmap *m, uint64_t id)
{
    return m->cap ? m->slot[slot_of(m, id)].value : -1;
}

int cli_idmap_put(struct cli_idmap *m, uint64_t id, long value)
{
    if (value < 0)
        return -EINVAL;
    if (cli_idmap_reserve(m, m->n + 1) != 0)
        return -ENOMEM;
    struct cli_idmap_slot *s = &m->slot[slot_of(m, id)];
    m->n += s->value < 0;
    *s = (struct cli_idmap_slot){id, value};
    return 0;
}

void cli_idmap_clear(struct cli_idmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        m->slot[i].value = -1;
    m->n = 0;
}

void cli_idmap_release(struct cli_idmap *m)
{
    free(m->slot);
    *m = (struct cli_idmap){0};
}
