/*
 * test_loop.c - cs_run(): return values, nesting, teardown of pending
 * tasks, the deadlock report, calls outside a loop, cs_all_tasks(),
 * 10,000 concurrent tasks and one loop per thread.
 */
#include "cs_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

/* ---- return values ------------------------------------------------------ */

static void *return_arg(void *arg)
{
    return arg;
}

static void test_loop_run_returns_main_result(void **state)
{
    (void)state;
    int token;
    void *result = NULL;
    assert_rc(cs_run(return_arg, &token, &result), 0);
    assert_ptr_equal(result, &token);
    assert_null(cs_last_error());
}

static void test_loop_run_accepts_null_result(void **state)
{
    (void)state;
    assert_rc(cs_run(return_arg, CS_P(7), NULL), 0);
}

static void *raise_busy(void *arg)
{
    cs_raise(CS_EBUSY, "device '%s' is busy", (const char *)arg);
}

static void test_loop_run_returns_raised_error(void **state)
{
    (void)state;
    void *result = CS_P(1);
    assert_rc(cs_run(raise_busy, "disk0", &result), CS_EBUSY);
    const char *msg = cs_last_error();
    assert_non_null(msg);
    assert_string_equal(msg, "device 'disk0' is busy");
    /* A later successful run clears the thread's last error. */
    assert_rc(cs_run(return_arg, NULL, NULL), 0);
    assert_null(cs_last_error());
}

static void *cancel_self(void *arg)
{
    (void)arg;
    cs_cancel(cs_current_task());
    int rc = cs_sleep(CS_SEC(3600));
    CS_CHECK_RC(rc, CS_ECANCELLED);
    cs_raise(rc, "main cancelled");
}

static void test_loop_run_returns_cancelled(void **state)
{
    (void)state;
    assert_rc(cs_run(cancel_self, NULL, NULL), CS_ECANCELLED);
    cs_test_assert_clean();
}

static void test_loop_run_sequentially_on_one_thread(void **state)
{
    (void)state;
    for (uintptr_t i = 0; i < 5; i++) {
        void *result = NULL;
        assert_rc(cs_run(return_arg, CS_P(i), &result), 0);
        assert_int_equal(CS_I(result), i);
    }
}

/* ---- nesting ------------------------------------------------------------ */

static atomic_int inner_ran;

static void *inner_main(void *arg)
{
    (void)arg;
    inner_ran = 1;
    return NULL;
}

