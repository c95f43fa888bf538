/*
 * segment.c - creating, describing and removing this process's segment
 * /dev/shm/coscope.<pid>, and handing out its rings.
 *
 * The file is created O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, and its space
 * reserved with posix_fallocate (or written page by page) so that a full
 * /dev/shm fails here, with an error code, instead of with SIGBUS later.  A
 * segment already at our name belongs to a dead process that had our pid
 * (we are alive and have not made it), so it is replaced.  The header is
 * filled before CS_SEG_F_READY is set with release; readers refuse a
 * segment without it.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

cs__tr_state cs__tr_g;
cs__tr_seg cs__tr_seg_g;

static cs__tr_ring *rings;       /* writer handles, one per ring */
static cs__tr_ring *stale_rings; /* a forked child's parent's handles */
static uint32_t ring_count;
static char flight_path[4096]; /* COSCOPE_FLIGHT, copied at start */
static int have_flight;
static int recording;

static uint32_t env_u32(const char *name, uint32_t def, uint32_t lo,
                        uint32_t hi)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return def;
    return (uint32_t)v;
}

void cs__tr_config_env(cs__tr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *on = getenv("COSCOPE");
    cfg->enabled =
        !(on != NULL && (strcmp(on, "off") == 0 || strcmp(on, "0") == 0 ||
                         strcmp(on, "no") == 0));
    cfg->ring_kb = env_u32("COSCOPE_RING_KB", 1024, 4, 1u << 20);
    cfg->rings = env_u32("COSCOPE_RINGS", 4, 1, CS_RING_MAX);
    cfg->task_slots = env_u32("COSCOPE_TASKS", 16384, 16, CS_TASK_SLOTS_MAX);
    cfg->strings_kb = env_u32("COSCOPE_STRINGS_KB", 256, 4, 65536);
    cfg->stacks_kb = env_u32("COSCOPE_STACKS_KB", 256, 4, 65536);
    const char *clk = getenv("COSCOPE_CLOCK");
    cfg->force_monotonic = clk != NULL && strcmp(clk, "monotonic") == 0;
    cfg->record = getenv("COSCOPE_RECORD");
    cfg->flight = getenv("COSCOPE_FLIGHT");
    if (cfg->record != NULL && *cfg->record == '\0')
        cfg->record = NULL;
    if (cfg->flight != NULL && *cfg->flight == '\0')
        cfg->flight = NULL;
}

/* Field 22 of /proc/self/stat: counted after the last ')' (the command
 * name may contain spaces and parentheses). */
static uint64_t self_start_time(void)
{
    uint64_t v = 0;
    return cs_trace_pid_start_time((int)getpid(), &v) == 0 ? v : 0;
}

static int build_id_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    cs_seg_header *h = arg;
    cs__tr_note_build_id(info, h->build_id, &h->build_id_len);
    return 1; /* only the first object: the executable */
}

/* Lays out the segment: header, strings, stacks, tasks, modules, rings. */
static void layout(cs_seg_header *h, const cs__tr_config *cfg)
{
    uint64_t slots = 1;
    while (slots * 2 * sizeof(cs_record) <= (uint64_t)cfg->ring_kb * 1024)
        slots *= 2;
    if (slots < CS_RING_SLOTS_MIN)
        slots = CS_RING_SLOTS_MIN;
    uint64_t off = sizeof(cs_seg_header);
    h->regions[CS_REGION_STRINGS].offset = off;
    h->regions[CS_REGION_STRINGS].size = (uint64_t)cfg->strings_kb * 1024;
    off += h->regions[CS_REGION_STRINGS].size;
    h->regions[CS_REGION_STACKS].offset = off;
    h->regions[CS_REGION_STACKS].size = (uint64_t)cfg->stacks_kb * 1024;
    off += h->regions[CS_REGION_STACKS].size;
    h->regions[CS_REGION_TASKS].offset = off;
    h->regions[CS_REGION_TASKS].size =
        (uint64_t)cfg->task_slots * sizeof(cs_task_slot);
    off += h->regions[CS_REGION_TASKS].size;
    off = CS__ALIGN(off, 64);
    h->modules.offset = off;
    h->modules.size = sizeof(cs_module_table) +
                      (uint64_t)CS_MODULES_DEFAULT * sizeof(cs_module);
    off += h->modules.size;
    h->regions[CS_REGION_RINGS].offset = off;
    h->regions[CS_REGION_RINGS].size = cfg->rings * CS_RING_STRIDE(slots);
    off += h->regions[CS_REGION_RINGS].size;
    h->segment_size = CS__ALIGN(off, 4096);
    h->ring_count = cfg->rings;
    h->ring_slots = (uint32_t)slots;
    h->task_slots = cfg->task_slots;
}

