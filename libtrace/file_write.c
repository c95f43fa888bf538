/*
 * file_write.c - writing trace files: header, chunks, and the flight
 * recorder dump of the whole segment.
 *
 * Everything here is async-signal-safe: lstat/open/rename/write/close, no
 * allocation
 * (callers pass a staging buffer; the flight recorder uses a static one
 * guarded by a flag), no locks.  Chunks are self-describing and checksummed
 * (trace_format.h), so a file cut short is readable up to its last whole
 * chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define STAGE_SIZE (64 * 1024)

static uint8_t stage[STAGE_SIZE] __attribute__((aligned(64)));
static int dumping; /* 1 while a flight dump uses stage */

int cs__tr_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends the decimal digits of v to p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
    char d[20];
    int n = 0;
    do
        d[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = d[--n];
    return p;
}

/* A new file at path under a temporary name in its directory, renamed
 * over path (a regular file: never opened, only replaced). */
static int replace_regular(const char *path)
{
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    char tmp[4096 + 64];
    if (n >= 4096)
        return -ENAMETOOLONG;
    memcpy(tmp, path, dir);
    int fd = -1;
    for (unsigned k = 0; fd < 0 && k < 64; k++) {
        char *p = tmp + dir;
        memcpy(p, ".coscope-", 9);
        p = put_u64(p + 9, (uint64_t)getpid());
        *p++ = '-';
        p = put_u64(p, k);
        memcpy(p, ".tmp", 5);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
        if (fd < 0 && errno != EEXIST)
            return -errno;
    }
    if (fd < 0)
        return -EEXIST;
    if (rename(tmp, path) != 0) {
        int err = -errno;
        unlink(tmp);
        close(fd);
        return err;
    }
    return fd;
}

/* A device or FIFO the user named (/dev/null, a pipe to a compressor):
 * written as before, but only if it is ours or root's, and only the one
 * lstat saw. */
static int open_special(const char *path, const struct stat *seen)
{
    uid_t me = geteuid();
    if (seen->st_uid != me && seen->st_uid != 0)
        return -EPERM;
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != seen->st_dev ||
        st.st_ino != seen->st_ino) {
        close(fd);
        return -EAGAIN; /* swapped meanwhile: look again */
    }
    return fd;
}

int cs__tr_file_create(const char *path)
{
    if (path[0] == '\0' || strlen(path) >= 4096)
        return -ENAMETOOLONG;
    for (int tries = 0; tries < 8; tries++) {
        struct stat st;
        int fd;
        if (lstat(path, &st) != 0) {
            if (errno != ENOENT)
                return -errno;
            fd = open(path,
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600);
            if (fd >= 0 || errno != EEXIST)
                return fd >= 0 ? fd : -errno;
            continue; /* it appeared meanwhile */
        }
        if (S_ISLNK(st.st_mode))
            return -ELOOP;
        if (S_ISDIR(st.st_mode))
            return -EISDIR;
        fd = S_ISREG(st.st_mode) ? replace_regular(path)
                                 : open_special(path, &st);
        if (fd != -EAGAIN)
            return fd;
    }
    return -EAGAIN;
}

int cs__tr_fw_header(int fd, const cs_seg_header *live, uint32_t flags)
{
    cs_seg_header h;
    memcpy(&h, live, sizeof h);
    memcpy(h.magic, CS_FILE_MAGIC, CS_MAGIC_LEN);
    h.segment_size = 0;
    memset(h.regions, 0, sizeof h.regions);
    memset(&h.modules, 0, sizeof h.modules); /* chunks carry it instead */
    h.flags = (h.flags & CS_SEG_F_READY) | flags;
    return cs__tr_write_all(fd, &h, sizeof h);
}

int cs__tr_fw_chunk(int fd, unsigned kind, unsigned ring, uint64_t base,
                    uint32_t count, const void *payload, uint32_t len)
{
    cs_chunk_header c;
    memset(&c, 0, sizeof c);
    c.magic = CS_CHUNK_MAGIC;
    c.kind = (uint16_t)kind;
    c.ring = (uint16_t)ring;
    c.length = len;
    c.count = count;
    c.base = base;
    c.crc = cs__tr_crc32(0, payload, len);
    c.header_crc = cs__tr_crc32(0, &c, offsetof(cs_chunk_header, header_crc));
    int err = cs__tr_write_all(fd, &c, sizeof c);
    return err ? err : cs__tr_write_all(fd, payload, len);
}

int cs__tr_fw_table(int fd, unsigned kind, const uint8_t *table, uint64_t from,
                    uint64_t to, uint8_t *buf, size_t cap)
{
    while (from < to) {
        size_t n = to - from < cap ? (size_t)(to - from) : cap;
        memcpy(buf, table + from, n);
        int err = cs__tr_fw_chunk(fd, kind, 0, from, 0, buf, (uint32_t)n);
        if (err)
            return err;
        from += n;
    }
    return 0;
}

int cs__tr_fw_modules(int fd, const cs_module *ent, uint32_t from, uint32_t to,
                      uint8_t *buf, size_t cap)
{
    uint32_t max = (uint32_t)(cap / sizeof *ent);
    while (from < to) {
        uint32_t k = to - from < max ? to - from : max;
        memcpy(buf, ent + from, (size_t)k * sizeof *ent);
        int err = cs__tr_fw_chunk(fd, CS_CHUNK_MODULES, 0, from, k, buf,
                                  (uint32_t)(k * sizeof *ent));
        if (err)
            return err;
        from += k;
    }
    return 0;
}

