/*
 * reader_file.c - reading trace files with pread (never mmap: a file cut
 * while we read it must not fault).
 *
 * Opening scans every chunk once: header CRC, kind, length against the file
 * size, payload CRC, then per kind (records: count and seq order; tables:
 * contiguous pieces; tasks: whole slots).  The first chunk that fails ends
 * the scan: everything before it is readable, the rest is ignored and the
 * reason is kept (cs_trace_error_detail after open, info.complete == 0).
 * Tables and the task snapshot are loaded into memory (bounded by
 * CS_TABLE_MAX and CS_TASK_SLOTS_MAX); records stay in the file and are
 * indexed by chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : CS_TRACE_ECORRUPT;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Reads and checks the payload of chunk c at off into t->scratch. */
static int load_payload(cs_trace *t, const cs_chunk_header *c, uint64_t off)
{
    if (c->length > t->scratch_cap) {
        uint8_t *p = realloc(t->scratch, c->length);
        if (p == NULL)
            return -ENOMEM;
        t->scratch = p;
        t->scratch_cap = c->length;
    }
    int err = pread_all(t->fd, t->scratch, c->length, off + sizeof *c);
    if (err)
        return err;
    if (cs__tr_crc32(0, t->scratch, c->length) != c->crc)
        return CS__CORRUPT(t, "chunk payload checksum mismatch");
    return 0;
}

/* Appends a table piece; pieces must be contiguous from offset 0. */
static int add_table(cs_trace *t, uint8_t **tab, uint64_t *len,
                     const cs_chunk_header *c)
{
    if (c->base != *len)
        return CS__CORRUPT(t, "table piece out of order");
    if (*len + c->length > CS_TABLE_MAX)
        return CS__CORRUPT(t, "table larger than the limit");
    uint8_t *p = realloc(*tab, *len + c->length + 1);
    if (p == NULL)
        return -ENOMEM;
    if (c->length > 0) /* an empty piece: scratch may still be NULL */
        memcpy(p + *len, t->scratch, c->length);
    *tab = p;
    *len += c->length;
    return 0;
}

/* v (n entries of elem bytes) grown by chunk c's entries, copied from
 * t->scratch, and one spare; NULL (v untouched) when out of memory. */
static void *append_scratch(const cs_trace *t, void *v, size_t n, size_t elem,
                            const cs_chunk_header *c)
{
    char *p = realloc(v, (n + c->count + 1) * elem);
    if (p != NULL && c->length > 0)
        memcpy(p + n * elem, t->scratch, c->length);
    return p;
}

static int add_tasks(cs_trace *t, const cs_chunk_header *c)
{
    if ((uint64_t)c->count * sizeof(cs_task_slot) != c->length)
        return CS__CORRUPT(t, "task chunk length and count disagree");
    if ((uint64_t)t->ntasks + c->count > CS_TASK_SLOTS_MAX)
        return CS__CORRUPT(t, "too many tasks");
    cs_task_slot *p = append_scratch(t, t->tasks, t->ntasks, sizeof *p, c);
    if (p == NULL)
        return -ENOMEM;
    t->tasks = p;
    t->ntasks += c->count;
    return 0;
}

/* Appends module entries; pieces must be contiguous from index 0 and
 * every entry well formed, so that readers of t->modules need no checks. */
static int add_modules(cs_trace *t, const cs_chunk_header *c)
{
    if ((uint64_t)c->count * sizeof(cs_module) != c->length)
        return CS__CORRUPT(t, "module chunk length and count disagree");
    if (c->base != t->nmodules)
        return CS__CORRUPT(t, "module piece out of order");
    if ((uint64_t)t->nmodules + c->count > CS_MODULES_MAX)
        return CS__CORRUPT(t, "too many modules");
    const cs_module *m = (const cs_module *)t->scratch;
    for (uint32_t i = 0; i < c->count; i++)
        if (!cs__tr_module_ok(&m[i]))
            return CS__CORRUPT(t, "bad module entry");
    cs_module *p = append_scratch(t, t->modules, t->nmodules, sizeof *p, c);
    if (p == NULL)
        return -ENOMEM;
    t->modules = p;
    t->nmodules += c->count;
    return 0;
}

/* The last seq indexed for ring r, 0 if none. */
static uint64_t ring_last(const cs_trace *t, uint32_t r)
{
    for (size_t i = t->nchunks; i-- > 0;)
        if (t->chunks[i].ring == r)
            return t->chunks[i].last_seq;
    return 0;
}

