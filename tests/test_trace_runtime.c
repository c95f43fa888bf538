/*
 * test_trace_runtime.c - the runtime writes its trace (issue 4, from the
 * runtime's side), checked only through the reader API (coscope/trace.h):
 *
 *   - the live task table names every task with its state, wait reason and
 *     wait target (a lock waiter names the lock's holder, an awaiter the
 *     awaited task, a sleeper its deadline, an fd waiter its fd), parked
 *     tasks carry saved registers and the running one does not;
 *   - a known sequence of yields gives exactly the expected step records,
 *     and spawns give task-created records with their "file:line" site;
 *   - COSCOPE_RECORD streams the steps to a file;
 *   - a warning lists in the module table a library dlopen'ed since start.
 * Another process's view, exits and crashes: test_trace_process.c.
 */
#include "cs_snap.h"

#include <coscope/agent.h>
#include <coscope/trace.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}
/* ---- the task table, in process ----------------------------------------- */

typedef struct table_world {
    cs_lock *lock;
    cs_event *go;
    int pipe[2]; /* the fd waiter reads pipe[0] */
    uint64_t holder_id, blocked_id, sleeper_id, awaiter_id, checker_id;
    uint64_t main_id;
    cs_task *holder;
    int64_t before_sleep; /* cs_now_ns() before the sleeper slept */
    int ring_running;     /* a ring's header named the checker running */
    snapshot snap;
} table_world;

static table_world tw;

static void *holder_body(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_lock_acquire(tw.lock), 0);
    CS_CHECK_RC(cs_event_wait(tw.go), 0);
    cs_lock_release(tw.lock);
    return NULL;
}

static void *blocked_body(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_lock_acquire(tw.lock), 0);
    cs_lock_release(tw.lock);
    return NULL;
}

static void *sleeper_body(void *arg)
{
    (void)arg;
    tw.before_sleep = cs_now_ns();
    CS_CHECK_RC(cs_sleep(3600 * 1000000000LL), CS_ECANCELLED);
    return NULL;
}

static void *awaiter_body(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_await(tw.holder, NULL), 0);
    return NULL;
}

static void *fd_body(void *arg)
{
    (void)arg;
    char c;
    CS_CHECK_INT_EQ(cs_read(tw.pipe[0], &c, 1), 1);
    return NULL;
}

/* Reads the table from inside the loop (a big stack: the reader is not
 * written for 64 KiB task stacks). */
static void *checker_body(void *arg)
{
    (void)arg;
    cs_trace *tr = NULL;
    tw.checker_id = cs_task_id(cs_current_task());
    tw.snap.rc = cs_trace_open_pid((int)getpid(), &tr);
    if (tw.snap.rc == 0) {
        cs_trace_info info;
        snap_tasks(tr, &tw.snap);
        /* the ring header's "running now" words (for watchdogs) */
        if (cs_trace_info_get(tr, &info) == 0)
            for (uint32_t r = 0; r < info.ring_count; r++) {
                cs_trace_ring rg;
                if (cs_trace_ring_get(tr, r, &rg) == 0 &&
                    rg.step_task == tw.checker_id && rg.step_start != 0 &&
                    rg.state == CS_RING_ACTIVE)
                    tw.ring_running = 1;
            }
    }
    cs_trace_close(tr);
    return NULL;
}

static void *table_main(void *arg)
{
    (void)arg;
    tw.main_id = cs_task_id(cs_current_task());
    tw.holder = cs_spawn("holder", holder_body, NULL);
    cs_task *blocked = cs_spawn("blocked", blocked_body, NULL);
    cs_task *sleeper = cs_spawn("sleeper", sleeper_body, NULL);
    cs_task *fdw = cs_spawn("fd_waiter", fd_body, NULL);
    tw.holder_id = cs_task_id(tw.holder);
    tw.blocked_id = cs_task_id(blocked);
    tw.sleeper_id = cs_task_id(sleeper);
    cs_yield(); /* each runs once and parks */
    cs_task *awaiter = cs_spawn("awaiter", awaiter_body, NULL);
    tw.awaiter_id = cs_task_id(awaiter);
    cs_yield();
    cs_coro *c = cs_coro_new("checker", checker_body, NULL);
    cs_coro_set_stack_size(c, 1 << 20);
    CS_CHECK_RC(cs_await(cs_create_task(c), NULL), 0);
    /* let everyone finish */
    cs_event_set(tw.go);
    cs_cancel(sleeper);
    CS_CHECK_INT_EQ(write(tw.pipe[1], "x", 1), 1);
    CS_CHECK_RC(cs_await(awaiter, NULL), 0);
    CS_CHECK_RC(cs_await(blocked, NULL), 0);
    CS_CHECK_RC(cs_await(sleeper, NULL), CS_ECANCELLED);
    CS_CHECK_RC(cs_await(fdw, NULL), 0);
    return NULL;
}

