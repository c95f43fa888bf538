/*
 * test_trace_lifetimes.c - short task lifetimes batched in the trace
 * (issue 10, point 3; runtime/trace.h "Task-lifetime batching"), checked
 * only through the reader API (coscope/trace.h):
 *
 *   - spawn + await of tasks that end at once, with every step "short"
 *     (COSCOPE_BATCH_NS=1 s): the ring still holds, for every task, its
 *     creation and name, one step ended by its end, its end record (done
 *     or raised, with the error), and main's wait naming it; the steps
 *     come in batches whose step counts match the steps that follow them,
 *     and timestamps never go back;
 *   - a yield or a sleep closes a batch with its own step, and the yields
 *     (timed, or counted in a yield batch) are all there;
 *   - inside a batch the task table is current: a task sees main waiting
 *     on it, itself running with main as its awaiter;
 *   - exit() while a batch is open: the recorded file (COSCOPE_RECORD)
 *     still has every task's end.
 */
#include "cs_snap.h"

#include <coscope/trace.h>
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
    setenv("COSCOPE_BATCH_NS", "1000000000", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("COSCOPE_BATCH_NS");
    unsetenv("COSCOPE_RECORD");
    return 0;
}

enum { TASKS = 80, GATHERED = 6, RAISER = 7 };

static uint64_t ids[TASKS + GATHERED];
static int ntasks;
static uint64_t main_id;

static void *quick(void *arg)
{
    if ((intptr_t)arg == RAISER)
        cs_raise(CS_EINVAL, "task %d raises", RAISER);
    return arg;
}

static void *lifetimes_main(void *arg)
{
    (void)arg;
    main_id = cs_task_id(cs_current_task());
    ntasks = 0;
    for (int i = 0; i < TASKS; i++) {
        cs_task *t = cs_spawn("quick", quick, (void *)(intptr_t)i);
        ids[ntasks++] = cs_task_id(t);
        int rc = cs_await(t, NULL);
        if (rc != (i == RAISER ? CS_EINVAL : 0))
            return (void *)1;
    }
    cs_task *g[GATHERED];
    for (int i = 0; i < GATHERED; i++) {
        g[i] = cs_spawn("quick", quick, (void *)(intptr_t)(100 + i));
        ids[ntasks++] = cs_task_id(g[i]);
    }
    return cs_gather(g, GATHERED, NULL) == 0 ? NULL : (void *)2;
}

static int index_of(uint64_t id)
{
    for (int i = 0; i < ntasks; i++)
        if (ids[i] == id)
            return i;
    return -1;
}

/* What the records say about each task. */
typedef struct per_task {
    int created, named, steps, done, raised, awaited;
    int yields; /* steps ended by a yield: records, or in yields */
    int32_t error;
} per_task;

typedef struct summary {
    per_task t[TASKS + GATHERED];
    int batches;        /* CS_EV_BATCH records */
    int batch_mismatch; /* batches whose count is not the steps after them */
    int back_in_time;   /* records older than the one before them */
    uint64_t events;    /* events read, every ring */
    uint64_t records;   /* records written (the rings' heads) */
    int shared_seq;     /* events with the seq of the one before: from a
                           compact record (format minor 5) */
} summary;

