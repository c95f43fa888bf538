/*
 * test_coro.c - lazy coroutine objects: cs_coro_new/CS_CORO run nothing
 * until cs_await_coro (inside the caller's task) or cs_create_task (a new
 * task); cs_coro_drop discards; stack sizes per coroutine.
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

struct body {
    int ran;       /* times the body ran */
    cs_task *task; /* cs_current_task() inside the body */
};

static void *body_fn(void *arg)
{
    struct body *b = arg;
    b->ran++;
    b->task = cs_current_task();
    cs_test_log_add(&trace, "body");
    cs_yield();
    cs_test_log_add(&trace, "body-end");
    return CS_P(0xC0);
}

static void test_coro_new_outside_loop_runs_nothing(void **state)
{
    (void)state;
    struct body b = {0, NULL};
    cs_coro *c = cs_coro_new("never", body_fn, &b);
    assert_non_null(c);
    cs_coro *d = CS_CORO(body_fn, &b);
    assert_non_null(d);
    cs_coro_drop(c);
    cs_coro_drop(d);
    assert_int_equal(b.ran, 0);
}

static void test_coro_create_task_outside_loop_fails(void **state)
{
    (void)state;
    struct body b = {0, NULL};
    cs_coro *c = cs_coro_new("orphan", body_fn, &b);
    assert_non_null(c);
    /* Consumes c (ASan would report the leak otherwise). */
    assert_null(cs_create_task(c));
    assert_int_equal(b.ran, 0);
}

static void *other(void *arg)
{
    (void)arg;
    cs_test_log_add(&trace, "other");
    return NULL;
}