static void fill_header(cs_seg_header *h, const cs__tr_config *cfg)
{
    cs__tr_clock_cal cal;
    memcpy(h->magic, CS_SEG_MAGIC, CS_MAGIC_LEN);
    h->endian = CS_ENDIAN_MARK;
    h->version_major = CS_FORMAT_MAJOR;
    h->version_minor = CS_FORMAT_MINOR;
    h->header_size = sizeof(cs_seg_header);
    h->word_size = sizeof(void *);
    h->record_size = sizeof(cs_record);
    h->pid = (uint32_t)getpid();
    h->start_time = self_start_time();
    cs__tr_clock_calibrate(&cal, cfg->force_monotonic);
    h->clock = cal.tsc ? CS_CLOCK_TSC : CS_CLOCK_MONOTONIC;
    h->tsc_anchor = cal.tsc_anchor;
    h->ns_anchor = cal.ns_anchor;
    h->ns_mult = cal.ns_mult;
    h->tick_hz = cal.tick_hz;
    h->realtime_anchor = cal.realtime_anchor;
    h->task_slot_size = sizeof(cs_task_slot);
    h->ring_header_size = sizeof(cs_ring_header);
    h->strings_used = CS_TABLE_FIRST;
    h->stacks_used = CS_TABLE_FIRST;
    ssize_t n = readlink("/proc/self/exe", h->exe_path, CS_EXE_PATH_MAX - 1);
    h->exe_path[n > 0 ? n : 0] = '\0';
    dl_iterate_phdr(build_id_cb, h);
}

/* Creates the file and reserves its space; returns the fd or -errno. */
static int create_file(const char *path, uint64_t size)
{
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
        if (fd < 0 && errno == EEXIST && attempt == 0)
            unlink(path); /* left by a dead process that had our pid */
        else if (fd < 0)
            return -errno;
    }
    int err =
        fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
    if (err == 0) {
        err = -posix_fallocate(fd, 0, (off_t)size);
        if (err == -EOPNOTSUPP || err == -EINVAL) { /* write every page */
            static const char zero[4096];
            err = 0;
            for (uint64_t off = 0; off < size && err == 0; off += 4096)
                if (pwrite(fd, zero, 4096, (off_t)off) != 4096)
                    err = errno ? -errno : -ENOSPC;
        }
    }
    if (err != 0) {
        close(fd);
        unlink(path);
        return err;
    }
    return fd;
}

static void map_rings(void)
{
    cs_seg_header *h = cs__tr_seg_g.hdr;
    for (uint32_t i = 0; i < ring_count; i++) {
        cs_ring_header *rh = (cs_ring_header *)(cs__tr_seg_g.rings +
                                                i * cs__tr_seg_g.ring_stride);
        rh->slots = h->ring_slots;
        rings[i].hdr = rh;
        rings[i].slot = (cs_record *)(rh + 1);
        rings[i].mask = h->ring_slots - 1;
        rings[i].head = 0;
        rings[i].index = i;
    }
}

/* In a child after fork(): the parent's segment must not receive the
 * child's events, but pointers into it may still be held, so the mapping
 * is replaced in place by private anonymous memory. */