static void *nested_main(void *arg)
{
    (void)arg;
    void *result = CS_P(0x55);
    int rc = cs_run(inner_main, NULL, &result);
    CS_CHECK_RC(rc, CS_ENESTED);
    const char *msg = cs_last_error();
    CS_CHECK(msg != NULL);
    if (msg != NULL)
        CS_CHECK(strstr(msg, cs_strerror(CS_ENESTED)) != NULL);
    CS_CHECK_PTR_EQ(result, CS_P(0x55));
    /* The outer loop is unharmed and still schedules tasks. */
    CS_CHECK_RC(cs_sleep(CS_MSEC(1)), 0);
    cs_task *t = cs_spawn("after_nested", return_arg, CS_P(3));
    void *r = NULL;
    CS_CHECK_RC(cs_await(t, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(3));
    return CS_P(1);
}

static void test_loop_nested_run_refused(void **state)
{
    (void)state;
    inner_ran = 0;
    void *result = NULL;
    assert_rc(cs_run(nested_main, NULL, &result), 0);
    assert_ptr_equal(result, CS_P(1));
    assert_int_equal(inner_ran, 0);
    cs_test_assert_clean();
}

/* ---- teardown of pending tasks ----------------------------------------- */

struct pending {
    int sleep_rc;  /* what the forgotten sleeper's cs_sleep returned */
    int finished;  /* the sleeper ran to its end */
    int waiter_rc; /* what the forgotten event waiter got */
    cs_event *never;
};

static void *forgotten_sleeper(void *arg)
{
    struct pending *p = arg;
    p->sleep_rc = cs_sleep(CS_SEC(3600));
    p->finished = 1;
    return NULL;
}

static void *forgotten_waiter(void *arg)
{
    struct pending *p = arg;
    p->waiter_rc = cs_event_wait(p->never);
    return NULL;
}

static void *leave_pending(void *arg)
{
    struct pending *p = arg;
    cs_detach(cs_spawn("sleeper", forgotten_sleeper, p));
    cs_spawn("waiter", forgotten_waiter, p); /* handle never awaited */
    cs_yield();
    return CS_P(9);
}

static void test_loop_run_cancels_pending_tasks(void **state)
{
    (void)state;
    struct pending p = {1, 0, 1, cs_event_new()};
    assert_non_null(p.never);
    void *result = NULL;
    assert_rc(cs_run(leave_pending, &p, &result), 0);
    assert_ptr_equal(result, CS_P(9));
    assert_rc(p.sleep_rc, CS_ECANCELLED);
    assert_int_equal(p.finished, 1);
    assert_rc(p.waiter_rc, CS_ECANCELLED);
    cs_event_free(p.never);
}

/* ---- deadlock and calls outside a loop ---------------------------------- */

static void *wait_forever(void *arg)
{
    int rc = cs_event_wait(arg);
    if (rc < 0)
        cs_raise(rc, "main stopped waiting");
    return CS_P(1);
}

/* Nothing can ever set the event: rather than hang, cs_run ends main with
 * an error and says why. */
static void test_loop_run_reports_deadlock(void **state)
{
    (void)state;
    cs_event *e = cs_event_new();
    void *result = CS_P(5);
    int rc = cs_run(wait_forever, e, &result);
    cs_event_free(e);
    assert_rc(rc, CS_EDEADLK);
    assert_null(result);
    const char *msg = cs_last_error();
    assert_non_null(msg);
    assert_non_null(strstr(msg, "deadlock"));
}

static void test_loop_calls_outside_a_loop_fail(void **state)
{
    (void)state;
    assert_null(cs_current_task());
    assert_null(cs_spawn("nowhere", return_arg, NULL));
    assert_rc(cs_sleep(CS_MSEC(1)), CS_ENOLOOP);
    cs_yield(); /* harmless */
    cs_lock *l = cs_lock_new();
    cs_event *e = cs_event_new();
    cs_queue *q = cs_queue_new(1);
    void *item;
    assert_rc(cs_lock_acquire(l), CS_ENOLOOP);
    assert_rc(cs_event_wait(e), CS_ENOLOOP);
    assert_rc(cs_queue_get(q, &item), CS_ENOLOOP);
    assert_rc(cs_wait_fd(0, CS_READABLE, 0), CS_ENOLOOP);
    assert_int_equal(cs_all_tasks(NULL, 0), 0);
    cs_lock_free(l);
    cs_event_free(e);
    cs_queue_free(q);
}

/* ---- cs_all_tasks ------------------------------------------------------- */

struct census {
    cs_event *go; /* set to let the members finish */
    int started;  /* members that reached the event */
};

static void *census_member(void *arg)
{
    struct census *c = arg;
    c->started++;
    CS_CHECK_RC(cs_event_wait(c->go), 0);
    return NULL;
}

static int contains(cs_task *const *v, size_t n, const cs_task *t)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == t)
            return 1;
    return 0;
}

