/*
 * cs_test.c - failure recording, traces and the shared main for the
 * runtime tests (see cs_test.h).
 */
#include "cs_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t fail_mutex = PTHREAD_MUTEX_INITIALIZER;
static int fail_count;       /* failures since the last reset */
static char fail_msg_buf[1024]; /* the first of them, "file:line: what" */

void cs_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    pthread_mutex_lock(&fail_mutex);
    if (fail_count++ == 0) {
        int off = snprintf(fail_msg_buf, sizeof(fail_msg_buf), "%s:%d: ",
                           file, line);
        va_list ap;
        va_start(ap, fmt);
        if (off > 0 && (size_t)off < sizeof(fail_msg_buf))
            vsnprintf(fail_msg_buf + off, sizeof(fail_msg_buf) - (size_t)off,
                      fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&fail_mutex);
}

void cs_test_reset(void)
{
    pthread_mutex_lock(&fail_mutex);
    fail_count = 0;
    fail_msg_buf[0] = '\0';
    pthread_mutex_unlock(&fail_mutex);
}

int cs_test_failures(void)
{
    pthread_mutex_lock(&fail_mutex);
    int n = fail_count;
    pthread_mutex_unlock(&fail_mutex);
    return n;
}

void cs_test_assert_clean_at(const char *file, int line)
{
    char msg[1024];
    pthread_mutex_lock(&fail_mutex);
    int n = fail_count;
    snprintf(msg, sizeof(msg), "%s", fail_msg_buf);
    pthread_mutex_unlock(&fail_mutex);
    if (n != 0) {
        print_error("%d check(s) failed inside tasks; first: %s\n", n, msg);
        _fail(file, line);
    }
}

const char *cs_test_code_name(int code)
{
    return code == 0 ? "0" : cs_err_name(code);
}

void cs_trace_init(cs_trace *t)
{
    t->buf[0] = '\0';
    t->len = 0;
}

void cs_trace_add(cs_trace *t, const char *fmt, ...)
{
    size_t room = sizeof(t->buf) - t->len;
    if (t->len > 0 && room > 1) {
        t->buf[t->len++] = ' ';
        t->buf[t->len] = '\0';
        room--;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < room ? (size_t)n : room - 1;
}

int cs_test_run(const char *group, const struct CMUnitTest *tests, size_t n,
                int argc, char **argv)
{
    /* A write to a closed pipe must fail with EPIPE, not kill the runner. */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}
