/*
 * test_trace_segment.c - the live segment: what the writer puts in it is
 * exactly what the reader gets out (every event type, header, strings,
 * stacks, tasks), the segment's protections (mode 0600, no symlinks, our
 * uid), COSCOPE=off, and stale segments.
 */
#include "tl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int teardown(void **state)
{
    (void)state;
    cs__tr_stop();
    unsetenv("COSCOPE");
    return 0;
}

static void test_trace_segment_roundtrip_every_event_type(void **state)
{
    (void)state;
    tl_start(4, 2);
    cs__tr_ring *r = cs__tr_ring_acquire();
    assert_non_null(r);
    for (unsigned type = 1; type < CS_EV_TYPE_COUNT; type++)
        cs__tr_emit(r, 1000 + type, 77 + type,
                    CS_REC_INFO(type, type + 1, type * 3), 0xabc0 + type);
    cs__tr_step(r, 5, CS_STOP_RAISED, 100, 350);
    cs__tr_loop_iter(r, 400, (uint64_t)1 << 40); /* needs the shift */
    cs__tr_warning(r, 6, CS_WARN_BLOCKING, 0);

    cs_trace *t = tl_open_self();
    uint64_t cursor = 0, lost = 0;
    size_t n;
    cs_trace_event *ev = tl_read_all(t, 0, &cursor, &n, &lost);
    assert_int_equal(n, CS_EV_TYPE_COUNT - 1 + 3);
    assert_int_equal(lost, 0);
    assert_int_equal(cursor, n);
    for (unsigned type = 1; type < CS_EV_TYPE_COUNT; type++) {
        const cs_trace_event *e = &ev[type - 1];
        assert_int_equal(e->seq, type);
        assert_int_equal(e->ts, 1000 + type);
        assert_int_equal(e->task_id, 77 + type);
        assert_int_equal(e->type, type);
        assert_int_equal(e->reason, type + 1);
        assert_int_equal(e->flags, type * 3);
        assert_int_equal(e->arg, 0xabc0 + type);
        assert_int_equal(e->ring, 0);
        assert_string_not_equal(cs_trace_event_name(e->type), "?");
    }
    const cs_trace_event *step = &ev[CS_EV_TYPE_COUNT - 1];
    assert_int_equal(step->type, CS_EV_STEP);
    assert_int_equal(step->reason, CS_STOP_RAISED);
    assert_int_equal(step->ts, 350);
    assert_int_equal(cs_trace_event_ticks(step), 250);
    const cs_trace_event *it = &ev[CS_EV_TYPE_COUNT];
    assert_int_equal(it->type, CS_EV_LOOP_ITER);
    assert_int_equal(it->task_id, 1); /* iteration number */
    assert_int_equal(cs_trace_event_ticks(it), (uint64_t)1 << 40);
    const cs_trace_event *w = &ev[CS_EV_TYPE_COUNT + 1];
    assert_int_equal(w->type, CS_EV_WARNING);
    assert_int_equal(w->reason, CS_WARN_BLOCKING);
    free(ev);

    /* Nothing new: nothing read, the cursor stays. */
    ev = tl_read_all(t, 0, &cursor, &n, &lost);
    assert_int_equal(n, 0);
    assert_int_equal(cursor, CS_EV_TYPE_COUNT + 2);
    free(ev);
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.warnings, 1);
    cs_trace_close(t);
}

static void test_trace_segment_header_describes_process(void **state)
{
    (void)state;
    tl_start(4, 3);
    cs_trace *t = tl_open_self();
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.is_file, 0);
    assert_int_equal(info.pid, getpid());
    uint64_t st;
    assert_code(cs_trace_pid_start_time(getpid(), &st), 0);
    assert_int_equal(info.start_time, st);
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(len > 0);
    exe[len] = '\0';
    assert_string_equal(info.exe_path, exe);
    assert_int_equal(info.version_major, CS_FORMAT_MAJOR);
    assert_int_equal(info.ring_count, 3);
    assert_int_equal(info.ring_slots, 4096 / 32);
    assert_int_equal(info.task_slots, 256);
    assert_true(info.build_id_len <= CS_BUILD_ID_MAX);
    assert_int_equal(cs_trace_stale(t), 0);

    /* The clock converts to CLOCK_MONOTONIC within a millisecond. */
    struct timespec ts;
    uint64_t tick = cs__tr_now();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t conv = cs_trace_ns(t, tick);
    assert_true(conv <= mono + 1000000 && conv + 1000000 >= mono);
    assert_true(cs_trace_ticks_ns(t, info.tick_hz) > 990000000u);
    assert_true(cs_trace_ticks_ns(t, info.tick_hz) < 1010000000u);
    cs_trace_close(t);
}

