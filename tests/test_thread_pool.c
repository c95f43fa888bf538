/*
 * test_thread_pool.c - cs_to_thread(): runs on another thread, keeps the
 * loop running while the worker blocks, returns results, and drops the
 * result of a cancelled call after the worker finishes.
 */
#include "cs_test.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

static void run_main(cs_fn fn, void *arg)
{
    int rc = cs_run(fn, arg, NULL);
    cs_test_assert_clean();
    assert_rc(rc, 0);
}

/* Waits on s for at most 10 s, so that a broken runtime fails the test
 * instead of hanging it; returns 0 if posted. */
static int sem_wait_10s(sem_t *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    int rc;
    while ((rc = sem_timedwait(s, &ts)) != 0 && errno == EINTR)
        ;
    return rc;
}

/* ---- runs elsewhere, returns the value ---------------------------------- */

static void *record_thread(void *arg)
{
    pthread_t *out = arg;
    *out = pthread_self();
    return CS_P(0x7E);
}

static void *square(void *arg)
{
    return CS_P(CS_I(arg) * CS_I(arg));
}

static void *other_thread_main(void *arg)
{
    (void)arg;
    pthread_t loop_thread = pthread_self();
    pthread_t worker;
    memset(&worker, 0, sizeof(worker));
    void *r = NULL;
    CS_CHECK_RC(cs_to_thread(record_thread, &worker, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(0x7E));
    CS_CHECK(!pthread_equal(worker, loop_thread));
    CS_CHECK(pthread_equal(pthread_self(), loop_thread));
    CS_CHECK_RC(cs_to_thread(square, CS_P(12), NULL), 0); /* NULL result */
    for (uintptr_t i = 0; i < 50; i++) {
        CS_CHECK_RC(cs_to_thread(square, CS_P(i), &r), 0);
        CS_CHECK_INT_EQ(CS_I(r), i * i);
    }
    return NULL;
}

static void test_thread_pool_runs_on_another_thread(void **state)
{
    (void)state;
    run_main(other_thread_main, NULL);
}

/* ---- the loop keeps running --------------------------------------------- */

struct blocked {
    sem_t release;        /* posted by a task on the loop */
    cs_event *in_flight;  /* set by the caller just before cs_to_thread */
    int other_ran;        /* the other task ran during the call */
    int call_returned;    /* cs_to_thread has returned */
};

static void *block_until_released(void *arg)
{
    struct blocked *b = arg;
    /* Only a task running on the loop can post this. */
    return CS_P(sem_wait_10s(&b->release) == 0 ? 1 : 0);
}

static void *caller(void *arg)
{
    struct blocked *b = arg;
    cs_event_set(b->in_flight);
    void *r = NULL;
    CS_CHECK_RC(cs_to_thread(block_until_released, b, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(1)); /* released, not timed out */
    b->call_returned = 1;
    return NULL;
}

static void *releaser(void *arg)
{
    struct blocked *b = arg;
    CS_CHECK_RC(cs_event_wait(b->in_flight), 0);
    cs_yield();
    CS_CHECK(!b->call_returned);
    b->other_ran = 1;
    sem_post(&b->release);
    return NULL;
}

static void *loop_keeps_running_main(void *arg)
{
    struct blocked *b = arg;
    cs_task *t[2] = {cs_spawn("caller", caller, b),
                     cs_spawn("releaser", releaser, b)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    CS_CHECK(b->other_ran && b->call_returned);
    return NULL;
}

static void test_thread_pool_loop_runs_while_worker_blocks(void **state)
{
    (void)state;
    struct blocked b;
    memset(&b, 0, sizeof(b));
    assert_int_equal(sem_init(&b.release, 0, 0), 0);
    b.in_flight = cs_event_new();
    assert_non_null(b.in_flight);
    run_main(loop_keeps_running_main, &b);
    cs_event_free(b.in_flight);
    sem_destroy(&b.release);
}

/* ---- many concurrent calls ---------------------------------------------- */

static void *to_thread_task(void *arg)
{
    uintptr_t base = CS_I(arg);
    uintptr_t sum = 0;
    for (uintptr_t i = 0; i < 20; i++) {
        void *r = NULL;
        CS_CHECK_RC(cs_to_thread(square, CS_P(base + i), &r), 0);
        sum += CS_I(r);
    }
    return CS_P(sum);
}

static void *concurrent_main(void *arg)
{
    (void)arg;
    enum { N = 16 };
    cs_task *t[N];
    void *res[N];
    for (uintptr_t i = 0; i < N; i++)
        t[i] = cs_spawn("to_thread", to_thread_task, CS_P(i * 100));
    CS_CHECK_RC(cs_gather(t, N, res), 0);
    for (uintptr_t i = 0; i < N; i++) {
        uintptr_t want = 0;
        for (uintptr_t k = 0; k < 20; k++)
            want += (i * 100 + k) * (i * 100 + k);
        CS_CHECK_INT_EQ(CS_I(res[i]), want);
    }
    return NULL;
}

static void test_thread_pool_concurrent_calls(void **state)
{
    (void)state;
    run_main(concurrent_main, NULL);
}

/* ---- cancellation ------------------------------------------------------- */

/* The worker reports through a pipe, which the loop can wait on without
 * needing a second pool thread. */
struct cancelled_call {
    int notify[2];      /* worker -> loop: 's' started, 'f' finished */
    sem_t release;      /* lets fn return */
    atomic_int fn_done;
    int call_rc;
};

static struct cancelled_call cc;

static void *slow_fn(void *arg)
{
    (void)arg;
    ssize_t n = write(cc.notify[1], "s", 1);
    (void)n;
    sem_wait_10s(&cc.release);
    cc.fn_done = 1;
    n = write(cc.notify[1], "f", 1);
    return CS_P(5);
}

static void *cancelled_caller(void *arg)
{
    (void)arg;
    void *r = CS_P(0xAA);
    cc.call_rc = cs_to_thread(slow_fn, NULL, &r);
    if (cc.call_rc < 0)
        cs_raise(cc.call_rc, "to_thread cancelled");
    return r;
}

static void *cancel_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_spawn("caller", cancelled_caller, NULL);
    char c = 0;
    CS_CHECK_INT_EQ(cs_read(cc.notify[0], &c, 1), 1);
    CS_CHECK_INT_EQ(c, 's');
    CS_CHECK_RC(cs_cancel(t), 0);
    CS_CHECK_RC(cs_await(t, NULL), CS_ECANCELLED);
    CS_CHECK_RC(cc.call_rc, CS_ECANCELLED);
    CS_CHECK(!cc.fn_done); /* cancelled while fn still ran */
    /* The worker still finishes fn; its result is dropped. */
    sem_post(&cc.release);
    CS_CHECK_INT_EQ(cs_read(cc.notify[0], &c, 1), 1);
    CS_CHECK_INT_EQ(c, 'f');
    CS_CHECK(cc.fn_done);
    cs_forget_fd(cc.notify[0]);
    return NULL;
}

static void test_thread_pool_cancel_drops_result(void **state)
{
    (void)state;
    memset(&cc, 0, sizeof(cc));
    cc.call_rc = 1;
    assert_int_equal(pipe(cc.notify), 0);
    assert_int_equal(sem_init(&cc.release, 0, 0), 0);
    run_main(cancel_main, NULL);
    close(cc.notify[0]);
    close(cc.notify[1]);
    sem_destroy(&cc.release);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_thread_pool_runs_on_another_thread, setup),
    cmocka_unit_test_setup(test_thread_pool_loop_runs_while_worker_blocks,
                           setup),
    cmocka_unit_test_setup(test_thread_pool_concurrent_calls, setup),
    cmocka_unit_test_setup(test_thread_pool_cancel_drops_result, setup),
};

CS_TEST_MAIN("runtime_thread_pool", tests)
