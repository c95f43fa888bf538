/*
 * test_cancel.c - cs_cancel() in every kind of wait: sleep, fd I/O and
 * accept, lock, event, semaphore, queue get and put, cs_await, cs_gather
 * and cs_wait_for (which cancel the awaited tasks too, as asyncio does),
 * plus the no-op, before-first-step, cleanup and "next suspending call"
 * cases.  In each the target must see CS_ECANCELLED from the call it is
 * suspended in and leave the object it waited on usable.
 */
#include "cs_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

/* What a target did: entered its wait, what the wait returned, finished. */
struct target {
    int entered;
    int rc;
    int finished;
    void *obj; /* the thing waited on */
    int fd;    /* for I/O targets */
};

/* Runs after the wait: records the outcome and propagates it, so the
 * awaiter sees the same code. */
static void *target_end(struct target *t, int rc)
{
    t->rc = rc;
    t->finished = 1;
    if (rc < 0)
        cs_raise(rc, "target stopped");
    return CS_P(1);
}

/* Spawns fn, lets it run into its wait, cancels it, awaits it. */
static void cancel_in_wait(const char *name, cs_fn fn, struct target *t)
{
    t->entered = 0;
    t->rc = 1;
    t->finished = 0;
    cs_task *task = cs_spawn(name, fn, t);
    cs_yield();
    CS_CHECK(t->entered);
    CS_CHECK(!t->finished);
    CS_CHECK(!cs_task_done(task));
    CS_CHECK_RC(cs_cancel(task), 0);
    CS_CHECK_RC(cs_await(task, NULL), CS_ECANCELLED);
    CS_CHECK_RC(t->rc, CS_ECANCELLED);
    CS_CHECK(t->finished);
}

/* ---- sleep -------------------------------------------------------------- */

static void *sleep_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    return target_end(t, cs_sleep(CS_SEC(3600)));
}

static void *cancel_sleep_main(void *arg)
{
    (void)arg;
    struct target t;
    cancel_in_wait("sleeper", sleep_target, &t);
    /* The cancelled timer is gone: a later short sleep still works. */
    CS_CHECK_RC(cs_sleep(CS_MSEC(1)), 0);
    return NULL;
}

static void test_cancel_during_sleep(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_sleep_main, NULL);
}

/* ---- fd I/O ------------------------------------------------------------- */

static void *read_target(void *arg)
{
    struct target *t = arg;
    char c;
    t->entered = 1;
    ssize_t n = cs_read(t->fd, &c, 1);
    return target_end(t, n < 0 ? (int)n : 0);
}

static void *wait_fd_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    return target_end(t, cs_wait_fd(t->fd, CS_READABLE, -1));
}

static void *cancel_io_main(void *arg)
{
    (void)arg;
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    struct target t = {.fd = p[0]};
    cancel_in_wait("reader", read_target, &t);
    cancel_in_wait("fd_waiter", wait_fd_target, &t);
    /* The fd is still usable by the loop after the cancelled waits. */
    CS_CHECK_INT_EQ(cs_write(p[1], "z", 1), 1);
    char c = 0;
    CS_CHECK_INT_EQ(cs_read(p[0], &c, 1), 1);
    CS_CHECK_INT_EQ(c, 'z');
    cs_forget_fd(p[0]);
    cs_forget_fd(p[1]);
    close(p[0]);
    close(p[1]);
    return NULL;
}

static void test_cancel_during_io_wait(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_io_main, NULL);
}

static void *accept_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    int fd = cs_accept(t->fd, NULL, NULL);
    if (fd >= 0) {
        cs_forget_fd(fd);
        close(fd);
    }
    return target_end(t, fd < 0 ? fd : 0);
}

