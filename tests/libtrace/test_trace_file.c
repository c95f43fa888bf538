/*
 * test_trace_file.c - trace files: the flight recorder dump reads back as
 * the segment it was taken from; a file cut at any byte reads up to its
 * last whole chunk; a flipped bit never crashes the reader; the streaming
 * recorder (COSCOPE_RECORD) keeps exact loss counts; a crashing child and
 * an exiting child (COSCOPE_FLIGHT) leave a readable file; the module
 * table lists every loaded object and goes into every kind of file.
 */
#include "tl.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int teardown(void **state)
{
    (void)state;
    cs__tr_stop();
    return 0;
}

/* Two rings (one overwritten), strings, a stack and tasks. */
static void fill_segment(uint32_t *name, uint32_t *stack)
{
    cs__tr_ring *r0 = cs__tr_ring_acquire();
    cs__tr_ring *r1 = cs__tr_ring_acquire();
    *name = cs__tr_intern("handler");
    uint64_t ips[2] = {0x1234, 0x5678};
    *stack = cs__tr_stack_put(ips, 2);
    cs__tr_task_alloc(7, *name, 0, 0, 0, 1);
    cs__tr_task_alloc(8, *name, 0, 7, 1, 2);
    for (uint64_t i = 1; i <= 300; i++)
        cs__tr_emit(r0, i, i, CS_REC_INFO(CS_EV_STEP, CS_WAIT_YIELD, 0), 5);
    for (uint64_t i = 1; i <= 20; i++)
        cs__tr_emit(r1, i, 100 + i, CS_REC_INFO(CS_EV_USER, 0, 0), *name);
    cs__tr_warning(r1, 7, CS_WARN_SLOW_STEP, *stack);
}

static uint64_t count_events(cs_trace *t, uint64_t *lost_out)
{
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    uint64_t total = 0, lost = 0;
    for (uint32_t r = 0; r < info.ring_count; r++) {
        uint64_t cursor = 0;
        size_t n;
        free(tl_read_all(t, r, &cursor, &n, &lost));
        total += n;
    }
    if (lost_out)
        *lost_out = lost;
    return total;
}

static void test_trace_file_flight_dump_matches_segment(void **state)
{
    (void)state;
    tl_start(4, 2);
    uint32_t name, stack;
    fill_segment(&name, &stack);
    const char *path = tl_path("flight.cst");
    assert_code(cs__tr_flight_dump(path, 0), 0);

    cs_trace *live = tl_open_self(), *file = NULL;
    assert_code(cs_trace_open_file(path, &file), 0);
    cs_trace_info info;
    assert_code(cs_trace_info_get(file, &info), 0);
    assert_int_equal(info.is_file, 1);
    assert_int_equal(info.pid, getpid());
    assert_true(info.flags & CS_SEG_F_FLIGHT);
    assert_false(info.flags & CS_SEG_F_CRASH);
    assert_int_equal(info.complete, 1);
    assert_int_equal(info.task_slots, 2);
    assert_int_equal(cs_trace_stale(file), -EINVAL);
    for (uint32_t r = 0; r < 2; r++) {
        uint64_t c1 = 0, c2 = 0, l1 = 0, l2 = 0;
        size_t n1, n2;
        cs_trace_event *a = tl_read_all(live, r, &c1, &n1, &l1);
        cs_trace_event *b = tl_read_all(file, r, &c2, &n2, &l2);
        assert_int_equal(n1, n2);
        assert_int_equal(l1, l2);
        assert_int_equal(c1, c2);
        assert_memory_equal(a, b, n1 * sizeof *a);
        free(a);
        free(b);
    }
    uint64_t lost;
    assert_int_equal(count_events(file, &lost), 128 + 21);
    assert_int_equal(lost, 300 - 128);
    char buf[32];
    assert_int_equal(cs_trace_string(file, name, buf, sizeof buf), 7);
    assert_string_equal(buf, "handler");
    uint64_t ips[4];
    assert_int_equal(cs_trace_stack(file, stack, ips, 4), 2);
    assert_int_equal(ips[1], 0x5678);
    cs_trace_task task;
    uint32_t it = 0;
    assert_int_equal(cs_trace_task_next(file, &it, &task), 1);
    assert_int_equal(task.id, 7);
    assert_int_equal(cs_trace_task_next(file, &it, &task), 1);
    assert_int_equal(task.id, 8);
    assert_int_equal(task.parent, 7);
    assert_int_equal(cs_trace_task_next(file, &it, &task), 0);
    /* Same clock conversion as the live segment. */
    assert_int_equal(cs_trace_ns(file, 123456789),
                     cs_trace_ns(live, 123456789));
    cs_trace_close(file);
    cs_trace_close(live);
}