static void test_trace_runtime_task_table_states(void **state)
{
    (void)state;
    memset(&tw, 0, sizeof tw);
    tw.lock = cs_lock_new();
    tw.go = cs_event_new();
    assert_int_equal(pipe(tw.pipe), 0);
    assert_rc(cs_run(table_main, NULL, NULL), 0);
    cs_test_assert_clean();
    close(tw.pipe[0]);
    close(tw.pipe[1]);
    cs_lock_free(tw.lock);
    cs_event_free(tw.go);
    assert_rc(tw.snap.rc, 0);

    const snapshot *s = &tw.snap;
    const cs_trace_task *holder = must_find(s, "holder");
    const cs_trace_task *blocked = must_find(s, "blocked");
    const cs_trace_task *sleeper = must_find(s, "sleeper");
    const cs_trace_task *awaiter = must_find(s, "awaiter");
    const cs_trace_task *fdw = must_find(s, "fd_waiter");
    const cs_trace_task *checker = must_find(s, "checker");
    const cs_trace_task *maint = must_find(s, "main");

    assert_int_equal(holder->id, tw.holder_id);
    assert_int_equal(holder->state, CS_TASK_WAITING);
    assert_int_equal(holder->wait, CS_WAIT_EVENT);
    assert_true(holder->wait_target != 0);
    assert_int_equal(holder->awaiter, tw.awaiter_id);
    assert_int_equal(holder->parent, tw.main_id);
    assert_parked(holder);

    assert_int_equal(blocked->state, CS_TASK_WAITING);
    assert_int_equal(blocked->wait, CS_WAIT_LOCK);
    assert_int_equal(blocked->wait_aux, tw.holder_id); /* the holder */
    assert_true(blocked->wait_target != 0);            /* the lock's id */
    assert_true(blocked->wait_target != holder->wait_target);
    assert_parked(blocked);

    assert_int_equal(sleeper->state, CS_TASK_WAITING);
    assert_int_equal(sleeper->wait, CS_WAIT_SLEEP);
    assert_true(sleeper->wait_target >=
                (uint64_t)tw.before_sleep + 3600 * 1000000000ULL);
    assert_parked(sleeper);

    assert_int_equal(awaiter->state, CS_TASK_WAITING);
    assert_int_equal(awaiter->wait, CS_WAIT_TASK);
    assert_int_equal(awaiter->wait_target, tw.holder_id);

    assert_int_equal(fdw->state, CS_TASK_WAITING);
    assert_int_equal(fdw->wait, CS_WAIT_FD_READ);
    assert_int_equal(fdw->wait_target, (uint64_t)tw.pipe[0]);

    assert_int_equal(maint->state, CS_TASK_WAITING); /* awaits the checker */
    assert_int_equal(maint->wait, CS_WAIT_TASK);
    assert_int_equal(maint->wait_target, tw.checker_id);

    assert_int_equal(checker->state, CS_TASK_RUNNING);
    assert_true(tw.ring_running);
    assert_int_equal(checker->wait, CS_WAIT_NONE);
    assert_false(checker->flags & CS_TASKF_REGS_VALID);

    /* every task ran at least one step, and the clock moved */
    assert_true(holder->steps >= 1 && holder->run_ticks > 0);
    assert_true(holder->created > 0 && holder->last_run >= holder->created);
}

/* ---- step records for a known sequence of yields ------------------------ */

enum { YIELDS = 3 };

static uint64_t ping_id, pong_id;

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < YIELDS; i++)
        cs_yield();
    return NULL;
}

static int spawn_line;

