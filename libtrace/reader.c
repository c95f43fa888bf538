/*
 * reader.c - the public reader API over a live segment (and the dispatch to
 * reader_file.c for trace files).
 *
 * The segment is opened O_RDONLY|O_NOFOLLOW|O_NONBLOCK, checked with fstat
 * (regular file, our uid unless we are root, mode 0600, size), mapped
 * PROT_READ (and guarded against SIGBUS: map_guard.c), and
 * its header copied and validated once (cs__tr_header_check): from then on
 * the geometry comes from the copy, never from the mapping.  Live counters
 * and records are re-read on every call and clamped.  Every access to the
 * mapping goes through at() (after LTTng-UST's shm accessors), which
 * returns NULL for anything outside it; every corruption goes through
 * CS__CORRUPT, which records the line (after SQLite's SQLITE_CORRUPT_BKPT).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SEG_SIZE_MAX ((uint64_t)1 << 40)

/* The only way to reach the mapping: [off, off + len) or NULL. */
static const void *at(const cs_trace *t, uint64_t off, uint64_t len)
{
    if (off > t->map_size || len > t->map_size - off)
        return NULL;
    return t->map + off;
}

static int is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Region r of h lies inside [header_size, size) and holds at least need
 * bytes. */
static int region_ok(const cs_seg_header *h, int r, uint64_t size,
                     uint64_t need)
{
    const cs_region_ref *g = &h->regions[r];
    return g->offset >= h->header_size && g->offset <= size &&
           g->size <= size - g->offset && g->size >= need;
}

int cs__tr_header_check(cs_trace *t, const cs_seg_header *h, uint64_t size,
                        int is_file)
{
    if (memcmp(h->magic, is_file ? CS_FILE_MAGIC : CS_SEG_MAGIC,
               CS_MAGIC_LEN) != 0)
        return CS__CORRUPT(t, "bad magic: not a coscope trace");
    if (h->endian != CS_ENDIAN_MARK) {
        cs__tr_set_detail(__LINE__, "written with the other byte order");
        return CS_TRACE_EVERSION;
    }
    if (h->version_major != CS_FORMAT_MAJOR) {
        cs__tr_set_detail(__LINE__, "unsupported major version");
        return CS_TRACE_EVERSION;
    }
    if (h->header_size < sizeof(cs_seg_header) || h->header_size > 65536 ||
        (!is_file && h->header_size > size))
        return CS__CORRUPT(t, "header size out of range");
    if (h->record_size != sizeof(cs_record) ||
        h->task_slot_size != sizeof(cs_task_slot) ||
        h->ring_header_size != sizeof(cs_ring_header))
        return CS__CORRUPT(t, "record, slot or ring header size unknown");
    if (h->clock != CS_CLOCK_TSC && h->clock != CS_CLOCK_MONOTONIC)
        return CS__CORRUPT(t, "unknown clock");
    if (h->ns_mult == 0 || h->build_id_len > CS_BUILD_ID_MAX)
        return CS__CORRUPT(t, "bad clock multiplier or build id length");
    if (h->ring_count > CS_RING_MAX || h->task_slots > CS_TASK_SLOTS_MAX)
        return CS__CORRUPT(t, "ring or task count out of range");
    if (!is_pow2(h->ring_slots) || h->ring_slots < CS_RING_SLOTS_MIN ||
        h->ring_slots > CS_RING_SLOTS_MAX)
        return CS__CORRUPT(t, "ring slot count not a power of two in range");
    if (is_file)
        return 0;
    if (h->segment_size != size)
        return CS__CORRUPT(t, "segment size differs from the file size");
    uint64_t stride = CS_RING_STRIDE(h->ring_slots);
    if (!region_ok(h, CS_REGION_RINGS, size, stride * h->ring_count) ||
        !region_ok(h, CS_REGION_TASKS, size,
                   (uint64_t)h->task_slots * sizeof(cs_task_slot)) ||
        !region_ok(h, CS_REGION_STRINGS, size, CS_TABLE_FIRST) ||
        !region_ok(h, CS_REGION_STACKS, size, CS_TABLE_FIRST))
        return CS__CORRUPT(t, "region outside the segment");
    const cs_region_ref *m = &h->modules;
    if ((m->offset != 0 || m->size != 0) &&
        (m->offset < h->header_size || m->offset > size ||
         m->size > size - m->offset || m->size < sizeof(cs_module_table) ||
         m->offset % 64 != 0))
        return CS__CORRUPT(t, "module table outside the segment");
    if (h->regions[CS_REGION_RINGS].offset % 64 != 0 ||
        h->regions[CS_REGION_TASKS].offset % 64 != 0 ||
        h->regions[CS_REGION_STRINGS].offset % 8 != 0 ||
        h->regions[CS_REGION_STACKS].offset % 8 != 0)
        return CS__CORRUPT(t, "misaligned region");
    return 0;
}