/* Offsets where each chunk ends, and the records before each. */
typedef struct chunk_map {
    size_t n;
    size_t end[512];
    uint64_t records_before_end[512];
} chunk_map;

static void map_chunks(const uint8_t *b, size_t len, chunk_map *m)
{
    size_t off = sizeof(cs_seg_header);
    uint64_t records = 0;
    m->n = 0;
    while (off + sizeof(cs_chunk_header) <= len && m->n < 512) {
        cs_chunk_header c;
        memcpy(&c, b + off, sizeof c);
        off += sizeof c + c.length;
        if (c.kind == CS_CHUNK_RECORDS)
            records += c.count;
        m->end[m->n] = off;
        m->records_before_end[m->n++] = records;
    }
    assert_int_equal(off, len);
}

static void test_trace_file_truncated_anywhere_reads_whole_chunks(void **state)
{
    (void)state;
    tl_start(4, 2);
    uint32_t name, stack;
    fill_segment(&name, &stack);
    const char *path = tl_path("full.cst");
    assert_code(cs__tr_flight_dump(path, 0), 0);
    size_t len;
    uint8_t *b = tl_slurp(path, &len);
    chunk_map m;
    map_chunks(b, len, &m);
    assert_true(m.n >= 6); /* strings, stacks, tasks, 2 rings, end */
    const char *cut = tl_path("cut.cst");
    for (size_t l = 0; l <= len; l++) {
        tl_spit(cut, b, l);
        cs_trace *t = NULL;
        int rc = cs_trace_open_file(cut, &t);
        if (l < sizeof(cs_seg_header)) {
            assert_code(rc, CS_TRACE_ECORRUPT);
            assert_null(t);
            continue;
        }
        assert_code(rc, 0);
        uint64_t want = 0;
        size_t whole = sizeof(cs_seg_header);
        for (size_t i = 0; i < m.n && m.end[i] <= l; i++) {
            want = m.records_before_end[i];
            whole = m.end[i];
        }
        cs_trace_info info;
        assert_code(cs_trace_info_get(t, &info), 0);
        assert_int_equal(info.valid_bytes, whole);
        assert_int_equal(info.complete, l == len);
        assert_int_equal(count_events(t, NULL), want);
        cs_trace_close(t);
    }
    free(b);
}

static void test_trace_file_flipped_bits_never_crash(void **state)
{
    (void)state;
    tl_start(4, 2);
    uint32_t name, stack;
    fill_segment(&name, &stack);
    const char *path = tl_path("flip.cst");
    assert_code(cs__tr_flight_dump(path, 0), 0);
    size_t len;
    uint8_t *b = tl_slurp(path, &len);
    const char *bad = tl_path("bad.cst");
    uint64_t total = 128 + 21;
    for (size_t i = 0; i < len; i += 3) {
        b[i] ^= (uint8_t)(1u << (i % 8));
        tl_spit(bad, b, len);
        b[i] ^= (uint8_t)(1u << (i % 8));
        cs_trace *t = NULL;
        int rc = cs_trace_open_file(bad, &t);
        if (rc != 0) { /* only header damage is fatal */
            assert_true(i < sizeof(cs_seg_header));
            assert_true(rc == CS_TRACE_ECORRUPT || rc == CS_TRACE_EVERSION);
            continue;
        }
        uint64_t n = count_events(t, NULL);
        cs_trace_info info;
        assert_code(cs_trace_info_get(t, &info), 0);
        if (i >= sizeof(cs_seg_header)) { /* the damaged chunk is refused */
            assert_true(n <= total);
            assert_int_equal(info.complete, 0);
        }
        char s[64];
        cs_trace_string(t, name, s, sizeof s);
        uint64_t ips[4];
        cs_trace_stack(t, stack, ips, 4);
        cs_trace_close(t);
    }
    free(b);
}

static void test_trace_file_open_errors(void **state)
{
    (void)state;
    cs_trace *t = NULL;
    assert_code(cs_trace_open_file(tl_path("missing.cst"), &t), -ENOENT);
    assert_code(cs_trace_open_file(tl_tmpdir(), &t), -EINVAL);
    tl_start(4, 1);
    /* A segment is not a trace file. */
    assert_code(cs_trace_open_file(cs__tr_segment_path(), &t),
                CS_TRACE_ECORRUPT);
    assert_null(t);
    assert_true(strlen(cs_trace_error_detail()) > 0);
}

