/*
 * test_sync.c - locks (FIFO fairness, CS_EDEADLK, try_acquire), events
 * (wake all waiters, clear), semaphores (limit concurrency) and bounded
 * queues (FIFO order, backpressure with the exact asyncio interleaving).
 */
#include "cs_test.h"

#include <string.h>

static cs_trace trace;

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    cs_trace_init(&trace);
    return 0;
}

static void run_main(cs_fn fn, void *arg)
{
    int rc = cs_run(fn, arg, NULL);
    cs_test_assert_clean();
    assert_rc(rc, 0);
}

/* ---- lock --------------------------------------------------------------- */

static void *lock_basics_main(void *arg)
{
    (void)arg;
    cs_lock *l = cs_lock_new();
    CS_CHECK(l != NULL);
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    CS_CHECK_RC(cs_lock_acquire(l), CS_EDEADLK); /* not reentrant */
    cs_lock_release(l);
    CS_CHECK_RC(cs_lock_try_acquire(l), 0);
    CS_CHECK_RC(cs_lock_acquire(l), CS_EDEADLK);
    cs_lock_release(l);
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    cs_lock_release(l);
    cs_lock_free(l);
    return NULL;
}

static void test_sync_lock_deadlock_on_reacquire(void **state)
{
    (void)state;
    run_main(lock_basics_main, NULL);
}

static void *holder_of(void *arg)
{
    cs_lock *l = arg;
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    cs_yield();
    cs_lock_release(l);
    return NULL;
}

static void *try_acquire_main(void *arg)
{
    (void)arg;
    cs_lock *l = cs_lock_new();
    cs_task *t = cs_spawn("holder", holder_of, l);
    cs_yield();
    /* Held by another task. */
    CS_CHECK_RC(cs_lock_try_acquire(l), CS_EBUSY);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    /* Held by the caller: the header promises CS_EBUSY "if held". */
    CS_CHECK_RC(cs_lock_try_acquire(l), 0);
    CS_CHECK_RC(cs_lock_try_acquire(l), CS_EBUSY);
    cs_lock_release(l);
    cs_lock_free(l);
    return NULL;
}

static void test_sync_lock_try_acquire_busy_when_held(void **state)
{
    (void)state;
    run_main(try_acquire_main, NULL);
}

struct locker {
    cs_lock *l;
    int id;
    int *inside; /* tasks inside the critical section */
};

static void *lock_waiter(void *arg)
{
    struct locker *w = arg;
    cs_trace_add(&trace, "w%d", w->id);
    CS_CHECK_RC(cs_lock_acquire(w->l), 0);
    CS_CHECK_INT_EQ(++*w->inside, 1);
    cs_trace_add(&trace, "L%d", w->id);
    cs_yield(); /* others run while we hold it, and must stay out */
    CS_CHECK_INT_EQ(--*w->inside, 0);
    cs_lock_release(w->l);
    return NULL;
}

static void *lock_fifo_main(void *arg)
{
    (void)arg;
    enum { N = 5 };
    int inside = 0;
    cs_lock *l = cs_lock_new();
    struct locker w[N];
    cs_task *t[N];
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    /* Spawned in order 0..4 but queued on the lock in order 3 1 4 0 2. */
    static const int queue_order[N] = {3, 1, 4, 0, 2};
    for (int i = 0; i < N; i++) {
        int k = queue_order[i];
        w[k] = (struct locker){l, k, &inside};
        t[i] = cs_spawn("locker", lock_waiter, &w[k]);
        cs_yield(); /* let this one reach the lock before the next */
    }
    cs_trace_add(&trace, "release");
    cs_lock_release(l);
    CS_CHECK_RC(cs_gather(t, N, NULL), 0);
    CS_CHECK_RC(cs_lock_try_acquire(l), 0);
    cs_lock_release(l);
    cs_lock_free(l);
    return NULL;
}

static void test_sync_lock_serves_waiters_fifo(void **state)
{
    (void)state;
    run_main(lock_fifo_main, NULL);
    assert_string_equal(trace.buf,
                        "w3 w1 w4 w0 w2 release L3 L1 L4 L0 L2");
}

/* ---- event -------------------------------------------------------------- */

struct waiter {
    cs_event *e;
    int id;
};

static void *event_waiter(void *arg)
{
    struct waiter *w = arg;
    CS_CHECK_RC(cs_event_wait(w->e), 0);
    cs_trace_add(&trace, "woke%d", w->id);
    return NULL;
}