/* Checks the module table's own header against its region; geometry is
 * taken from here once (the writer sets it before READY).  A bad one does
 * not refuse the segment (the table is optional, like any table's
 * content): cs_trace_module_next reports it. */
static void modules_check(cs_trace *t)
{
    const cs_region_ref *m = &t->hdr.modules;
    if (m->size == 0)
        return; /* a minor 0 writer: no table */
    const cs_module_table *mt = at(t, m->offset, sizeof *mt);
    uint32_t cap = mt ? __atomic_load_n(&mt->capacity, __ATOMIC_RELAXED) : 0;
    uint32_t esz = mt ? __atomic_load_n(&mt->entry_size, __ATOMIC_RELAXED) : 0;
    if (esz != sizeof(cs_module) || cap > CS_MODULES_MAX ||
        sizeof *mt + (uint64_t)cap * sizeof(cs_module) > m->size) {
        t->modules_bad = 1;
        return;
    }
    t->modules_off = m->offset;
    t->modules_cap = cap;
}

/* Checks the open file before mapping it. */
static int check_file(int fd, uint64_t *size, unsigned *owner)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode)) {
        cs__tr_set_detail(__LINE__, "not a regular file");
        return -EINVAL;
    }
    uid_t me = geteuid();
    if ((me != 0 && st.st_uid != me) || (st.st_mode & 077) != 0) {
        cs__tr_set_detail(__LINE__,
                          "segment not owned by us or not mode 0600");
        return -EACCES;
    }
    if ((uint64_t)st.st_size < sizeof(cs_seg_header) ||
        (uint64_t)st.st_size > SEG_SIZE_MAX) {
        cs__tr_set_detail(__LINE__, "segment size out of range");
        return CS_TRACE_ECORRUPT;
    }
    *size = (uint64_t)st.st_size;
    *owner = (unsigned)st.st_uid;
    return 0;
}

int cs_trace_open_segment(const char *path, cs_trace **out)
{
    *out = NULL;
    cs__tr_set_detail(0, "");
    /* O_NONBLOCK: a FIFO planted under the segment's name would block the
     * open until someone writes it (fstat then refuses it). */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        cs__tr_set_detail(__LINE__, err == -ELOOP ? "segment is a symlink"
                                                  : "cannot open segment");
        return err;
    }
    uint64_t size = 0;
    unsigned owner = 0;
    int err = check_file(fd, &size, &owner);
    cs_trace *t = err ? NULL : calloc(1, sizeof *t);
    if (!err && t == NULL)
        err = -ENOMEM;
    void *map = MAP_FAILED;
    if (!err) {
        map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
            err = -errno;
    }
    close(fd);
    int guard = -1;
    if (!err && (guard = cs__tr_map_guard_add(map, size)) < 0)
        err = guard;
    if (!err) {
        t->map = map;
        t->map_size = size;
        t->fd = -1;
        t->owner = owner;
        t->guard = guard;
        /* READY is set last with release: read it first, then the rest. */
        const uint32_t *flags = at(t, offsetof(cs_seg_header, flags), 4);
        uint32_t f = flags ? __atomic_load_n(flags, __ATOMIC_ACQUIRE) : 0;
        memcpy(&t->hdr, map, sizeof t->hdr);
        err = cs__tr_header_check(t, &t->hdr, size, 0);
        if (!err && !(f & CS_SEG_F_READY)) {
            cs__tr_set_detail(__LINE__, "segment is still being initialised");
            err = -EAGAIN;
        }
        if (!err)
            modules_check(t);
    }
    if (err) {
        cs__tr_map_guard_remove(guard);
        if (map != MAP_FAILED)
            munmap(map, size);
        free(t);
        return err;
    }
    const cs_seg_header *h = &t->hdr;
    t->rings_off = h->regions[CS_REGION_RINGS].offset;
    t->ring_stride = CS_RING_STRIDE(h->ring_slots);
    t->tasks_off = h->regions[CS_REGION_TASKS].offset;
    t->strings_off = h->regions[CS_REGION_STRINGS].offset;
    t->strings_size = h->regions[CS_REGION_STRINGS].size;
    t->stacks_off = h->regions[CS_REGION_STACKS].offset;
    t->stacks_size = h->regions[CS_REGION_STACKS].size;
    *out = t;
    return 0;
}

