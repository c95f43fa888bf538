/*
 * test_agent_hooks.c - the moments the runtime reports to an agent
 * (include/coscope/agent.h): each hook fires for its bug and only then,
 * with the object and details a report needs.
 */
#include "cs_test.h"

#include <coscope/agent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* What the hooks saw; reset by setup. */
static struct seen {
    int created, started, dropped, leaked;
    char unstarted_name[64];
    const char *unstarted_file;
    int raised, raised_code;
    char raised_msg[64];
    int unretrieved;
    char unretrieved_name[64];
    int unretrieved_status;
    int pending;
    char pending_name[64];
    int pending_state, pending_has_ip;
    int blocking, block_regs_stale;
    cs_agent_task_info block_info;
    int stuck;
    size_t stuck_tasks;
} seen;

static void h_coro_created(cs_coro *c, const char *name, const char *file,
                           int line)
{
    (void)c, (void)name, (void)file, (void)line;
    seen.created++;
}
static void h_coro_started(cs_coro *c)
{
    (void)c;
    seen.started++;
}
static void h_coro_unstarted(cs_coro *c, int leaked)
{
    const char *file = NULL;
    int line = 0;
    if (leaked)
        seen.leaked++;
    else
        seen.dropped++;
    snprintf(seen.unstarted_name, sizeof(seen.unstarted_name), "%s",
             cs_agent_coro_name(c, &file, &line));
    seen.unstarted_file = file;
}
static void h_task_raised(cs_task *t, int code, const char *msg)
{
    (void)t;
    seen.raised++;
    seen.raised_code = code;
    snprintf(seen.raised_msg, sizeof(seen.raised_msg), "%s", msg ? msg : "");
}
static void h_task_unretrieved(cs_task *t)
{
    cs_agent_task_info i;
    seen.unretrieved++;
    if (cs_agent_task_get(t, &i) == 0) {
        snprintf(seen.unretrieved_name, sizeof(seen.unretrieved_name), "%s",
                 i.name);
        seen.unretrieved_status = i.status;
    }
}
static void h_task_pending(cs_task *t)
{
    cs_agent_task_info i;
    seen.pending++;
    if (cs_agent_task_get(t, &i) == 0) {
        snprintf(seen.pending_name, sizeof(seen.pending_name), "%s", i.name);
        seen.pending_state = i.state;
        seen.pending_has_ip = i.ip != 0 && i.sp != 0;
    }
}
static void h_task_blocking(cs_task *t)
{
    seen.blocking++;
    cs_agent_task_get(t, &seen.block_info);
    /* it is still on its own stack: no stale parked registers */
    if (seen.block_info.sp || seen.block_info.ip)
        seen.block_regs_stale++;
}
static void h_loop_stuck(void)
{
    seen.stuck++;
    seen.stuck_tasks = cs_all_tasks(NULL, 0);
}

/* Async-signal-safe: one line on stderr naming the signal and task. */
static void h_fatal_signal(int sig, siginfo_t *si, void *uc)
{
    char line[128] = "fatal_signal hook: ";
    size_t n = strlen(line);
    cs_task *t = cs_current_task();
    const char *name = t ? cs_task_name(t) : "-";

    (void)si;
    (void)uc;
    line[n++] = (char)('0' + sig / 10);
    line[n++] = (char)('0' + sig % 10);
    line[n++] = ' ';
    while (*name && n < sizeof(line) - 2)
        line[n++] = *name++;
    line[n++] = '\n';
    (void)!write(2, line, n);
}

static const cs_agent_hooks hooks = {
    .coro_created = h_coro_created,
    .coro_started = h_coro_started,
    .coro_unstarted = h_coro_unstarted,
    .task_raised = h_task_raised,
    .task_unretrieved = h_task_unretrieved,
    .task_pending_at_exit = h_task_pending,
    .task_blocking = h_task_blocking,
    .loop_stuck = h_loop_stuck,
    .fatal_signal = h_fatal_signal,
};

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    memset(&seen, 0, sizeof(seen));
    cs_agent_set_hooks(&hooks);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cs_agent_set_hooks(NULL);
    return 0;
}

static void *value(void *arg)
{
    return arg;
}

static void *raiser(void *arg)
{
    cs_raise(CS_ETIMEDOUT, "fetch %s timed out", (const char *)arg);
}

/* ---- coroutines ---------------------------------------------------------- */

static void *drop_main(void *arg)
{
    (void)arg;
    cs_coro_drop(CS_CORO(value, NULL));
    void *r = NULL;
    CS_CHECK_INT_EQ(cs_await_coro(CS_CORO(value, CS_P(7)), &r), 0);
    CS_CHECK_INT_EQ(cs_await(cs_create_task(CS_CORO(value, NULL)), NULL), 0);
    return NULL;
}

