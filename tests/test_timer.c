/*
 * test_timer.c - cs_sleep(): waits at least as long as asked, wakes
 * sleepers in deadline order, lets sleepers overlap, treats <= 0 as a
 * plain yield, fires while other tasks keep yielding, survives EINTR, and
 * takes INT64_MAX as "no deadline" without wrapping.
 */
#include "cs_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static cs_test_log trace;

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    cs_test_log_init(&trace);
    return 0;
}

static void *duration_main(void *arg)
{
    (void)arg;
    static const int64_t waits[] = {CS_MSEC(1), CS_MSEC(20), 1, 1000};
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        int64_t t0 = cs_now_ns();
        CS_CHECK_RC(cs_sleep(waits[i]), 0);
        int64_t took = cs_now_ns() - t0;
        if (took < waits[i])
            cs_test_fail_at(__FILE__, __LINE__,
                            "sleep of %lld ns took %lld ns",
                            (long long)waits[i], (long long)took);
    }
    return NULL;
}

static void test_timer_sleep_lasts_at_least_duration(void **state)
{
    (void)state;
    cs_test_run_ok(duration_main, NULL);
}

static void test_timer_now_is_monotonic(void **state)
{
    (void)state;
    int64_t prev = cs_now_ns();
    assert_true(prev > 0);
    for (int i = 0; i < 1000; i++) {
        int64_t now = cs_now_ns();
        assert_true(now >= prev);
        prev = now;
    }
}

static void *sleep_and_log(void *arg)
{
    int ms = (int)CS_I(arg);
    cs_test_log_add(&trace, "s%d", ms);
    CS_CHECK_RC(cs_sleep(CS_MSEC(ms)), 0);
    cs_test_log_add(&trace, "e%d", ms);
    return NULL;
}

static void *deadline_order_main(void *arg)
{
    (void)arg;
    /* Spawned in one order, deadlines 20 ms apart in another. */
    static const int ms[] = {60, 20, 40, 0};
    cs_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = cs_spawn("sleeper", sleep_and_log, CS_P(ms[i]));
    CS_CHECK_RC(cs_gather(t, 4, NULL), 0);
    return NULL;
}

static void test_timer_wakes_in_deadline_order(void **state)
{
    (void)state;
    cs_test_run_ok(deadline_order_main, NULL);
    /* All started before any long sleep ended: the sleeps overlapped. */
    assert_string_equal(trace.buf, "s60 s20 s40 s0 e0 e20 e40 e60");
}

static void *zero_sleeper(void *arg)
{
    for (int i = 0; i < 3; i++) {
        cs_test_log_add(&trace, "%s%d", (const char *)arg, i);
        CS_CHECK_RC(cs_sleep(i % 2 == 0 ? 0 : -5), 0);
    }
    return NULL;
}

static void *yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        cs_test_log_add(&trace, "%s%d", (const char *)arg, i);
        cs_yield();
    }
    return NULL;
}

static void *zero_main(void *arg)
{
    (void)arg;
    cs_task *t[2] = {cs_spawn("A", zero_sleeper, "A"),
                     cs_spawn("B", yielder, "B")};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    return NULL;
}

static void test_timer_zero_sleep_yields(void **state)
{
    (void)state;
    cs_test_run_ok(zero_main, NULL);
    assert_string_equal(trace.buf, "A0 B0 A1 B1 A2 B2");
}

enum { MANY = 1000 };
static int woken[MANY]; /* times each sleeper woke */

static void *sleep_us(void *arg)
{
    uintptr_t i = CS_I(arg);
    CS_CHECK_RC(cs_sleep((int64_t)(MANY - i) * 1000), 0);
    woken[i]++;
    return NULL;
}

static void *sleeping_many(void *arg)
{
    (void)arg;
    /* 1000 tasks sleeping 1000..1 us all wake, each once. */
    cs_task *t[MANY];
    for (uintptr_t i = 0; i < MANY; i++)
        t[i] = cs_spawn("s", sleep_us, CS_P(i));
    CS_CHECK_RC(cs_gather(t, MANY, NULL), 0);
    for (int i = 0; i < MANY; i++)
        CS_CHECK_INT_EQ(woken[i], 1);
    return NULL;
}

static void test_timer_many_sleepers_all_wake(void **state)
{
    (void)state;
    cs_test_run_ok(sleeping_many, NULL);
}

/* ---- no starvation ------------------------------------------------------ */

struct spin {
    int stop;   /* set by the task the spinner must not starve */
    long spins; /* yields the spinner made meanwhile */
};

static void *spinner(void *arg)
{
    struct spin *s = arg;
    while (!s->stop) {
        cs_yield();
        s->spins++;
    }
    return NULL;
}