static void test_trace_file_recorder_keeps_exact_losses(void **state)
{
    (void)state;
    const char *path = tl_path("record.cst");
    cs__tr_config cfg;
    tl_config(&cfg, 4, 1);
    cfg.task_slots = 64;
    cfg.record = path;
    assert_code(cs__tr_start_with(&cfg), 0);
    cs__tr_ring *r = cs__tr_ring_acquire();
    const uint64_t total = 500000;
    uint32_t ids[8];
    for (int i = 0; i < 8; i++) {
        char s[16];
        snprintf(s, sizeof s, "name%d", i);
        ids[i] = cs__tr_intern(s);
    }
    for (uint64_t i = 1; i <= total; i++)
        cs__tr_emit(r, i, i * 7, CS_REC_INFO(CS_EV_USER, 0, 0), ids[i % 8]);
    cs__tr_task_alloc(3, ids[3], 0, 0, 0, 0);
    cs__tr_stop(); /* final drain, tasks, END */

    cs_trace *t = NULL;
    assert_code(cs_trace_open_file(path, &t), 0);
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.complete, 1);
    assert_false(info.flags & CS_SEG_F_FLIGHT);
    uint64_t cursor = 0, lost = 0;
    size_t n;
    cs_trace_event *ev = tl_read_all(t, 0, &cursor, &n, &lost);
    assert_int_equal(n + lost, total);
    assert_true(n >= 128);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].task_id, ev[i].seq * 7);
        char s[16];
        assert_int_equal(cs_trace_string(t, ev[i].arg, s, sizeof s), 5);
        assert_int_equal(s[4] - '0', ev[i].seq % 8);
    }
    cs_trace_task task;
    uint32_t it = 0;
    assert_int_equal(cs_trace_task_next(t, &it, &task), 1);
    assert_int_equal(task.id, 3);
    free(ev);
    cs_trace_close(t);
}

static const char *crash_path;