static void *cancel_accept_main(void *arg)
{
    (void)arg;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    CS_CHECK_INT_EQ(bind(ls, (struct sockaddr *)&addr, sizeof(addr)), 0);
    CS_CHECK_INT_EQ(listen(ls, 4), 0);
    CS_CHECK_INT_EQ(getsockname(ls, (struct sockaddr *)&addr, &len), 0);
    struct target t = {.fd = ls};
    cancel_in_wait("acceptor", accept_target, &t);
    /* The listener still accepts after the cancelled wait. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CS_CHECK_INT_EQ(cs_connect(c, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int a = cs_accept(ls, NULL, NULL);
    CS_CHECK(a >= 0);
    cs_forget_fd(a);
    close(a);
    cs_forget_fd(c);
    close(c);
    cs_forget_fd(ls);
    close(ls);
    return NULL;
}

static void test_cancel_during_accept(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_accept_main, NULL);
}

/* ---- lock --------------------------------------------------------------- */

static void *lock_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    int rc = cs_lock_acquire(t->obj);
    if (rc == 0)
        cs_lock_release(t->obj);
    return target_end(t, rc);
}

static void *lock_after(void *arg)
{
    cs_lock *l = arg;
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    cs_lock_release(l);
    return CS_P(2);
}

static void *cancel_lock_main(void *arg)
{
    (void)arg;
    cs_lock *l = cs_lock_new();
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    struct target t = {.obj = l};
    cancel_in_wait("locker", lock_target, &t);
    /* A waiter queued behind the cancelled one gets the lock next. */
    cs_task *after = cs_spawn("after", lock_after, l);
    cs_yield();
    cs_lock_release(l);
    void *r = NULL;
    CS_CHECK_RC(cs_await(after, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(2));
    /* And nobody holds it now. */
    CS_CHECK_RC(cs_lock_try_acquire(l), 0);
    cs_lock_release(l);
    cs_lock_free(l);
    return NULL;
}

static void test_cancel_during_lock_acquire(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_lock_main, NULL);
}

static void *cancel_lock_release_race_main(void *arg)
{
    (void)arg;
    /* The holder releases to a waiter, and that waiter is cancelled before
     * it runs: the lock must not stay held by the cancelled task. */
    cs_lock *l = cs_lock_new();
    CS_CHECK_RC(cs_lock_acquire(l), 0);
    struct target t = {.obj = l, .rc = 1};
    cs_task *task = cs_spawn("locker", lock_target, &t);
    cs_yield();
    CS_CHECK(t.entered);
    cs_lock_release(l);
    cs_cancel(task);
    int rc = cs_await(task, NULL);
    CS_CHECK(rc == 0 || rc == CS_ECANCELLED);
    CS_CHECK_RC(cs_lock_try_acquire(l), 0);
    cs_lock_release(l);
    cs_lock_free(l);
    return NULL;
}

static void test_cancel_after_lock_handed_over(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_lock_release_race_main, NULL);
}

/* ---- event -------------------------------------------------------------- */

static void *event_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    return target_end(t, cs_event_wait(t->obj));
}

static void *cancel_event_main(void *arg)
{
    (void)arg;
    cs_event *e = cs_event_new();
    struct target t = {.obj = e};
    cancel_in_wait("event_waiter", event_target, &t);
    /* Setting the event later wakes no stale waiter, and a new waiter
     * still works. */
    cs_event_set(e);
    CS_CHECK_RC(cs_event_wait(e), 0);
    cs_event_free(e);
    return NULL;
}

static void test_cancel_during_event_wait(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_event_main, NULL);
}

/* ---- semaphore ---------------------------------------------------------- */

static void *sem_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    return target_end(t, cs_semaphore_acquire(t->obj));
}

static void *cancel_sem_main(void *arg)
{
    (void)arg;
    cs_semaphore *s = cs_semaphore_new(0);
    struct target t = {.obj = s};
    cancel_in_wait("sem_waiter", sem_target, &t);
    /* The cancelled waiter took no unit: the one released is still here. */
    cs_semaphore_release(s);
    CS_CHECK_RC(cs_semaphore_acquire(s), 0);
    cs_semaphore_free(s);
    return NULL;
}

