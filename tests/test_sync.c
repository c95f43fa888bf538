/*
 * test_sync.c - locks (FIFO fairness, CS_EDEADLK, try_acquire), events
 * (wake all waiters, clear), semaphores (limit concurrency), hand-over
 * without barging, bounded queues (FIFO order, backpressure with the exact
 * asyncio interleaving), and lock/queue invariants under random
 * cancellation.
 */
#include "cs_test.h"

#include <string.h>

static cs_test_log trace;

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    cs_test_log_init(&trace);
    return 0;
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
    cs_test_run_ok(lock_basics_main, NULL);
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
    cs_test_run_ok(try_acquire_main, NULL);
}

struct locker {
    cs_lock *l;
    int id;
    int *inside; /* tasks inside the critical section */
};

static void *lock_waiter(void *arg)
{
    struct locker *w = arg;
    cs_test_log_add(&trace, "w%d", w->id);
    CS_CHECK_RC(cs_lock_acquire(w->l), 0);
    CS_CHECK_INT_EQ(++*w->inside, 1);
    cs_test_log_add(&trace, "L%d", w->id);
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
    cs_test_log_add(&trace, "release");
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
    cs_test_run_ok(lock_fifo_main, NULL);
    assert_string_equal(trace.buf, "w3 w1 w4 w0 w2 release L3 L1 L4 L0 L2");
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
    cs_test_log_add(&trace, "woke%d", w->id);
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
    cs_test_log_add(&trace, "set");
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
    cs_test_log_add(&trace, "set");
    cs_event_set(e);
    CS_CHECK_RC(cs_await(again, NULL), 0);
    cs_event_free(e);
    return NULL;
}

static void test_sync_event_wakes_all_waiters(void **state)
{
    (void)state;
    cs_test_run_ok(event_all_main, NULL);
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
    cs_test_run_ok(set_then_clear_main, NULL);
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
    cs_test_run_ok(sem_main, CS_P(3));
    cs_test_run_ok(sem_main, CS_P(1));
}

/* Acquires one unit, notes it, gives it back. */
static void *sem_worker_noted(void *arg)
{
    struct sem_state *st = arg;
    CS_CHECK_RC(cs_semaphore_acquire(st->s), 0);
    cs_test_log_add(&trace, "semgot");
    cs_semaphore_release(st->s);
    return NULL;
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
    cs_test_run_ok(sem_zero_main, NULL);
}

/* ---- hand-over ---------------------------------------------------------- */

static void *take_and_note(void *arg)
{
    struct locker *w = arg;
    CS_CHECK_RC(cs_lock_acquire(w->l), 0);
    cs_test_log_add(&trace, "got%d", w->id);
    cs_lock_release(w->l);
    return NULL;
}

static void *no_barging_main(void *arg)
{
    (void)arg;
    /* Release hands the lock to the first waiter: the releaser cannot take
     * it back before that waiter has run. */
    int inside = 0;
    cs_lock *l = cs_lock_new();
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    struct locker w = {l, 1, &inside};
    cs_task *t = cs_spawn("waiter", take_and_note, &w);
    cs_yield();
    cs_lock_release(l);
    CS_CHECK_RC(cs_lock_try_acquire(l), CS_EBUSY);
    CS_CHECK_RC(cs_lock_acquire(l), 0); /* queues behind the waiter */
    cs_test_log_add(&trace, "main");
    cs_lock_release(l);
    CS_CHECK_RC(cs_await(t, NULL), 0);

    /* The same for a semaphore's unit. */
    cs_semaphore *s = cs_semaphore_new(0);
    struct sem_state st = {s, 0, 0, 0};
    cs_task *u = cs_spawn("sem", sem_worker_noted, &st);
    cs_yield();
    cs_semaphore_release(s);
    CS_CHECK_RC(cs_semaphore_acquire(s), 0); /* waits: the unit went on */
    cs_test_log_add(&trace, "main");
    cs_semaphore_release(s);
    CS_CHECK_RC(cs_await(u, NULL), 0);
    cs_semaphore_free(s);
    cs_lock_free(l);
    return NULL;
}

static void test_sync_release_hands_over_without_barging(void **state)
{
    (void)state;
    cs_test_run_ok(no_barging_main, NULL);
    assert_string_equal(trace.buf, "got1 main semgot main");
}