static void *timed_stopper(void *arg)
{
    struct spin *s = arg;
    CS_CHECK_RC(cs_sleep(CS_MSEC(2)), 0);
    s->stop = 1;
    return NULL;
}

static void *starve_main(void *arg)
{
    (void)arg;
    /* A task that only yields never lets the ready queue empty; timers
     * must still fire. */
    struct spin s = {0, 0};
    cs_task *t[2] = {cs_spawn("spinner", spinner, &s),
                     cs_spawn("stopper", timed_stopper, &s)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    CS_CHECK(s.spins > 0);
    return NULL;
}

static void test_timer_fires_while_tasks_keep_yielding(void **state)
{
    (void)state;
    cs_test_run_ok(starve_main, NULL);
}

/* ---- signals ------------------------------------------------------------ */

static void on_usr1(int sig)
{
    (void)sig;
}

struct pester {
    pthread_t target;
    atomic_int stop;
};

static void *pester_thread(void *arg)
{
    struct pester *p = arg;
    while (!atomic_load(&p->stop)) {
        pthread_kill(p->target, SIGUSR1);
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *signalled_main(void *arg)
{
    struct pester *p = arg;
    /* Interrupted polls (EINTR) neither end a sleep early nor fail it. */
    int64_t t0 = cs_now_ns();
    CS_CHECK_RC(cs_sleep(CS_MSEC(30)), 0);
    CS_CHECK(cs_now_ns() - t0 >= CS_MSEC(30));
    t0 = cs_now_ns();
    int fds[2];
    CS_CHECK_INT_EQ(pipe(fds), 0);
    CS_CHECK_RC(cs_wait_fd(fds[0], CS_READABLE, CS_MSEC(30)), CS_ETIMEDOUT);
    CS_CHECK(cs_now_ns() - t0 >= CS_MSEC(30));
    cs_forget_fd(fds[0]);
    close(fds[0]);
    close(fds[1]);
    atomic_store(&p->stop, 1);
    return NULL;
}

static void test_timer_sleep_survives_signals(void **state)
{
    (void)state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1; /* no SA_RESTART: epoll_wait sees EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    struct pester p = {pthread_self(), 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pester_thread, &p), 0);
    int rc = cs_run(signalled_main, &p, NULL);
    atomic_store(&p.stop, 1);
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    cs_test_assert_clean();
    assert_rc(rc, 0);
}

/* ---- far deadlines ----------------------------------------------------- */

static void *quick(void *arg)
{
    CS_CHECK_RC(cs_sleep(CS_MSEC(5)), 0);
    return arg;
}

static void *sleep_forever(void *arg)
{
    int *rc = arg;
    *rc = cs_sleep(INT64_MAX);
    return NULL;
}

static void *far_deadline_main(void *arg)
{
    (void)arg;
    /* INT64_MAX is the natural "no deadline": now + INT64_MAX must not
     * wrap into the past. */
    void *r = NULL;
    CS_CHECK_RC(cs_wait_for(cs_spawn("quick", quick, CS_P(3)), INT64_MAX, &r),
                0);
    CS_CHECK_PTR_EQ(r, CS_P(3));
    int rc = 1;
    cs_task *t = cs_spawn("forever", sleep_forever, &rc);
    CS_CHECK_RC(cs_sleep(CS_MSEC(5)), 0);
    CS_CHECK(!cs_task_done(t)); /* still asleep */
    cs_cancel(t);
    CS_CHECK_RC(cs_await(t, NULL), CS_ECANCELLED);
    CS_CHECK_RC(rc, CS_ECANCELLED);
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    CS_CHECK_INT_EQ(write(p[1], "x", 1), 1);
    CS_CHECK_INT_EQ(cs_wait_fd(p[0], CS_READABLE, INT64_MAX), CS_READABLE);
    cs_forget_fd(p[0]);
    close(p[0]);
    close(p[1]);
    return NULL;
}

/* Last in the table: under UBSan the overflow aborts the binary. */
static void test_timer_far_deadline_does_not_wrap(void **state)
{
    (void)state;
    cs_test_run_ok(far_deadline_main, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_timer_sleep_lasts_at_least_duration, setup),
    cmocka_unit_test_setup(test_timer_now_is_monotonic, setup),
    cmocka_unit_test_setup(test_timer_wakes_in_deadline_order, setup),
    cmocka_unit_test_setup(test_timer_zero_sleep_yields, setup),
    cmocka_unit_test_setup(test_timer_many_sleepers_all_wake, setup),
    cmocka_unit_test_setup(test_timer_fires_while_tasks_keep_yielding, setup),
    cmocka_unit_test_setup(test_timer_sleep_survives_signals, setup),
    cmocka_unit_test_setup(test_timer_far_deadline_does_not_wrap, setup),
};

CS_TEST_MAIN("runtime_timer", tests)