static void test_cancel_during_semaphore_acquire(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_sem_main, NULL);
}

/* ---- queue -------------------------------------------------------------- */

static void *get_target(void *arg)
{
    struct target *t = arg;
    void *item = NULL;
    t->entered = 1;
    return target_end(t, cs_queue_get(t->obj, &item));
}

static void *put_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    return target_end(t, cs_queue_put(t->obj, CS_P(0xBAD)));
}

static void *cancel_queue_main(void *arg)
{
    (void)arg;
    cs_queue *q = cs_queue_new(1);
    struct target t = {.obj = q};

    cancel_in_wait("getter", get_target, &t);
    /* The cancelled getter does not swallow the next item. */
    CS_CHECK_RC(cs_queue_put(q, CS_P(0x600D)), 0);
    CS_CHECK_INT_EQ(cs_queue_size(q), 1);

    cancel_in_wait("putter", put_target, &t);
    /* The cancelled putter's item was not added. */
    CS_CHECK_INT_EQ(cs_queue_size(q), 1);
    void *item = NULL;
    CS_CHECK_RC(cs_queue_get(q, &item), 0);
    CS_CHECK_PTR_EQ(item, CS_P(0x600D));
    CS_CHECK_INT_EQ(cs_queue_size(q), 0);
    cs_queue_free(q);
    return NULL;
}

static void test_cancel_during_queue_get_and_put(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_queue_main, NULL);
}

/* ---- await -------------------------------------------------------------- */

struct chain {
    cs_task *inner;           /* the task being awaited */
    struct target in;         /* what the inner task did */
    int await_rc;             /* what the outer's cs_await returned */
    int inner_done_at_return; /* inner had finished when cs_await returned */
};

static void *awaiter(void *arg)
{
    struct chain *c = arg;
    c->inner = cs_spawn("awaited", sleep_target, &c->in);
    c->await_rc = cs_await(c->inner, NULL);
    c->inner_done_at_return = c->in.finished;
    /* The handle was released with the cancellation: not touched again. */
    if (c->await_rc < 0)
        cs_raise(c->await_rc, "awaiter cancelled");
    return NULL;
}

static void *cancel_await_main(void *arg)
{
    (void)arg;
    struct chain c;
    memset(&c, 0, sizeof(c));
    c.in.rc = 1;
    c.await_rc = 1;
    cs_task *outer = cs_spawn("awaiter", awaiter, &c);
    while (!c.in.entered) /* outer starts, then the inner it spawned */
        cs_yield();
    CS_CHECK_RC(cs_cancel(outer), 0);
    CS_CHECK_RC(cs_await(outer, NULL), CS_ECANCELLED);
    CS_CHECK_RC(c.await_rc, CS_ECANCELLED);
    /* asyncio semantics: cancelling the awaiter cancels the awaited task,
     * and the awaiter's await returns once that task has finished. */
    CS_CHECK_RC(c.in.rc, CS_ECANCELLED);
    CS_CHECK(c.inner_done_at_return);
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    return NULL;
}

static void test_cancel_during_await_cancels_awaited(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_await_main, NULL);
}

/* ---- gather ------------------------------------------------------------- */

struct gathering {
    struct target in[3]; /* the gathered tasks */
    int gather_rc;
};

static void *gatherer(void *arg)
{
    struct gathering *g = arg;
    cs_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = cs_spawn("gathered", sleep_target, &g->in[i]);
    g->gather_rc = cs_gather(t, 3, NULL);
    if (g->gather_rc < 0)
        cs_raise(g->gather_rc, "gather cancelled");
    return NULL;
}