/*
 * A segment is process pid's only if the process's user could have made
 * it: its owner is the process's effective (or file-system) uid, or root
 * (a daemon that created it before dropping privileges).  The pid and
 * start time in the header prove nothing: anyone can read them in
 * /proc/PID/stat and plant a file with them.
 */
static int owner_check(cs_trace *t, int pid)
{
    unsigned euid, fsuid;
    int err = cs__tr_pid_uids(pid, &euid, &fsuid);
    if (err == -ESRCH)
        return 0; /* gone: cs_trace_stale says so */
    if (err)
        return err;
    if (t->owner == euid || t->owner == fsuid || t->owner == 0)
        return 0;
    char what[128];
    snprintf(what, sizeof what,
             "segment owned by uid %u but process %d runs as uid %u", t->owner,
             pid, euid);
    cs__tr_set_detail(__LINE__, what);
    return -EPERM;
}

int cs_trace_open_pid(int pid, cs_trace **out)
{
    char path[64];
    *out = NULL;
    if (pid <= 0)
        return -EINVAL;
    snprintf(path, sizeof path, "%s/%s%d", CS_SEG_DIR, CS_SEG_PREFIX, pid);
    int err = cs_trace_open_segment(path, out);
    if (err == 0 && (int)(*out)->hdr.pid != pid) {
        cs_trace_close(*out);
        *out = NULL;
        cs__tr_set_detail(__LINE__, "segment names another pid");
        return CS_TRACE_ECORRUPT;
    }
    if (err == 0 && (err = owner_check(*out, pid)) != 0) {
        cs_trace_close(*out);
        *out = NULL;
    }
    return err;
}

int cs_trace_open_file(const char *path, cs_trace **out)
{
    *out = NULL;
    cs__tr_set_detail(0, "");
    return cs__tr_file_open(path, out);
}

void cs_trace_close(cs_trace *t)
{
    if (t == NULL)
        return;
    if (t->is_file)
        cs__tr_file_close(t);
    else if (t->map != NULL) {
        cs__tr_map_guard_remove(t->guard);
        munmap((void *)t->map, t->map_size);
    }
    free(t);
}

/* rc, or CS_TRACE_ECORRUPT saying why once the segment file shrank under
 * the mapping (map_guard.c turned the missing pages into zeros, which may
 * have failed a check on the way with a less helpful reason). */
static int guarded(cs_trace *t, int rc)
{
    if (!t->is_file && cs__tr_map_guard_hit(t->guard))
        return CS__CORRUPT(t, "segment file shrank while being read");
    return rc;
}

/* A live counter of the header, read now. */
static uint64_t live(const cs_trace *t, size_t off)
{
    const uint64_t *p = at(t, off, 8);
    return p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
}

