/*
 * test_task.c - tasks: start order, cs_yield interleaving, names and ids,
 * cs_await, cs_gather, cs_wait_for and cs_detach.
 */
#include "cs_test.h"

#include <stdio.h>
#include <string.h>

static cs_test_log trace;

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    cs_test_log_init(&trace);
    return 0;
}

static void *return_arg(void *arg)
{
    return arg;
}

/* ---- ordering ----------------------------------------------------------- */

static void *log_start(void *arg)
{
    cs_test_log_add(&trace, "%s", (const char *)arg);
    return NULL;
}

static void *fifo_main(void *arg)
{
    (void)arg;
    static const char *names[] = {"A", "B", "C", "D", "E"};
    cs_task *t[5];
    for (int i = 0; i < 5; i++)
        t[i] = cs_spawn(names[i], log_start, (void *)names[i]);
    /* Spawning only schedules: nothing ran yet. */
    CS_CHECK_INT_EQ(trace.len, 0);
    cs_test_log_add(&trace, "main");
    CS_CHECK_RC(cs_gather(t, 5, NULL), 0);
    return NULL;
}

static void test_task_start_order_is_fifo(void **state)
{
    (void)state;
    cs_test_run_ok(fifo_main, NULL);
    assert_string_equal(trace.buf, "main A B C D E");
}

#define ROUNDS 5

static void *yielder(void *arg)
{
    for (int i = 0; i < ROUNDS; i++) {
        cs_test_log_add(&trace, "%s%d", (const char *)arg, i);
        cs_yield();
    }
    return NULL;
}

static void *interleave_main(void *arg)
{
    int ntasks = (int)CS_I(arg);
    static const char *names[] = {"A", "B", "C"};
    cs_task *t[3];
    for (int i = 0; i < ntasks; i++)
        t[i] = cs_spawn(names[i], yielder, (void *)names[i]);
    CS_CHECK_RC(cs_gather(t, (size_t)ntasks, NULL), 0);
    return NULL;
}

static void expect_round_robin(int ntasks)
{
    static const char *names[] = {"A", "B", "C"};
    cs_test_log want;
    cs_test_log_init(&want);
    for (int i = 0; i < ROUNDS; i++)
        for (int k = 0; k < ntasks; k++)
            cs_test_log_add(&want, "%s%d", names[k], i);
    assert_string_equal(trace.buf, want.buf);
}

static void test_task_yield_alternates_two_tasks(void **state)
{
    (void)state;
    cs_test_run_ok(interleave_main, CS_P(2));
    expect_round_robin(2);
}

static void test_task_yield_round_robins_three_tasks(void **state)
{
    (void)state;
    cs_test_run_ok(interleave_main, CS_P(3));
    expect_round_robin(3);
}

/* Long enough to cross the scheduler's internal batches many times. */
#define LONG_ROUNDS 500

static int long_log[3 * LONG_ROUNDS];
static int long_len;

static void *long_yielder(void *arg)
{
    for (int i = 0; i < LONG_ROUNDS; i++) {
        long_log[long_len++] = (int)CS_I(arg);
        cs_yield();
    }
    return NULL;
}

static void *long_interleave_main(void *arg)
{
    (void)arg;
    cs_task *t[3];
    for (uintptr_t i = 0; i < 3; i++)
        t[i] = cs_spawn("long", long_yielder, CS_P(i));
    CS_CHECK_RC(cs_gather(t, 3, NULL), 0);
    return NULL;
}

static void test_task_yield_round_robin_holds_over_many_rounds(void **state)
{
    (void)state;
    long_len = 0;
    cs_test_run_ok(long_interleave_main, NULL);
    assert_int_equal(long_len, 3 * LONG_ROUNDS);
    for (int i = 0; i < long_len; i++)
        if (long_log[i] != i % 3)
            fail_msg("step %d ran task %d, expected %d", i, long_log[i],
                     i % 3);
}

