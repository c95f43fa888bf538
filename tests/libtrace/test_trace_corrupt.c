/*
 * test_trace_corrupt.c - hostile segments: a valid segment is copied, one
 * field is damaged, and the reader must refuse it with the right code at
 * open, or, for data it reads later, return CS_TRACE_ECORRUPT or clamp:
 * never read outside the mapping (run under ASan to see that).  Trace
 * files with damaged module chunks are built chunk by chunk with the
 * writer's own chunk function, so that only the intended field is wrong.
 */
#include "tl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct seg_copy {
    uint8_t *bytes;
    size_t len;
    uint32_t name, stack;
} seg_copy;

static int setup(void **state)
{
    seg_copy *s = calloc(1, sizeof *s);
    tl_start(4, 2);
    cs__tr_ring *r = cs__tr_ring_acquire();
    s->name = cs__tr_intern("victim");
    uint64_t ips[3] = {1, 2, 3};
    s->stack = cs__tr_stack_put(ips, 3);
    cs__tr_task_alloc(1, s->name, 0, 0, 0, 0);
    for (uint64_t i = 1; i <= 40; i++)
        cs__tr_emit(r, i, i, CS_REC_INFO(CS_EV_USER, 0, 0), s->name);
    s->bytes = tl_slurp(cs__tr_segment_path(), &s->len);
    cs__tr_stop();
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    seg_copy *s = *state;
    free(s->bytes);
    free(s);
    return 0;
}

static cs_seg_header *hdr(seg_copy *s)
{
    return (cs_seg_header *)s->bytes;
}

/* Writes the (damaged) copy and opens it; restores nothing. */
static int open_copy(seg_copy *s, size_t len, cs_trace **t)
{
    const char *p = tl_path("seg");
    tl_spit(p, s->bytes, len);
    *t = NULL;
    return cs_trace_open_segment(p, t);
}

/* Damages one header field, checks the open result, undoes the damage. */
#define EXPECT_OPEN(s, field, value, code)                                    \
    do {                                                                      \
        __typeof__(hdr(s)->field) saved = hdr(s)->field;                      \
        hdr(s)->field = (value);                                              \
        cs_trace *t_;                                                         \
        assert_code(open_copy((s), (s)->len, &t_), (code));                   \
        if (t_ == NULL)                                                       \
            assert_true((code) != 0);                                         \
        cs_trace_close(t_);                                                   \
        hdr(s)->field = saved;                                                \
    } while (0)

static void test_trace_corrupt_header_fields_refused(void **state)
{
    seg_copy *s = *state;
    EXPECT_OPEN(s, magic[0], 'X', CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, endian, 0x04030201u, CS_TRACE_EVERSION);
    EXPECT_OPEN(s, version_major, CS_FORMAT_MAJOR + 1, CS_TRACE_EVERSION);
    EXPECT_OPEN(s, version_minor, 99, 0); /* minor versions are compatible */
    EXPECT_OPEN(s, header_size, 12, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, header_size, 0xffffffffu, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, record_size, 64, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, task_slot_size, 64, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, clock, 0, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ns_mult, 0, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, build_id_len, 33, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ring_count, 0xffffffffu, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ring_count, 1000, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ring_slots, 100, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ring_slots, 1u << 31, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ring_slots, 0, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, ring_slots, 1u << 20, CS_TRACE_ECORRUPT); /* too big */
    EXPECT_OPEN(s, task_slots, 0xffffffffu, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, task_slots, 100000, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, segment_size, 1u << 30, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, regions[CS_REGION_RINGS].offset, UINT64_MAX - 8,
                CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, regions[CS_REGION_RINGS].size, UINT64_MAX,
                CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, regions[CS_REGION_TASKS].offset, 64, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, regions[CS_REGION_TASKS].offset,
                hdr(s)->regions[CS_REGION_TASKS].offset + 8,
                CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, regions[CS_REGION_STRINGS].size, (uint64_t)s->len,
                CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, regions[CS_REGION_STACKS].offset, (uint64_t)s->len,
                CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, flags, 0, -EAGAIN); /* not initialised yet */
    /* The undamaged copy opens. */
    EXPECT_OPEN(s, pid, hdr(s)->pid, 0);
}