int cs_trace_info_get(cs_trace *t, cs_trace_info *info)
{
    const cs_seg_header *h = &t->hdr;
    memset(info, 0, sizeof *info);
    info->is_file = t->is_file;
    info->pid = (int)h->pid;
    info->start_time = h->start_time;
    info->version_major = h->version_major;
    info->version_minor = h->version_minor;
    info->clock = h->clock;
    info->flags = h->flags;
    info->tick_hz = h->tick_hz;
    info->realtime_anchor = h->realtime_anchor;
    info->ring_count = h->ring_count;
    info->ring_slots = h->ring_slots;
    info->task_slots = t->is_file ? t->ntasks : h->task_slots;
    memcpy(info->exe_path, h->exe_path, CS_EXE_PATH_MAX);
    info->exe_path[CS_EXE_PATH_MAX - 1] = '\0';
    memcpy(info->build_id, h->build_id, h->build_id_len);
    info->build_id_len = h->build_id_len;
/* The header's counters a live writer keeps updating. */
#define LIVE_COUNTERS(X)                                                      \
    X(tasks_hwm)                                                              \
    X(tasks_dropped)                                                          \
    X(strings_dropped) X(stacks_dropped) X(warnings) X(rings_dropped)
    if (t->is_file) {
#define FROM_FILE(field) info->field = h->field;
        LIVE_COUNTERS(FROM_FILE)
#undef FROM_FILE
        info->complete = t->complete;
        info->valid_bytes = t->valid_bytes;
        return 0;
    }
#define FROM_SEGMENT(field)                                                   \
    info->field = live(t, offsetof(cs_seg_header, field));
    LIVE_COUNTERS(FROM_SEGMENT)
#undef FROM_SEGMENT
#undef LIVE_COUNTERS
    return guarded(t, 0);
}

/* Ring r's header in the mapping, with its slot count checked. */
static const cs_ring_header *ring_at(cs_trace *t, uint32_t r, int *err)
{
    const cs_ring_header *rh =
        at(t, t->rings_off + (uint64_t)r * t->ring_stride, t->ring_stride);
    *err = 0;
    if (rh == NULL)
        *err = CS__CORRUPT(t, "ring outside the segment");
    else if (__atomic_load_n(&rh->slots, __ATOMIC_RELAXED) !=
             t->hdr.ring_slots)
        *err = CS__CORRUPT(t, "ring slot count differs from the header's");
    return *err ? NULL : rh;
}

int cs_trace_ring_get(cs_trace *t, uint32_t r, cs_trace_ring *out)
{
    int err;
    memset(out, 0, sizeof *out);
    if (r >= t->hdr.ring_count)
        return -EINVAL;
    if (t->is_file) {
        for (size_t i = 0; i < t->nchunks; i++)
            if (t->chunks[i].ring == r)
                out->head = t->chunks[i].last_seq;
        out->state = out->head ? CS_RING_RELEASED : CS_RING_FREE;
        out->window_seq = t->window_seq[r];
        return 0;
    }
    const cs_ring_header *rh = ring_at(t, r, &err);
    if (rh == NULL)
        return guarded(t, err);
    out->tid = __atomic_load_n(&rh->tid, __ATOMIC_RELAXED);
    out->state = __atomic_load_n(&rh->state, __ATOMIC_RELAXED);
    out->head = __atomic_load_n(&rh->head, __ATOMIC_ACQUIRE);
    out->step_start = __atomic_load_n(&rh->step_start, __ATOMIC_ACQUIRE);
    out->step_task = __atomic_load_n(&rh->step_task, __ATOMIC_RELAXED);
    out->iterations = __atomic_load_n(&rh->iterations, __ATOMIC_RELAXED);
    out->switches = __atomic_load_n(&rh->switches, __ATOMIC_RELAXED);
    return guarded(t, 0);
}

uint64_t cs_trace_ticks_ns(const cs_trace *t, uint64_t ticks)
{
    return cs__tr_ticks_scale(ticks, t->hdr.ns_mult);
}

uint64_t cs_trace_ns(const cs_trace *t, uint64_t ts)
{
    const cs_seg_header *h = &t->hdr;
    if (ts >= h->tsc_anchor)
        return h->ns_anchor +
               cs__tr_ticks_scale(ts - h->tsc_anchor, h->ns_mult);
    uint64_t back = cs__tr_ticks_scale(h->tsc_anchor - ts, h->ns_mult);
    return back < h->ns_anchor ? h->ns_anchor - back : 0;
}

uint64_t cs_trace_event_ticks(const cs_trace_event *ev)
{
    return ev->flags & CS_RECF_ARG_SHIFT16 ? (uint64_t)ev->arg << 16
                                           : (uint64_t)ev->arg;
}