static void test_trace_segment_is_private_and_refuses_symlinks(void **state)
{
    (void)state;
    tl_start(4, 1);
    const char *seg = cs__tr_segment_path();
    struct stat st;
    assert_int_equal(lstat(seg, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());

    cs_trace *t = NULL;
    const char *link = tl_path("link");
    unlink(link);
    assert_int_equal(symlink(seg, link), 0);
    assert_code(cs_trace_open_segment(link, &t), -ELOOP);
    assert_null(t);

    /* A copy readable by others is refused. */
    size_t len;
    uint8_t *bytes = tl_slurp(seg, &len);
    const char *copy = tl_path("copy");
    tl_spit(copy, bytes, len);
    assert_code(cs_trace_open_segment(copy, &t), 0);
    cs_trace_close(t);
    assert_int_equal(chmod(copy, 0644), 0);
    assert_code(cs_trace_open_segment(copy, &t), -EACCES);
    assert_null(t);
    free(bytes);
}

static void test_trace_segment_strings_and_stacks(void **state)
{
    (void)state;
    tl_start(4, 1);
    uint32_t a = cs__tr_intern("main.c:12");
    uint32_t b = cs__tr_intern("worker");
    assert_true(a != 0 && b != 0 && a != b);
    assert_int_equal(cs__tr_intern("main.c:12"), a);
    assert_int_equal(cs__tr_intern_n("workers", 6), b);
    uint32_t empty = cs__tr_intern("");
    assert_true(empty != 0);
    char *big = malloc(CS_STRING_MAX + 100);
    memset(big, 'x', CS_STRING_MAX + 99);
    big[CS_STRING_MAX + 99] = '\0';
    uint32_t bigid = cs__tr_intern(big);
    uint64_t ips[3] = {0x401000, 0x402000, 0x7f0000001234};
    uint32_t s1 = cs__tr_stack_put(ips, 3);
    uint32_t s2 = cs__tr_stack_put(ips + 1, 1);
    assert_true(s1 != 0 && s2 != 0 && s1 != s2);

    cs_trace *t = tl_open_self();
    char buf[16];
    assert_int_equal(cs_trace_string(t, a, buf, sizeof buf), 9);
    assert_string_equal(buf, "main.c:12");
    assert_int_equal(cs_trace_string(t, b, buf, sizeof buf), 6);
    assert_string_equal(buf, "worker");
    assert_int_equal(cs_trace_string(t, empty, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    /* Truncated to the buffer, full length returned. */
    assert_int_equal(cs_trace_string(t, bigid, buf, sizeof buf),
                     CS_STRING_MAX);
    assert_int_equal(strlen(buf), sizeof buf - 1);
    assert_code(cs_trace_string(t, 0, buf, sizeof buf), -ENOENT);
    assert_code(cs_trace_string(t, a + 1, buf, sizeof buf), CS_TRACE_ECORRUPT);
    assert_code(cs_trace_string(t, 0xfffffff0u, buf, sizeof buf),
                CS_TRACE_ECORRUPT);
    uint64_t got[4] = {0};
    assert_int_equal(cs_trace_stack(t, s1, got, 4), 3);
    assert_memory_equal(got, ips, sizeof ips);
    assert_int_equal(cs_trace_stack(t, s2, got, 1), 1);
    assert_int_equal(got[0], ips[1]);
    assert_int_equal(cs_trace_stack(t, s1, got, 2), 3); /* depth, 2 copied */
    assert_code(cs_trace_stack(t, 0, got, 4), -ENOENT);
    assert_code(cs_trace_stack(t, s1 + 4, got, 4), CS_TRACE_ECORRUPT);
    cs_trace_close(t);
    free(big);
}

static void test_trace_segment_strings_fill_up_cleanly(void **state)
{
    (void)state;
    tl_start(4, 1); /* 16 KiB string table */
    char s[64];
    uint32_t last = 0;
    int stored = 0;
    for (int i = 0; i < 4000; i++) {
        snprintf(s, sizeof s, "string number %d", i);
        uint32_t id = cs__tr_intern(s);
        if (id != 0) {
            stored++;
            last = id;
        }
    }
    assert_true(stored > 100 && stored < 4000);
    cs_trace *t = tl_open_self();
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.strings_dropped, 4000 - stored);
    char buf[64];
    snprintf(s, sizeof s, "string number %d", stored - 1);
    assert_int_equal(cs_trace_string(t, last, buf, sizeof buf), strlen(s));
    assert_string_equal(buf, s);
    cs_trace_close(t);
}

static void test_trace_segment_tasks_roundtrip(void **state)
{
    (void)state;
    tl_start(4, 1);
    uint32_t name = cs__tr_intern("fetch");
    uint32_t ra = cs__tr_task_alloc(10, name, 0, 0, 0, 111);
    uint32_t rb = cs__tr_task_alloc(11, 0, 0, 10, 0, 222);
    uint32_t rc = cs__tr_task_alloc(12, 0, 0, 10, 0, 333);
    assert_true(ra && rb && rc);
    cs__tr_task_running(ra, 500);
    cs__tr_task_stopped(ra, CS_TASK_WAITING, CS_WAIT_LOCK, 42, 11, 500, 650);
    cs__tr_task_park(ra, 0x1000, 0x2000, 0x3000);
    cs__tr_task_free(rb);

    cs_trace *t = tl_open_self();
    cs_trace_task task;
    uint32_t it = 0;
    assert_int_equal(cs_trace_task_next(t, &it, &task), 1);
    assert_int_equal(task.id, 10);
    assert_int_equal(task.name, name);
    assert_int_equal(task.state, CS_TASK_WAITING);
    assert_int_equal(task.wait, CS_WAIT_LOCK);
    assert_int_equal(task.wait_target, 42);
    assert_int_equal(task.wait_aux, 11);
    assert_int_equal(task.created, 111);
    assert_int_equal(task.last_run, 500);
    assert_int_equal(task.steps, 1);
    assert_int_equal(task.run_ticks, 150);
    assert_true(task.flags & CS_TASKF_REGS_VALID);
    assert_int_equal(task.sp, 0x1000);
    assert_int_equal(task.fp, 0x2000);
    assert_int_equal(task.ip, 0x3000);
    assert_int_equal(cs_trace_task_next(t, &it, &task), 1);
    assert_int_equal(task.id, 12); /* 11 was freed */
    assert_int_equal(task.parent, 10);
    assert_int_equal(task.state, CS_TASK_READY);
    assert_int_equal(cs_trace_task_next(t, &it, &task), 0);

    /* The freed slot is reused with a new generation. */
    uint32_t rd = cs__tr_task_alloc(13, 0, 0, 0, 0, 444);
    assert_int_equal(rd, rb);
    it = 0;
    while (cs_trace_task_next(t, &it, &task) == 1 && task.id != 13)
        ;
    assert_int_equal(task.id, 13);
    assert_int_equal(task.gen, 1);
    cs_trace_close(t);
}

static void test_trace_segment_task_table_full(void **state)
{
    (void)state;
    tl_start(4, 1); /* 256 slots */
    for (uint64_t i = 1; i <= 300; i++) {
        uint32_t ref = cs__tr_task_alloc(i, 0, 0, 0, 0, i);
        assert_true(i <= 256 ? ref != 0 : ref == 0);
    }
    cs_trace *t = tl_open_self();
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.tasks_dropped, 44);
    assert_int_equal(info.tasks_hwm, 256);
    cs_trace_task task;
    uint32_t it = 0, n = 0;
    while (cs_trace_task_next(t, &it, &task) == 1)
        assert_int_equal(task.id, ++n);
    assert_int_equal(n, 256);
    cs_trace_close(t);
}

static void test_trace_segment_ring_reuse_keeps_cursor(void **state)
{
    (void)state;
    tl_start(4, 1);
    cs__tr_ring *r = cs__tr_ring_acquire();
    assert_non_null(r);
    assert_null(cs__tr_ring_acquire()); /* only one ring */
    for (int i = 0; i < 10; i++)
        cs__tr_emit(r, i, i, CS_REC_INFO(CS_EV_USER, 0, 0), 0);
    cs_trace *t = tl_open_self();
    uint64_t cursor = 0, lost = 0;
    size_t n;
    free(tl_read_all(t, 0, &cursor, &n, &lost));
    assert_int_equal(n, 10);
    cs__tr_ring_release(r);
    r = cs__tr_ring_acquire();
    assert_non_null(r);
    cs__tr_emit(r, 99, 99, CS_REC_INFO(CS_EV_USER, 0, 0), 0);
    cs_trace_event *ev = tl_read_all(t, 0, &cursor, &n, &lost);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].seq, 11);
    assert_int_equal(ev[0].task_id, 99);
    assert_int_equal(lost, 0);
    cs_trace_info info;
    assert_code(cs_trace_info_get(t, &info), 0);
    assert_int_equal(info.rings_dropped, 1);
    free(ev);
    cs_trace_close(t);
}