/* Reads every ring of tr into *s. */
static void summarise(cs_trace *tr, summary *s)
{
    static cs_trace_event ev[1 << 16];
    cs_trace_info info;
    char name[64];

    memset(s, 0, sizeof *s);
    assert_rc(cs_trace_info_get(tr, &info), 0);
    for (uint32_t r = 0; r < info.ring_count; r++) {
        uint64_t cursor = 0, lost = 0, last_ts = 0, batch_ts = 0, seq = 0;
        cs_trace_ring ring;
        int64_t batch_left = -1; /* batched steps still to come */
        size_t n;
        do {
            assert_rc(cs_trace_read(tr, r, &cursor, ev, 1 << 16, &n, &lost),
                      0);
            for (size_t i = 0; i < n; i++) {
                const cs_trace_event *e = &ev[i];
                int k = index_of(e->task_id);
                s->events++;
                s->shared_seq += e->seq == seq;
                seq = e->seq;
                if (e->ts < last_ts)
                    s->back_in_time++;
                last_ts = e->ts;
                if (e->type == CS_EV_BATCH) {
                    if (batch_left > 0)
                        s->batch_mismatch++;
                    s->batches++;
                    batch_left = (int64_t)e->task_id;
                    batch_ts = e->ts;
                    continue;
                }
                if (e->type == CS_EV_STEP && (e->flags & CS_RECF_BATCHED)) {
                    if (e->ts != batch_ts || batch_left-- <= 0)
                        s->batch_mismatch++;
                }
                if (e->type == CS_EV_YIELDS) { /* a yield batch's k steps */
                    if (e->ts != batch_ts || batch_left < (int64_t)e->arg)
                        s->batch_mismatch++;
                    batch_left -= (int64_t)e->arg;
                    if (k >= 0)
                        s->t[k].yields += (int)e->arg;
                }
                if (e->type == CS_EV_WAIT && e->reason == CS_WAIT_TASK &&
                    (k = index_of(e->task_id)) >= 0) {
                    s->t[k].awaited++;
                    continue;
                }
                if (k < 0)
                    continue;
                switch (e->type) {
                case CS_EV_TASK_CREATED:
                    s->t[k].created++;
                    break;
                case CS_EV_TASK_NAME:
                    assert_true(
                        cs_trace_string(tr, e->arg, name, sizeof name) > 0);
                    s->t[k].named += strcmp(name, "quick") == 0;
                    break;
                case CS_EV_STEP:
                    s->t[k].steps += e->reason == CS_STOP_DONE ||
                                     e->reason == CS_STOP_RAISED;
                    s->t[k].yields += e->reason == CS_WAIT_YIELD;
                    break;
                case CS_EV_TASK_DONE:
                    s->t[k].done++;
                    break;
                case CS_EV_TASK_RAISED:
                    s->t[k].raised++;
                    s->t[k].error = (int32_t)e->arg;
                    break;
                default:
                    break;
                }
            }
        } while (n > 0);
        assert_int_equal(lost, 0);
        assert_rc(cs_trace_ring_get(tr, r, &ring), 0);
        s->records += ring.head;
        if (batch_left > 0)
            s->batch_mismatch++;
    }
}

/* Every task: created, named, one step ended by its end, one end record
 * of the right kind; every awaited one named by main's wait. */
static void assert_every_task(const summary *s, int awaits)
{
    for (int i = 0; i < ntasks; i++) {
        const per_task *p = &s->t[i];
        assert_int_equal(p->created, 1);
        assert_int_equal(p->named, 1);
        assert_int_equal(p->steps, 1);
        if (i == RAISER) {
            assert_int_equal(p->raised, 1);
            assert_int_equal(p->done, 0);
            assert_int_equal(p->error, CS_EINVAL);
        } else {
            assert_int_equal(p->done, 1);
            assert_int_equal(p->raised, 0);
        }
        if (i < awaits)
            assert_true(p->awaited >= 1);
    }
}

static void test_trace_lifetimes_every_task_recorded(void **state)
{
    (void)state;
    cs_trace *tr;
    static summary s;

    void *res = (void *)-1;
    assert_rc(cs_run(lifetimes_main, NULL, &res), 0);
    assert_null(res);
    cs_test_assert_clean();
    assert_int_equal(ntasks, TASKS + GATHERED);
    assert_rc(cs_trace_open_pid((int)getpid(), &tr), 0);
    summarise(tr, &s);
    cs_trace_close(tr);
    assert_true(s.batches >= 1); /* the steps were batched ... */
    assert_int_equal(s.batch_mismatch, 0);
    assert_int_equal(s.back_in_time, 0);
    assert_every_task(&s, TASKS); /* ... and nothing of them was lost */
    /* ... though each task took one record for its creation and name
     * (CS_EV_TASK_NEW), and most awaited ones (not the raiser, nor one cut
     * by a batch's end) one for main's wait and both steps (CS_EV_LIFE),
     * each read as the same events as before */
    assert_true(s.shared_seq >= TASKS + 3 * (TASKS / 2));
    assert_true(s.records + s.shared_seq == s.events);
    assert_true(s.records < s.events / 2);
}