static void *event_all_main(void *arg)
{
    (void)arg;
    enum { N = 4 };
    cs_event *e = cs_event_new();
    CS_CHECK(e != NULL);
    CS_CHECK(!cs_event_is_set(e));
    struct waiter w[N];
    cs_task *t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct waiter){e, i};
        t[i] = cs_spawn("waiter", event_waiter, &w[i]);
    }
    cs_yield();
    cs_yield();
    CS_CHECK_INT_EQ(trace.len, 0); /* all still waiting */
    cs_trace_add(&trace, "set");
    cs_event_set(e);
    CS_CHECK(cs_event_is_set(e));
    CS_CHECK_RC(cs_gather(t, N, NULL), 0);
    /* A set event does not block. */
    CS_CHECK_RC(cs_event_wait(e), 0);
    /* Cleared, it blocks again until set. */
    cs_event_clear(e);
    CS_CHECK(!cs_event_is_set(e));
    w[0].id = 9;
    cs_task *again = cs_spawn("again", event_waiter, &w[0]);
    cs_yield();
    CS_CHECK(!cs_task_done(again));
    cs_trace_add(&trace, "set");
    cs_event_set(e);
    CS_CHECK_RC(cs_await(again, NULL), 0);
    cs_event_free(e);
    return NULL;
}

static void test_sync_event_wakes_all_waiters(void **state)
{
    (void)state;
    run_main(event_all_main, NULL);
    assert_string_equal(trace.buf, "set woke0 woke1 woke2 woke3 set woke9");
}

static void *set_then_clear_main(void *arg)
{
    (void)arg;
    /* set() wakes the current waiters even if clear() follows at once. */
    cs_event *e = cs_event_new();
    struct waiter w = {e, 1};
    cs_task *t = cs_spawn("waiter", event_waiter, &w);
    cs_yield();
    cs_event_set(e);
    cs_event_clear(e);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    cs_event_free(e);
    return NULL;
}

static void test_sync_event_set_then_clear_still_wakes(void **state)
{
    (void)state;
    run_main(set_then_clear_main, NULL);
    assert_string_equal(trace.buf, "woke1");
}

/* ---- semaphore ---------------------------------------------------------- */

struct sem_state {
    cs_semaphore *s;
    int holders;     /* tasks between acquire and release now */
    int max_holders; /* most seen at once */
    int done;        /* tasks that went through */
};

static void *sem_worker(void *arg)
{
    struct sem_state *st = arg;
    CS_CHECK_RC(cs_semaphore_acquire(st->s), 0);
    if (++st->holders > st->max_holders)
        st->max_holders = st->holders;
    for (int i = 0; i < 3; i++)
        cs_yield();
    CS_CHECK_RC(cs_sleep(CS_MSEC(1)), 0);
    st->holders--;
    st->done++;
    cs_semaphore_release(st->s);
    return NULL;
}

static void *sem_main(void *arg)
{
    unsigned value = (unsigned)CS_I(arg);
    enum { N = 20 };
    struct sem_state st = {cs_semaphore_new(value), 0, 0, 0};
    cs_task *t[N];
    for (int i = 0; i < N; i++)
        t[i] = cs_spawn("sem", sem_worker, &st);
    CS_CHECK_RC(cs_gather(t, N, NULL), 0);
    CS_CHECK_INT_EQ(st.max_holders, value);
    CS_CHECK_INT_EQ(st.done, N);
    /* All units are back. */
    for (unsigned i = 0; i < value; i++)
        CS_CHECK_RC(cs_semaphore_acquire(st.s), 0);
    for (unsigned i = 0; i < value; i++)
        cs_semaphore_release(st.s);
    cs_semaphore_free(st.s);
    return NULL;
}

static void test_sync_semaphore_limits_concurrency(void **state)
{
    (void)state;
    run_main(sem_main, CS_P(3));
    run_main(sem_main, CS_P(1));
}

static void *sem_zero_main(void *arg)
{
    (void)arg;
    cs_semaphore *s = cs_semaphore_new(0);
    struct sem_state st = {s, 0, 0, 0};
    cs_task *t = cs_spawn("sem", sem_worker, &st);
    cs_yield();
    CS_CHECK_INT_EQ(st.holders, 0); /* blocked: no unit */
    cs_semaphore_release(s);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    CS_CHECK_INT_EQ(st.done, 1);
    cs_semaphore_free(s);
    return NULL;
}

static void test_sync_semaphore_zero_blocks_until_release(void **state)
{
    (void)state;
    run_main(sem_zero_main, NULL);
}

/* ---- queue -------------------------------------------------------------- */