static void *steps_main(void *arg)
{
    (void)arg;
    cs_task *a, *b;
    spawn_line = __LINE__ + 1;
    a = cs_spawn_at("ping", yielder, NULL, __FILE__, __LINE__);
    b = cs_spawn_at("pong", yielder, NULL, __FILE__, __LINE__);
    ping_id = cs_task_id(a);
    pong_id = cs_task_id(b);
    cs_task *both[2] = {a, b};
    CS_CHECK_RC(cs_gather(both, 2, NULL), 0);
    return NULL;
}

/* The step, batch and yields records of ping ('a') and pong ('b'), in
 * ring order: "ay" a step ended by a yield, "ad" by returning ("aD" if it
 * began in a batch), "A2" a yields record of 2 steps, "#6" a batch of 6. */
/* What step_sequence() gathers as it reads the rings. */
typedef struct step_seq {
    cs_trace *tr;      /* the trace read (for the created records' sites) */
    char *seq;         /* the sequence, see step_sequence() */
    size_t len, cap;   /* its length and the buffer's size */
    int created, done; /* ping's and pong's created and done records */
} step_seq;

/* Adds event e to the step_seq arg (const only for snap_count_fn). */
static int step_seq_add(const cs_trace_event *e, const void *arg)
{
    step_seq *q = (step_seq *)arg;
    int who = e->task_id == ping_id ? 'a' : e->task_id == pong_id ? 'b' : 0;
    if (q->len + 4 >= q->cap)
        return 0;
    if (e->type == CS_EV_BATCH) {
        q->len += (size_t)snprintf(q->seq + q->len, q->cap - q->len, "#%llu",
                                   (unsigned long long)e->task_id);
        return 0;
    }
    if (!who)
        return 0;
    if (e->type == CS_EV_TASK_CREATED) {
        char site[512], want[512];
        assert_true(cs_trace_string(q->tr, e->arg, site, sizeof site) > 0);
        snprintf(want, sizeof want, "%s:%d", __FILE__,
                 spawn_line + (who == 'b'));
        assert_string_equal(site, want);
        q->created++;
    }
    if (e->type == CS_EV_TASK_DONE)
        q->done++;
    if (e->type == CS_EV_YIELDS)
        q->len += (size_t)snprintf(q->seq + q->len, q->cap - q->len, "%c%u",
                                   who - 'a' + 'A', e->arg);
    if (e->type != CS_EV_STEP)
        return 0;
    int batched = (e->flags & CS_RECF_BATCHED) != 0;
    q->seq[q->len++] = (char)who;
    q->seq[q->len++] = e->reason == CS_WAIT_YIELD  ? 'y'
                       : e->reason == CS_STOP_DONE ? (batched ? 'D' : 'd')
                                                   : '?';
    q->seq[q->len] = '\0';
    return 0;
}

static void step_sequence(char *seq, size_t cap, int *created, int *done)
{
    step_seq q = {.seq = seq, .cap = cap};
    uint64_t lost = 0;

    seq[0] = '\0';
    assert_rc(cs_trace_open_pid((int)getpid(), &q.tr), 0);
    snap_count_events(q.tr, step_seq_add, &q, &lost);
    assert_int_equal(lost, 0);
    cs_trace_close(q.tr);
    *created = q.created;
    *done = q.done;
}

/* Runs ping and pong with COSCOPE_BATCH_NS=batch_ns and checks their
 * records read as want (step_sequence's letters). */
static void check_steps(const char *batch_ns, const char *want)
{
    char seq[64];
    int created, done;

    setenv("COSCOPE_BATCH_NS", batch_ns, 1);
    assert_rc(cs_run(steps_main, NULL, NULL), 0);
    unsetenv("COSCOPE_BATCH_NS");
    cs_test_assert_clean();
    step_sequence(seq, sizeof seq, &created, &done);
    assert_string_equal(seq, want);
    assert_int_equal(created, 2);
    assert_int_equal(done, 2);
}

/* COSCOPE_BATCH_NS=0: every step timed, one record each.  main awaits;
 * ping and pong alternate: 3 yields each, then return. */
static void test_trace_runtime_steps_of_yields(void **state)
{
    (void)state;
    check_steps("0", "aybyaybyaybyadbd");
}

