/*
 * test_trace_process.c - the runtime's trace seen from another process,
 * and what a process's end leaves of it (issue 4, from the runtime's
 * side; split from test_trace_runtime.c), through the reader API only:
 *
 *   - another process reads a child's table while the child is parked,
 *     and the segment is gone once the child has exited normally;
 *   - COSCOPE=off creates no segment;
 *   - exit() from a task, or while another thread's loop runs, removes
 *     the segment;
 *   - a stack overflow in a task prints the overflow report and writes the
 *     flight recorder (COSCOPE_FLIGHT) with the crash flag.
 * Processes synchronise through pipes only.
 */
#include "cs_snap.h"

#include <coscope/trace.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}
/* ---- another process, while the child is parked ------------------------- */

typedef struct child_io {
    int ready[2]; /* child -> parent: parked */
    int go[2];    /* parent -> child: finish */
} child_io;

static child_io cio;
static pid_t child_pid; /* killed by the teardown if a test failed */

static void *child_waiter(void *arg)
{
    (void)arg;
    char c;
    return cs_read(cio.go[0], &c, 1) == 1 ? NULL : CS_P(1);
}

/* Runs once main and the waiter are both parked: says so. */
static void *child_signaller(void *arg)
{
    (void)arg;
    return write(cio.ready[1], "r", 1) == 1 ? NULL : CS_P(1);
}

static void *child_main(void *arg)
{
    (void)arg;
    void *res = CS_P(1);
    cs_task *w = cs_spawn("parked_child", child_waiter, NULL);
    cs_detach(cs_spawn("signaller", child_signaller, NULL));
    cs_await(w, &res); /* w parks first, then the signaller runs */
    return res;
}

static int teardown_child(void **state)
{
    (void)state;
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
        cs_trace_clean_pid((int)child_pid);
    }
    child_pid = 0;
    return 0;
}

/* Forks a child that runs child_main with env set (name=value, or nothing);
 * returns its pid once it has said it is parked. */