static void *census_main(void *arg)
{
    (void)arg;
    struct census c = {cs_event_new(), 0};
    cs_task *members[5];
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    for (int i = 0; i < 5; i++)
        members[i] = cs_spawn("member", census_member, &c);
    cs_yield();
    CS_CHECK_INT_EQ(c.started, 5);

    cs_task *few[3] = {NULL, NULL, NULL};
    CS_CHECK_INT_EQ(cs_all_tasks(few, 3), 6);
    for (int i = 0; i < 3; i++)
        CS_CHECK(few[i] != NULL);

    cs_task *all[16];
    size_t n = cs_all_tasks(all, 16);
    CS_CHECK_INT_EQ(n, 6);
    CS_CHECK(contains(all, n, cs_current_task()));
    for (int i = 0; i < 5; i++)
        CS_CHECK(contains(all, n, members[i]));

    cs_event_set(c.go);
    CS_CHECK_RC(cs_gather(members, 5, NULL), 0);
    CS_CHECK_INT_EQ(cs_all_tasks(all, 16), 1);
    CS_CHECK_PTR_EQ(all[0], cs_current_task());
    cs_event_free(c.go);
    return NULL;
}

static void test_loop_all_tasks_counts_unfinished(void **state)
{
    (void)state;
    assert_int_equal(cs_all_tasks(NULL, 0), 0);
    assert_null(cs_current_task());
    assert_rc(cs_run(census_main, NULL, NULL), 0);
    assert_int_equal(cs_all_tasks(NULL, 0), 0);
    assert_null(cs_current_task());
    cs_test_assert_clean();
}

/* ---- 10,000 tasks ------------------------------------------------------- */

#define MANY 10000

struct many {
    cs_event *go;
    int started;      /* tasks that reached the event */
    size_t max_alive; /* most unfinished tasks any of them saw */
};

static struct many many_state;

static void *many_waiter(void *arg)
{
    uintptr_t i = CS_I(arg);
    size_t alive = cs_all_tasks(NULL, 0);
    many_state.started++;
    if (alive > many_state.max_alive)
        many_state.max_alive = alive;
    CS_CHECK_RC(cs_event_wait(many_state.go), 0);
    cs_yield();
    return CS_P(i * 3 + 1);
}

static void *many_main(void *arg)
{
    (void)arg;
    cs_task **tasks = calloc(MANY, sizeof(*tasks));
    void **results = calloc(MANY, sizeof(*results));
    CS_CHECK(tasks != NULL && results != NULL);
    if (tasks == NULL || results == NULL) {
        free(tasks);
        free(results);
        return NULL;
    }
    for (uintptr_t i = 0; i < MANY; i++) {
        tasks[i] = cs_spawn("many", many_waiter, CS_P(i));
        CS_CHECK(tasks[i] != NULL);
    }
    while (many_state.started < MANY)
        cs_yield();
    /* Every task is alive at once, parked on the event. */
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), MANY + 1);
    cs_event_set(many_state.go);
    CS_CHECK_RC(cs_gather(tasks, MANY, results), 0);
    for (uintptr_t i = 0; i < MANY; i++)
        if (CS_I(results[i]) != i * 3 + 1) {
            CS_CHECK_INT_EQ(CS_I(results[i]), i * 3 + 1);
            break;
        }
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    free(tasks);
    free(results);
    return NULL;
}

static void test_loop_ten_thousand_tasks(void **state)
{
    (void)state;
    memset(&many_state, 0, sizeof(many_state));
    many_state.go = cs_event_new();
    assert_non_null(many_state.go);
    assert_rc(cs_run(many_main, NULL, NULL), 0);
    assert_int_equal(many_state.started, MANY);
    assert_int_equal(many_state.max_alive, MANY + 1);
    cs_event_free(many_state.go);
    cs_test_assert_clean();
}

/* ---- two loops on two threads ------------------------------------------ */

#define PING_ROUNDS 1000

static pthread_barrier_t both_running; /* both loops are inside cs_run */
static pthread_barrier_t both_worked;  /* both loops did their work */

struct loop_ctx {
    int which;          /* 0 or 1 */
    cs_task *main_task; /* this loop's main task */
    uint64_t ids[3];    /* ids of the three workers */
    int rounds;         /* worker rounds completed */
    pthread_t thread;
    int run_rc;
    void *run_result;
};