void cs__tr_event_from_record(const cs_record *r, uint32_t ring,
                              cs_trace_event *ev)
{
    ev->seq = r->seq;
    ev->ts = r->ts;
    ev->task_id = r->task_id;
    ev->arg = r->arg;
    ev->type = (uint8_t)CS_REC_TYPE(r->info);
    ev->reason = (uint8_t)CS_REC_REASON(r->info);
    ev->flags = (uint16_t)CS_REC_FLAGS(r->info);
    ev->ring = ring;
}

/* One event of a compact record: its seq, ts and ring, these fields. */
static void event_set(cs_trace_event *ev, const cs_record *r, uint32_t ring,
                      uint64_t task, unsigned type, unsigned reason,
                      unsigned flags, uint32_t arg)
{
    ev->seq = r->seq;
    ev->ts = r->ts;
    ev->task_id = task;
    ev->arg = arg;
    ev->type = (uint8_t)type;
    ev->reason = (uint8_t)reason;
    ev->flags = (uint16_t)flags;
    ev->ring = ring;
}

size_t cs__tr_event_expand(const cs_record *r, uint32_t ring,
                           cs_trace_event *ev, size_t room)
{
    uint32_t type = CS_REC_TYPE(r->info);
    uint32_t hi = (uint32_t)r->info >> 8; /* reason | flags << 8 */
    uint64_t task = r->task_id;

    if (type == CS_EV_TASK_NEW) {
        if (room < 2)
            return 0;
        event_set(&ev[0], r, ring, task, CS_EV_TASK_CREATED, 0, 0, r->arg);
        event_set(&ev[1], r, ring, task, CS_EV_TASK_NAME, 0, 0,
                  (hi & 0xffffffu) << 2);
        return 2;
    }
    if (type == CS_EV_LIFE) {
        /* any d gives events: ids are opaque, nothing is indexed by them */
        uint64_t d = (hi & 0xffu) | (uint64_t)(hi >> 9) << 8;
        unsigned f = CS_RECF_BATCHED | ((hi >> 8) & CS_RECF_ARG_SHIFT16);
        if (room < 4)
            return 0;
        event_set(&ev[0], r, ring, task, CS_EV_WAIT, CS_WAIT_TASK, 0, 0);
        event_set(&ev[1], r, ring, task - d, CS_EV_STEP, CS_WAIT_TASK, f,
                  r->arg);
        event_set(&ev[2], r, ring, task, CS_EV_STEP, CS_STOP_DONE, f, r->arg);
        event_set(&ev[3], r, ring, task, CS_EV_TASK_DONE, 0, 0, 0);
        return 4;
    }
    if (room < 1)
        return 0;
    cs__tr_event_from_record(r, ring, ev);
    return 1;
}

int cs_trace_read(cs_trace *t, uint32_t r, uint64_t *cursor,
                  cs_trace_event *ev, size_t cap, size_t *n, uint64_t *lost)
{
    int err;
    *n = 0;
    if (r >= t->hdr.ring_count)
        return -EINVAL;
    if (t->is_file)
        return cs__tr_file_read(t, r, cursor, ev, cap, n, lost);
    const cs_ring_header *rh = ring_at(t, r, &err);
    if (rh == NULL)
        return guarded(t, err);
    const cs_record *slots = (const cs_record *)(rh + 1);
    cs_record buf[256];
    while (*n < cap) {
        /* records whose events surely fit; at the end, one at a time, and
         * one whose events do not fit is left for the next call */
        size_t want = (cap - *n) / CS_EV_EXPAND_MAX;
        want = want > 256 ? 256 : want ? want : 1;
        uint64_t cursor0 = *cursor, lost0 = *lost;
        size_t got = cs__tr_ring_read(rh, slots, t->hdr.ring_slots, cursor,
                                      buf, want, lost);
        for (size_t i = 0; i < got; i++) {
            size_t k = cs__tr_event_expand(&buf[i], r, &ev[*n], cap - *n);
            if (k == 0) { /* only when want == 1: unread again */
                *cursor = cursor0;
                *lost = lost0;
                return guarded(t, 0);
            }
            *n += k;
        }
        if (got < want)
            break;
    }
    return guarded(t, 0);
}