static void test_trace_segment_off_disables_everything(void **state)
{
    (void)state;
    setenv("COSCOPE", "off", 1);
    assert_int_equal(cs__tr_start(), 1);
    assert_int_equal(cs__tr_active(), 0);
    char seg[64];
    snprintf(seg, sizeof seg, "/dev/shm/coscope.%d", (int)getpid());
    assert_int_equal(access(seg, F_OK), -1);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_pid(getpid(), &t), -ENOENT);
    assert_null(cs__tr_ring_acquire());
    cs__tr_emit(NULL, 1, 2, 3, 4); /* no-ops */
    cs__tr_step(NULL, 1, CS_WAIT_YIELD, 1, 2);
    assert_int_equal(cs__tr_intern("x"), 0);
    uint64_t ip = 1;
    assert_int_equal(cs__tr_stack_put(&ip, 1), 0);
    assert_int_equal(cs__tr_task_alloc(1, 0, 0, 0, 0, 0), 0);
    cs__tr_task_running(0, 1);
    assert_int_equal(cs__tr_flight_dump(tl_path("off.cst"), 0), -ENODEV);
}

static void test_trace_segment_replaces_dead_namesake(void **state)
{
    (void)state;
    char seg[64];
    snprintf(seg, sizeof seg, "/dev/shm/coscope.%d", (int)getpid());
    tl_spit(seg, "left by a dead process", 22);
    tl_start(4, 1);
    cs_trace *t = tl_open_self();
    cs_trace_close(t);
}