static void test_trace_corrupt_truncated_segment_refused(void **state)
{
    seg_copy *s = *state;
    cs_trace *t;
    size_t cuts[] = {0,
                     1,
                     100,
                     sizeof(cs_seg_header) - 1,
                     sizeof(cs_seg_header),
                     s->len / 2,
                     s->len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_code(open_copy(s, cuts[i], &t), CS_TRACE_ECORRUPT);
        assert_null(t);
    }
}

/* The file shrinks (to each size) while the reader has it mapped: walking
 * it gives CS_TRACE_ECORRUPT, and nothing dies of SIGBUS. */
static void test_trace_corrupt_segment_shrunk_under_reader(void **state)
{
    seg_copy *s = *state;
    const cs_region_ref *g = hdr(s)->regions;
    size_t sizes[] = {0, 4096, g[CS_REGION_TASKS].offset,
                      g[CS_REGION_RINGS].offset + 4096}; /* ring 1 gone */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cs_trace *t;
        assert_code(open_copy(s, s->len, &t), 0);
        assert_int_equal(truncate(tl_path("seg"), (off_t)sizes[i]), 0);
        cs_trace_info info;
        cs_trace_ring ring;
        cs_trace_task task;
        cs_trace_module mod;
        cs_trace_event ev[64];
        uint64_t cursor = 0, lost = 0, ips[4];
        size_t n;
        uint32_t it = 0, mi = 0;
        char buf[16];
        /* Walk everything: some call touches a missing page. */
        int rc = cs_trace_info_get(t, &info);
        for (uint32_t r = 0; rc == 0 && r < hdr(s)->ring_count; r++)
            if ((rc = cs_trace_ring_get(t, r, &ring)) == 0)
                rc = cs_trace_read(t, r, &cursor, ev, 64, &n, &lost);
        while (rc >= 0 && (rc = cs_trace_task_next(t, &it, &task)) == 1)
            ;
        while (rc >= 0 && (rc = cs_trace_module_next(t, &mi, &mod)) == 1)
            ;
        if (rc >= 0)
            rc = cs_trace_string(t, s->name, buf, sizeof buf);
        if (rc >= 0)
            rc = cs_trace_stack(t, s->stack, ips, 4);
        if (rc != CS_TRACE_ECORRUPT)
            fail_msg("cut to %zu of %zu: %d", sizes[i], s->len, rc);
        /* A page past the end of the file now reads as zeros. */
        it = 0;
        while (cs_trace_task_next(t, &it, &task) == 1)
            ;
        cs_trace_close(t);
    }
}

/* A FIFO under a segment's or a trace file's name is refused at once (the
 * old open blocked until someone wrote to it: `coscope ps` hung on a FIFO
 * another user left in /dev/shm).  The alarm fails the test instead. */
static void test_trace_corrupt_fifo_refused_without_waiting(void **state)
{
    (void)state;
    const char *p = tl_path("fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    cs_trace *t;
    alarm(10);
    assert_code(cs_trace_open_segment(p, &t), -EINVAL);
    assert_code(cs_trace_open_file(p, &t), -EINVAL);
    alarm(0);
    unlink(p);
}

/* A child that runs as uid (when uid != 0) and then waits until *wake is
 * closed; returns once it has its uid. */
static pid_t idle_child(unsigned uid, int *wake)
{
    int fds[2], ready[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c = 1;
        close(fds[1]);
        close(ready[0]);
        if (uid != 0 && setresuid(uid, uid, uid) != 0)
            _exit(1);
        (void)!write(ready[1], &c, 1);
        (void)!read(fds[0], &c, 1);
        _exit(0);
    }
    char c;
    close(fds[0]);
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    *wake = fds[1];
    return pid;
}

/* Plants /dev/shm/coscope.<pid> with pid's header, owned by uid; returns
 * what cs_trace_open_pid says of it. */
static int open_planted(seg_copy *s, pid_t pid, unsigned uid)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s%d", CS_SEG_DIR, CS_SEG_PREFIX,
             (int)pid);
    hdr(s)->pid = (uint32_t)pid;
    assert_code(cs_trace_pid_start_time((int)pid, &hdr(s)->start_time), 0);
    tl_spit(path, s->bytes, s->len);
    assert_int_equal(chown(path, uid, uid), 0);
    cs_trace *t = NULL;
    int rc = cs_trace_open_pid((int)pid, &t);
    assert_true(rc == 0 ? t != NULL : t == NULL);
    cs_trace_close(t);
    unlink(path);
    return rc;
}