static void on_segv(int sig)
{
    cs__tr_flight_dump(crash_path, CS_SEG_F_CRASH);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void test_trace_file_crash_leaves_flight_record(void **state)
{
    (void)state;
    crash_path = strdup(tl_path("crash.cst"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tl_start(4, 1);
        cs__tr_ring *r = cs__tr_ring_acquire();
        for (uint64_t i = 1; i <= 50; i++)
            cs__tr_emit(r, i, i, CS_REC_INFO(CS_EV_USER, 0, 0), 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        /* A real fault (not UB a sanitizer would stop first). */
        volatile int *guard =
            mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *guard = 1;
        _exit(3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_file(crash_path, &t), 0);
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.pid, pid);
    assert_true(info.flags & CS_SEG_F_CRASH);
    assert_int_equal(info.complete, 1);
    assert_int_equal(count_events(t, NULL), 50);
    cs_trace_close(t);
    cs_trace_clean_pid(pid);
    free((void *)crash_path);
}

static void test_trace_file_flight_env_dumps_at_exit(void **state)
{
    (void)state;
    char *path = strdup(tl_path("exit.cst"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("COSCOPE_FLIGHT", path, 1);
        setenv("COSCOPE_RING_KB", "8", 1);
        if (cs__tr_start() != 0)
            _exit(2);
        cs__tr_ring *r = cs__tr_ring_acquire();
        for (uint64_t i = 1; i <= 1000; i++)
            cs__tr_emit(r, i, i, CS_REC_INFO(CS_EV_USER, 0, 0), 0);
        exit(0); /* atexit: dump, then remove the segment */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_pid(pid, &t), -ENOENT); /* unlinked */
    assert_code(cs_trace_open_file(path, &t), 0);
    uint64_t lost;
    assert_int_equal(count_events(t, &lost), 256);
    assert_int_equal(lost, 1000 - 256);
    cs_trace_close(t);
    free(path);
}

/* Every module of t, in order, into a malloc'd array. */
static cs_trace_module *modules_of(cs_trace *t, uint32_t *n)
{
    cs_trace_module *v = NULL;
    uint32_t it = 0;
    int r;
    *n = 0;
    for (;;) {
        v = realloc(v, (*n + 1) * sizeof *v);
        assert_non_null(v);
        r = cs_trace_module_next(t, &it, &v[*n]);
        if (r != 1)
            break;
        (*n)++;
    }
    assert_code(r, 0);
    return v;
}

/* The module whose range holds addr, or NULL. */
static const cs_trace_module *module_at(const cs_trace_module *v, uint32_t n,
                                        uintptr_t addr)
{
    const cs_trace_module *hit = NULL;
    for (uint32_t i = 0; i < n; i++)
        if (addr >= v[i].start && addr < v[i].end)
            hit = &v[i]; /* the later entry wins */
    return hit;
}

static int count_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD) {
            (*(uint32_t *)arg)++;
            break;
        }
    return 0;
}

static void test_trace_file_modules_in_segment_and_dump(void **state)
{
    (void)state;
    tl_start(4, 1);
    cs_trace *live = tl_open_self(), *file = NULL;
    cs_trace_info info;
    assert_code(cs_trace_info_get(live, &info), 0);
    assert_int_equal(info.version_minor, CS_FORMAT_MINOR);
    uint32_t n, loaded = 0;
    cs_trace_module *v = modules_of(live, &n);
    dl_iterate_phdr(count_loaded, &loaded);
    assert_int_equal(n, loaded);
    /* The executable: first, flagged, its build id and path the header's. */
    const cs_trace_module *exe = module_at(v, n, (uintptr_t)&modules_of);
    assert_non_null(exe);
    assert_ptr_equal(exe, &v[0]);
    assert_true(exe->flags & CS_MODF_EXE);
    assert_string_equal(exe->path, info.exe_path);
    assert_int_equal(exe->build_id_len, info.build_id_len);
    assert_memory_equal(exe->build_id, info.build_id, info.build_id_len);
    /* A shared library: the path and load bias the loader reports. */
    Dl_info dl;
    assert_true(dladdr((void *)&dl_iterate_phdr, &dl) != 0);
    const cs_trace_module *lib =
        module_at(v, n, (uintptr_t)(void *)&dl_iterate_phdr);
    assert_non_null(lib);
    assert_false(lib->flags & CS_MODF_EXE);
    assert_string_equal(lib->path, dl.dli_fname);
    assert_int_equal(lib->start, (uintptr_t)dl.dli_fbase);

    /* The flight dump carries the same table. */
    const char *path = tl_path("modules.cst");
    assert_code(cs__tr_flight_dump(path, 0), 0);
    assert_code(cs_trace_open_file(path, &file), 0);
    uint32_t fn;
    cs_trace_module *fv = modules_of(file, &fn);
    assert_int_equal(fn, n);
    assert_memory_equal(fv, v, n * sizeof *v);
    free(fv);
    free(v);
    cs_trace_close(file);
    cs_trace_close(live);
}

/* A library this process has not loaded yet, or NULL. */
static const char *unloaded_library(void)
{
    static const char *const names[] = {"libresolv.so.2", "libutil.so.1",
                                        "libanl.so.1", "libz.so.1",
                                        "libm.so.6"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_NOLOAD);
        if (h != NULL) {
            dlclose(h);
            continue;
        }
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h != NULL) {
            dlclose(h);
            return names[i];
        }
    }
    return NULL;
}

static void test_trace_file_modules_dlopen_refreshed(void **state)
{
    (void)state;
    const char *name = unloaded_library();
    if (name == NULL)
        skip();
    const char *path = tl_path("dlopen.cst");
    cs__tr_config cfg;
    tl_config(&cfg, 4, 1);
    cfg.task_slots = 64;
    cfg.record = path;
    assert_code(cs__tr_start_with(&cfg), 0);
    cs_trace *live = tl_open_self();
    uint32_t n0, n1;
    free(modules_of(live, &n0));
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    cs__tr_modules_refresh(0);
    cs_trace_module *v = modules_of(live, &n1);
    assert_int_equal(n1, n0 + 1);
    assert_non_null(strstr(v[n0].path, name));
    free(v);
    cs_trace_close(live);
    cs__tr_stop(); /* the recorder's last round and END */
    dlclose(h);

    cs_trace *t = NULL;
    assert_code(cs_trace_open_file(path, &t), 0);
    v = modules_of(t, &n1);
    assert_int_equal(n1, n0 + 1);
    assert_non_null(strstr(v[n0].path, name));
    free(v);
    cs_trace_close(t);
}

/* What another user left at a trace file's path before the writer ran:
 * a file of theirs, mode 0666 (kept open, as they would), and a symbolic
 * link to a file of ours. */
typedef struct planted {
    int fd;         /* the pre-created file, still open */
    char link[200]; /* path of the symlink */
    char target[200];
} planted;