static int read_task(cs_trace *t, uint32_t *iter, cs_trace_task *out)
{
    cs_task_slot s;
    for (;;) {
        uint32_t i = *iter;
        if (t->is_file) {
            if (i >= t->ntasks)
                return 0;
            s = t->tasks[i];
        } else {
            uint64_t hwm = live(t, offsetof(cs_seg_header, tasks_hwm));
            if (i >= t->hdr.task_slots || i >= hwm)
                return 0;
            const cs_task_slot *p =
                at(t, t->tasks_off + (uint64_t)i * sizeof s, sizeof s);
            if (p == NULL)
                return CS__CORRUPT(t, "task slot outside the segment");
            if (cs__tr_task_read(p, &s) != 0) {
                t->tasks_skipped++;
                (*iter)++;
                continue;
            }
        }
        (*iter)++;
        if (s.id == 0)
            continue;
        out->slot = i;
        out->gen = s.gen;
        out->id = s.id;
        out->name = s.name;
        out->site = s.site;
        out->state = s.state;
        out->wait = s.wait;
        out->flags = s.flags;
        out->wait_target = s.wait_target;
        out->wait_aux = s.wait_aux;
        out->awaiter = s.awaiter;
        out->parent = s.parent;
        out->created = s.created;
        out->last_run = s.last_run;
        out->steps = s.steps;
        out->run_ticks = s.run_ticks;
        out->sp = s.sp;
        out->fp = s.fp;
        out->ip = s.ip;
        out->ring = s.ring;
        return 1;
    }
}

int cs_trace_task_next(cs_trace *t, uint32_t *iter, cs_trace_task *out)
{
    return guarded(t, read_task(t, iter, out));
}

uint64_t cs_trace_tasks_skipped(const cs_trace *t)
{
    return t->tasks_skipped;
}

/* The first word of the entry at id (the caller checked that 4 bytes are
 * there), read once: a live writer may change it between two reads, so the
 * length is checked and used from this one load. */
static uint32_t entry_word(const uint8_t *table, uint32_t id)
{
    return __atomic_load_n((const uint32_t *)(table + id), __ATOMIC_ACQUIRE);
}

/* Checks entry id of a table whose entries are aligned to align bytes:
 * a u32 count in [1, max] first, then align - 4 bytes, then count items
 * of each bytes.  0 with *n the count, -ENOENT (id 0, or not committed
 * yet) or CS_TRACE_ECORRUPT. */
static int entry_at(const uint8_t *table, uint64_t len, uint32_t id,
                    unsigned align, uint32_t max, unsigned each, uint32_t *n)
{
    if (id == 0)
        return -ENOENT;
    if (id < CS_TABLE_FIRST || id % align != 0 || id >= len)
        return CS_TRACE_ECORRUPT;
    if (len - id < align)
        return CS_TRACE_ECORRUPT; /* the entry's head runs off the table */
    *n = entry_word(table, id);
    if (*n == 0)
        return -ENOENT;
    if (*n > max || CS__ALIGN(align + (uint64_t)each * *n, align) > len - id)
        return CS_TRACE_ECORRUPT;
    return 0;
}

int cs__tr_string_copy(const uint8_t *table, uint64_t len, uint32_t id,
                       char *buf, size_t cap)
{
    uint32_t w;
    if (cap > 0)
        buf[0] = '\0';
    int err = entry_at(table, len, id, 4, CS_STRING_MAX + 1, 1, &w);
    if (err != 0)
        return err;
    uint32_t slen = w - 1;
    if (cap > 0) {
        size_t k = slen < cap - 1 ? slen : cap - 1;
        memcpy(buf, table + id + 4, k);
        buf[k] = '\0';
    }
    return (int)slen;
}

int cs__tr_stack_copy(const uint8_t *table, uint64_t len, uint32_t id,
                      uint64_t *ips, size_t cap)
{
    uint32_t n;
    int err = entry_at(table, len, id, 8, CS_STACK_MAX, 8, &n);
    if (err != 0)
        return err;
    memcpy(ips, table + id + 8, 8 * (n < cap ? n : cap));
    return (int)n;
}