/* Committed entries of the writer's module table (0 if it has none). */
uint32_t cs__tr_modules_count(void)
{
    const cs_module_table *m = cs__tr_seg_g.modules;
    if (m == NULL)
        return 0;
    uint32_t n = __atomic_load_n(&m->count, __ATOMIC_ACQUIRE);
    return n < m->capacity ? n : m->capacity;
}

int cs__tr_fw_tasks(int fd, const cs_task_slot *tasks, uint64_t n,
                    uint8_t *buf, size_t cap)
{
    cs_task_slot *out = (cs_task_slot *)buf;
    size_t max = cap / sizeof *out, k = 0;
    for (uint64_t i = 0; i <= n; i++) {
        if (k == max || (i == n && k > 0)) {
            int err = cs__tr_fw_chunk(fd, CS_CHUNK_TASKS, 0, 0, (uint32_t)k,
                                      buf, (uint32_t)(k * sizeof *out));
            if (err)
                return err;
            k = 0;
        }
        if (i < n && cs__tr_task_read(&tasks[i], &out[k]) == 0 &&
            out[k].id != 0)
            k++;
    }
    return 0;
}

int cs__tr_fw_ring(int fd, uint32_t index, const cs_ring_header *hdr,
                   const cs_record *slot, uint64_t nslots, uint64_t *cursor,
                   uint8_t *buf, size_t cap)
{
    cs_record *out = (cs_record *)buf;
    size_t max = cap / sizeof *out;
    uint64_t lost = 0;
    /* Stop at the head seen now, or a busy writer would keep us here. */
    uint64_t limit = __atomic_load_n(&hdr->head, __ATOMIC_ACQUIRE);
    for (;;) {
        size_t n =
            cs__tr_ring_read(hdr, slot, nslots, cursor, out, max, &lost);
        if (n == 0)
            return 0;
        int err = cs__tr_fw_chunk(fd, CS_CHUNK_RECORDS, index, 0, (uint32_t)n,
                                  buf, (uint32_t)(n * sizeof *out));
        if (err || n < max || *cursor >= limit)
            return err;
    }
}

/* The committed prefix of a table: stops at the first entry not yet
 * written, so a file never holds a half-written entry as if whole. */
static uint64_t committed(const uint8_t *table, uint64_t size, uint64_t used,
                          int strings)
{
    uint64_t end = used < size ? used : size, off = CS_TABLE_FIRST;
    while (off < end) {
        uint64_t sz = strings ? cs__tr_string_entry_size(table, end, off)
                              : cs__tr_stack_entry_size(table, end, off);
        if (sz == 0)
            break;
        off += sz;
    }
    return off < end ? off : end;
}

int cs__tr_flight_dump_fd(int fd, uint32_t flags)
{
    cs__tr_seg *g = &cs__tr_seg_g;
    if (g->base == NULL)
        return -ENODEV;
    if (__atomic_exchange_n(&dumping, 1, __ATOMIC_ACQUIRE))
        return -EBUSY;
    cs_seg_header *h = g->hdr;
    uint64_t su = __atomic_load_n(&h->strings_used, __ATOMIC_ACQUIRE);
    uint64_t ku = __atomic_load_n(&h->stacks_used, __ATOMIC_ACQUIRE);
    uint64_t hwm = __atomic_load_n(&h->tasks_hwm, __ATOMIC_ACQUIRE);
    if (hwm > h->task_slots)
        hwm = h->task_slots;
    int err = cs__tr_fw_header(fd, h, flags);
    if (!err)
        err = cs__tr_fw_table(fd, CS_CHUNK_STRINGS, g->strings, 0,
                              committed(g->strings, g->strings_size, su, 1),
                              stage, STAGE_SIZE);
    if (!err)
        err = cs__tr_fw_table(fd, CS_CHUNK_STACKS, g->stacks, 0,
                              committed(g->stacks, g->stacks_size, ku, 0),
                              stage, STAGE_SIZE);
    if (!err) /* the table is already built: just its bytes */
        err = cs__tr_fw_modules(fd, (const cs_module *)(g->modules + 1), 0,
                                cs__tr_modules_count(), stage, STAGE_SIZE);
    if (!err)
        err = cs__tr_fw_tasks(fd, cs__tr_g.tasks, hwm, stage, STAGE_SIZE);
    for (uint32_t i = 0; !err && i < h->ring_count; i++) {
        const cs_ring_header *rh =
            (const cs_ring_header *)(g->rings + i * g->ring_stride);
        uint64_t cursor = 0;
        err = cs__tr_fw_ring(fd, i, rh, (const cs_record *)(rh + 1),
                             h->ring_slots, &cursor, stage, STAGE_SIZE);
    }
    if (!err)
        err = cs__tr_fw_chunk(fd, CS_CHUNK_END, 0, 0, 0, stage, 0);
    __atomic_store_n(&dumping, 0, __ATOMIC_RELEASE);
    return err;
}

int cs__tr_flight_dump(const char *path, uint32_t flags)
{
    if (cs__tr_seg_g.base == NULL)
        return -ENODEV;
    int fd = cs__tr_file_create(path);
    if (fd < 0)
        return fd;
    int err = cs__tr_flight_dump_fd(fd, flags | CS_SEG_F_FLIGHT);
    if (close(fd) != 0 && err == 0)
        err = -errno;
    return err;
}