static void test_agent_hooks_coro_dropped_unstarted(void **state)
{
    (void)state;
    assert_int_equal(cs_run(drop_main, NULL, NULL), 0);
    cs_test_assert_clean();
    assert_int_equal(seen.created, 3);
    assert_int_equal(seen.started, 2); /* awaited in place, and as a task */
    assert_int_equal(seen.dropped, 1);
    assert_int_equal(seen.leaked, 0);
    assert_string_equal(seen.unstarted_name, "value");
    assert_non_null(seen.unstarted_file);
    assert_non_null(strstr(seen.unstarted_file, "test_agent_hooks.c"));
}

static cs_coro *forgotten;

static void *leak_main(void *arg)
{
    (void)arg;
    forgotten = CS_CORO(value, NULL); /* created, never awaited */
    return NULL;
}

static void test_agent_hooks_coro_never_awaited_at_loop_end(void **state)
{
    (void)state;
    assert_int_equal(cs_run(leak_main, NULL, NULL), 0);
    assert_int_equal(seen.leaked, 1);
    assert_int_equal(seen.dropped, 0);
    assert_string_equal(seen.unstarted_name, "value");
    /* reported once: a second loop does not report it again */
    assert_int_equal(cs_run(value, NULL, NULL), 0);
    assert_int_equal(seen.leaked, 1);
    cs_coro_drop(forgotten); /* the object stayed valid */
    assert_int_equal(seen.dropped, 1);
}

/* ---- task errors --------------------------------------------------------- */

static void *detached_fail_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_spawn("fetcher", raiser, "http://x");
    cs_detach(t);
    cs_sleep(CS_MSEC(1)); /* let it run and fail */
    return NULL;
}

static void test_agent_hooks_detached_failure_unretrieved(void **state)
{
    (void)state;
    assert_int_equal(cs_run(detached_fail_main, NULL, NULL), 0);
    assert_int_equal(seen.raised, 1);
    assert_int_equal(seen.raised_code, CS_ETIMEDOUT);
    assert_string_equal(seen.raised_msg, "fetch http://x timed out");
    assert_int_equal(seen.unretrieved, 1);
    assert_string_equal(seen.unretrieved_name, "fetcher");
    assert_int_equal(seen.unretrieved_status, CS_ETIMEDOUT);
}

static void *unawaited_fail_main(void *arg)
{
    (void)arg;
    cs_task *awaited = cs_spawn("awaited", raiser, "a");
    cs_spawn("forgotten", raiser, "b"); /* handle dropped on the floor */
    CS_CHECK_INT_EQ(cs_await(awaited, NULL), CS_ETIMEDOUT);
    return NULL;
}

static void
test_agent_hooks_unawaited_failure_reported_at_loop_end(void **state)
{
    (void)state;
    assert_int_equal(cs_run(unawaited_fail_main, NULL, NULL), 0);
    cs_test_assert_clean();
    assert_int_equal(seen.raised, 2);
    /* the awaited failure was retrieved; only the other one is reported */
    assert_int_equal(seen.unretrieved, 1);
    assert_string_equal(seen.unretrieved_name, "forgotten");
}

static void *main_raises(void *arg)
{
    raiser(arg);
    return NULL;
}

static void test_agent_hooks_main_failure_is_retrieved_by_cs_run(void **state)
{
    (void)state;
    assert_int_equal(cs_run(main_raises, "m", NULL), CS_ETIMEDOUT);
    assert_int_equal(seen.raised, 1);
    assert_int_equal(seen.unretrieved, 0); /* cs_run returned it */
}

/* ---- pending at exit ----------------------------------------------------- */

static void *sleeper(void *arg)
{
    (void)arg;
    cs_sleep(CS_SEC(3600));
    return NULL;
}

static void *pending_main(void *arg)
{
    (void)arg;
    cs_detach(cs_spawn("detached_sleeper", sleeper, NULL));
    cs_spawn("pending_sleeper", sleeper, NULL);
    cs_yield(); /* both start and park */
    return NULL;
}

static void test_agent_hooks_pending_task_at_exit(void **state)
{
    (void)state;
    assert_int_equal(cs_run(pending_main, NULL, NULL), 0);
    assert_int_equal(seen.pending, 1); /* the detached one is not reported */
    assert_string_equal(seen.pending_name, "pending_sleeper");
    assert_int_equal(seen.pending_state, CS_AGENT_WAITING);
    assert_true(seen.pending_has_ip);      /* where it was suspended */
    assert_int_equal(seen.unretrieved, 0); /* cancelled is not a failure */
}

/* ---- blocking waits and stuck loops -------------------------------------- */

static uint64_t holder_id;

static void *take_lock(void *arg)
{
    CS_CHECK_INT_EQ(cs_lock_acquire(arg), 0);
    cs_lock_release(arg);
    return NULL;
}

static void *lock_main(void *arg)
{
    (void)arg;
    cs_lock *l = cs_lock_new();
    CS_CHECK_INT_EQ(cs_lock_acquire(l), 0);
    holder_id = cs_task_id(cs_current_task());
    cs_task *t = cs_spawn("waiter", take_lock, l);
    cs_yield(); /* waiter blocks on the lock */
    cs_lock_release(l);
    CS_CHECK_INT_EQ(cs_await(t, NULL), 0);
    cs_lock_free(l);
    return NULL;
}