/* The used part of a live table, clamped to its region. */
static const uint8_t *live_table(cs_trace *t, uint64_t off, uint64_t size,
                                 size_t used_field, uint64_t *len)
{
    uint64_t used = live(t, used_field);
    *len = used < size ? used : size;
    return at(t, off, size);
}

/* The string table (or, if stacks, the stack table) and its used length:
 * a file's copy, or the live segment's. */
static const uint8_t *table(cs_trace *t, int stacks, uint64_t *len)
{
    if (t->is_file) {
        *len = stacks ? t->stacks_len : t->strings_len;
        return stacks ? t->stacks : t->strings;
    }
    if (stacks)
        return live_table(t, t->stacks_off, t->stacks_size,
                          offsetof(cs_seg_header, stacks_used), len);
    return live_table(t, t->strings_off, t->strings_size,
                      offsetof(cs_seg_header, strings_used), len);
}

static int read_string(cs_trace *t, uint32_t id, char *buf, size_t cap)
{
    uint64_t len;
    const uint8_t *tab = table(t, 0, &len);
    if (tab == NULL)
        return cap > 0 ? (buf[0] = '\0', -ENOENT) : -ENOENT;
    int r = cs__tr_string_copy(tab, len, id, buf, cap);
    return r == CS_TRACE_ECORRUPT ? CS__CORRUPT(t, "bad string id") : r;
}

int cs_trace_string(cs_trace *t, uint32_t id, char *buf, size_t cap)
{
    return guarded(t, read_string(t, id, buf, cap));
}

static int read_stack(cs_trace *t, uint32_t id, uint64_t *ips, size_t cap)
{
    uint64_t len;
    const uint8_t *tab = table(t, 1, &len);
    if (tab == NULL)
        return -ENOENT;
    int r = cs__tr_stack_copy(tab, len, id, ips, cap);
    return r == CS_TRACE_ECORRUPT ? CS__CORRUPT(t, "bad stack id") : r;
}

int cs_trace_stack(cs_trace *t, uint32_t id, uint64_t *ips, size_t cap)
{
    return guarded(t, read_stack(t, id, ips, cap));
}

int cs__tr_module_ok(const cs_module *m)
{
    size_t len = strnlen(m->path, CS_MODULE_PATH_MAX);
    return m->build_id_len <= CS_BUILD_ID_MAX && len < CS_MODULE_PATH_MAX &&
           len == m->path_len && m->start <= m->end;
}

uint32_t cs__tr_live_modules_count(cs_trace *t)
{
    if (t->modules_off == 0)
        return 0;
    const cs_module_table *mt = at(t, t->modules_off, sizeof *mt);
    uint32_t n = mt ? __atomic_load_n(&mt->count, __ATOMIC_ACQUIRE) : 0;
    return n < t->modules_cap ? n : t->modules_cap;
}

static int read_module(cs_trace *t, uint32_t *iter, cs_trace_module *out)
{
    cs_module m;
    uint32_t i = *iter;
    if (t->is_file) {
        if (i >= t->nmodules)
            return 0;
        m = t->modules[i]; /* checked when the chunk was read */
    } else {
        if (t->modules_bad)
            return CS__CORRUPT(t, "module table geometry out of range");
        if (i >= cs__tr_live_modules_count(t))
            return 0;
        const cs_module *p = at(t,
                                t->modules_off + sizeof(cs_module_table) +
                                    (uint64_t)i * sizeof m,
                                sizeof m);
        if (p == NULL)
            return CS__CORRUPT(t, "module entry outside the segment");
        memcpy(&m, p, sizeof m); /* committed entries never change */
        if (!cs__tr_module_ok(&m))
            return CS__CORRUPT(t, "bad module entry");
    }
    (*iter)++;
    memset(out, 0, sizeof *out);
    out->base = m.base;
    out->start = m.start;
    out->end = m.end;
    out->flags = m.flags;
    out->build_id_len = m.build_id_len;
    memcpy(out->build_id, m.build_id, m.build_id_len);
    memcpy(out->path, m.path, m.path_len);
    out->path[m.path_len] = '\0';
    return 1;
}

int cs_trace_module_next(cs_trace *t, uint32_t *iter, cs_trace_module *out)
{
    return guarded(t, read_module(t, iter, out));
}