/* A segment is a process's only if its owner is the process's user (or
 * root): the pid and start time in a header prove nothing, anyone can
 * read them in /proc. */
static void test_trace_corrupt_planted_segment_refused(void **state)
{
    seg_copy *s = *state;
    if (geteuid() != 0)
        skip(); /* planting for another uid needs chown */
    int wake_root, wake_nobody;
    pid_t root_child = idle_child(0, &wake_root);
    pid_t nobody_child = idle_child(65534, &wake_nobody);
    /* Another user's file for a root process: refused, and says why. */
    assert_code(open_planted(s, root_child, 65534), -EPERM);
    assert_non_null(strstr(cs_trace_error_detail(), "uid 65534"));
    assert_code(open_planted(s, root_child, 0), 0);
    /* A process of uid 65534: its own uid's file, or root's. */
    assert_code(open_planted(s, nobody_child, 65534), 0);
    assert_code(open_planted(s, nobody_child, 0), 0);
    assert_code(open_planted(s, nobody_child, 1234), -EPERM);
    close(wake_root);
    close(wake_nobody);
    waitpid(root_child, NULL, 0);
    waitpid(nobody_child, NULL, 0);
}

static const cs_ring_header *ring0(seg_copy *s)
{
    return (const cs_ring_header *)(s->bytes +
                                    hdr(s)->regions[CS_REGION_RINGS].offset);
}

static void test_trace_corrupt_ring_headers(void **state)
{
    seg_copy *s = *state;
    cs_ring_header *rh = (cs_ring_header *)ring0(s);
    cs_trace *t;
    cs_trace_event ev[512];
    size_t n;
    uint64_t cursor = 0, lost = 0;

    /* Slot count disagreeing with the header: the ring is refused. */
    rh->slots = 1u << 20;
    assert_code(open_copy(s, s->len, &t), 0);
    assert_code(cs_trace_read(t, 0, &cursor, ev, 512, &n, &lost),
                CS_TRACE_ECORRUPT);
    assert_int_equal(n, 0);
    cs_trace_close(t);
    rh->slots = hdr(s)->ring_slots;

    /* A head far ahead: everything is "lost", reads stay in the ring. */
    uint64_t saved = rh->head;
    rh->head = UINT64_MAX - 3;
    assert_code(open_copy(s, s->len, &t), 0);
    assert_code(cs_trace_read(t, 0, &cursor, ev, 512, &n, &lost), 0);
    assert_true(n <= hdr(s)->ring_slots);
    cs_trace_close(t);

    /* Seq numbers that lie: never out of bounds, accounting still adds up. */
    rh->head = saved;
    cs_record *slot = (cs_record *)(rh + 1);
    slot[3].seq = 999999;
    slot[4].seq = 0;
    assert_code(open_copy(s, s->len, &t), 0);
    cursor = lost = 0;
    assert_code(cs_trace_read(t, 0, &cursor, ev, 512, &n, &lost), 0);
    assert_int_equal(n, 3); /* 4 is counted lost, 5 looks unfinished */
    assert_int_equal(lost, 1);
    cs_trace_close(t);
    slot[3].seq = 4;
    slot[4].seq = 5;

    assert_code(open_copy(s, s->len, &t), 0);
    cs_trace_ring info;
    assert_code(cs_trace_ring_get(t, 2, &info), -EINVAL);
    assert_code(cs_trace_read(t, 7, &cursor, ev, 512, &n, &lost), -EINVAL);
    cs_trace_close(t);
}

