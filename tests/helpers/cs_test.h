/*
 * cs_test.h - shared helpers for the runtime's cmocka tests, private to
 * tests/ (like libssh's tests/torture.h).
 *
 * cmocka's assert_*() macros longjmp back into the test runner, which must
 * never happen from a task's stack: the loop would be left running on this
 * thread.  Inside tasks use CS_CHECK*(), which record the first failure
 * (thread-safe) and carry on; after cs_run() returns, the test calls
 * cs_test_assert_clean() on the main stack, which fails the test with the
 * recorded message.
 *
 * cs_test_log is an append-only log of short tokens ("A0 B0 A1 ...") for
 * asserting the exact order in which tasks did things.
 */
#ifndef CS_TEST_H
#define CS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coscope.h"

/* Records a failure of a condition evaluated inside a task. */
void cs_test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Forgets every recorded failure (call in each setup). */
void cs_test_reset(void);
/* Number of failures recorded since the last reset. */
int cs_test_failures(void);
/* Fails the current cmocka test if a CS_CHECK failed; main stack only. */
#define cs_test_assert_clean() cs_test_assert_clean_at(__FILE__, __LINE__)
void cs_test_assert_clean_at(const char *file, int line);

/* Runs fn(arg) as cs_run's main; fails the test (at the caller's line)
 * unless cs_run returned 0 and every CS_CHECK inside passed. */
#define cs_test_run_ok(fn, arg)                                               \
    cs_test_run_ok_at((fn), (arg), __FILE__, __LINE__)
void cs_test_run_ok_at(cs_fn fn, void *arg, const char *file, int line);

/* cs_err_name(), but "0" for success. */
const char *cs_test_code_name(int code);

/* Runs cs_run(fn, arg) in a forked child that is expected to die of a
 * fatal signal: no core, the default disposition of SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE and SIGILL (no cmocka or sanitizer handler between the
 * runtime and it), stderr into out (cap bytes, NUL-terminated).  Returns
 * the child's wait status; its pid in *child if child is not NULL. */
int cs_test_crash_child(cs_fn fn, void *arg, char *out, size_t cap,
                        int *child);

#define CS_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond))                                                          \
            cs_test_fail_at(__FILE__, __LINE__, "check failed: %s", #cond);   \
    } while (0)

#define CS_CHECK_INT_EQ(a, b)                                                 \
    do {                                                                      \
        long long cs__a = (long long)(a), cs__b = (long long)(b);             \
        if (cs__a != cs__b)                                                   \
            cs_test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, \
                            #b, cs__a, cs__b);                                \
    } while (0)

#define CS_CHECK_PTR_EQ(a, b)                                                 \
    do {                                                                      \
        const void *cs__a = (const void *)(a), *cs__b = (const void *)(b);    \
        if (cs__a != cs__b)                                                   \
            cs_test_fail_at(__FILE__, __LINE__, "%s == %s: %p != %p", #a, #b, \
                            cs__a, cs__b);                                    \
    } while (0)

/* Checks that a status is the expected CS_E* code, naming both on failure. */
#define CS_CHECK_RC(rc, expected)                                             \
    do {                                                                      \
        int cs__r = (int)(rc), cs__e = (int)(expected);                       \
        if (cs__r != cs__e)                                                   \
            cs_test_fail_at(__FILE__, __LINE__, "%s: got %d (%s), want %s",   \
                            #rc, cs__r, cs_test_code_name(cs__r),             \
                            cs_test_code_name(cs__e));                        \
    } while (0)

/* Main-stack counterpart of CS_CHECK_RC, for cmocka tests. */
#define assert_rc(rc, expected)                                               \
    do {                                                                      \
        int cs__r = (int)(rc), cs__e = (int)(expected);                       \
        if (cs__r != cs__e)                                                   \
            fail_msg("%s: got %d (%s), want %d (%s)", #rc, cs__r,             \
                     cs_test_code_name(cs__r), cs__e,                         \
                     cs_test_code_name(cs__e));                               \
    } while (0)

/* An ordered log of tokens, shared by the tasks of one loop. */
typedef struct cs_test_log {
    char buf[8192]; /* tokens separated by single spaces, NUL-terminated */
    size_t len;     /* strlen(buf) */
} cs_test_log;

void cs_test_log_init(cs_test_log *t);
/* Appends one printf-formatted token. */
void cs_test_log_add(cs_test_log *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Value <-> pointer, for task arguments and results. */
#define CS_P(i) ((void *)(uintptr_t)(i))
#define CS_I(p) ((uintptr_t)(p))

/*
 * The shared main of every test binary, like libssh's torture main: runs the
 * group, or only the tests whose names match argv[1] (a cmocka filter
 * pattern with * and ?).
 */
int cs_test_run(const char *group, const struct CMUnitTest *tests, size_t n,
                int argc, char **argv);
#define CS_TEST_MAIN(group, tests)                                            \
    int main(int argc, char **argv)                                           \
    {                                                                         \
        return cs_test_run(group, tests, sizeof(tests) / sizeof(tests[0]),    \
                           argc, argv);                                       \
    }

#endif