/* Every yield step "short" (1 s): after ping's first, timed, yield the
 * yields are batched (pong joins first), until ping returns: that switch
 * reads the clock and writes the batch (5 yields and ping's last step),
 * then ping's last step flagged as begun in it; pong's return is timed. */
static void test_trace_runtime_yields_batched(void **state)
{
    (void)state;
    check_steps("1000000000", "ay#6B3A2aDbd");
}

/* ---- COSCOPE_RECORD ----------------------------------------------------- */

/* The steps an event stands for: batched yields count too. */
static int steps_in(const cs_trace_event *e, const void *arg)
{
    (void)arg;
    return e->type == CS_EV_STEP     ? 1
           : e->type == CS_EV_YIELDS ? (int)e->arg
                                     : 0;
}

static void test_trace_runtime_record_file(void **state)
{
    (void)state;
    char path[] = "/tmp/cs_trace_rec_XXXXXX";
    snap_tmp_file(path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("COSCOPE_RECORD", path, 1);
        int rc = cs_run(steps_main, NULL, NULL);
        exit(rc == 0 ? 0 : 3);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cs_trace *tr;
    cs_trace_info info;
    assert_rc(cs_trace_open_file(path, &tr), 0);
    assert_rc(cs_trace_info_get(tr, &info), 0);
    assert_true(info.complete);
    uint64_t lost = 0;
    int steps = snap_count_events(tr, steps_in, NULL, &lost);
    assert_int_equal(lost, 0);
    cs_trace_close(tr);
    unlink(path);
    /* main: 1 step (gather); ping, pong: YIELDS + 1 each */
    assert_true(steps >= 2 * (YIELDS + 1) + 1);
}

/* Does this process's segment list an object whose path contains name? */
static int segment_lists(const char *name)
{
    cs_trace *tr;
    cs_trace_module m;
    uint32_t iter = 0;
    int found = 0, rc;
    assert_rc(cs_trace_open_pid((int)getpid(), &tr), 0);
    while ((rc = cs_trace_module_next(tr, &iter, &m)) == 1)
        found |= strstr(m.path, name) != NULL;
    assert_true(rc == 0);
    cs_trace_close(tr);
    return found;
}

static void *warn_from_library_main(void *arg)
{
    const char **name = arg;
    static const char *const libs[] = {"libresolv.so.2", "libutil.so.1",
                                       "libanl.so.1", "libz.so.1"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0] && !h; i++) {
        void *old = dlopen(libs[i], RTLD_NOW | RTLD_NOLOAD);
        if (old) { /* loaded already: listed since start */
            dlclose(old);
            continue;
        }
        if ((h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL)) != NULL)
            *name = libs[i];
    }
    if (!h)
        return NULL; /* nothing to load here: the caller skips */
    int before = segment_lists(*name);
    uintptr_t ip = (uintptr_t)dlsym(RTLD_DEFAULT, "cs_yield");
    cs_agent_trace_warning(CS_WARN_BLOCKING, cs_task_id(cs_current_task()),
                           &ip, 1);
    int after = segment_lists(*name);
    dlclose(h);
    return (void *)(intptr_t)(before ? 1 : after ? 2 : 3);
}

/* A warning's stack may point into an object loaded after tracing began:
 * the warning refreshes the module table so a reader can still name it. */
static void test_trace_runtime_warning_lists_new_library(void **state)
{
    (void)state;
    const char *name = NULL;
    void *res = NULL;
    assert_rc(cs_run(warn_from_library_main, &name, &res), 0);
    if (!name)
        skip();
    assert_int_equal((intptr_t)res, 2); /* listed after the warning only */
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_trace_runtime_task_table_states, setup),
        cmocka_unit_test_setup(test_trace_runtime_steps_of_yields, setup),
        cmocka_unit_test_setup(test_trace_runtime_yields_batched, setup),
        cmocka_unit_test_setup(test_trace_runtime_record_file, setup),
        cmocka_unit_test_setup(test_trace_runtime_warning_lists_new_library,
                               setup),
    };
    unsetenv("COSCOPE");
    unsetenv("COSCOPE_FLIGHT");
    unsetenv("COSCOPE_RECORD");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