static void *await_coro_main(void *arg)
{
    (void)arg;
    struct body b = {0, NULL};
    cs_coro *c = CS_CORO(body_fn, &b);
    cs_task *o = cs_spawn("other", other, NULL);
    for (int i = 0; i < 3; i++)
        cs_yield();
    CS_CHECK_INT_EQ(b.ran, 0); /* still lazy after the loop ran */
    cs_test_log_add(&trace, "await");
    void *r = NULL;
    CS_CHECK_RC(cs_await_coro(c, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(0xC0));
    CS_CHECK_INT_EQ(b.ran, 1);
    CS_CHECK_PTR_EQ(b.task, cs_current_task()); /* ran in this task */
    CS_CHECK_INT_EQ(cs_all_tasks(NULL, 0), 1);  /* o is done */
    CS_CHECK_RC(cs_await(o, NULL), 0);

    /* A coroutine that is dropped inside a loop never runs either. */
    cs_coro *d = cs_coro_new("dropped", body_fn, &b);
    cs_yield();
    cs_coro_drop(d);
    cs_yield();
    CS_CHECK_INT_EQ(b.ran, 1);
    return NULL;
}

static void test_coro_await_runs_in_caller_task(void **state)
{
    (void)state;
    cs_test_run_ok(await_coro_main, NULL);
    assert_string_equal(trace.buf, "other await body body-end");
}

static void *create_task_main(void *arg)
{
    (void)arg;
    struct body b = {0, NULL};
    cs_coro *c = CS_CORO(body_fn, &b);
    cs_yield();
    CS_CHECK_INT_EQ(b.ran, 0);
    cs_task *t = cs_create_task(c);
    CS_CHECK(t != NULL);
    CS_CHECK_INT_EQ(strcmp(cs_task_name(t), "body_fn"), 0);
    CS_CHECK_INT_EQ(b.ran, 0); /* scheduled, not yet started */
    cs_test_log_add(&trace, "main");
    void *r = NULL;
    CS_CHECK_RC(cs_await(t, &r), 0);
    CS_CHECK_PTR_EQ(r, CS_P(0xC0));
    CS_CHECK_INT_EQ(b.ran, 1);
    CS_CHECK_PTR_EQ(b.task, t);
    CS_CHECK(b.task != cs_current_task());

    /* cs_coro_new names the task after its name argument, copied. */
    char name[16] = "named";
    cs_coro *n = cs_coro_new(name, body_fn, &b);
    name[0] = 'X';
    t = cs_create_task(n);
    CS_CHECK(t != NULL);
    CS_CHECK_INT_EQ(strcmp(cs_task_name(t), "named"), 0);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    return NULL;
}

static void test_coro_create_task_runs_in_new_task(void **state)
{
    (void)state;
    cs_test_run_ok(create_task_main, NULL);
    assert_string_equal(trace.buf, "main body body-end body body-end");
}

static void *nested_inner(void *arg)
{
    return CS_P(CS_I(arg) + 1);
}

static void *nested_outer(void *arg)
{
    void *r = NULL;
    CS_CHECK_RC(cs_await_coro(cs_coro_new("inner", nested_inner, arg), &r), 0);
    return CS_P(CS_I(r) * 10);
}

static void *nested_coro_main(void *arg)
{
    (void)arg;
    void *r = NULL;
    CS_CHECK_RC(cs_await_coro(cs_coro_new("outer", nested_outer, CS_P(4)), &r),
                0);
    CS_CHECK_PTR_EQ(r, CS_P(50));
    return NULL;
}

static void test_coro_await_nests(void **state)
{
    (void)state;
    cs_test_run_ok(nested_coro_main, NULL);
}

#define BIG_FRAME (128 * 1024)

static void *use_big_frame(void *arg)
{
    volatile char buf[BIG_FRAME];
    for (size_t i = 0; i < sizeof(buf); i += 512)
        buf[i] = (char)i;
    cs_yield();
    uintptr_t sum = CS_I(arg);
    for (size_t i = 0; i < sizeof(buf); i += 512)
        sum += (unsigned char)buf[i];
    return CS_P(sum);
}

static void *stack_size_main(void *arg)
{
    (void)arg;
    cs_coro *c = cs_coro_new("big", use_big_frame, CS_P(0));
    CS_CHECK_RC(cs_coro_set_stack_size(c, 1024 * 1024), 0);
    cs_task *t = cs_create_task(c);
    CS_CHECK(t != NULL);
    uintptr_t want = 0;
    for (size_t i = 0; i < BIG_FRAME; i += 512)
        want += (unsigned char)(char)i;
    void *r = NULL;
    CS_CHECK_RC(cs_await(t, &r), 0);
    CS_CHECK_INT_EQ(CS_I(r), want);
    return NULL;
}

static void test_coro_stack_size_is_honoured(void **state)
{
    (void)state;
    cs_test_run_ok(stack_size_main, NULL);
}

static void *null_args_main(void *arg)
{
    (void)arg;
    CS_CHECK_RC(cs_await_coro(NULL, NULL), CS_EINVAL);
    CS_CHECK(cs_create_task(NULL) == NULL);
    return NULL;
}

static void test_coro_null_arguments(void **state)
{
    (void)state;
    assert_null(cs_coro_new("nofn", NULL, NULL));
    assert_rc(cs_coro_set_stack_size(NULL, 4096), CS_EINVAL);
    cs_coro_drop(NULL);
    /* Awaiting outside a loop consumes the coroutine without running it. */
    struct body b = {0, NULL};
    assert_rc(cs_await_coro(cs_coro_new("out", body_fn, &b), NULL),
              CS_ENOLOOP);
    assert_int_equal(b.ran, 0);
    cs_test_run_ok(null_args_main, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_coro_new_outside_loop_runs_nothing, setup),
    cmocka_unit_test_setup(test_coro_create_task_outside_loop_fails, setup),
    cmocka_unit_test_setup(test_coro_await_runs_in_caller_task, setup),
    cmocka_unit_test_setup(test_coro_create_task_runs_in_new_task, setup),
    cmocka_unit_test_setup(test_coro_await_nests, setup),
    cmocka_unit_test_setup(test_coro_stack_size_is_honoured, setup),
    cmocka_unit_test_setup(test_coro_null_arguments, setup),
};

CS_TEST_MAIN("runtime_coro", tests)