/* ---- a lifetime batch ended by another kind of step --------------------- */

enum { YIELDS = 5 };

static void *yielder(void *arg)
{
    for (int i = 0; i < YIELDS; i++)
        cs_yield();
    return arg;
}

static void *sleeper(void *arg)
{
    cs_sleep(CS_MSEC(1));
    return arg;
}

static int yielding[TASKS]; /* ids[i] is a yielder */

/* Short lifetimes, then a gather of two tasks that yield to each other,
 * or an await of one that sleeps: each closes the open batch with its own
 * kind of step. */
static void *mixed_main(void *arg)
{
    (void)arg;
    ntasks = 0;
    for (int round = 0; round < 4; round++) {
        cs_task *g[2];
        for (int i = 0; i < 5; i++) {
            cs_task *t = cs_spawn("quick", quick, NULL);
            yielding[ntasks] = 0;
            ids[ntasks++] = cs_task_id(t);
            if (cs_await(t, NULL) != 0)
                return (void *)1;
        }
        for (int i = 0; i < 2 - round % 2; i++) {
            g[i] = cs_spawn("quick", round % 2 ? sleeper : yielder, NULL);
            yielding[ntasks] = round % 2 == 0;
            ids[ntasks++] = cs_task_id(g[i]);
        }
        if (cs_gather(g, (size_t)(2 - round % 2), NULL) != 0)
            return (void *)2;
    }
    return NULL;
}

static void test_trace_lifetimes_other_steps_close_batches(void **state)
{
    (void)state;
    cs_trace *tr;
    static summary s;
    void *res = (void *)-1;

    assert_rc(cs_run(mixed_main, NULL, &res), 0);
    assert_null(res);
    cs_test_assert_clean();
    assert_rc(cs_trace_open_pid((int)getpid(), &tr), 0);
    summarise(tr, &s);
    cs_trace_close(tr);
    assert_true(s.batches >= 1);
    assert_int_equal(s.batch_mismatch, 0);
    assert_int_equal(s.back_in_time, 0);
    for (int i = 0; i < ntasks; i++) {
        assert_int_equal(s.t[i].created, 1);
        assert_int_equal(s.t[i].steps, 1); /* the one that ended it */
        assert_int_equal(s.t[i].done, 1);
        if (!yielding[i]) { /* a gathered one may be done when awaited */
            assert_true(s.t[i].awaited >= 1);
            assert_int_equal(s.t[i].yields, 0);
        } else /* a last yield with nobody else ready switches nothing */
            assert_true(s.t[i].yields >= YIELDS - 1 &&
                        s.t[i].yields <= YIELDS);
    }
}

/* ---- the task table inside a batch -------------------------------------- */

typedef struct table_seen {
    int rc;
    int found_self, found_main;
    cs_trace_task self, main;
} table_seen;

static table_seen seen;

static void *looker(void *arg)
{
    cs_trace *tr;
    cs_trace_task t;
    uint32_t iter = 0;
    uint64_t me = cs_task_id(cs_current_task());
    int rc;

    (void)arg;
    if ((seen.rc = cs_trace_open_pid((int)getpid(), &tr)) != 0)
        return NULL;
    while ((rc = cs_trace_task_next(tr, &iter, &t)) == 1) {
        if (t.id == me)
            seen.self = t, seen.found_self = 1;
        if (t.id == main_id)
            seen.main = t, seen.found_main = 1;
    }
    seen.rc = rc;
    cs_trace_close(tr);
    return NULL;
}

static void *table_main(void *arg)
{
    (void)arg;
    main_id = cs_task_id(cs_current_task());
    for (int i = 0; i < 10; i++) /* short lifetimes: a batch is open */
        cs_await(cs_spawn("quick", quick, NULL), NULL);
    cs_task *t = cs_spawn("looker", looker, NULL);
    ids[0] = cs_task_id(t);
    return (void *)(intptr_t)cs_await(t, NULL);
}