/* cfg->dir of any length up to PATH_MAX: the segment is made in it, named
 * for our pid; a longer one is refused rather than cut short (a cut path
 * could name the directory itself). */
static void test_trace_segment_in_long_directory(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", tl_tmpdir(),
             "a-directory-name-long-enough-to-push-the-path-past-64-bytes");
    assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
    cs__tr_config cfg;
    tl_config(&cfg, 4, 1);
    cfg.task_slots = 16;
    cfg.dir = dir;
    assert_code(cs__tr_start_with(&cfg), 0);
    char want[2048];
    snprintf(want, sizeof want, "%s/coscope.%d", dir, (int)getpid());
    assert_string_equal(cs__tr_segment_path(), want);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_segment(want, &t), 0);
    cs_trace_close(t);
    cs__tr_stop();
    assert_int_equal(access(want, F_OK), -1);

    char *huge = malloc(PATH_MAX + 16);
    assert_non_null(huge);
    memset(huge, 'x', PATH_MAX + 15);
    huge[0] = '/';
    huge[PATH_MAX + 15] = '\0';
    cfg.dir = huge;
    assert_code(cs__tr_start_with(&cfg), -ENAMETOOLONG);
    assert_int_equal(cs__tr_active(), 0);
    free(huge);
    rmdir(dir);
}

/* Child: starts tracing, says so on fd, then emits until killed. */
static void child_writer(int fd, int forever)
{
    tl_start(4, 1);
    cs__tr_ring *r = cs__tr_ring_acquire();
    cs__tr_task_alloc(1, cs__tr_intern("child"), 0, 0, 0, 0);
    for (uint64_t i = 0; i < 1000; i++)
        cs__tr_emit(r, i, i, CS_REC_INFO(CS_EV_USER, 0, 0), 0);
    if (write(fd, "r", 1) != 1)
        _exit(2);
    for (uint64_t i = 1000; forever; i++)
        cs__tr_emit(r, i, i, CS_REC_INFO(CS_EV_USER, 0, 0), 0);
    pause();
    _exit(0);
}

