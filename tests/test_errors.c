/*
 * test_errors.c - cs_raise() and how errors come back: the code from the
 * await, the formatted message from cs_last_error() (per task, cleared by a
 * successful await), raises from deep inside nested calls and from a
 * coroutine run by cs_await_coro(), and the code/name/text tables.
 */
#include "cs_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

static int after_raise; /* counts code that must never run */

static void *raise_with(void *arg)
{
    int code = (int)(intptr_t)arg;
    cs_raise(code, "failed with %d in '%s'", code, "raise_with");
}

static void *raise_and_await_main(void *arg)
{
    (void)arg;
    char want[128];
    cs_task *t = cs_spawn("raiser", raise_with, (void *)(intptr_t)CS_EACCES);
    void *r = CS_P(0x11);
    CS_CHECK_RC(cs_await(t, &r), CS_EACCES);
    snprintf(want, sizeof(want), "failed with %d in '%s'", CS_EACCES,
             "raise_with");
    const char *msg = cs_last_error();
    CS_CHECK(msg != NULL && strcmp(msg, want) == 0);
    /* The message stays while the task does things other than awaits. */
    cs_yield();
    CS_CHECK_RC(cs_sleep(0), 0);
    msg = cs_last_error();
    CS_CHECK(msg != NULL && strcmp(msg, want) == 0);
    return NULL;
}

static void *return_null(void *arg)
{
    (void)arg;
    return NULL;
}

static void *raise_then_success_main(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_await(cs_spawn("raiser", raise_with, CS_P(0)), NULL),
                CS_ERAISED);
    CS_CHECK(cs_last_error() != NULL);
    CS_CHECK_RC(cs_await(cs_spawn("fine", return_null, NULL), NULL), 0);
    CS_CHECK(cs_last_error() == NULL);
    return NULL;
}

static void test_errors_raise_code_and_message_reach_awaiter(void **state)
{
    (void)state;
    cs_test_run_ok(raise_and_await_main, NULL);
    cs_test_run_ok(raise_then_success_main, NULL);
}

static void *raise_code_main(void *arg)
{
    (void)arg;
    /* Positive codes are negated; 0 becomes CS_ERAISED. */
    CS_CHECK_RC(cs_await(cs_spawn("pos", raise_with, CS_P(EPIPE)), NULL),
                -EPIPE);
    CS_CHECK_RC(cs_await(cs_spawn("zero", raise_with, CS_P(0)), NULL),
                CS_ERAISED);
    CS_CHECK_RC(cs_await(cs_spawn("neg", raise_with,
                                  (void *)(intptr_t)CS_ETIMEDOUT),
                         NULL),
                CS_ETIMEDOUT);
    return NULL;
}

static void test_errors_raise_normalises_code(void **state)
{
    (void)state;
    cs_test_run_ok(raise_code_main, NULL);
}

/* ---- raise from deep inside nested calls -------------------------------- */

static int __attribute__((noinline)) descend(int depth)
{
    volatile char frame[64];
    frame[0] = (char)depth;
    if (depth < 0)
        return 0;
    if (depth == 0)
        cs_raise(CS_EBUSY, "raised at depth %d", depth);
    int r = descend(depth - 1) + frame[0];
    after_raise++; /* never reached: the stack is abandoned */
    return r;
}

static void *deep_raiser(void *arg)
{
    (void)arg;
    descend(100);
    after_raise++;
    return CS_P(1);
}

static void *deep_main(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_await(cs_spawn("deep", deep_raiser, NULL), NULL), CS_EBUSY);
    const char *msg = cs_last_error();
    CS_CHECK(msg != NULL && strcmp(msg, "raised at depth 0") == 0);
    return NULL;
}

static void test_errors_raise_from_nested_calls(void **state)
{
    (void)state;
    after_raise = 0;
    cs_test_run_ok(deep_main, NULL);
    assert_int_equal(after_raise, 0);
}

/* ---- raise inside cs_await_coro ---------------------------------------- */

static void *coro_raiser(void *arg)
{
    (void)arg;
    cs_yield();
    descend(20);
    after_raise++;
    return NULL;
}

static void *coro_awaiter(void *arg)
{
    (void)arg;
    cs_task *self = cs_current_task();
    void *r = CS_P(0x22);
    int rc = cs_await_coro(CS_CORO(coro_raiser, NULL), &r);
    /* The awaiting task goes on: the raise ended only the coroutine. */
    CS_CHECK_RC(rc, CS_EBUSY);
    CS_CHECK_PTR_EQ(cs_current_task(), self);
    const char *msg = cs_last_error();
    CS_CHECK(msg != NULL && strcmp(msg, "raised at depth 0") == 0);
    CS_CHECK_RC(cs_sleep(0), 0);
    return CS_P(0x33);
}