static void test_trace_corrupt_tables(void **state)
{
    seg_copy *s = *state;
    cs_seg_header *h = hdr(s);
    uint8_t *strings = s->bytes + h->regions[CS_REGION_STRINGS].offset;
    uint8_t *stacks = s->bytes + h->regions[CS_REGION_STACKS].offset;
    cs_trace *t;
    char buf[32];
    uint64_t ips[8];

    /* Used counters beyond the region are clamped to it. */
    uint64_t su = h->strings_used, ku = h->stacks_used;
    h->strings_used = UINT64_MAX;
    h->stacks_used = UINT64_MAX;
    assert_code(open_copy(s, s->len, &t), 0);
    assert_int_equal(cs_trace_string(t, s->name, buf, sizeof buf), 6);
    assert_code(cs_trace_string(t, 0xfffffffc, buf, sizeof buf),
                CS_TRACE_ECORRUPT);
    assert_code(cs_trace_stack(t, 0xfffffff8, ips, 8), CS_TRACE_ECORRUPT);
    cs_trace_close(t);
    h->strings_used = su;
    h->stacks_used = ku;

    /* A string length running past the table. */
    uint32_t saved;
    memcpy(&saved, strings + s->name, 4);
    uint32_t huge = 0x7fffffff;
    memcpy(strings + s->name, &huge, 4);
    assert_code(open_copy(s, s->len, &t), 0);
    assert_code(cs_trace_string(t, s->name, buf, sizeof buf),
                CS_TRACE_ECORRUPT);
    assert_string_equal(buf, "");
    cs_trace_close(t);
    huge = CS_STRING_MAX; /* within the limit but past the used bytes */
    memcpy(strings + s->name, &huge, 4);
    assert_code(open_copy(s, s->len, &t), 0);
    assert_code(cs_trace_string(t, s->name, buf, sizeof buf),
                CS_TRACE_ECORRUPT);
    cs_trace_close(t);
    memcpy(strings + s->name, &saved, 4);

    /* A stack depth past the table or the limit. */
    memcpy(&saved, stacks + s->stack, 4);
    uint32_t deep = CS_STACK_MAX + 1;
    memcpy(stacks + s->stack, &deep, 4);
    assert_code(open_copy(s, s->len, &t), 0);
    assert_code(cs_trace_stack(t, s->stack, ips, 8), CS_TRACE_ECORRUPT);
    cs_trace_close(t);
    memcpy(stacks + s->stack, &saved, 4);

    /* A task high-water mark past the table is bounded by task_slots. */
    uint64_t hwm = h->tasks_hwm;
    h->tasks_hwm = UINT64_MAX;
    assert_code(open_copy(s, s->len, &t), 0);
    cs_trace_task task;
    uint32_t it = 0;
    int found = 0;
    while (cs_trace_task_next(t, &it, &task) == 1)
        found++;
    assert_int_equal(found, 1);
    assert_int_equal(it, h->task_slots);
    cs_trace_close(t);
    h->tasks_hwm = hwm;
}

static cs_module_table *mod_table(seg_copy *s)
{
    return (cs_module_table *)(s->bytes + hdr(s)->modules.offset);
}

static cs_module *mod_entry(seg_copy *s, uint32_t i)
{
    return (cs_module *)(mod_table(s) + 1) + i;
}

/* Opens the copy and iterates its modules: the count, or the error. */
static int count_modules(seg_copy *s)
{
    cs_trace *t;
    assert_code(open_copy(s, s->len, &t), 0);
    cs_trace_module m;
    uint32_t it = 0;
    int n = 0, r;
    while ((r = cs_trace_module_next(t, &it, &m)) == 1) {
        assert_true(strlen(m.path) < sizeof m.path);
        n++;
    }
    cs_trace_close(t);
    return r < 0 ? r : n;
}

