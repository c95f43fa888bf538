/*
 * test_thread_pool.c - cs_to_thread(): runs on another thread, keeps the
 * loop running while the worker blocks, returns results, drops the result
 * of a cancelled call after the worker finishes, runs jobs concurrently,
 * serves several loops, and never signals a loop after cs_run returned
 * (checked by holding a worker through an interposed write()).
 */
#include "cs_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
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

/* ---- fault injection: holding a worker before it wakes the loop --------- */

/*
 * This definition of write() preempts libc's for libcoscope as well, so a
 * test can hold a pool worker just before it signals the loop that a job
 * is done (the runtime's only 8-byte write from a worker thread).
 */
static struct {
    atomic_int armed;      /* hold the next 8-byte write from a worker */
    pthread_t loop_thread; /* never held */
    sem_t held;            /* the worker is being held */
    sem_t release;         /* lets it go (it gives up after 1 s) */
    sem_t written;         /* its write() has returned */
    ssize_t rc;            /* what that write() returned */
    int err;               /* and errno */
} hold;

ssize_t write(int fd, const void *buf, size_t n)
{
    if (n == sizeof(uint64_t) && atomic_load(&hold.armed) &&
        !pthread_equal(pthread_self(), hold.loop_thread) &&
        atomic_exchange(&hold.armed, 0)) {
        sem_post(&hold.held);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (sem_timedwait(&hold.release, &ts) != 0 && errno == EINTR)
            ;
        hold.rc = syscall(SYS_write, fd, buf, n);
        hold.err = errno;
        sem_post(&hold.written);
        return hold.rc;
    }
    return syscall(SYS_write, fd, buf, n);
}

static void *job_done_at_once(void *arg)
{
    (void)arg;
    return CS_P(1);
}

static void *job_after_first_is_held(void *arg)
{
    (void)arg;
    return CS_P(sem_wait_10s(&hold.held) == 0 ? 1 : 2);
}

