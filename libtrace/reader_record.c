/*
 * reader_record.c - recording another process's live segment into a trace
 * file from the outside (`coscope record`): the same chunks the in-process
 * recorder (recorder.c) writes, read through the reader's read-only
 * mapping.  Each poll appends the newly committed strings and stacks, then
 * every ring's records since its cursor; overwritten records show as seq
 * gaps, so the file's loss counts are exact.  Finishing adds a snapshot of
 * the live tasks and the END chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define REC_BUF (64 * 1024)

struct cs_trace_rec {
    cs_trace *t;       /* the live segment (not owned) */
    int fd;            /* the file */
    uint64_t *cursor;  /* per ring */
    uint64_t str_done; /* string table bytes written */
    uint64_t stk_done; /* stack table bytes written */
    uint32_t mod_done; /* module entries written */
    uint8_t *buf;      /* REC_BUF staging bytes */
};

/* Writes the part of a table committed since *done. */
static int rec_table(cs_trace_rec *r, unsigned kind, uint64_t off,
                     uint64_t size, size_t used_field, uint64_t *done)
{
    const uint64_t *u = (const uint64_t *)(r->t->map + used_field);
    uint64_t used = __atomic_load_n(u, __ATOMIC_ACQUIRE);
    const uint8_t *table = r->t->map + off; /* region checked at open */
    uint64_t pos = cs__tr_table_committed(kind, table, size, used, *done);
    int err = cs__tr_fw_table(r->fd, kind, table, *done, pos, r->buf, REC_BUF);
    if (!err)
        *done = pos;
    return err;
}

int cs_trace_rec_start(cs_trace *t, const char *path, cs_trace_rec **out)
{
    *out = NULL;
    if (t->is_file)
        return -EINVAL;
    cs_trace_rec *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->t = t;
    r->cursor = calloc(t->hdr.ring_count + 1, sizeof *r->cursor);
    r->buf = malloc(REC_BUF);
    r->fd = cs__tr_file_create(path);
    int err = r->fd < 0 ? r->fd : !r->cursor || !r->buf ? -ENOMEM : 0;
    if (!err)
        err = cs__tr_fw_header(r->fd, &t->hdr, 0);
    /* where the recording begins in each ring: what is older was still in
     * the rings, from before (a reader tells the two apart) */
    for (uint32_t i = 0; !err && i < t->hdr.ring_count; i++) {
        cs_trace_ring ring;
        if (cs_trace_ring_get(t, i, &ring) == 0 && ring.head > 0)
            err = cs__tr_fw_chunk(r->fd, CS_CHUNK_WINDOW, i, ring.head, 0, "",
                                  0);
    }
    if (err) {
        if (r->fd >= 0)
            close(r->fd);
        free(r->cursor);
        free(r->buf);
        free(r);
        return err;
    }
    *out = r;
    return 0;
}

int cs_trace_rec_poll(cs_trace_rec *r)
{
    cs_trace *t = r->t;
    int err = rec_table(r, CS_CHUNK_STRINGS, t->strings_off, t->strings_size,
                        offsetof(cs_seg_header, strings_used), &r->str_done);
    if (!err)
        err = rec_table(r, CS_CHUNK_STACKS, t->stacks_off, t->stacks_size,
                        offsetof(cs_seg_header, stacks_used), &r->stk_done);
    uint32_t mods = cs__tr_live_modules_count(t);
    if (!err && mods > r->mod_done) {
        /* Entries are copied unchecked, as tables are: the file's reader
         * checks every one (reader_file.c). */
        err = cs__tr_fw_modules(r->fd,
                                (const cs_module *)(t->map + t->modules_off +
                                                    sizeof(cs_module_table)),
                                r->mod_done, mods, r->buf, REC_BUF);
        if (!err)
            r->mod_done = mods;
    }
    for (uint32_t i = 0; !err && i < t->hdr.ring_count; i++) {
        const cs_ring_header *rh =
            (const cs_ring_header *)(t->map + t->rings_off +
                                     (uint64_t)i * t->ring_stride);
        if (__atomic_load_n(&rh->slots, __ATOMIC_RELAXED) != t->hdr.ring_slots)
            return CS__CORRUPT(t, "ring slot count differs from the header's");
        err = cs__tr_fw_ring(r->fd, i, rh, (const cs_record *)(rh + 1),
                             t->hdr.ring_slots, &r->cursor[i], r->buf,
                             REC_BUF);
    }
    if (!err && cs__tr_map_guard_hit(t->guard)) /* what we copied is zeros */
        err = CS__CORRUPT(t, "segment file shrank while being recorded");
    return err;
}

int cs_trace_rec_finish(cs_trace_rec *r)
{
    if (r == NULL)
        return 0;
    cs_trace *t = r->t;
    int err = cs_trace_rec_poll(r);
    const uint64_t *hwmp =
        (const uint64_t *)(t->map + offsetof(cs_seg_header, tasks_hwm));
    uint64_t hwm = __atomic_load_n(hwmp, __ATOMIC_ACQUIRE);
    if (hwm > t->hdr.task_slots)
        hwm = t->hdr.task_slots;
    if (!err)
        err = cs__tr_fw_tasks(r->fd,
                              (const cs_task_slot *)(t->map + t->tasks_off),
                              hwm, r->buf, REC_BUF);
    if (!err)
        err = cs__tr_fw_chunk(r->fd, CS_CHUNK_END, 0, 0, 0, r->buf, 0);
    if (close(r->fd) != 0 && !err)
        err = -errno;
    free(r->cursor);
    free(r->buf);
    free(r);
    return err;
}