static void *await_coro_main(void *arg)
{
    (void)arg;
    void *r = NULL;
    CS_CHECK_RC(cs_await(cs_spawn("awaiter", coro_awaiter, NULL), &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(0x33));
    /* Directly in the main task as well. */
    CS_CHECK_RC(cs_await_coro(CS_CORO(coro_raiser, NULL), NULL), CS_EBUSY);
    return NULL;
}

static void test_errors_raise_in_awaited_coro_returns_to_awaiter(void **state)
{
    (void)state;
    after_raise = 0;
    cs_test_run_ok(await_coro_main, NULL);
    assert_int_equal(after_raise, 0);
}

/* ---- stacks abandoned by a raise are clean when reused ----------------- */

static void *raise_deep(void *arg)
{
    (void)arg;
    descend(60);
    return NULL;
}

static int __attribute__((noinline)) fill_stack(int depth)
{
    volatile char frame[200];
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (char)(depth + (int)i);
    if (depth == 0)
        return frame[10];
    return fill_stack(depth - 1) + frame[199];
}

static void *use_stack(void *arg)
{
    (void)arg;
    return CS_P((uintptr_t)fill_stack(80) & 0xff);
}

/* arg: stack size for every task (0: the default). */
static void *raise_then_reuse_main(void *arg)
{
    size_t stack = (size_t)CS_I(arg);
    for (int round = 0; round < 20; round++) {
        cs_coro *c = cs_coro_new("raiser", raise_deep, NULL);
        CS_CHECK_RC(cs_coro_set_stack_size(c, stack), 0);
        CS_CHECK_RC(cs_await(cs_create_task(c), NULL), CS_EBUSY);
        c = cs_coro_new("user", use_stack, NULL);
        CS_CHECK_RC(cs_coro_set_stack_size(c, stack), 0);
        CS_CHECK_RC(cs_await(cs_create_task(c), NULL), 0);
    }
    return NULL;
}

/* Under ASan, the frames a raise abandons must not leave stale poison for
 * the next task that gets that memory, pooled or freshly mapped, in this
 * loop or the next one. */
static void test_errors_raise_leaves_reusable_stack(void **state)
{
    (void)state;
    for (int run = 0; run < 3; run++) {
        cs_test_run_ok(raise_then_reuse_main, CS_P(0));
        cs_test_run_ok(raise_then_reuse_main, CS_P(96 * 1024));
    }
}

/* ---- last error is per task -------------------------------------------- */

struct per_task {
    cs_event *a_failed;  /* A has seen its error */
    cs_event *b_checked; /* B has looked and done a good await */
};

static void *task_a(void *arg)
{
    struct per_task *p = arg;
    CS_CHECK_RC(cs_await(cs_spawn("r", raise_with, CS_P(EIO)), NULL), -EIO);
    cs_event_set(p->a_failed);
    CS_CHECK_RC(cs_event_wait(p->b_checked), 0);
    /* B's successful await did not clear A's message. */
    const char *msg = cs_last_error();
    CS_CHECK(msg != NULL && strstr(msg, "failed with") != NULL);
    return NULL;
}

static void *task_b(void *arg)
{
    struct per_task *p = arg;
    CS_CHECK_RC(cs_event_wait(p->a_failed), 0);
    CS_CHECK(cs_last_error() == NULL); /* A's error is not B's */
    CS_CHECK_RC(cs_await(cs_spawn("fine", return_null, NULL), NULL), 0);
    cs_event_set(p->b_checked);
    return NULL;
}

static void *per_task_main(void *arg)
{
    (void)arg;
    struct per_task p = {cs_event_new(), cs_event_new()};
    cs_task *t[2] = {cs_spawn("A", task_a, &p), cs_spawn("B", task_b, &p)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    cs_event_free(p.a_failed);
    cs_event_free(p.b_checked);
    return NULL;
}

static void test_errors_last_error_is_per_task(void **state)
{
    (void)state;
    cs_test_run_ok(per_task_main, NULL);
}

/* ---- long messages ------------------------------------------------------ */

static char long_text[5000];

static void *raise_long(void *arg)
{
    (void)arg;
    cs_raise(CS_EINVAL, "%s", long_text);
}

static void *long_main(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_await(cs_spawn("long", raise_long, NULL), NULL), CS_EINVAL);
    const char *msg = cs_last_error();
    CS_CHECK(msg != NULL);
    /* Kept whole or truncated, but a prefix of what was raised. */
    if (msg != NULL) {
        size_t n = strlen(msg);
        CS_CHECK(n >= 64 && n < sizeof(long_text));
        CS_CHECK(strncmp(msg, long_text, n) == 0);
    }
    return NULL;
}

static void test_errors_long_message_is_kept_or_truncated(void **state)
{
    (void)state;
    for (size_t i = 0; i + 1 < sizeof(long_text); i++)
        long_text[i] = (char)('a' + i % 26);
    long_text[sizeof(long_text) - 1] = '\0';
    cs_test_run_ok(long_main, NULL);
}

/* ---- outside a task ----------------------------------------------------- */

static void test_errors_raise_outside_task_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        cs_raise(CS_EINVAL, "not in a task");
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- tables ------------------------------------------------------------- */

static void test_errors_strerror_and_names(void **state)
{
    (void)state;
#define CHECK_CODE(name, value, text)                                         \
    assert_int_equal(CS_##name, value);                                       \
    assert_string_equal(cs_strerror(CS_##name), text);                        \
    assert_string_equal(cs_err_name(CS_##name), "CS_" #name);
    CS_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
    assert_string_equal(cs_err_name(-9999), "CS_EUNKNOWN");
    /* Any negative errno has a text. */
    const char *s = cs_strerror(-EPIPE);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    assert_non_null(cs_strerror(-9999));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_errors_raise_code_and_message_reach_awaiter,
                           setup),
    cmocka_unit_test_setup(test_errors_raise_normalises_code, setup),
    cmocka_unit_test_setup(test_errors_raise_from_nested_calls, setup),
    cmocka_unit_test_setup(
        test_errors_raise_in_awaited_coro_returns_to_awaiter, setup),
    cmocka_unit_test_setup(test_errors_raise_leaves_reusable_stack, setup),
    cmocka_unit_test_setup(test_errors_last_error_is_per_task, setup),
    cmocka_unit_test_setup(test_errors_long_message_is_kept_or_truncated,
                           setup),
    cmocka_unit_test_setup(test_errors_raise_outside_task_aborts, setup),
    cmocka_unit_test_setup(test_errors_strerror_and_names, setup),
};

CS_TEST_MAIN("runtime_errors", tests)