static void plant(const char *path, planted *p)
{
    p->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0666);
    assert_true(p->fd >= 0);
    assert_int_equal(fchmod(p->fd, 0666), 0);
    if (geteuid() == 0)
        assert_int_equal(fchown(p->fd, 65534, 65534), 0);
    snprintf(p->link, sizeof p->link, "%s.link", path);
    snprintf(p->target, sizeof p->target, "%s.target", path);
    tl_spit(p->target, "mine", 4);
    unlink(p->link);
    assert_int_equal(symlink(p->target, p->link), 0);
}

/* The writer made path anew: ours, 0600, a whole trace; the planted file
 * and the link's target received nothing. */
static void check_not_planted(const char *path, planted *p)
{
    struct stat st;
    assert_int_equal(fstat(p->fd, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(st.st_nlink == 1);
    cs_trace *t;
    assert_code(cs_trace_open_file(path, &t), 0);
    cs_trace_close(t);
    close(p->fd);
}

/* Writing to the symlink is refused (as O_NOFOLLOW did); its target and
 * the link stay as they were. */
static void check_link_refused(planted *p)
{
    struct stat st;
    size_t n;
    assert_code(cs__tr_flight_dump(p->link, 0), -ELOOP);
    free(tl_slurp(p->target, &n));
    assert_int_equal(n, 4);
    assert_int_equal(lstat(p->link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

/* COSCOPE_FLIGHT, COSCOPE_RECORD and cs_trace_rec_start never write into
 * a file that was at the path before (the old code truncated and filled a
 * pre-created 0666 file of another user). */
static void test_trace_file_never_written_into_existing_file(void **state)
{
    (void)state;
    planted p;
    const char *path;
    tl_start(4, 1);
    uint32_t name, stack;
    fill_segment(&name, &stack);

    path = tl_path("flight.cst");
    plant(path, &p);
    assert_code(cs__tr_flight_dump(path, 0), 0);
    check_not_planted(path, &p);
    check_link_refused(&p);

    path = tl_path("remote.cst");
    plant(path, &p);
    cs_trace *t = tl_open_self();
    cs_trace_rec *rec;
    assert_code(cs_trace_rec_start(t, path, &rec), 0);
    assert_code(cs_trace_rec_finish(rec), 0);
    cs_trace_close(t);
    check_not_planted(path, &p);
    cs__tr_stop();

    path = tl_path("record.cst");
    plant(path, &p);
    cs__tr_config cfg;
    tl_config(&cfg, 4, 1);
    cfg.record = path;
    assert_code(cs__tr_start_with(&cfg), 0);
    fill_segment(&name, &stack);
    cs__tr_stop();
    check_not_planted(path, &p);

    /* A device (a null device of our own) is written, not replaced: a
     * rename over /dev/null would have replaced the machine's. */
    tl_start(4, 1);
    path = tl_path("null");
    struct stat st;
    if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        assert_code(cs__tr_flight_dump(path, 0), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
    }
    /* Another user's FIFO would hand them the trace: refused unopened. */
    path = tl_path("fifo");
    assert_int_equal(mkfifo(path, 0666), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_code(cs__tr_flight_dump(path, 0), -EPERM);
    }
    cs__tr_stop();

    /* No temporary file is left behind. */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '^\\.coscope-'",
             tl_tmpdir());
    assert_int_not_equal(system(cmd), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_trace_file_modules_in_segment_and_dump,
                              teardown),
    cmocka_unit_test_teardown(test_trace_file_modules_dlopen_refreshed,
                              teardown),
    cmocka_unit_test_teardown(test_trace_file_flight_dump_matches_segment,
                              teardown),
    cmocka_unit_test_teardown(
        test_trace_file_truncated_anywhere_reads_whole_chunks, teardown),
    cmocka_unit_test_teardown(test_trace_file_flipped_bits_never_crash,
                              teardown),
    cmocka_unit_test_teardown(test_trace_file_open_errors, teardown),
    cmocka_unit_test_teardown(test_trace_file_recorder_keeps_exact_losses,
                              teardown),
    cmocka_unit_test_teardown(test_trace_file_crash_leaves_flight_record,
                              teardown),
    cmocka_unit_test_teardown(test_trace_file_flight_env_dumps_at_exit,
                              teardown),
    cmocka_unit_test_teardown(test_trace_file_never_written_into_existing_file,
                              teardown),
};

TL_MAIN("libtrace_file", tests)