static void *cancel_gather_main(void *arg)
{
    (void)arg;
    struct gathering g;
    memset(&g, 0, sizeof(g));
    for (int i = 0; i < 3; i++)
        g.in[i].rc = 1;
    cs_task *t = cs_spawn("gatherer", gatherer, &g);
    while (!(g.in[0].entered && g.in[1].entered && g.in[2].entered))
        cs_yield();
    CS_CHECK_RC(cs_cancel(t), 0);
    CS_CHECK_RC(cs_await(t, NULL), CS_ECANCELLED);
    CS_CHECK_RC(g.gather_rc, CS_ECANCELLED);
    /* Like asyncio.gather: cancelling the gatherer cancels every child,
     * and all of them have finished when the gather returns. */
    for (int i = 0; i < 3; i++) {
        CS_CHECK_RC(g.in[i].rc, CS_ECANCELLED);
        CS_CHECK(g.in[i].finished);
    }
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    return NULL;
}

static void test_cancel_during_gather_cancels_all(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_gather_main, NULL);
}

/* ---- wait_for ----------------------------------------------------------- */

struct timed_chain {
    struct target in; /* the task waited for */
    int rc;           /* what the outer's cs_wait_for returned */
    int inner_done_at_return;
};

static void *timed_awaiter(void *arg)
{
    struct timed_chain *c = arg;
    cs_task *inner = cs_spawn("awaited", sleep_target, &c->in);
    c->rc = cs_wait_for(inner, CS_SEC(3600), NULL);
    c->inner_done_at_return = c->in.finished;
    if (c->rc < 0)
        cs_raise(c->rc, "wait_for cancelled");
    return NULL;
}

static void *cancel_wait_for_main(void *arg)
{
    (void)arg;
    struct timed_chain c;
    memset(&c, 0, sizeof(c));
    c.in.rc = 1;
    c.rc = 1;
    cs_task *outer = cs_spawn("timed_awaiter", timed_awaiter, &c);
    while (!c.in.entered)
        cs_yield();
    CS_CHECK_RC(cs_cancel(outer), 0);
    CS_CHECK_RC(cs_await(outer, NULL), CS_ECANCELLED);
    CS_CHECK_RC(c.rc, CS_ECANCELLED); /* cancelled, not timed out */
    CS_CHECK_RC(c.in.rc, CS_ECANCELLED);
    CS_CHECK(c.inner_done_at_return);
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);
    return NULL;
}

static void test_cancel_during_wait_for_cancels_awaited(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_wait_for_main, NULL);
}

/* ---- before the first step, and cleanup after -------------------------- */

static int never_ran;

static void *must_not_run(void *arg)
{
    (void)arg;
    never_ran = 0;
    return CS_P(1);
}

static void *cancel_before_start_main(void *arg)
{
    (void)arg;
    never_ran = 1;
    cs_task *t = cs_spawn("unstarted", must_not_run, NULL);
    CS_CHECK_RC(cs_cancel(t), 0);
    void *r = CS_P(0x77);
    CS_CHECK_RC(cs_await(t, &r), CS_ECANCELLED);
    CS_CHECK(r == NULL);
    CS_CHECK_INT_EQ(never_ran, 1);
    return NULL;
}

static void test_cancel_before_first_step_never_runs(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_before_start_main, NULL);
}

struct cleanup {
    int sleep_rc;
    int helper_rc;
    void *helper_result;
    int second_sleep_rc;
};

static void *helper_value(void *arg)
{
    CS_CHECK_RC(cs_sleep(CS_MSEC(1)), 0);
    return arg;
}

static void *cleaning_target(void *arg)
{
    struct cleanup *c = arg;
    c->sleep_rc = cs_sleep(CS_SEC(3600));
    /* Cancellation is delivered once: cleanup may suspend and await. */
    c->second_sleep_rc = cs_sleep(CS_MSEC(1));
    c->helper_rc = cs_await(cs_spawn("helper", helper_value, CS_P(42)),
                            &c->helper_result);
    return CS_P(1); /* swallowed the cancellation */
}