static void *yield_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_spawn("A", log_start, "A");
    cs_task *u = cs_spawn("B", log_start, "B");
    cs_yield(); /* every ready task runs before main resumes */
    cs_test_log_add(&trace, "main");
    CS_CHECK(cs_task_done(t));
    CS_CHECK(cs_task_done(u));
    CS_CHECK_RC(cs_await(t, NULL), 0);
    CS_CHECK_RC(cs_await(u, NULL), 0);
    return NULL;
}

static void test_task_yield_runs_every_ready_task(void **state)
{
    (void)state;
    cs_test_run_ok(yield_main, NULL);
    assert_string_equal(trace.buf, "A B main");
}

/* ---- identity ----------------------------------------------------------- */

struct identity {
    cs_task *seen; /* cs_current_task() inside the task */
    char name[32]; /* cs_task_name() inside the task */
};

static void *record_identity(void *arg)
{
    struct identity *id = arg;
    id->seen = cs_current_task();
    snprintf(id->name, sizeof(id->name), "%s", cs_task_name(id->seen));
    return NULL;
}

static void *identity_main(void *arg)
{
    (void)arg;
    char name[16];
    struct identity a = {0}, b = {0};
    snprintf(name, sizeof(name), "worker");
    cs_task *t = cs_spawn(name, record_identity, &a);
    memset(name, 'x', sizeof(name) - 1); /* the name was copied */
    cs_task *u = CS_SPAWN(record_identity, &b);
    CS_CHECK(t != NULL && u != NULL && t != u);
    CS_CHECK(cs_current_task() != t && cs_current_task() != u);
    CS_CHECK_INT_EQ(strcmp(cs_task_name(t), "worker"), 0);
    CS_CHECK_INT_EQ(strcmp(cs_task_name(u), "record_identity"), 0);
    uint64_t self = cs_task_id(cs_current_task());
    uint64_t ti = cs_task_id(t), ui = cs_task_id(u);
    CS_CHECK(self >= 1 && ti >= 1 && ui >= 1);
    CS_CHECK(self != ti && self != ui && ti != ui);
    CS_CHECK(!cs_task_done(t));
    CS_CHECK_RC(cs_await(t, NULL), 0);
    CS_CHECK_RC(cs_await(u, NULL), 0);
    CS_CHECK_PTR_EQ(a.seen, t);
    CS_CHECK_PTR_EQ(b.seen, u);
    CS_CHECK_INT_EQ(strcmp(a.name, "worker"), 0);
    CS_CHECK_INT_EQ(strcmp(b.name, "record_identity"), 0);
    /* Ids are never reused. */
    cs_task *v = cs_spawn("later", return_arg, NULL);
    CS_CHECK(cs_task_id(v) != ti && cs_task_id(v) != ui);
    CS_CHECK_RC(cs_await(v, NULL), 0);
    return NULL;
}

static void test_task_names_and_ids(void **state)
{
    (void)state;
    cs_test_run_ok(identity_main, NULL);
}

static void *long_name_main(void *arg)
{
    (void)arg;
    char name[200];
    for (size_t i = 0; i + 1 < sizeof(name); i++)
        name[i] = (char)('a' + i % 26);
    name[sizeof(name) - 1] = '\0';
    cs_task *t = cs_spawn(name, return_arg, NULL);
    cs_coro *c = cs_coro_new(name, return_arg, NULL);
    cs_task *u = cs_create_task(c);
    CS_CHECK(t != NULL && u != NULL);
    CS_CHECK_INT_EQ(strcmp(cs_task_name(t), name), 0);
    CS_CHECK_INT_EQ(strcmp(cs_task_name(u), name), 0);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    CS_CHECK_RC(cs_await(u, NULL), 0);
    /* NULL handles are tolerated by the accessors. */
    CS_CHECK(cs_task_name(NULL) == NULL);
    CS_CHECK_INT_EQ(cs_task_id(NULL), 0);
    CS_CHECK(!cs_task_done(NULL));
    return NULL;
}