static void test_trace_corrupt_module_table_geometry(void **state)
{
    seg_copy *s = *state;
    uint64_t off = hdr(s)->modules.offset;
    assert_true(off != 0);
    EXPECT_OPEN(s, modules.offset, (uint64_t)s->len, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, modules.offset, UINT64_MAX - 8, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, modules.offset, off + 8, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, modules.offset, 64, CS_TRACE_ECORRUPT); /* in the header */
    EXPECT_OPEN(s, modules.size, UINT64_MAX, CS_TRACE_ECORRUPT);
    EXPECT_OPEN(s, modules.size, 8, CS_TRACE_ECORRUPT);
    /* The table's own header must fit its region; if not, the segment
     * still opens (the table is optional) but the table is refused. */
    cs_module_table *mt = mod_table(s);
    uint32_t cap = mt->capacity, esz = mt->entry_size;
    mt->entry_size = 64;
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    mt->entry_size = esz;
    mt->capacity = 0xffffffffu;
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    mt->capacity = cap + 1; /* one entry past the region */
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    mt->capacity = cap;
    /* No table at all (a minor 0 writer): opens, lists nothing. */
    cs_region_ref saved = hdr(s)->modules;
    memset(&hdr(s)->modules, 0, sizeof saved);
    assert_int_equal(count_modules(s), 0);
    hdr(s)->modules = saved;
    assert_true(count_modules(s) > 0);
}

static void test_trace_corrupt_module_entries(void **state)
{
    seg_copy *s = *state;
    cs_module_table *mt = mod_table(s);
    int good = count_modules(s);
    assert_true(good > 0 && (uint32_t)good == mt->count);

    /* A count past the capacity is clamped to it. */
    uint32_t count = mt->count;
    mt->count = 0xffffffffu;
    assert_int_equal(count_modules(s), (int)mt->capacity);
    mt->count = count;

    cs_module *m = mod_entry(s, 0), saved = *m;
    memset(m->path, 'A', sizeof m->path); /* no NUL */
    m->path_len = sizeof m->path;
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    *m = saved;
    m->path_len = (uint16_t)(saved.path_len + 1); /* length and NUL disagree */
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    *m = saved;
    m->build_id_len = CS_BUILD_ID_MAX + 1;
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    *m = saved;
    m->start = m->end + 1;
    assert_code(count_modules(s), CS_TRACE_ECORRUPT);
    *m = saved;
    assert_int_equal(count_modules(s), good);
}

/* libtrace's own chunk writers (hidden, linked statically). */
int cs__tr_fw_header(int fd, const cs_seg_header *live, uint32_t flags);
int cs__tr_fw_chunk(int fd, unsigned kind, unsigned ring, uint64_t base,
                    uint32_t count, const void *payload, uint32_t len);

/* Writes a file: header, one module chunk (base, count, n entries of
 * ent), END; opens it and returns the modules read, *complete set. */
static int file_modules(seg_copy *s, uint64_t base, uint32_t count,
                        const cs_module *ent, uint32_t n, int *complete)
{
    const char *p = tl_path("mod.cst");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_code(cs__tr_fw_header(fd, hdr(s), 0), 0);
    if (ent != NULL)
        assert_code(cs__tr_fw_chunk(fd, CS_CHUNK_MODULES, 0, base, count, ent,
                                    (uint32_t)(n * sizeof *ent)),
                    0);
    assert_code(cs__tr_fw_chunk(fd, CS_CHUNK_END, 0, 0, 0, "", 0), 0);
    close(fd);
    cs_trace *t;
    assert_code(cs_trace_open_file(p, &t), 0);
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    *complete = info.complete;
    cs_trace_module m;
    uint32_t it = 0;
    int k = 0, r;
    while ((r = cs_trace_module_next(t, &it, &m)) == 1)
        k++;
    assert_code(r, 0);
    cs_trace_close(t);
    return k;
}

