/*
 * cs_test.c - failure recording, traces and the shared main for the
 * runtime tests (see cs_test.h).
 */
#include "cs_test.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t fail_mutex = PTHREAD_MUTEX_INITIALIZER;
static int fail_count;          /* failures since the last reset */
static char fail_msg_buf[1024]; /* the first of them, "file:line: what" */

void cs_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    pthread_mutex_lock(&fail_mutex);
    if (fail_count++ == 0) {
        int off = snprintf(fail_msg_buf, sizeof(fail_msg_buf), "%s:%d: ", file,
                           line);
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

void cs_test_run_ok_at(cs_fn fn, void *arg, const char *file, int line)
{
    int rc = cs_run(fn, arg, NULL);

    cs_test_assert_clean_at(file, line);
    if (rc != 0) {
        print_error("cs_run returned %d (%s), want 0: %s\n", rc,
                    cs_test_code_name(rc),
                    cs_last_error() ? cs_last_error() : "");
        _fail(file, line);
    }
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

void cs_test_log_init(cs_test_log *t)
{
    t->buf[0] = '\0';
    t->len = 0;
}

void cs_test_log_add(cs_test_log *t, const char *fmt, ...)
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

/* Marks in open[] which fds below cap are open; returns how many are. */
static int open_fds(unsigned char *open, int cap)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int self = dirfd(d);
    struct dirent *e;
    memset(open, 0, (size_t)cap);
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || fd == self || fd < 0 || fd >= cap)
            continue;
        open[fd] = 1;
        n++;
    }
    closedir(d);
    return n;
}

int cs_test_run(const char *group, const struct CMUnitTest *tests, size_t n,
                int argc, char **argv)
{
    enum { FD_CAP = 4096 };
    static unsigned char before[FD_CAP], after[FD_CAP];

    /* A write to a closed pipe must fail with EPIPE, not kill the runner. */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    int nbefore = open_fds(before, FD_CAP);
    int rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    /* Neither the runtime nor the tests may leave fds open. */
    if (nbefore >= 0 && open_fds(after, FD_CAP) > nbefore) {
        for (int fd = 0; fd < FD_CAP; fd++) {
            if (!after[fd] || before[fd])
                continue;
            char link[64], target[256];
            snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
            ssize_t len = readlink(link, target, sizeof(target) - 1);
            target[len > 0 ? len : 0] = '\0';
            fprintf(stderr, "%s: fd %d left open: %s\n", group, fd, target);
        }
        rc = rc ? rc : 1;
    }
    return rc;
}

int cs_test_crash_child(cs_fn fn, void *arg, char *out, size_t cap, int *child)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    int err[2], st = 0;
    size_t got = 0;
    ssize_t n;

    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(err[0]);
        dup2(err[1], 2);
        cs_run(fn, arg, NULL);
        _exit(0);
    }
    close(err[1]);
    while (got < cap - 1 && (n = read(err[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(err[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (child)
        *child = (int)pid;
    return st;
}