static pid_t spawn_writer(int forever)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_writer(p[1], forever);
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void test_trace_segment_stale_after_writer_dies(void **state)
{
    (void)state;
    pid_t pid = spawn_writer(0);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_pid(pid, &t), 0);
    assert_int_equal(cs_trace_stale(t), 0);
    assert_int_equal(cs_trace_clean_pid(pid), 0); /* alive: kept */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(cs_trace_stale(t), 1);
    cs_trace_close(t);
    assert_int_equal(cs_trace_clean_pid(pid), 1);
    assert_code(cs_trace_open_pid(pid, &t), -ENOENT);
    assert_code(cs_trace_clean_pid(pid), -ENOENT);
}

static void test_trace_segment_stale_when_pid_reused(void **state)
{
    (void)state;
    tl_start(4, 1);
    /* A copy of our segment whose start time names another process. */
    size_t len;
    uint8_t *bytes = tl_slurp(cs__tr_segment_path(), &len);
    ((cs_seg_header *)bytes)->start_time ^= 1;
    const char *copy = tl_path("reused");
    tl_spit(copy, bytes, len);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_segment(copy, &t), 0);
    assert_int_equal(cs_trace_stale(t), 1);
    cs_trace_close(t);
    free(bytes);
}

static void test_trace_segment_killed_mid_stream_still_parses(void **state)
{
    (void)state;
    pid_t pid = spawn_writer(1);
    cs_trace *t = NULL;
    assert_code(cs_trace_open_pid(pid, &t), 0);
    uint64_t cursor = 0, lost = 0;
    size_t n, total = 0;
    free(tl_read_all(t, 0, &cursor, &n, &lost));
    total += n;
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    uint64_t before = cursor;
    cs_trace_event *ev = tl_read_all(t, 0, &cursor, &n, &lost);
    total += n;
    cs_trace_ring ring;
    assert_code(cs_trace_ring_get(t, 0, &ring), 0);
    /* Everything up to the head is accounted for, except at most the one
     * record the writer was killed in the middle of. */
    assert_true(total + lost == ring.head || total + lost + 1 == ring.head);
    /* With the writer dead, every record still in the ring and not read
     * before is received, but for the one it may have been killed in. */
    uint64_t oldest = ring.head > 128 ? ring.head - 128 : 0;
    uint64_t from = before > oldest ? before : oldest;
    assert_true(n + 1 >= ring.head - from);
    assert_true(total > 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].task_id, ev[i].seq - 1);
        if (i > 0)
            assert_int_equal(ev[i].seq, ev[i - 1].seq + 1);
    }
    cs_trace_task task;
    uint32_t it = 0;
    assert_int_equal(cs_trace_task_next(t, &it, &task), 1);
    char name[16];
    assert_int_equal(cs_trace_string(t, task.name, name, sizeof name), 5);
    assert_string_equal(name, "child");
    free(ev);
    cs_trace_close(t);
    cs_trace_clean_pid(pid);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_trace_segment_roundtrip_every_event_type,
                              teardown),
    cmocka_unit_test_teardown(test_trace_segment_header_describes_process,
                              teardown),
    cmocka_unit_test_teardown(
        test_trace_segment_is_private_and_refuses_symlinks, teardown),
    cmocka_unit_test_teardown(test_trace_segment_strings_and_stacks, teardown),
    cmocka_unit_test_teardown(test_trace_segment_strings_fill_up_cleanly,
                              teardown),
    cmocka_unit_test_teardown(test_trace_segment_tasks_roundtrip, teardown),
    cmocka_unit_test_teardown(test_trace_segment_task_table_full, teardown),
    cmocka_unit_test_teardown(test_trace_segment_ring_reuse_keeps_cursor,
                              teardown),
    cmocka_unit_test_teardown(test_trace_segment_off_disables_everything,
                              teardown),
    cmocka_unit_test_teardown(test_trace_segment_in_long_directory, teardown),
    cmocka_unit_test_teardown(test_trace_segment_replaces_dead_namesake,
                              teardown),
    cmocka_unit_test_teardown(test_trace_segment_stale_after_writer_dies,
                              teardown),
    cmocka_unit_test_teardown(test_trace_segment_stale_when_pid_reused,
                              teardown),
    cmocka_unit_test_teardown(
        test_trace_segment_killed_mid_stream_still_parses, teardown),
};

TL_MAIN("libtrace_segment", tests)