static void test_trace_corrupt_module_chunks(void **state)
{
    seg_copy *s = *state;
    cs_module ent[2] = {*mod_entry(s, 0), *mod_entry(s, 1)};
    int complete;
    /* Sound: both entries, and the END after them. */
    assert_int_equal(file_modules(s, 0, 2, ent, 2, &complete), 2);
    assert_int_equal(complete, 1);
    /* No module chunk (an older writer): no modules, still complete. */
    assert_int_equal(file_modules(s, 0, 0, NULL, 0, &complete), 0);
    assert_int_equal(complete, 1);
    /* Each damage stops the scan at the chunk: nothing from it is used. */
    assert_int_equal(file_modules(s, 3, 2, ent, 2, &complete), 0);
    assert_int_equal(complete, 0); /* piece out of order */
    assert_int_equal(file_modules(s, 0, 3, ent, 2, &complete), 0);
    assert_int_equal(complete, 0); /* count and length disagree */
    ent[1].build_id_len = 1000;
    assert_int_equal(file_modules(s, 0, 2, ent, 2, &complete), 0);
    assert_int_equal(complete, 0);
    ent[1] = *mod_entry(s, 1);
    memset(ent[1].path, 'x', sizeof ent[1].path);
    assert_int_equal(file_modules(s, 0, 2, ent, 2, &complete), 0);
    assert_int_equal(complete, 0);
    /* More entries than any table may hold. */
    uint32_t many = CS_MODULES_MAX + 1;
    cs_module *big = calloc(many, sizeof *big);
    assert_non_null(big);
    assert_int_equal(file_modules(s, 0, many, big, many, &complete), 0);
    assert_int_equal(complete, 0);
    free(big);
}

/* Writes a file: header, an empty strings piece first (the reader has no
 * payload buffer yet), the given tables, END; opens it. */
static cs_trace *file_tables(seg_copy *s, const uint8_t *str, uint32_t slen,
                             const uint8_t *stk, uint32_t klen)
{
    const char *p = tl_path("tables.cst");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_code(cs__tr_fw_header(fd, hdr(s), 0), 0);
    assert_code(cs__tr_fw_chunk(fd, CS_CHUNK_STRINGS, 0, 0, 0, NULL, 0), 0);
    assert_code(cs__tr_fw_chunk(fd, CS_CHUNK_STRINGS, 0, 0, 0, str, slen), 0);
    assert_code(cs__tr_fw_chunk(fd, CS_CHUNK_STACKS, 0, 0, 0, stk, klen), 0);
    assert_code(cs__tr_fw_chunk(fd, CS_CHUNK_END, 0, 0, 0, "", 0), 0);
    close(fd);
    cs_trace *t;
    assert_code(cs_trace_open_file(p, &t), 0);
    return t;
}

/* A table that ends 1 to 3 (strings) or 1 to 7 (stacks) bytes after an id:
 * id < len, but the entry's first word does not fit.  The reader read
 * those words past its buffer (ASan: heap-buffer-overflow). */
static void test_trace_corrupt_table_cut_inside_a_word(void **state)
{
    seg_copy *s = *state;
    uint8_t tab[64];
    memset(tab, 0xff, sizeof tab);
    memset(tab, 0, 16);
    for (uint32_t cut = 1; cut < 8; cut++) {
        cs_trace *t =
            file_tables(s, tab, 16 + (cut < 4 ? cut : 3), tab, 16 + cut);
        char buf[16] = "x";
        uint64_t ips[4];
        assert_code(cs_trace_string(t, 16, buf, sizeof buf),
                    CS_TRACE_ECORRUPT);
        assert_string_equal(buf, "");
        assert_code(cs_trace_stack(t, 16, ips, 4), CS_TRACE_ECORRUPT);
        cs_trace_close(t);
    }
    /* Whole entries next to the cut still read: "ab" at 8, 2 IPs at 8. */
    uint32_t w = 3;
    memcpy(tab + 8, &w, 4);
    memcpy(tab + 12, "ab", 3);
    cs_trace *t = file_tables(s, tab, 18, tab, 8);
    char buf[16];
    assert_int_equal(cs_trace_string(t, 8, buf, sizeof buf), 2);
    assert_string_equal(buf, "ab");
    assert_code(cs_trace_string(t, 16, buf, sizeof buf), CS_TRACE_ECORRUPT);
    cs_trace_close(t);
}