/* ---- queue -------------------------------------------------------------- */

struct pc {
    cs_queue *q;
    size_t capacity;
    int n;        /* items to move */
    int max_size; /* largest cs_queue_size() seen */
};

static void *producer(void *arg)
{
    struct pc *pc = arg;
    for (int i = 1; i <= pc->n; i++) {
        CS_CHECK_RC(cs_queue_put(pc->q, CS_P(i)), 0);
        cs_test_log_add(&trace, "P%d", i);
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
        cs_test_log_add(&trace, "C%d", i);
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
    cs_test_run_ok(backpressure_main, &pc);
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
    cs_test_run_ok(backpressure_main, &pc);
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
    cs_test_log_add(&trace, "get");
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
    cs_test_run_ok(queue_blocked_put_main, NULL);
    assert_string_equal(trace.buf, "P1 P2 get P3");
}

/* ---- stress with cancellation ------------------------------------------- */

/* A fixed-seed generator, so that a failure replays. */
static uint32_t rng_state;

static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

#define STRESS_TASKS 40

struct lock_stress {
    cs_lock *l;
    int holders;   /* tasks inside the critical section */
    int entries;   /* critical sections completed */
    int cancelled; /* tasks whose acquire was cancelled */
    int live;      /* workers still running */
};

static void *lock_stress_worker(void *arg)
{
    struct lock_stress *st = arg;
    for (int i = 0; i < 20; i++) {
        int rc = cs_lock_acquire(st->l);
        if (rc == CS_ECANCELLED) {
            st->cancelled++;
            break;
        }
        CS_CHECK_RC(rc, 0);
        CS_CHECK_INT_EQ(++st->holders, 1);
        for (uint32_t k = rng() % 3; k > 0; k--)
            cs_yield();
        CS_CHECK_INT_EQ(--st->holders, 0);
        st->entries++;
        cs_lock_release(st->l);
        if (rng() % 2)
            cs_yield();
    }
    st->live--;
    return NULL;
}

static void *lock_stress_main(void *arg)
{
    (void)arg;
    struct lock_stress st = {cs_lock_new(), 0, 0, 0, STRESS_TASKS};
    cs_task *t[STRESS_TASKS];
    for (int i = 0; i < STRESS_TASKS; i++)
        t[i] = cs_spawn("locker", lock_stress_worker, &st);
    while (st.live > 0) {
        cs_yield();
        if (rng() % 4 == 0)
            cs_cancel(t[rng() % STRESS_TASKS]);
    }
    /* Tasks that saw a cancellation end cancelled. */
    int rc = cs_gather(t, STRESS_TASKS, NULL);
    CS_CHECK(rc == 0 || rc == CS_ECANCELLED);
    CS_CHECK(st.entries > 0);
    CS_CHECK(st.cancelled > 0);
    CS_CHECK_RC(cs_lock_try_acquire(st.l), 0); /* nobody kept it */
    cs_lock_release(st.l);
    cs_lock_free(st.l);
    return NULL;
}

static void test_sync_lock_survives_random_cancellation(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 5; seed++) {
        rng_state = seed;
        cs_test_run_ok(lock_stress_main, NULL);
    }
}

#define ITEMS_PER_PRODUCER 200
#define PRODUCERS 4
#define CONSUMERS 4

struct queue_stress {
    cs_queue *q;
    /* per item (producer p, sequence i): how it fared */
    int put_ok[PRODUCERS][ITEMS_PER_PRODUCER];
    int got[PRODUCERS][ITEMS_PER_PRODUCER];
    int last_seq[CONSUMERS][PRODUCERS]; /* per-producer order per consumer */
    int live;
};

static struct queue_stress qs;

static void *qs_producer(void *arg)
{
    uintptr_t p = CS_I(arg);
    for (uintptr_t i = 0; i < ITEMS_PER_PRODUCER; i++) {
        int rc = cs_queue_put(qs.q, CS_P(p * 100000 + i + 1));
        if (rc == CS_ECANCELLED)
            break;
        CS_CHECK_RC(rc, 0);
        qs.put_ok[p][i] = 1;
    }
    qs.live--;
    return NULL;
}