static void *pinger(void *arg)
{
    struct loop_ctx *c = arg;
    cs_task *self = cs_current_task();
    for (int i = 0; i < PING_ROUNDS; i++) {
        cs_yield();
        CS_CHECK_PTR_EQ(cs_current_task(), self);
        /* main and the three pingers; on the last round some have ended */
        if (i < PING_ROUNDS - 1)
            CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 4);
        c->rounds++;
    }
    return CS_P(c->which + 100);
}

static void *loop_thread_main(void *arg)
{
    struct loop_ctx *c = arg;
    c->main_task = cs_current_task();
    CS_CHECK(c->main_task != NULL);
    pthread_barrier_wait(&both_running);
    cs_task *w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = cs_spawn(c->which ? "pinger1" : "pinger0", pinger, c);
        c->ids[i] = cs_task_id(w[i]);
    }
    void *res[3];
    CS_CHECK_RC(cs_gather(w, 3, res), 0);
    for (int i = 0; i < 3; i++)
        CS_CHECK_PTR_EQ(res[i], CS_P(c->which + 100));
    CS_CHECK_PTR_EQ(cs_current_task(), c->main_task);
    pthread_barrier_wait(&both_worked);
    return CS_P(c->which + 1);
}

static void *loop_thread(void *arg)
{
    struct loop_ctx *c = arg;
    c->run_rc = cs_run(loop_thread_main, c, &c->run_result);
    return NULL;
}

static void test_loop_two_loops_on_two_threads(void **state)
{
    (void)state;
    struct loop_ctx ctx[2];
    memset(ctx, 0, sizeof(ctx));
    assert_int_equal(pthread_barrier_init(&both_running, NULL, 2), 0);
    assert_int_equal(pthread_barrier_init(&both_worked, NULL, 2), 0);
    for (int i = 0; i < 2; i++) {
        ctx[i].which = i;
        ctx[i].run_rc = 1;
        assert_int_equal(pthread_create(&ctx[i].thread, NULL, loop_thread,
                                        &ctx[i]),
                         0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(ctx[i].thread, NULL), 0);
    pthread_barrier_destroy(&both_running);
    pthread_barrier_destroy(&both_worked);
    cs_test_assert_clean();
    for (int i = 0; i < 2; i++) {
        assert_rc(ctx[i].run_rc, 0);
        assert_ptr_equal(ctx[i].run_result, CS_P(i + 1));
        assert_int_equal(ctx[i].rounds, 3 * PING_ROUNDS);
    }
    assert_ptr_not_equal(ctx[0].main_task, ctx[1].main_task);
    /* Task ids are unique in the process, across loops. */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            assert_true(ctx[0].ids[a] != ctx[1].ids[b]);
    /* The main thread never ran a loop. */
    assert_null(cs_current_task());
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_loop_run_returns_main_result, setup),
    cmocka_unit_test_setup(test_loop_run_accepts_null_result, setup),
    cmocka_unit_test_setup(test_loop_run_returns_raised_error, setup),
    cmocka_unit_test_setup(test_loop_run_returns_cancelled, setup),
    cmocka_unit_test_setup(test_loop_run_sequentially_on_one_thread, setup),
    cmocka_unit_test_setup(test_loop_nested_run_refused, setup),
    cmocka_unit_test_setup(test_loop_run_cancels_pending_tasks, setup),
    cmocka_unit_test_setup(test_loop_run_reports_deadlock, setup),
    cmocka_unit_test_setup(test_loop_calls_outside_a_loop_fail, setup),
    cmocka_unit_test_setup(test_loop_all_tasks_counts_unfinished, setup),
    cmocka_unit_test_setup(test_loop_ten_thousand_tasks, setup),
    cmocka_unit_test_setup(test_loop_two_loops_on_two_threads, setup),
};

CS_TEST_MAIN("runtime_loop", tests)