/* Each report class has one name; its older spelling finds it too, and
 * the trace readers keep printing that spelling. */
static void test_trace_names_report_classes_round_trip(void **state)
{
    (void)state;
    int n = 0;
    for (unsigned k = 1; k < CS_WARN_COUNT; k++) {
        int back = cs_trace_report_class(cs_trace_report_name(k));
        if (k == CS_WARN_STACK_OVERFLOW) { /* the runtime's alone */
            assert_int_equal(back, -1);
            continue;
        }
        assert_int_equal(back, (int)k);
        assert_int_equal(cs_trace_report_class(cs_trace_warning_name(k)),
                         (int)k);
        assert_true(CS_REPORT_ALL & CS_REPORT_BIT(k));
        n++;
    }
    assert_int_equal(n, 7);
    assert_false(CS_REPORT_ALL & CS_REPORT_BIT(CS_WARN_STACK_OVERFLOW));
    assert_string_equal(cs_trace_report_name(CS_WARN_EXCEPTION),
                        "unretrieved");
    assert_string_equal(cs_trace_warning_name(CS_WARN_EXCEPTION), "exception");
    assert_int_equal(cs_trace_report_class("exception"), CS_WARN_EXCEPTION);
    assert_int_equal(cs_trace_report_class("slow"), CS_WARN_SLOW_STEP);
    assert_int_equal(cs_trace_report_class("none"), -1);
    assert_int_equal(cs_trace_report_class(""), -1);
    assert_string_equal(cs_trace_report_name(0), "?");
    assert_string_equal(cs_trace_report_name(CS_WARN_COUNT), "?");
}

static void test_trace_corrupt_names_are_total(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 300; v++) {
        assert_non_null(cs_trace_event_name(v));
        assert_non_null(cs_trace_wait_name(v));
        assert_non_null(cs_trace_state_name(v));
        assert_non_null(cs_trace_warning_name(v));
        assert_non_null(cs_trace_report_name(v));
    }
    assert_string_equal(cs_trace_wait_name(CS_WAIT_QUEUE_GET), "queue-get");
    assert_string_equal(cs_trace_wait_name(CS_STOP_CANCELLED), "cancelled");
    assert_string_equal(cs_trace_wait_name(13), "?");
    assert_string_equal(cs_trace_state_name(CS_TASK_WAITING), "waiting");
    assert_string_equal(cs_trace_event_name(CS_EV_TYPE_COUNT), "?");
    assert_string_equal(cs_trace_strerror(CS_TRACE_ECORRUPT),
                        "data is corrupt");
    assert_string_equal(cs_trace_strerror(CS_TRACE_EVERSION),
                        "unsupported format version");
    assert_string_equal(cs_trace_strerror(-ENOENT), strerror(ENOENT));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_trace_corrupt_header_fields_refused,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_trace_corrupt_truncated_segment_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_trace_corrupt_segment_shrunk_under_reader, setup, teardown),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_planted_segment_refused,
                                    setup, teardown),
    cmocka_unit_test(test_trace_corrupt_fifo_refused_without_waiting),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_ring_headers, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_tables, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_module_table_geometry,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_module_entries, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_module_chunks, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_trace_corrupt_table_cut_inside_a_word,
                                    setup, teardown),
    cmocka_unit_test(test_trace_corrupt_names_are_total),
    cmocka_unit_test(test_trace_names_report_classes_round_trip),
};

TL_MAIN("libtrace_corrupt", tests)