static void *qs_consumer(void *arg)
{
    uintptr_t c = CS_I(arg);
    for (int p = 0; p < PRODUCERS; p++)
        qs.last_seq[c][p] = -1;
    for (;;) {
        void *item = NULL;
        int rc = cs_queue_get(qs.q, &item);
        if (rc == CS_ECANCELLED)
            break;
        CS_CHECK_RC(rc, 0);
        uintptr_t v = CS_I(item) - 1, p = v / 100000, i = v % 100000;
        if (p >= PRODUCERS || i >= ITEMS_PER_PRODUCER) {
            CS_CHECK(!"item out of range");
            break;
        }
        qs.got[p][i]++;
        CS_CHECK((int)i > qs.last_seq[c][p]); /* FIFO per producer */
        qs.last_seq[c][p] = (int)i;
        if (rng() % 3 == 0)
            cs_yield();
    }
    qs.live--;
    return NULL;
}

static void *queue_stress_main(void *arg)
{
    (void)arg;
    qs.q = cs_queue_new(3);
    qs.live = PRODUCERS + CONSUMERS;
    cs_task *t[PRODUCERS + CONSUMERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        t[i] = cs_spawn("producer", qs_producer, CS_P(i));
    for (uintptr_t i = 0; i < CONSUMERS; i++)
        t[PRODUCERS + i] = cs_spawn("consumer", qs_consumer, CS_P(i));
    /* Cancel a few at random while items flow, then the rest. */
    for (int step = 0; step < 400; step++) {
        cs_yield();
        if (rng() % 50 == 0)
            cs_cancel(t[rng() % (PRODUCERS + CONSUMERS)]);
    }
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        cs_cancel(t[i]);
    int rc = cs_gather(t, PRODUCERS + CONSUMERS, NULL);
    CS_CHECK(rc == 0 || rc == CS_ECANCELLED);
    CS_CHECK_INT_EQ(qs.live, 0);
    /* Every item whose put succeeded was got once or is still queued;
     * no other item was got. */
    int queued = 0, got = 0;
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 0; i < ITEMS_PER_PRODUCER; i++) {
            CS_CHECK(qs.got[p][i] <= qs.put_ok[p][i]);
            queued += qs.put_ok[p][i] - qs.got[p][i];
            got += qs.got[p][i];
        }
    CS_CHECK_INT_EQ(cs_queue_size(qs.q), queued);
    CS_CHECK(got > 0);
    while (cs_queue_size(qs.q) > 0) {
        void *item;
        CS_CHECK_RC(cs_queue_get(qs.q, &item), 0);
        uintptr_t v = CS_I(item) - 1;
        CS_CHECK_INT_EQ(qs.got[v / 100000][v % 100000]++, 0);
    }
    cs_queue_free(qs.q);
    return NULL;
}

static void test_sync_queue_loses_no_item_under_cancellation(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 5; seed++) {
        memset(&qs, 0, sizeof(qs));
        rng_state = seed;
        cs_test_run_ok(queue_stress_main, NULL);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_sync_lock_deadlock_on_reacquire, setup),
    cmocka_unit_test_setup(test_sync_lock_try_acquire_busy_when_held, setup),
    cmocka_unit_test_setup(test_sync_lock_serves_waiters_fifo, setup),
    cmocka_unit_test_setup(test_sync_release_hands_over_without_barging,
                           setup),
    cmocka_unit_test_setup(test_sync_event_wakes_all_waiters, setup),
    cmocka_unit_test_setup(test_sync_event_set_then_clear_still_wakes, setup),
    cmocka_unit_test_setup(test_sync_semaphore_limits_concurrency, setup),
    cmocka_unit_test_setup(test_sync_semaphore_zero_blocks_until_release,
                           setup),
    cmocka_unit_test_setup(test_sync_queue_backpressure, setup),
    cmocka_unit_test_setup(test_sync_queue_capacity_one_alternates, setup),
    cmocka_unit_test_setup(test_sync_queue_put_blocks_when_full, setup),
    cmocka_unit_test_setup(test_sync_lock_survives_random_cancellation, setup),
    cmocka_unit_test_setup(test_sync_queue_loses_no_item_under_cancellation,
                           setup),
};

CS_TEST_MAIN("runtime_sync", tests)