static void test_task_long_names_are_kept(void **state)
{
    (void)state;
    cs_test_run_ok(long_name_main, NULL);
}

/* ---- await -------------------------------------------------------------- */

static void *await_main(void *arg)
{
    (void)arg;
    int token;
    void *r = NULL;
    cs_task *t = cs_spawn("value", return_arg, &token);
    CS_CHECK_RC(cs_await(t, &r), 0);
    CS_CHECK_PTR_EQ(r, &token);
    CS_CHECK(cs_last_error() == NULL);

    /* Awaiting a task that already finished returns its value at once. */
    cs_task *u = cs_spawn("done_early", return_arg, CS_P(77));
    while (!cs_task_done(u))
        cs_yield();
    CS_CHECK_RC(cs_await(u, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(77));

    /* A NULL result pointer is allowed. */
    CS_CHECK_RC(cs_await(cs_spawn("nores", return_arg, NULL), NULL), 0);
    return NULL;
}

static void test_task_await_returns_value(void **state)
{
    (void)state;
    cs_test_run_ok(await_main, NULL);
}

struct second_awaiter {
    cs_task *target;
    int rc;
};

static void *await_other(void *arg)
{
    struct second_awaiter *s = arg;
    s->rc = cs_await(s->target, NULL);
    return NULL;
}

static void *wait_event(void *arg)
{
    CS_CHECK_RC(cs_event_wait(arg), 0);
    return NULL;
}

static void *bad_await_main(void *arg)
{
    (void)arg;
    /* A task cannot await itself... */
    CS_CHECK_RC(cs_await(cs_current_task(), NULL), CS_EINVAL);
    CS_CHECK_RC(cs_wait_for(cs_current_task(), CS_MSEC(1), NULL), CS_EINVAL);
    /* ...and a handle has one awaiter: a second is refused while the first
     * waits, and the first still gets the result. */
    cs_event *go = cs_event_new();
    cs_task *t = cs_spawn("target", wait_event, go);
    struct second_awaiter first = {t, 1}, second = {t, 1};
    cs_task *a = cs_spawn("first", await_other, &first);
    cs_yield();
    cs_task *b = cs_spawn("second", await_other, &second);
    cs_yield();
    CS_CHECK_RC(second.rc, CS_EINVAL);
    cs_event_set(go);
    CS_CHECK_RC(cs_await(a, NULL), 0);
    CS_CHECK_RC(cs_await(b, NULL), 0);
    CS_CHECK_RC(first.rc, 0);
    cs_event_free(go);
    return NULL;
}

static void test_task_bad_awaits_are_refused(void **state)
{
    (void)state;
    cs_test_run_ok(bad_await_main, NULL);
}

/* ---- gather ------------------------------------------------------------- */

struct job {
    int64_t delay_ns; /* sleeps this long first */
    int raise_code;   /* then raises this if non-zero */
    uintptr_t value;  /* or returns this */
    int finished;     /* set just before returning */
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    if (j->delay_ns > 0)
        CS_CHECK_RC(cs_sleep(j->delay_ns), 0);
    if (j->raise_code != 0)
        cs_raise(j->raise_code, "job %d failed", j->raise_code);
    j->finished = 1;
    cs_test_log_add(&trace, "%u", (unsigned)j->value);
    return CS_P(j->value);
}

static void *gather_values_main(void *arg)
{
    (void)arg;
    /* Finish in reverse argument order; results keep argument order. */
    struct job jobs[3] = {{CS_MSEC(30), 0, 10, 0},
                          {CS_MSEC(15), 0, 11, 0},
                          {0, 0, 12, 0}};
    cs_task *t[3];
    void *res[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        t[i] = cs_spawn("job", run_job, &jobs[i]);
    CS_CHECK_RC(cs_gather(t, 3, res), 0);
    for (int i = 0; i < 3; i++)
        CS_CHECK_PTR_EQ(res[i], CS_P(10 + i));
    CS_CHECK(cs_last_error() == NULL);
    CS_CHECK_RC(cs_gather(NULL, 0, NULL), 0);
    return NULL;
}

static void test_task_gather_results_in_argument_order(void **state)
{
    (void)state;
    cs_test_run_ok(gather_values_main, NULL);
    assert_string_equal(trace.buf, "12 11 10");
}

static void *gather_error_main(void *arg)
{
    (void)arg;
    /* jobs[2] fails first in time, jobs[1] first in argument order, and
     * jobs[0] and jobs[3] are still running when both have failed. */
    struct job jobs[4] = {{CS_MSEC(40), 0, 20, 0},
                          {CS_MSEC(10), CS_EBUSY, 21, 0},
                          {0, CS_EACCES, 22, 0},
                          {CS_MSEC(30), 0, 23, 0}};
    cs_task *t[4];
    void *res[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++)
        t[i] = cs_spawn("job", run_job, &jobs[i]);
    int rc = cs_gather(t, 4, res);
    CS_CHECK_RC(rc, CS_EBUSY);
    const char *msg = cs_last_error();
    char want[64];
    snprintf(want, sizeof(want), "job %d failed", CS_EBUSY);
    CS_CHECK(msg != NULL && strcmp(msg, want) == 0);
    /* Every task was awaited, including those that outlived the errors. */
    CS_CHECK(jobs[0].finished && jobs[3].finished);
    CS_CHECK(!jobs[1].finished && !jobs[2].finished);
    CS_CHECK_PTR_EQ(res[0], CS_P(20));
    CS_CHECK_PTR_EQ(res[3], CS_P(23));
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    return NULL;
}

static void test_task_gather_first_error_awaits_all(void **state)
{
    (void)state;
    cs_test_run_ok(gather_error_main, NULL);
    assert_string_equal(trace.buf, "23 20");
}

/* ---- wait_for ----------------------------------------------------------- */

struct slow {
    int sleep_rc; /* what the inner cs_sleep returned */
    int finished; /* the inner task ran to its end */
};

static void *slow_inner(void *arg)
{
    struct slow *s = arg;
    s->sleep_rc = cs_sleep(CS_SEC(3600));
    cs_yield(); /* cleanup that itself suspends */
    s->finished = 1;
    if (s->sleep_rc != 0)
        cs_raise(s->sleep_rc, "inner gave up");
    return CS_P(1);
}

static void *wait_for_timeout_main(void *arg)
{
    (void)arg;
    struct slow s = {1, 0};
    cs_task *t = cs_spawn("slow", slow_inner, &s);
    void *r = CS_P(0x99);
    int64_t t0 = cs_now_ns();
    int rc = cs_wait_for(t, CS_MSEC(20), &r);
    int64_t took = cs_now_ns() - t0;
    CS_CHECK_RC(rc, CS_ETIMEDOUT);
    CS_CHECK(took >= CS_MSEC(20));
    CS_CHECK_RC(s.sleep_rc, CS_ECANCELLED);
    CS_CHECK(s.finished); /* wait_for waited for the inner task's end */
    CS_CHECK(cs_last_error() != NULL);
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    return NULL;
}

static void test_task_wait_for_timeout_cancels_and_waits(void **state)
{
    (void)state;
    cs_test_run_ok(wait_for_timeout_main, NULL);
}

static void *wait_for_success_main(void *arg)
{
    (void)arg;
    struct job quick = {CS_MSEC(1), 0, 42, 0};
    void *r = NULL;
    CS_CHECK_RC(cs_wait_for(cs_spawn("quick", run_job, &quick), CS_SEC(30),
                            &r),
                0);
    CS_CHECK_PTR_EQ(r, CS_P(42));
    CS_CHECK(cs_last_error() == NULL);

    /* An error raised before the deadline is returned as such. */
    struct job bad = {0, CS_EACCES, 43, 0};
    CS_CHECK_RC(cs_wait_for(cs_spawn("bad", run_job, &bad), CS_SEC(30), &r),
                CS_EACCES);
    CS_CHECK(cs_last_error() != NULL);
    return NULL;
}

static void test_task_wait_for_success(void **state)
{
    (void)state;
    cs_test_run_ok(wait_for_success_main, NULL);
}

static void *wait_for_zero_main(void *arg)
{
    (void)arg;
    /* A zero timeout still collects a task that has already finished... */
    cs_task *t = cs_spawn("done", return_arg, CS_P(8));
    while (!cs_task_done(t))
        cs_yield();
    void *r = NULL;
    CS_CHECK_RC(cs_wait_for(t, 0, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(8));
    /* ...and times out at once on one that has not, after ending it
     * (here before its first step, so its body may never run). */
    struct slow s = {1, 0};
    CS_CHECK_RC(cs_wait_for(cs_spawn("slow", slow_inner, &s), 0, &r),
                CS_ETIMEDOUT);
    CS_CHECK(s.finished || s.sleep_rc == 1);
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    /* The same once it is parked in its sleep. */
    cs_task *t2 = cs_spawn("slow", slow_inner, &s);
    cs_yield();
    CS_CHECK_RC(cs_wait_for(t2, 0, &r), CS_ETIMEDOUT);
    CS_CHECK_RC(s.sleep_rc, CS_ECANCELLED);
    CS_CHECK(s.finished);
    return NULL;
}

static void test_task_wait_for_zero_timeout(void **state)
{
    (void)state;
    cs_test_run_ok(wait_for_zero_main, NULL);
}

/* ---- detach ------------------------------------------------------------- */

struct detached {
    cs_event *done;
    int ran;
};

static void *detached_body(void *arg)
{
    struct detached *d = arg;
    CS_CHECK_RC(cs_sleep(CS_MSEC(1)), 0);
    d->ran = 1;
    cs_event_set(d->done);
    return NULL;
}

static void *detach_main(void *arg)
{
    (void)arg;
    struct detached d = {cs_event_new(), 0};
    cs_detach(cs_spawn("detached", detached_body, &d));
    CS_CHECK_RC(cs_event_wait(d.done), 0);
    CS_CHECK(d.ran);
    /* Detaching a task that already ended releases it at once. */
    cs_task *t = cs_spawn("ended", return_arg, NULL);
    while (!cs_task_done(t))
        cs_yield();
    cs_detach(t);
    /* The detached task frees itself once it ends. */
    while (cs_all_tasks(NULL, 0) > 1)
        cs_yield();
    cs_event_free(d.done);
    return NULL;
}

static void test_task_detach_runs_to_completion(void **state)
{
    (void)state;
    cs_test_run_ok(detach_main, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_task_start_order_is_fifo, setup),
    cmocka_unit_test_setup(test_task_yield_alternates_two_tasks, setup),
    cmocka_unit_test_setup(test_task_yield_round_robins_three_tasks, setup),
    cmocka_unit_test_setup(test_task_yield_round_robin_holds_over_many_rounds,
                           setup),
    cmocka_unit_test_setup(test_task_yield_runs_every_ready_task, setup),
    cmocka_unit_test_setup(test_task_names_and_ids, setup),
    cmocka_unit_test_setup(test_task_long_names_are_kept, setup),
    cmocka_unit_test_setup(test_task_await_returns_value, setup),
    cmocka_unit_test_setup(test_task_bad_awaits_are_refused, setup),
    cmocka_unit_test_setup(test_task_gather_results_in_argument_order, setup),
    cmocka_unit_test_setup(test_task_gather_first_error_awaits_all, setup),
    cmocka_unit_test_setup(test_task_wait_for_timeout_cancels_and_waits,
                           setup),
    cmocka_unit_test_setup(test_task_wait_for_success, setup),
    cmocka_unit_test_setup(test_task_wait_for_zero_timeout, setup),
    cmocka_unit_test_setup(test_task_detach_runs_to_completion, setup),
};

CS_TEST_MAIN("runtime_task", tests)