static void atfork_child(void)
{
    if (cs__tr_seg_g.base == NULL)
        return;
    mmap(cs__tr_seg_g.base, cs__tr_seg_g.size, PROT_READ | PROT_WRITE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    cs__tr_seg_g.base = NULL;
    cs__tr_seg_g.hdr = NULL;
    cs__tr_g.tasks = NULL;
    cs__tr_g.task_slots = 0;
    cs__tr_seg_g.path[0] = '\0';
    cs__tr_seg_g.modules = NULL;
    cs__tr_modules_reset();
    recording = 0;
    have_flight = 0;
    /* Still referenced by stale handles: kept (reachable, so that leak
     * checkers in the child stay quiet), never reused. */
    stale_rings = rings;
    rings = NULL;
    ring_count = 0;
    cs__tr_tables_fini(); /* private; every user checks base/tasks first */
}

static void atexit_stop(void)
{
    cs__tr_stop();
}

int cs__tr_start(void)
{
    cs__tr_config cfg;
    cs__tr_config_env(&cfg);
    return cs__tr_start_with(&cfg);
}

int cs__tr_start_with(const cs__tr_config *cfg)
{
    static int registered;
    if (cs__tr_seg_g.base != NULL)
        return 0;
    if (!cfg->enabled)
        return 1;
    cs_seg_header h;
    memset(&h, 0, sizeof h);
    layout(&h, cfg);
    /* A truncated path could name cfg->dir itself, or another file. */
    int len = snprintf(cs__tr_seg_g.path, sizeof cs__tr_seg_g.path, "%s/%s%d",
                       cfg->dir ? cfg->dir : CS_SEG_DIR, CS_SEG_PREFIX,
                       (int)getpid());
    if (len < 0 || (size_t)len >= sizeof cs__tr_seg_g.path) {
        cs__tr_seg_g.path[0] = '\0';
        return -ENAMETOOLONG;
    }
    int fd = create_file(cs__tr_seg_g.path, h.segment_size);
    if (fd < 0) {
        cs__tr_seg_g.path[0] = '\0';
        return fd;
    }
    void *base =
        mmap(NULL, h.segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = base == MAP_FAILED ? -errno : 0;
    close(fd);
    rings = calloc(cfg->rings, sizeof *rings);
    if (err == 0 && rings == NULL)
        err = -ENOMEM;
    if (err == 0)
        err = cs__tr_tables_init(h.task_slots,
                                 h.regions[CS_REGION_STRINGS].size);
    if (err != 0) {
        if (base != MAP_FAILED)
            munmap(base, h.segment_size);
        free(rings);
        rings = NULL;
        unlink(cs__tr_seg_g.path);
        cs__tr_seg_g.path[0] = '\0';
        return err;
    }
    fill_header(&h, cfg);
    memcpy(base, &h, sizeof h);
    cs__tr_seg_g.base = base;
    cs__tr_seg_g.size = h.segment_size;
    cs__tr_seg_g.hdr = base;
    cs__tr_seg_g.strings =
        cs__tr_seg_g.base + h.regions[CS_REGION_STRINGS].offset;
    cs__tr_seg_g.strings_size = h.regions[CS_REGION_STRINGS].size;
    cs__tr_seg_g.stacks =
        cs__tr_seg_g.base + h.regions[CS_REGION_STACKS].offset;
    cs__tr_seg_g.stacks_size = h.regions[CS_REGION_STACKS].size;
    cs__tr_seg_g.rings = cs__tr_seg_g.base + h.regions[CS_REGION_RINGS].offset;
    cs__tr_seg_g.ring_stride = CS_RING_STRIDE(h.ring_slots);
    cs__tr_seg_g.modules =
        (cs_module_table *)(cs__tr_seg_g.base + h.modules.offset);
    cs__tr_seg_g.modules->capacity = CS_MODULES_DEFAULT;
    cs__tr_seg_g.modules->entry_size = sizeof(cs_module);
    cs__tr_modules_refresh(1);
    ring_count = h.ring_count;
    map_rings();
    cs__tr_g.task_slots = h.task_slots;
    cs__tr_g.epoch++; /* slots cached for an earlier segment are not ours */
    __atomic_store_n(&cs__tr_g.tasks,
                     (cs_task_slot *)(cs__tr_seg_g.base +
                                      h.regions[CS_REGION_TASKS].offset),
                     __ATOMIC_RELEASE);
    __atomic_store_n(&cs__tr_seg_g.hdr->flags, CS_SEG_F_READY,
                     __ATOMIC_RELEASE);

    have_flight = cfg->flight != NULL &&
                  strlen(cfg->flight) < sizeof flight_path;
    if (have_flight)
        strcpy(flight_path, cfg->flight);
    int rec_err = cfg->record != NULL ? cs__tr_recorder_start(cfg->record) : 1;
    recording = rec_err == 0;
    if (rec_err < 0) /* tracing goes on; the user asked for a file */
        fprintf(stderr, "coscope: not recording: cannot create '%s': %s\n",
                cfg->record, strerror(-rec_err));
    if (!registered) {
        registered = 1;
        atexit(atexit_stop);
        pthread_atfork(NULL, NULL, atfork_child);
    }
    return 0;
}

void (*cs__tr_stop_hook)(void);

void cs__tr_stop(void)
{
    if (cs__tr_seg_g.base == NULL)
        return;
    if (cs__tr_stop_hook != NULL)
        cs__tr_stop_hook();
    /* Objects dlopen'ed since the last refresh, for the files below. */
    cs__tr_modules_refresh(0);
    if (recording)
        cs__tr_recorder_stop();
    recording = 0;
    if (have_flight)
        cs__tr_flight_dump(flight_path, CS_SEG_F_FLIGHT);
    have_flight = 0;
    unlink(cs__tr_seg_g.path);
    uint32_t self = (uint32_t)syscall(SYS_gettid);
    int busy = 0;
    for (uint32_t i = 0; i < ring_count; i++)
        busy |= __atomic_load_n(&rings[i].hdr->state, __ATOMIC_RELAXED) ==
                    CS_RING_ACTIVE &&
                __atomic_load_n(&rings[i].hdr->tid, __ATOMIC_RELAXED) != self;
    if (busy) {
        /* exit() while other threads' loops still run: they may be between
         * any check and any store, so nothing they read may change.  The
         * mapping becomes private memory at the same address (as after
         * fork) and every pointer, table and ring handle stays as it is;
         * the process is ending. */
        mmap(cs__tr_seg_g.base, cs__tr_seg_g.size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        cs__tr_seg_g.path[0] = '\0';
        return;
    }
    cs__tr_g.tasks = NULL;
    cs__tr_g.task_slots = 0;
    cs__tr_tables_fini();
    munmap(cs__tr_seg_g.base, cs__tr_seg_g.size);
    free(rings);
    memset(&cs__tr_seg_g, 0, sizeof cs__tr_seg_g);
    rings = NULL;
    ring_count = 0;
}

int cs__tr_active(void)
{
    return cs__tr_seg_g.base != NULL;
}

cs_seg_header *cs__tr_header(void)
{
    return cs__tr_seg_g.hdr;
}

const char *cs__tr_segment_path(void)
{
    return cs__tr_seg_g.path;
}

const char *cs__tr_flight_path(void)
{
    return have_flight ? flight_path : NULL;
}

cs__tr_ring *cs__tr_ring_acquire(void)
{
    if (cs__tr_seg_g.base == NULL)
        return NULL;
    cs__tr_modules_refresh(0); /* a new loop: maybe after a dlopen */
    uint32_t tid = (uint32_t)syscall(SYS_gettid);
    for (uint32_t i = 0; i < ring_count; i++) {
        cs_ring_header *rh = rings[i].hdr;
        uint32_t st = __atomic_load_n(&rh->state, __ATOMIC_RELAXED);
        if (st == CS_RING_ACTIVE)
            continue;
        if (!__atomic_compare_exchange_n(&rh->state, &st, CS_RING_ACTIVE, 0,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        /* A reused ring keeps its head so readers' cursors stay valid. */
        rings[i].head = rh->head;
        __atomic_store_n(&rh->tid, tid, __ATOMIC_RELAXED);
        return &rings[i];
    }
    __atomic_fetch_add(&cs__tr_seg_g.hdr->rings_dropped, 1, __ATOMIC_RELAXED);
    return NULL;
}

void cs__tr_ring_release(cs__tr_ring *r)
{
    if (r == NULL || cs__tr_seg_g.base == NULL)
        return;
    __atomic_store_n(&r->hdr->step_start, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->step_task, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->state, CS_RING_RELEASED, __ATOMIC_RELEASE);
}

void cs__tr_warning(cs__tr_ring *r, uint64_t task, unsigned kind,
                    uint32_t stack_id)
{
    if (cs__tr_seg_g.base == NULL)
        return;
    __atomic_fetch_add(&cs__tr_seg_g.hdr->warnings, 1, __ATOMIC_RELAXED);
    cs__tr_emit(r, cs__tr_now(), task, CS_REC_INFO(CS_EV_WARNING, kind, 0),
                stack_id);
}
