/*
 * ring_read.c - reading a ring and a task slot without locks, following the
 * protocols drawn in trace_format.h.  Used by the reader (another process),
 * the streaming recorder and the flight recorder (this process; possibly
 * from a signal handler, so nothing here allocates or locks).
 *
 * The memory may be hostile: head and seq are just numbers here; only
 * slot[0..nslots) and *hdr are dereferenced, with nslots trusted.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Copies a record with relaxed atomic loads (the writer may be storing). */
static void copy_record(const cs_record *src, cs_record *dst)
{
    dst->ts = __atomic_load_n(&src->ts, __ATOMIC_RELAXED);
    dst->task_id = __atomic_load_n(&src->task_id, __ATOMIC_RELAXED);
    dst->info = __atomic_load_n(&src->info, __ATOMIC_RELAXED);
    dst->arg = __atomic_load_n(&src->arg, __ATOMIC_RELAXED);
}

size_t cs__tr_ring_read(const cs_ring_header *hdr, const cs_record *slot,
                        uint64_t nslots, uint64_t *cursor, cs_record *out,
                        size_t cap, uint64_t *lost)
{
    uint64_t mask = nslots - 1, idx = *cursor, n = 0;
    uint64_t head = __atomic_load_n(&hdr->head, __ATOMIC_ACQUIRE);
    while (idx < head && n < cap) {
        if (head - idx > nslots) { /* the writer lapped us */
            *lost += head - nslots - idx;
            idx = head - nslots;
        }
        const cs_record *src = &slot[idx & mask];
        uint64_t s = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);
        copy_record(src, &out[n]);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint64_t h2 = __atomic_load_n(&hdr->head, __ATOMIC_RELAXED);
        if (s == idx + 1 && (h2 < idx || h2 - idx <= nslots)) {
            out[n].seq = s;
            n++;
            idx++;
        } else if (s > idx + 1 || (h2 > idx && h2 - idx > nslots)) {
            head = h2 > head ? h2 : head; /* overwritten: recount */
            if (head - idx <= nslots) {
                (*lost)++;
                idx++;
            }
        } else {
            break; /* record idx is still being written */
        }
    }
    *cursor = idx;
    return (size_t)n;
}

int cs__tr_task_read(const cs_task_slot *s, cs_task_slot *out)
{
    for (int tries = 0; tries < 64; tries++) {
        uint64_t l1 = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
        if (l1 & 1)
            continue;
        out->id = __atomic_load_n(&s->id, __ATOMIC_RELAXED);
        out->gen = __atomic_load_n(&s->gen, __ATOMIC_RELAXED);
        out->name = __atomic_load_n(&s->name, __ATOMIC_RELAXED);
        out->state = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
        out->wait = __atomic_load_n(&s->wait, __ATOMIC_RELAXED);
        out->flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
        out->site = __atomic_load_n(&s->site, __ATOMIC_RELAXED);
        out->wait_target = __atomic_load_n(&s->wait_target, __ATOMIC_RELAXED);
        out->wait_aux = __atomic_load_n(&s->wait_aux, __ATOMIC_RELAXED);
        out->awaiter = __atomic_load_n(&s->awaiter, __ATOMIC_RELAXED);
        out->created = __atomic_load_n(&s->created, __ATOMIC_RELAXED);
        out->last_run = __atomic_load_n(&s->last_run, __ATOMIC_RELAXED);
        out->steps = __atomic_load_n(&s->steps, __ATOMIC_RELAXED);
        out->run_ticks = __atomic_load_n(&s->run_ticks, __ATOMIC_RELAXED);
        out->sp = __atomic_load_n(&s->sp, __ATOMIC_RELAXED);
        out->fp = __atomic_load_n(&s->fp, __ATOMIC_RELAXED);
        out->ip = __atomic_load_n(&s->ip, __ATOMIC_RELAXED);
        out->ring = __atomic_load_n(&s->ring, __ATOMIC_RELAXED);
        out->parent = __atomic_load_n(&s->parent, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->lock, __ATOMIC_RELAXED) == l1) {
            out->lock = l1;
            out->reserved0 = 0;
            return 0;
        }
    }
    return -EAGAIN;
}
