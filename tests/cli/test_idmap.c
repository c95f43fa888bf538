/*
 * test_idmap.c - cli/idmap.c, the CLI's one id -> value table: every id
 * found again after growth, replacement, absent ids, clearing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"

/* 10,000 ids as a burst of spawns makes them, and a few far apart (ids
 * alike in their low bits, 0 and the largest). */
static void test_idmap_finds_every_id_after_growing(void **state)
{
    (void)state;
    struct cli_idmap m = {0};
    for (uint64_t id = 1; id <= 10000; id++)
        assert_int_equal(cli_idmap_put(&m, id << 20, (long)id), 0);
    assert_int_equal(cli_idmap_put(&m, 0, 7), 0);
    assert_int_equal(cli_idmap_put(&m, UINT64_MAX, 8), 0);
    assert_int_equal(m.n, 10002);
    assert_true(m.cap >= 2 * m.n);
    for (uint64_t id = 1; id <= 10000; id++)
        assert_int_equal(cli_idmap_get(&m, id << 20), (long)id);
    assert_int_equal(cli_idmap_get(&m, 0), 7);
    assert_int_equal(cli_idmap_get(&m, UINT64_MAX), 8);
    assert_int_equal(cli_idmap_get(&m, 3), -1);
    assert_int_equal(cli_idmap_get(&m, 10001ull << 20), -1);
    cli_idmap_release(&m);
    assert_null(m.slot);
}

static void test_idmap_put_replaces_and_refuses_negative(void **state)
{
    (void)state;
    struct cli_idmap m = {0};
    assert_int_equal(cli_idmap_get(&m, 5), -1); /* empty, no memory yet */
    assert_int_equal(cli_idmap_put(&m, 5, 1), 0);
    assert_int_equal(cli_idmap_put(&m, 5, 2), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(cli_idmap_get(&m, 5), 2);
    assert_int_equal(cli_idmap_put(&m, 6, -1), -EINVAL);
    assert_int_equal(cli_idmap_get(&m, 6), -1);
    cli_idmap_release(&m);
}

static void test_idmap_clear_forgets_and_keeps_working(void **state)
{
    (void)state;
    struct cli_idmap m = {0};
    assert_int_equal(cli_idmap_reserve(&m, 100), 0);
    size_t cap = m.cap;
    for (uint64_t id = 1; id <= 100; id++)
        assert_int_equal(cli_idmap_put(&m, id, 0), 0);
    assert_int_equal(m.cap, cap); /* reserved: no growth */
    cli_idmap_clear(&m);
    assert_int_equal(m.n, 0);
    for (uint64_t id = 1; id <= 100; id++)
        assert_int_equal(cli_idmap_get(&m, id), -1);
    assert_int_equal(cli_idmap_put(&m, 42, 3), 0);
    assert_int_equal(cli_idmap_get(&m, 42), 3);
    cli_idmap_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_finds_every_id_after_growing),
        cmocka_unit_test(test_idmap_put_replaces_and_refuses_negative),
        cmocka_unit_test(test_idmap_clear_forgets_and_keeps_working),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