static void *to_thread_job(void *arg)
{
    void *r = NULL;
    CS_CHECK_RC(cs_to_thread((cs_fn)arg, NULL, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(1));
    return NULL;
}

static void *two_jobs_main(void *arg)
{
    (void)arg;
    cs_task *t[2] = {cs_spawn("first", to_thread_job,
                              (void *)job_done_at_once),
                     cs_spawn("second", to_thread_job,
                              (void *)job_after_first_is_held)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    return NULL;
}

/*
 * The first job's worker is held just before it signals the loop; the
 * second job's completion wakes the loop, which collects both.  cs_run may
 * return then, but the held worker must not signal a loop that is gone:
 * its eventfd is closed and its number reused (here by a pipe).  Must run
 * first in this binary, while the pool has no idle worker (see
 * test_thread_pool_runs_jobs_concurrently).
 */
static void test_thread_pool_no_wakeup_after_run_returns(void **state)
{
    (void)state;
    memset(&hold, 0, sizeof(hold));
    assert_int_equal(sem_init(&hold.held, 0, 0), 0);
    assert_int_equal(sem_init(&hold.release, 0, 0), 0);
    assert_int_equal(sem_init(&hold.written, 0, 0), 0);
    hold.loop_thread = pthread_self();
    atomic_store(&hold.armed, 1);
    int rc = cs_run(two_jobs_main, NULL, NULL);
    int p[2];
    assert_int_equal(pipe(p), 0); /* takes the lowest free fd numbers */
    sem_post(&hold.release);
    assert_int_equal(sem_wait_10s(&hold.written), 0);
    char buf[16];
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    ssize_t stray = read(p[0], buf, sizeof(buf));
    close(p[0]);
    close(p[1]);
    sem_destroy(&hold.held);
    sem_destroy(&hold.release);
    sem_destroy(&hold.written);
    cs_test_assert_clean();
    assert_rc(rc, 0);
    if (stray > 0)
        fail_msg("%zd bytes that nobody wrote arrived in a pipe opened "
                 "after cs_run returned (the worker signalled a closed, "
                 "reused eventfd number)",
                 stray);
    if (hold.rc != (ssize_t)sizeof(uint64_t))
        fail_msg("the worker's wake-up write returned %zd (%s) after "
                 "cs_run returned",
                 hold.rc, strerror(hold.err));
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
    cs_test_run_ok(other_thread_main, NULL);
}

/* ---- the loop keeps running --------------------------------------------- */

struct blocked {
    sem_t release;       /* posted by a task on the loop */
    cs_event *in_flight; /* set by the caller just before cs_to_thread */
    int other_ran;       /* the other task ran during the call */
    int call_returned;   /* cs_to_thread has returned */
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
    cs_test_run_ok(loop_keeps_running_main, &b);
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
    cs_test_run_ok(concurrent_main, NULL);
}

/* ---- cancellation ------------------------------------------------------- */

/* The worker reports through a pipe, which the loop can wait on without
 * needing a second pool thread. */
struct cancelled_call {
    int notify[2]; /* worker -> loop: 's' started, 'f' finished */
    sem_t release; /* lets fn return */
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
    cs_test_run_ok(cancel_main, NULL);
    close(cc.notify[0]);
    close(cc.notify[1]);
    sem_destroy(&cc.release);
}

/* ---- pool growth -------------------------------------------------------- */

/*
 * n jobs that each wait until all n have started: correct only if the pool
 * runs them at once, which it must while n is below its thread limit
 * (min(32, cpus + 4), like asyncio's executor; n <= 5 here).  Rounds of
 * growing n catch a pool that counts a just-signalled idle worker as still
 * idle and so neither starts a thread nor wakes one for the next job.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived; /* jobs of this round that have started */
    int n;       /* jobs in this round */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void *meet_all(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    int ok = 1, seen;
    pthread_mutex_lock(&gate.mu);
    if (++gate.arrived == gate.n)
        pthread_cond_broadcast(&gate.cv);
    while (gate.arrived < gate.n && ok)
        ok = pthread_cond_timedwait(&gate.cv, &gate.mu, &ts) != ETIMEDOUT;
    seen = gate.arrived;
    pthread_mutex_unlock(&gate.mu);
    return CS_P(ok ? 1 : 100 + seen); /* timed out: how many had started */
}

static void *run_meet_all(void *arg)
{
    (void)arg;
    void *r = NULL;
    CS_CHECK_RC(cs_to_thread(meet_all, NULL, &r), 0);
    return r;
}

static void *growth_main(void *arg)
{
    (void)arg;
    /* Leave an idle worker behind first. */
    CS_CHECK_RC(cs_to_thread(square, CS_P(2), NULL), 0);
    for (int rep = 0; rep < 3; rep++) {
        for (int n = 2; n <= 5; n++) {
            cs_task *t[5];
            void *res[5];
            gate.arrived = 0;
            gate.n = n;
            for (int i = 0; i < n; i++)
                t[i] = cs_spawn("meet_all", run_meet_all, NULL);
            CS_CHECK_RC(cs_gather(t, (size_t)n, res), 0);
            for (int i = 0; i < n; i++)
                if (res[i] != CS_P(1)) {
                    cs_test_fail_at(__FILE__, __LINE__,
                                    "only %d of %d jobs had started after "
                                    "5 s; the rest sat in the queue (rep %d)",
                                    (int)CS_I(res[i]) - 100, n, rep);
                    return NULL;
                }
        }
    }
    return NULL;
}

static void test_thread_pool_runs_jobs_concurrently(void **state)
{
    (void)state;
    cs_test_run_ok(growth_main, NULL);
}

/* ---- jobs left behind at the end of cs_run ------------------------------ */

static atomic_int left_behind_done;

static void *blocking_work(void *arg)
{
    (void)arg;
    usleep(20000); /* stands for a blocking call */
    atomic_store(&left_behind_done, 1);
    return NULL;
}

static void *left_behind_task(void *arg)
{
    int *rc = arg;
    *rc = cs_to_thread(blocking_work, NULL, NULL);
    return NULL;
}

static void *leave_job_main(void *arg)
{
    cs_detach(cs_spawn("left_behind", left_behind_task, arg));
    cs_yield(); /* the job is submitted; main ends while it runs */
    return NULL;
}

/* cs_run cancels the waiting task but returns only once the worker is done
 * with the job, which refers to the loop. */
static void test_thread_pool_run_waits_for_jobs_left_behind(void **state)
{
    (void)state;
    int rc = 1;
    atomic_store(&left_behind_done, 0);
    cs_test_run_ok(leave_job_main, &rc);
    assert_rc(rc, CS_ECANCELLED);
    assert_int_equal(atomic_load(&left_behind_done), 1);
}

/* ---- one pool, two loops ------------------------------------------------ */

struct pool_loop {
    pthread_t thread;
    uintptr_t base;
    int rc;
};

static void *pool_loop_main(void *arg)
{
    struct pool_loop *pl = arg;
    cs_task *t[4];
    void *res[4];
    for (uintptr_t i = 0; i < 4; i++)
        t[i] = cs_spawn("to_thread", to_thread_task, CS_P(pl->base + i * 100));
    CS_CHECK_RC(cs_gather(t, 4, res), 0);
    for (uintptr_t i = 0; i < 4; i++) {
        uintptr_t b = pl->base + i * 100, want = 0;
        for (uintptr_t k = 0; k < 20; k++)
            want += (b + k) * (b + k);
        CS_CHECK_INT_EQ(CS_I(res[i]), want);
    }
    return NULL;
}

static void *pool_loop_thread(void *arg)
{
    struct pool_loop *pl = arg;
    pl->rc = cs_run(pool_loop_main, pl, NULL);
    return NULL;
}

/* Completions go back to the loop that submitted each job. */
static void test_thread_pool_shared_by_two_loops(void **state)
{
    (void)state;
    struct pool_loop pl[2] = {{.base = 1000, .rc = 1},
                              {.base = 5000, .rc = 1}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&pl[i].thread, NULL, pool_loop_thread,
                                        &pl[i]),
                         0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(pl[i].thread, NULL), 0);
    cs_test_assert_clean();
    assert_rc(pl[0].rc, 0);
    assert_rc(pl[1].rc, 0);
}

/* ---- a loop inside a worker -------------------------------------------- */

static void *inner_loop_main(void *arg)
{
    uintptr_t n = CS_I(arg);
    cs_task *t[3];
    void *res[3];
    for (uintptr_t i = 0; i < 3; i++)
        t[i] = cs_spawn("inner", to_thread_task, CS_P(n + i));
    CS_CHECK_RC(cs_gather(t, 3, res), 0);
    uintptr_t sum = 0;
    for (int i = 0; i < 3; i++)
        sum += CS_I(res[i]);
    return CS_P(sum);
}

/* fn of cs_to_thread: runs a whole loop on the worker thread. */
static void *run_loop_in_worker(void *arg)
{
    void *r = NULL;
    int rc = cs_run(inner_loop_main, arg, &r);
    return rc == 0 ? r : NULL;
}

static void *worker_loop_main(void *arg)
{
    (void)arg;
    /* One loop per thread: a worker has none, so it may run one, and
     * that loop may use the pool too. */
    void *r = NULL;
    CS_CHECK_RC(cs_to_thread(run_loop_in_worker, CS_P(7), &r), 0);
    uintptr_t want = 0;
    for (uintptr_t i = 0; i < 3; i++)
        for (uintptr_t k = 0; k < 20; k++)
            want += (7 + i + k) * (7 + i + k);
    CS_CHECK_INT_EQ(CS_I(r), want);
    return NULL;
}

static void test_thread_pool_worker_can_run_a_loop(void **state)
{
    (void)state;
    cs_test_run_ok(worker_loop_main, NULL);
}

static const struct CMUnitTest tests[] = {
    /* first: needs a pool with no idle worker */
    cmocka_unit_test_setup(test_thread_pool_no_wakeup_after_run_returns,
                           setup),
    cmocka_unit_test_setup(test_thread_pool_runs_on_another_thread, setup),
    cmocka_unit_test_setup(test_thread_pool_loop_runs_while_worker_blocks,
                           setup),
    cmocka_unit_test_setup(test_thread_pool_concurrent_calls, setup),
    cmocka_unit_test_setup(test_thread_pool_cancel_drops_result, setup),
    cmocka_unit_test_setup(test_thread_pool_run_waits_for_jobs_left_behind,
                           setup),
    cmocka_unit_test_setup(test_thread_pool_shared_by_two_loops, setup),
    cmocka_unit_test_setup(test_thread_pool_worker_can_run_a_loop, setup),
    cmocka_unit_test_setup(test_thread_pool_runs_jobs_concurrently, setup),
};

CS_TEST_MAIN("runtime_thread_pool", tests)