static pid_t start_child(const char *name, const char *value)
{
    assert_int_equal(pipe(cio.ready), 0);
    assert_int_equal(pipe(cio.go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (name)
            setenv(name, value, 1);
        void *res = NULL;
        int rc = cs_run(child_main, NULL, &res);
        exit(rc == 0 && res == NULL ? 0 : 3);
    }
    child_pid = pid;
    char c;
    assert_int_equal(read(cio.ready[0], &c, 1), 1);
    return pid;
}

static void finish_child(pid_t pid)
{
    int st;
    assert_int_equal(write(cio.go[1], "g", 1), 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    child_pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(cio.ready[0]);
    close(cio.ready[1]);
    close(cio.go[0]);
    close(cio.go[1]);
}

static int segment_exists(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s%d", CS_SEG_DIR, CS_SEG_PREFIX,
             (int)pid);
    return access(path, F_OK) == 0;
}

static void test_trace_runtime_child_parked_then_gone(void **state)
{
    (void)state;
    unsetenv("COSCOPE");
    pid_t pid = start_child(NULL, NULL);
    cs_trace *tr;
    snapshot s = {0};
    assert_rc(cs_trace_open_pid((int)pid, &tr), 0);
    snap_tasks(tr, &s);
    assert_int_equal(cs_trace_stale(tr), 0);
    cs_trace_close(tr);
    assert_rc(s.rc, 0);
    const cs_trace_task *t = must_find(&s, "parked_child");
    assert_int_equal(t->state, CS_TASK_WAITING);
    assert_int_equal(t->wait, CS_WAIT_FD_READ);
    assert_int_equal(t->wait_target, (uint64_t)cio.go[0]);
    assert_parked(t);
    const cs_trace_task *m = must_find(&s, "main");
    assert_int_equal(m->wait, CS_WAIT_TASK);
    assert_int_equal(m->wait_target, t->id);
    finish_child(pid);
    assert_false(segment_exists(pid)); /* removed at normal exit */
}

static void test_trace_runtime_off_creates_no_segment(void **state)
{
    (void)state;
    pid_t pid = start_child("COSCOPE", "off");
    cs_trace *tr = NULL;
    assert_false(segment_exists(pid));
    assert_rc(cs_trace_open_pid((int)pid, &tr), -ENOENT);
    finish_child(pid);
}

/* exit() from a task while another still yields: the segment goes, and
 * the other loop work left cannot fault on it. */
/* Yields (intptr_t)arg times (3: as test_trace_runtime.c's ping and pong
 * do). */
static void *spinner(void *arg)
{
    for (intptr_t i = (intptr_t)arg; i > 0; i--)
        cs_yield();
    return NULL;
}

static void *exit_body(void *arg)
{
    (void)arg;
    exit(0);
}

static void *exit_main(void *arg)
{
    (void)arg;
    cs_detach(cs_spawn("spinner", spinner, CS_P(3)));
    cs_await(cs_spawn("exiter", exit_body, NULL), NULL);
    return NULL;
}

static void test_trace_runtime_exit_from_task(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
#if defined(__SANITIZE_ADDRESS__)
        /* exit() on a task stack: LeakSanitizer would not see the
         * thread's own stack, so everything only it references would look
         * leaked; check now, on that stack, instead of at exit */
        __lsan_do_leak_check();
#endif
        cs_run(exit_main, NULL, NULL);
        _exit(3);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_false(segment_exists(pid));
}

/* exit() from the main thread while another thread's loop keeps
 * switching: the segment goes and the loop does not fault on it. */
static int spin_ready[2];
static int in_spin_child;
static unsigned long spins;

static void *forever(void *arg)
{
    (void)arg;
    for (;;) {
        __atomic_fetch_add(&spins, 1, __ATOMIC_RELAXED);
        cs_yield();
    }
    return NULL;
}

/* Destructors run after atexit handlers, so after the segment was torn
 * down: make sure the other loop switches many times after that. */
__attribute__((destructor)) static void spin_after_stop(void)
{
    if (!in_spin_child)
        return;
    unsigned long start = __atomic_load_n(&spins, __ATOMIC_RELAXED);
    int64_t until = cs_now_ns() + 5000000000LL;
    while (__atomic_load_n(&spins, __ATOMIC_RELAXED) - start < 100000 &&
           cs_now_ns() < until)
        ;
}

static void *spin_main(void *arg)
{
    (void)arg;
    cs_detach(cs_spawn("forever_a", forever, NULL));
    cs_detach(cs_spawn("forever_b", forever, NULL));
    cs_yield();
    if (write(spin_ready[1], "r", 1) != 1)
        return NULL;
    forever(NULL);
    return NULL;
}

static void *spin_thread(void *arg)
{
    (void)arg;
    cs_run(spin_main, NULL, NULL);
    return NULL;
}

static void test_trace_runtime_exit_while_other_loop_runs(void **state)
{
    (void)state;
    assert_int_equal(pipe(spin_ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pthread_t th;
        char c;
#if defined(__SANITIZE_ADDRESS__)
        __lsan_do_leak_check(); /* the loop's tasks are live at exit */
#endif
        in_spin_child = 1;
        if (pthread_create(&th, NULL, spin_thread, NULL) != 0 ||
            read(spin_ready[0], &c, 1) != 1)
            _exit(4);
        exit(0);
    }
    close(spin_ready[1]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(spin_ready[0]);
    if (!WIFEXITED(st))
        fail_msg("child died of signal %d", WTERMSIG(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_false(segment_exists(pid));
}

/* ---- crash: overflow report, then the flight recorder ------------------- */

static int __attribute__((noinline)) recurse(volatile char *prev, long depth)
{
    volatile char frame[256];
    frame[0] = (char)(prev != NULL ? prev[0] + 1 : 0);
    frame[255] = frame[0];
    if (depth <= 0)
        return frame[255];
    return recurse(frame, depth - 1) + frame[255];
}

static void *overflow_body(void *arg)
{
    (void)arg;
    recurse(NULL, 1L << 40);
    return NULL;
}

static void *overflow_main(void *arg)
{
    (void)arg;
    cs_yield();
    cs_await(cs_spawn("overflower", overflow_body, NULL), NULL);
    return NULL;
}

/* 1 for the crash warning of task arg (a cs_trace_task). */
static int crash_of(const cs_trace_event *e, const void *arg)
{
    const cs_trace_task *t = arg;
    return e->type == CS_EV_WARNING && e->reason == CS_WARN_CRASH &&
           e->task_id == t->id;
}

static void test_trace_runtime_crash_writes_flight(void **state)
{
    (void)state;
    char path[] = "/tmp/cs_trace_rt_XXXXXX";
    snap_tmp_file(path);
    unlink(path);
    char out[4096];
    int pid;
    setenv("COSCOPE_FLIGHT", path, 1);
    int st = cs_test_crash_child(overflow_main, NULL, out, sizeof out, &pid);
    unsetenv("COSCOPE_FLIGHT");
    assert_true(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
    if (!strstr(out, "stack overflow in task 'overflower'"))
        fail_msg("no overflow report; stderr: %s", out);

    cs_trace *tr;
    cs_trace_info info;
    assert_rc(cs_trace_open_file(path, &tr), 0);
    assert_rc(cs_trace_info_get(tr, &info), 0);
    assert_true(info.flags & CS_SEG_F_CRASH);
    snapshot s = {0};
    snap_tasks(tr, &s);
    const cs_trace_task *t = must_find(&s, "overflower");
    assert_int_equal(t->state, CS_TASK_RUNNING);
    int crash = snap_count_events(tr, crash_of, t, NULL);
    cs_trace_close(tr);
    unlink(path);
    assert_int_equal(crash, 1);
    /* a crashed process leaves its segment for post-mortem readers */
    assert_int_equal(cs_trace_clean_pid(pid), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_trace_runtime_child_parked_then_gone, setup, teardown_child),
        cmocka_unit_test_setup_teardown(
            test_trace_runtime_off_creates_no_segment, setup, teardown_child),
        cmocka_unit_test_setup(test_trace_runtime_exit_from_task, setup),
        cmocka_unit_test_setup(test_trace_runtime_exit_while_other_loop_runs,
                               setup),
        cmocka_unit_test_setup(test_trace_runtime_crash_writes_flight, setup),
    };
    unsetenv("COSCOPE");
    unsetenv("COSCOPE_FLIGHT");
    unsetenv("COSCOPE_RECORD");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
