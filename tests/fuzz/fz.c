/*
 * fz.c - see fz.h.
 */
#include "fz.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coscope/trace_format.h"

uint32_t cs__tr_crc32(uint32_t crc, const void *data, size_t n); /* libtrace */

const char *fz_spit(const char *tag, const uint8_t *data, size_t size)
{
    static char path[128];
    snprintf(path, sizeof path, "/dev/shm/coscope-fuzz-%s.%d", tag,
             (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        perror(path);
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            perror(path);
            abort();
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

cs_trace *fz_open(const char *tag, const uint8_t *data, size_t size,
                  void (*fix)(uint8_t *, size_t), int segment)
{
    uint8_t *copy = NULL;
    if (fix != NULL) {
        if ((copy = malloc(size ? size : 1)) == NULL)
            return NULL;
        memcpy(copy, data, size);
        fix(copy, size);
        data = copy;
    }
    const char *path = fz_spit(tag, data, size);
    free(copy);
    cs_trace *t;
    int err = segment ? cs_trace_open_segment(path, &t)
                      : cs_trace_open_file(path, &t);
    unlink(path); /* the mapping or the fd stays */
    return err == 0 ? t : NULL;
}

static void names(cs_trace *t, uint32_t id)
{
    char s[64];
    uint64_t ips[16];
    cs_trace_string(t, id, s, sizeof s);
    cs_trace_string(t, id, s, 1);
    cs_trace_stack(t, id, ips, 16);
}

void fz_walk(cs_trace *t)
{
    cs_trace_info info;
    if (cs_trace_info_get(t, &info) != 0)
        return;
    for (uint32_t r = 0; r < info.ring_count; r++) {
        cs_trace_ring ring;
        cs_trace_ring_get(t, r, &ring);
        uint64_t cursor = 0, lost = 0;
        cs_trace_event ev[128];
        size_t n;
        for (int rounds = 0; rounds < 64; rounds++) {
            if (cs_trace_read(t, r, &cursor, ev, 128, &n, &lost) != 0 ||
                n == 0)
                break;
            for (size_t i = 0; i < n; i++) {
                names(t, ev[i].arg);
                (void)cs_trace_event_name(ev[i].type);
                (void)cs_trace_wait_name(ev[i].reason);
                (void)cs_trace_warning_name(ev[i].reason);
                (void)cs_trace_ns(t, ev[i].ts);
                (void)cs_trace_ticks_ns(t, cs_trace_event_ticks(&ev[i]));
            }
        }
    }
    cs_trace_module mod;
    uint32_t mi = 0;
    while (cs_trace_module_next(t, &mi, &mod) == 1)
        if (strlen(mod.path) >= sizeof mod.path ||
            mod.build_id_len > CS_BUILD_ID_MAX || mod.start > mod.end)
            abort(); /* the reader let a bad entry through */
    cs_trace_task task;
    uint32_t it = 0;
    while (cs_trace_task_next(t, &it, &task) == 1) {
        names(t, task.name);
        names(t, task.site);
        (void)cs_trace_state_name(task.state);
        (void)cs_trace_wait_name(task.wait);
    }
    (void)cs_trace_tasks_skipped(t);
    (void)cs_trace_stale(t);
}

void fz_fix_crcs(uint8_t *data, size_t size)
{
    if (size < sizeof(cs_seg_header))
        return;
    uint32_t hs;
    memcpy(&hs, data + offsetof(cs_seg_header, header_size), 4);
    for (uint64_t off = hs; off + sizeof(cs_chunk_header) <= size;) {
        cs_chunk_header c;
        memcpy(&c, data + off, sizeof c);
        uint64_t room = size - off - sizeof c;
        uint64_t len = c.length < room ? c.length : room;
        c.crc = cs__tr_crc32(0, data + off + sizeof c, (size_t)len);
        c.header_crc =
            cs__tr_crc32(0, &c, offsetof(cs_chunk_header, header_crc));
        memcpy(data + off, &c, sizeof c);
        if (c.length > room)
            break;
        off += sizeof c + c.length;
    }
}

size_t fz_resize_chunk(uint8_t *data, size_t size, size_t max, unsigned r)
{
    uint64_t offs[256];
    size_t n = 0;
    uint32_t hs;
    if (size < sizeof(cs_seg_header))
        return size;
    memcpy(&hs, data + offsetof(cs_seg_header, header_size), 4);
    for (uint64_t off = hs;
         n < 256 && off + sizeof(cs_chunk_header) <= size;) {
        cs_chunk_header c;
        memcpy(&c, data + off, sizeof c);
        if (c.length > size - off - sizeof c)
            break;
        offs[n++] = off;
        off += sizeof c + c.length;
    }
    if (n == 0)
        return size;
    uint64_t off = offs[r % n];
    int delta = (int)((r / 256) % 15) - 7;
    cs_chunk_header c;
    memcpy(&c, data + off, sizeof c);
    uint64_t end = off + sizeof c + c.length; /* where the payload ends */
    if (delta < 0 && (uint32_t)-delta > c.length)
        delta = -(int)c.length;
    if (delta > 0 && size + (size_t)delta > max)
        return size;
    memmove(data + end + delta, data + end, size - end);
    if (delta > 0)
        memset(data + end, (int)(r >> 16), (size_t)delta);
    c.length += (uint32_t)delta;
    memcpy(data + off, &c, sizeof c);
    return size + (size_t)(ptrdiff_t)delta;
}

void fz_fix_segment_size(uint8_t *data, size_t size)
{
    if (size < sizeof(cs_seg_header))
        return;
    uint64_t v = size;
    memcpy(data + offsetof(cs_seg_header, segment_size), &v, 8);
}