static void test_trace_lifetimes_table_is_current(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    void *res = (void *)-1;
    assert_rc(cs_run(table_main, NULL, &res), 0);
    assert_null(res);
    cs_test_assert_clean();
    assert_rc(seen.rc, 0);
    assert_true(seen.found_self && seen.found_main);
    assert_int_equal(seen.main.state, CS_TASK_WAITING);
    assert_int_equal(seen.main.wait, CS_WAIT_TASK);
    assert_int_equal(seen.main.wait_target, ids[0]);
    assert_true(seen.main.flags & CS_TASKF_REGS_VALID);
    assert_true(seen.main.steps >= 11);
    assert_int_equal(seen.self.state, CS_TASK_RUNNING);
    assert_int_equal(seen.self.awaiter, main_id);
    assert_int_equal(seen.self.parent, main_id);
}

/* ---- exit() with a batch open ------------------------------------------- */

static void *exiter(void *arg)
{
    (void)arg;
    exit(0);
}

static void *exit_main(void *arg)
{
    (void)arg;
    main_id = cs_task_id(cs_current_task());
    ntasks = 0;
    for (int i = 0; i < 20; i++) {
        cs_task *t = cs_spawn("quick", quick, NULL);
        ids[ntasks++] = cs_task_id(t);
        cs_await(t, NULL);
    }
    cs_await(cs_spawn("exiter", exiter, NULL), NULL);
    return NULL;
}

/* What learn_child_ids() gathers: the trace, and the ids found so far. */
typedef struct quick_ids {
    cs_trace *tr; /* the child's trace (for the name strings) */
    int n, k;     /* ids wanted, ids found */
} quick_ids;

/* Notes e's task in ids[] if e names it "quick" (arg: a quick_ids). */
static int quick_id_add(const cs_trace_event *e, const void *arg)
{
    quick_ids *q = (quick_ids *)arg;
    char name[64];
    if (q->k < q->n && e->type == CS_EV_TASK_NAME &&
        cs_trace_string(q->tr, e->arg, name, sizeof name) > 0 &&
        strcmp(name, "quick") == 0)
        ids[q->k++] = e->task_id;
    return 0;
}

/* The ids of the child's first n tasks named "quick", in spawn order
 * (from their name records), into ids[]. */
static void learn_child_ids(cs_trace *tr, int n)
{
    quick_ids q = {.tr = tr, .n = n};
    snap_count_events(tr, quick_id_add, &q, NULL);
    assert_int_equal(q.k, n);
    ntasks = n;
}

static void test_trace_lifetimes_exit_keeps_batch(void **state)
{
    (void)state;
    char path[] = "/tmp/cs_trace_life_XXXXXX";
    int fd = mkstemp(path);
    int st;
    pid_t pid;
    cs_trace *tr;
    static summary s;

    assert_true(fd >= 0);
    close(fd);
    if ((pid = fork()) == 0) {
#if defined(__SANITIZE_ADDRESS__)
        /* exit() on a task stack: LeakSanitizer would not see the
         * thread's own stack; check now instead of at exit */
        __lsan_do_leak_check();
#endif
        setenv("COSCOPE_RECORD", path, 1);
        cs_run(exit_main, NULL, NULL);
        _exit(3);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_rc(cs_trace_open_file(path, &tr), 0);
    unlink(path);
    learn_child_ids(tr, 20);
    summarise(tr, &s);
    cs_trace_close(tr);
    assert_true(s.batches >= 1);
    assert_int_equal(s.batch_mismatch, 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(s.t[i].created, 1);
        assert_int_equal(s.t[i].done, 1);
        assert_int_equal(s.t[i].steps, 1);
        assert_true(s.t[i].awaited >= 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_trace_lifetimes_every_task_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_trace_lifetimes_other_steps_close_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_lifetimes_table_is_current,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_lifetimes_exit_keeps_batch,
                                        setup, teardown),
    };
    unsetenv("COSCOPE");
    unsetenv("COSCOPE_FLIGHT");
    unsetenv("COSCOPE_RECORD");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