static void test_agent_hooks_blocking_on_lock_names_holder(void **state)
{
    (void)state;
    assert_int_equal(cs_run(lock_main, NULL, NULL), 0);
    cs_test_assert_clean();
    /* the waiter on the lock, then main awaiting the waiter */
    assert_true(seen.blocking >= 1);
    assert_int_equal(seen.block_regs_stale, 0);
    assert_int_equal(seen.stuck, 0);
}

static void *lock_only_main(void *arg)
{
    (void)arg;
    cs_lock *l = cs_lock_new();
    CS_CHECK_INT_EQ(cs_lock_acquire(l), 0);
    holder_id = cs_task_id(cs_current_task());
    cs_task *t = cs_spawn("waiter", take_lock, l);
    cs_yield();
    /* inspect before anything else blocks */
    CS_CHECK_INT_EQ(seen.blocking, 1);
    CS_CHECK_INT_EQ(seen.block_info.wait_reason, 3 /* CS_WAIT_LOCK */);
    CS_CHECK_INT_EQ(seen.block_info.lock_holder, holder_id);
    CS_CHECK(seen.block_info.holder == cs_current_task());
    CS_CHECK(cs_agent_task_edge(t) == cs_current_task());
    CS_CHECK(cs_agent_task_edge(cs_current_task()) == NULL); /* running */
    CS_CHECK_INT_EQ(seen.block_info.state, CS_AGENT_WAITING);
    cs_lock_release(l);
    uint64_t waiter_id = cs_task_id(t);
    const void *waiter = t;
    CS_CHECK_INT_EQ(cs_await(t, NULL), 0);
    /* then main blocked awaiting the waiter, which is named */
    CS_CHECK_INT_EQ(seen.blocking, 2);
    CS_CHECK_INT_EQ(seen.block_info.wait_reason, 2 /* CS_WAIT_TASK */);
    CS_CHECK_INT_EQ(seen.block_info.wait_task, waiter_id);
    CS_CHECK(seen.block_info.holder == waiter);
    cs_lock_free(l);
    return NULL;
}

static void test_agent_hooks_blocking_info_is_complete(void **state)
{
    (void)state;
    assert_int_equal(cs_run(lock_only_main, NULL, NULL), 0);
    cs_test_assert_clean();
}

static void *wait_forever(void *arg)
{
    cs_event_wait(arg);
    return NULL;
}

static void *stuck_main(void *arg)
{
    (void)arg;
    cs_event *e = cs_event_new();
    cs_task *t[2] = {cs_spawn("w1", wait_forever, e),
                     cs_spawn("w2", wait_forever, e)};
    cs_gather(t, 2, NULL);
    cs_event_free(e);
    return NULL;
}

static void test_agent_hooks_loop_stuck(void **state)
{
    (void)state;
    assert_int_equal(cs_run(stuck_main, NULL, NULL), CS_EDEADLK);
    assert_int_equal(seen.stuck, 1);
    assert_int_equal(seen.stuck_tasks, 3); /* main and the two waiters */
}

/* ---- fatal signals ----------------------------------------------------- */

static void *faulter(void *arg)
{
    (void)arg;
    *(volatile int *)arg = 1; /* a PROT_NONE page: SIGSEGV */
    return NULL;
}

static void *fault_main(void *arg)
{
    cs_await(cs_spawn("faulter", faulter, arg), NULL);
    return NULL;
}

static void test_agent_hooks_fatal_signal_once_then_default(void **state)
{
    (void)state;
    char out[4096];
    void *page =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(page != MAP_FAILED);
    int st = cs_test_crash_child(fault_main, page, out, sizeof out, NULL);
    munmap(page, 4096);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
        fail_msg("child status %#x, not death by SIGSEGV; stderr: %s", st,
                 out);
    char want[64];
    snprintf(want, sizeof want, "fatal_signal hook: %02d faulter\n", SIGSEGV);
    const char *first = strstr(out, want);
    if (!first || strstr(first + 1, "fatal_signal hook:"))
        fail_msg("expected one '%s' line; stderr: %s", want, out);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_agent_hooks_coro_dropped_unstarted,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_agent_hooks_coro_never_awaited_at_loop_end, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_agent_hooks_detached_failure_unretrieved, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_agent_hooks_unawaited_failure_reported_at_loop_end, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_agent_hooks_main_failure_is_retrieved_by_cs_run, setup, teardown),
    cmocka_unit_test_setup_teardown(test_agent_hooks_pending_task_at_exit,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_agent_hooks_blocking_on_lock_names_holder, setup, teardown),
    cmocka_unit_test_setup_teardown(test_agent_hooks_blocking_info_is_complete,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_agent_hooks_loop_stuck, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(
        test_agent_hooks_fatal_signal_once_then_default, setup, teardown),
};

CS_TEST_MAIN("runtime_agent_hooks", tests)