static void *cleanup_main(void *arg)
{
    (void)arg;
    struct cleanup c = {1, 1, NULL, 1};
    cs_task *t = cs_spawn("cleaner", cleaning_target, &c);
    cs_yield();
    cs_cancel(t);
    /* A task whose cancellation was delivered ends cancelled, even if it
     * returned normally afterwards. */
    CS_CHECK_RC(cs_await(t, NULL), CS_ECANCELLED);
    CS_CHECK_RC(c.sleep_rc, CS_ECANCELLED);
    CS_CHECK_RC(c.second_sleep_rc, 0);
    CS_CHECK_RC(c.helper_rc, 0);
    CS_CHECK_PTR_EQ(c.helper_result, CS_P(42));
    return NULL;
}

static void test_cancel_cleanup_may_suspend_and_await(void **state)
{
    (void)state;
    cs_test_run_ok(cleanup_main, NULL);
}

/* ---- no-op and deferred cases ------------------------------------------ */

static void *return_seven(void *arg)
{
    (void)arg;
    return CS_P(7);
}

static void *cancel_finished_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_spawn("quick", return_seven, NULL);
    while (!cs_task_done(t))
        cs_yield();
    CS_CHECK_RC(cs_cancel(t), 0);
    void *r = NULL;
    CS_CHECK_RC(cs_await(t, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(7));
    CS_CHECK_RC(cs_cancel(NULL), CS_EINVAL);
    CS_CHECK(!cs_cancelled());
    return NULL;
}

static void test_cancel_finished_task_is_noop(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_finished_main, NULL);
}

static void *deferred_target(void *arg)
{
    struct target *t = arg;
    t->entered = 1;
    CS_CHECK(!cs_cancelled());
    cs_yield(); /* ready, not suspended in a wait, when cancelled */
    CS_CHECK(cs_cancelled());
    return target_end(t, cs_sleep(CS_SEC(3600)));
}

static void *cancel_deferred_main(void *arg)
{
    (void)arg;
    struct target t = {.rc = 1};
    cs_task *task = cs_spawn("deferred", deferred_target, &t);
    cs_yield(); /* target runs up to its cs_yield */
    CS_CHECK(t.entered);
    CS_CHECK_RC(cs_cancel(task), 0);
    CS_CHECK_RC(cs_await(task, NULL), CS_ECANCELLED);
    CS_CHECK_RC(t.rc, CS_ECANCELLED);
    return NULL;
}

static void test_cancel_hits_next_suspending_call(void **state)
{
    (void)state;
    cs_test_run_ok(cancel_deferred_main, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_cancel_during_sleep, setup),
    cmocka_unit_test_setup(test_cancel_during_io_wait, setup),
    cmocka_unit_test_setup(test_cancel_during_accept, setup),
    cmocka_unit_test_setup(test_cancel_during_lock_acquire, setup),
    cmocka_unit_test_setup(test_cancel_after_lock_handed_over, setup),
    cmocka_unit_test_setup(test_cancel_during_event_wait, setup),
    cmocka_unit_test_setup(test_cancel_during_semaphore_acquire, setup),
    cmocka_unit_test_setup(test_cancel_during_queue_get_and_put, setup),
    cmocka_unit_test_setup(test_cancel_during_await_cancels_awaited, setup),
    cmocka_unit_test_setup(test_cancel_during_gather_cancels_all, setup),
    cmocka_unit_test_setup(test_cancel_during_wait_for_cancels_awaited, setup),
    cmocka_unit_test_setup(test_cancel_before_first_step_never_runs, setup),
    cmocka_unit_test_setup(test_cancel_cleanup_may_suspend_and_await, setup),
    cmocka_unit_test_setup(test_cancel_finished_task_is_noop, setup),
    cmocka_unit_test_setup(test_cancel_hits_next_suspending_call, setup),
};

CS_TEST_MAIN("runtime_cancel", tests)