static int add_records(cs_trace *t, const cs_chunk_header *c, uint64_t off)
{
    if (c->count == 0 || (uint64_t)c->count * sizeof(cs_record) != c->length)
        return CS__CORRUPT(t, "records chunk length and count disagree");
    if (c->ring >= t->hdr.ring_count)
        return CS__CORRUPT(t, "records chunk names an unknown ring");
    const cs_record *rec = (const cs_record *)t->scratch;
    uint64_t prev = ring_last(t, c->ring);
    for (uint32_t i = 0; i < c->count; i++) {
        if (rec[i].seq <= prev)
            return CS__CORRUPT(t, "record seq not increasing");
        prev = rec[i].seq;
    }
    if (t->nchunks == t->chunks_cap) {
        size_t cap = t->chunks_cap ? t->chunks_cap * 2 : 64;
        cs__tr_chunk_ref *p = realloc(t->chunks, cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        t->chunks = p;
        t->chunks_cap = cap;
    }
    cs__tr_chunk_ref *ref = &t->chunks[t->nchunks++];
    ref->offset = off;
    ref->first_seq = rec[0].seq;
    ref->last_seq = prev;
    ref->count = c->count;
    ref->ring = c->ring;
    return 0;
}

/* Reads and checks the chunk header at off (which has size - off bytes). */
static int chunk_header(cs_trace *t, uint64_t off, uint64_t size,
                        cs_chunk_header *c)
{
    if (size - off < sizeof *c)
        return CS__CORRUPT(t, "file ends inside a chunk header");
    int err = pread_all(t->fd, c, sizeof *c, off);
    if (err)
        return err;
    if (c->magic != CS_CHUNK_MAGIC)
        return CS__CORRUPT(t, "bad chunk magic");
    if (cs__tr_crc32(0, c, offsetof(cs_chunk_header, header_crc)) !=
        c->header_crc)
        return CS__CORRUPT(t, "chunk header checksum mismatch");
    if (c->length > CS_CHUNK_MAX)
        return CS__CORRUPT(t, "chunk longer than the limit");
    if (size - off - sizeof *c < c->length)
        return CS__CORRUPT(t, "file ends inside a chunk");
    return 0;
}

/* Indexes chunks from off; stops at END, at the end of the file or at the
 * first bad chunk. */
static int scan(cs_trace *t, uint64_t off, uint64_t size)
{
    while (off < size) {
        cs_chunk_header c;
        int err = chunk_header(t, off, size, &c);
        if (!err)
            err = load_payload(t, &c, off);
        if (!err) {
            switch (c.kind) {
            case CS_CHUNK_RECORDS:
                err = add_records(t, &c, off);
                break;
            case CS_CHUNK_STRINGS:
                err = add_table(t, &t->strings, &t->strings_len, &c);
                break;
            case CS_CHUNK_STACKS:
                err = add_table(t, &t->stacks, &t->stacks_len, &c);
                break;
            case CS_CHUNK_TASKS:
                err = add_tasks(t, &c);
                break;
            case CS_CHUNK_MODULES:
                err = add_modules(t, &c);
                break;
            case CS_CHUNK_WINDOW: /* a hint: a bad one is ignored */
                if (c.ring < t->hdr.ring_count && c.length == 0)
                    t->window_seq[c.ring] = c.base;
                break;
            case CS_CHUNK_END:
                t->complete = 1;
                break;
            default:
                break; /* unknown kind from a newer minor: skip */
            }
        }
        if (err == -ENOMEM)
            return err;
        if (err)
            break; /* readable up to here */
        off += sizeof c + c.length;
        t->valid_bytes = off;
        if (t->complete)
            break;
    }
    return 0;
}

int cs__tr_file_open(const char *path, cs_trace **out)
{
    int fd =
        open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO: no wait */
    if (fd < 0) {
        cs__tr_set_detail(__LINE__, "cannot open trace file");
        return -errno;
    }
    cs_trace *t = calloc(1, sizeof *t);
    if (t == NULL) {
        close(fd);
        return -ENOMEM;
    }
    t->is_file = 1;
    t->fd = fd;
    struct stat st;
    int err = fstat(fd, &st) != 0 ? -errno : 0;
    if (!err && !S_ISREG(st.st_mode))
        err = -EINVAL;
    if (!err && (uint64_t)st.st_size < sizeof(cs_seg_header))
        err = CS__CORRUPT(t, "file shorter than a header");
    if (!err)
        err = pread_all(fd, &t->hdr, sizeof t->hdr, 0);
    if (!err)
        err = cs__tr_header_check(t, &t->hdr, (uint64_t)st.st_size, 1);
    if (!err && t->hdr.header_size > (uint64_t)st.st_size)
        err = CS__CORRUPT(t, "file shorter than its header");
    if (!err) {
        t->valid_bytes = t->hdr.header_size;
        err = scan(t, t->hdr.header_size, (uint64_t)st.st_size);
    }
    if (err) {
        cs_trace_close(t);
        return err;
    }
    t->hdr.exe_path[CS_EXE_PATH_MAX - 1] = '\0';
    *out = t;
    return 0;
}

void cs__tr_file_close(cs_trace *t)
{
    if (t->fd >= 0)
        close(t->fd);
    free(t->strings);
    free(t->stacks);
    free(t->tasks);
    free(t->modules);
    free(t->chunks);
    free(t->scratch);
}

int cs__tr_file_read(cs_trace *t, uint32_t ring, uint64_t *cursor,
                     cs_trace_event *ev, size_t cap, size_t *n, uint64_t *lost)
{
    for (size_t i = 0; i < t->nchunks && *n < cap; i++) {
        const cs__tr_chunk_ref *ref = &t->chunks[i];
        if (ref->ring != ring || ref->last_seq <= *cursor)
            continue;
        cs_chunk_header c;
        int err = chunk_header(t, ref->offset, t->valid_bytes, &c);
        if (!err && (c.count != ref->count || c.ring != ring))
            err = CS__CORRUPT(t, "file changed while open");
        if (!err)
            err = load_payload(t, &c, ref->offset);
        if (err)
            return err;
        const cs_record *rec = (const cs_record *)t->scratch;
        for (uint32_t k = 0; k < c.count && *n < cap; k++) {
            if (rec[k].seq <= *cursor)
                continue;
            *lost += rec[k].seq - *cursor - 1;
            *cursor = rec[k].seq;
            cs__tr_event_from_record(&rec[k], ring, &ev[(*n)++]);
        }
    }
    return 0;
}