struct pc {
    cs_queue *q;
    size_t capacity;
    int n;           /* items to move */
    int max_size;    /* largest cs_queue_size() seen */
};

static void *producer(void *arg)
{
    struct pc *pc = arg;
    for (int i = 1; i <= pc->n; i++) {
        CS_CHECK_RC(cs_queue_put(pc->q, CS_P(i)), 0);
        cs_trace_add(&trace, "P%d", i);
        if ((int)cs_queue_size(pc->q) > pc->max_size)
            pc->max_size = (int)cs_queue_size(pc->q);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pc *pc = arg;
    for (int i = 1; i <= pc->n; i++) {
        void *item = NULL;
        CS_CHECK_RC(cs_queue_get(pc->q, &item), 0);
        CS_CHECK_INT_EQ(CS_I(item), i); /* FIFO */
        cs_trace_add(&trace, "C%d", i);
    }
    return NULL;
}

static void *backpressure_main(void *arg)
{
    struct pc *pc = arg;
    pc->q = cs_queue_new(pc->capacity);
    CS_CHECK(pc->q != NULL);
    cs_task *t[2] = {cs_spawn("producer", producer, pc),
                     cs_spawn("consumer", consumer, pc)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    CS_CHECK_INT_EQ(cs_queue_size(pc->q), 0);
    cs_queue_free(pc->q);
    return NULL;
}

static void test_sync_queue_backpressure(void **state)
{
    (void)state;
    struct pc pc = {NULL, 2, 5, 0};
    run_main(backpressure_main, &pc);
    assert_int_equal(pc.max_size, 2);
    /* asyncio.Queue(maxsize=2): the producer fills the queue and blocks on
     * put 3; get 1 wakes it, but it only re-checks when it runs, so the
     * consumer drains 2 and blocks on the empty queue; the woken producer
     * then refills the queue, and so on. */
    assert_string_equal(trace.buf, "P1 P2 C1 C2 P3 P4 C3 C4 P5 C5");
}

static void test_sync_queue_capacity_one_alternates(void **state)
{
    (void)state;
    struct pc pc = {NULL, 1, 4, 0};
    run_main(backpressure_main, &pc);
    assert_int_equal(pc.max_size, 1);
    /* With room for one item the two tasks strictly alternate. */
    assert_string_equal(trace.buf, "P1 C1 P2 C2 P3 C3 P4 C4");
}

static void *queue_blocked_put_main(void *arg)
{
    (void)arg;
    /* A put on a full queue suspends the producer until a get. */
    struct pc pc = {cs_queue_new(2), 2, 3, 0};
    cs_task *p = cs_spawn("producer", producer, &pc);
    for (int i = 0; i < 5; i++)
        cs_yield();
    CS_CHECK(!cs_task_done(p));
    CS_CHECK_INT_EQ(cs_queue_size(pc.q), 2);
    cs_trace_add(&trace, "get");
    void *item = NULL;
    CS_CHECK_RC(cs_queue_get(pc.q, &item), 0);
    CS_CHECK_PTR_EQ(item, CS_P(1));
    CS_CHECK_RC(cs_await(p, NULL), 0);
    CS_CHECK_INT_EQ(cs_queue_size(pc.q), 2);
    for (int i = 2; i <= 3; i++) {
        CS_CHECK_RC(cs_queue_get(pc.q, &item), 0);
        CS_CHECK_PTR_EQ(item, CS_P(i));
    }
    cs_queue_free(pc.q);
    return NULL;
}

static void test_sync_queue_put_blocks_when_full(void **state)
{
    (void)state;
    run_main(queue_blocked_put_main, NULL);
    assert_string_equal(trace.buf, "P1 P2 get P3");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_sync_lock_deadlock_on_reacquire, setup),
    cmocka_unit_test_setup(test_sync_lock_try_acquire_busy_when_held, setup),
    cmocka_unit_test_setup(test_sync_lock_serves_waiters_fifo, setup),
    cmocka_unit_test_setup(test_sync_event_wakes_all_waiters, setup),
    cmocka_unit_test_setup(test_sync_event_set_then_clear_still_wakes, setup),
    cmocka_unit_test_setup(test_sync_semaphore_limits_concurrency, setup),
    cmocka_unit_test_setup(test_sync_semaphore_zero_blocks_until_release,
                           setup),
    cmocka_unit_test_setup(test_sync_queue_backpressure, setup),
    cmocka_unit_test_setup(test_sync_queue_capacity_one_alternates, setup),
    cmocka_unit_test_setup(test_sync_queue_put_blocks_when_full, setup),
};

CS_TEST_MAIN("runtime_sync", tests)
