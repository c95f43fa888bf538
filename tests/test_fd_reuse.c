/*
 * test_fd_reuse.c - fds closed with plain close() (or replaced by dup2)
 * whose numbers come back from socketpair(), pipe(), socket()+accept()
 * and open(): the next cs_read/cs_write/cs_accept/cs_wait_fd on the new
 * file works, in rounds, with no hang and no lost wake-up; a task parked
 * on a file another task closes is woken with CS_EBADF.
 *
 * Built twice: against libcoscope.so (runtime_fd_reuse) and against
 * libcoscope.a (runtime_fd_reuse_static), since the close() the program
 * calls is a different symbol in each link.  Every wait is bounded by
 * cs_wait_for, so a lost wake-up fails the test instead of hanging it;
 * an alarm bounds a read that would block the whole loop.
 */
#include "cs_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUNDS 20
#define BOUND CS_SEC(5) /* a wait that long is a lost wake-up */

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    alarm(60); /* a read that blocks the loop cannot be bounded otherwise */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

/* Reads one byte from fd (parks first: the writer has not written yet). */
static void *reader(void *arg)
{
    int fd = (int)CS_I(arg);
    char c = 0;
    ssize_t r = cs_read(fd, &c, 1);
    return CS_P(r == 1 ? (unsigned char)c : 0x100 + (r < 0 ? -r : 0));
}

/* Yields so that the reader parks, then writes one byte to fd. */
static void *writer(void *arg)
{
    int fd = (int)CS_I(arg);
    cs_yield();
    cs_yield();
    return CS_P(cs_write(fd, "x", 1) == 1);
}

/* A reader parked on rfd is woken by a write to wfd. */
static void check_pair(int rfd, int wfd)
{
    cs_task *r = cs_spawn("reader", reader, CS_P(rfd));
    cs_task *w = cs_spawn("writer", writer, CS_P(wfd));
    void *got = NULL, *wrote = NULL;

    CS_CHECK(r && w);
    CS_CHECK_RC(cs_wait_for(r, BOUND, &got), 0);
    CS_CHECK_RC(cs_wait_for(w, BOUND, &wrote), 0);
    CS_CHECK_INT_EQ(CS_I(got), 'x');
    CS_CHECK_INT_EQ(CS_I(wrote), 1);
}

/* ---- socketpair and pipe, closed with close() ----------------------------- */

static void *socketpair_rounds(void *arg)
{
    int first[2] = {-1, -1};
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int sv[2];
        /* blocking sockets: the runtime must make the new file
         * non-blocking, or the reader's read() blocks the whole loop */
        CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        if (i == 0)
            memcpy(first, sv, sizeof(first));
        else /* the same numbers, or this tests nothing */
            CS_CHECK(sv[0] == first[0] && sv[1] == first[1]);
        check_pair(sv[0], sv[1]);
        check_pair(sv[1], sv[0]);
        close(sv[0]);
        close(sv[1]);
    }
    return NULL;
}

static void test_fd_reuse_socketpair_rounds(void **state)
{
    (void)state;
    cs_test_run_ok(socketpair_rounds, NULL);
}

static void *pipe_after_socketpair(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int sv[2], p[2];
        CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        check_pair(sv[0], sv[1]);
        close(sv[0]);
        close(sv[1]);
        CS_CHECK_INT_EQ(pipe(p), 0); /* blocking, the same numbers */
        CS_CHECK(p[0] == sv[0] && p[1] == sv[1]);
        check_pair(p[0], p[1]);
        close(p[0]);
        close(p[1]);
    }
    return NULL;
}

static void test_fd_reuse_pipe_after_socketpair(void **state)
{
    (void)state;
    cs_test_run_ok(pipe_after_socketpair, NULL);
}

/* ---- dup2 over a registered fd ---------------------------------------------- */

static void *dup2_replaces(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int a[2], b[2];
        CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
        CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
        check_pair(a[0], a[1]);                  /* a[0] registered */
        CS_CHECK_INT_EQ(dup2(b[0], a[0]), a[0]); /* now b's file */
        close(b[0]);
        check_pair(a[0], b[1]); /* b's peer wakes the reader */
        close(a[0]);
        close(a[1]);
        close(b[1]);
    }
    return NULL;
}

static void test_fd_reuse_dup2_replaces(void **state)
{
    (void)state;
    cs_test_run_ok(dup2_replaces, NULL);
}

/* dup2 keeps the old file open under another number: its edges, still
 * registered under the old number, must not wake the new file's reader. */
static void *old_file_kept_open(void *arg)
{
    int a[2], b[2], keep;
    cs_task *r;
    void *got = NULL;
    (void)arg;

    CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    check_pair(a[0], a[1]);
    keep = dup(a[0]); /* the old file lives on */
    CS_CHECK(keep >= 0);
    CS_CHECK_INT_EQ(dup2(b[0], a[0]), a[0]);
    r = cs_spawn("reader", reader, CS_P(a[0]));
    cs_yield();                                 /* parked on b's file */
    CS_CHECK_INT_EQ(cs_write(a[1], "y", 1), 1); /* an edge of the old */
    for (int i = 0; i < 5; i++)
        cs_yield();
    CS_CHECK(!cs_task_done(r)); /* not woken by the old file */
    CS_CHECK_INT_EQ(cs_write(b[1], "x", 1), 1);
    CS_CHECK_RC(cs_wait_for(r, BOUND, &got), 0);
    CS_CHECK_INT_EQ(CS_I(got), 'x');
    close(keep);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return NULL;
}

static void test_fd_reuse_old_file_kept_open(void **state)
{
    (void)state;
    cs_test_run_ok(old_file_kept_open, NULL);
}

/* ---- accept, and a regular file, under reused numbers ---------------------- */

struct srv {
    int lfd;
    struct sockaddr_in sa;
};

static void *connector(void *arg)
{
    struct srv *s = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* blocking, reused number */
    int r;

    if (fd < 0)
        return CS_P(0);
    r = cs_connect(fd, (struct sockaddr *)&s->sa, sizeof(s->sa));
    if (r == 0)
        r = cs_write(fd, "x", 1) == 1 ? 0 : -1;
    close(fd);
    return CS_P(r == 0);
}

static void *accept_rounds(void *arg)
{
    struct srv s = {.lfd = -1};
    socklen_t len = sizeof(s.sa);
    (void)arg;

    for (int i = 0; i < ROUNDS; i++) {
        cs_task *c;
        void *ok = NULL, *got = NULL;
        int conn;
        s.lfd = socket(AF_INET, SOCK_STREAM, 0);
        CS_CHECK(s.lfd >= 0);
        s.sa.sin_family = AF_INET;
        s.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s.sa.sin_port = 0;
        CS_CHECK_INT_EQ(bind(s.lfd, (struct sockaddr *)&s.sa, sizeof(s.sa)),
                        0);
        CS_CHECK_INT_EQ(listen(s.lfd, 8), 0);
        CS_CHECK_INT_EQ(getsockname(s.lfd, (struct sockaddr *)&s.sa, &len), 0);
        c = cs_spawn("connector", connector, &s);
        conn = cs_accept(s.lfd, NULL, NULL); /* parks until it connects */
        CS_CHECK(conn >= 0);
        {
            cs_task *r = cs_spawn("reader", reader, CS_P(conn));
            CS_CHECK_RC(cs_wait_for(r, BOUND, &got), 0);
        }
        CS_CHECK_INT_EQ(CS_I(got), 'x');
        CS_CHECK_RC(cs_wait_for(c, BOUND, &ok), 0);
        CS_CHECK_INT_EQ(CS_I(ok), 1);
        close(conn);
        close(s.lfd);
        /* the numbers come back as a regular file: reads just work */
        int f = open("/proc/self/stat", O_RDONLY);
        char buf[8];
        CS_CHECK(f >= 0);
        CS_CHECK(cs_read(f, buf, sizeof(buf)) > 0);
        close(f);
    }
    return NULL;
}

static void test_fd_reuse_accept_rounds(void **state)
{
    (void)state;
    cs_test_run_ok(accept_rounds, NULL);
}

/* ---- a waiter whose file another task closes -------------------------------- */

static void *closer(void *arg)
{
    cs_yield();
    close((int)CS_I(arg));
    return NULL;
}

static void *parked_then_closed(void *arg)
{
    int sv[2];
    void *got = NULL;
    (void)arg;

    CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cs_task *r = cs_spawn("reader", reader, CS_P(sv[0]));
    cs_task *c = cs_spawn("closer", closer, CS_P(sv[0]));
    CS_CHECK_RC(cs_wait_for(r, BOUND, &got), 0);
    CS_CHECK_INT_EQ(CS_I(got), 0x100 - CS_EBADF);
    CS_CHECK_RC(cs_await(c, NULL), 0);
    close(sv[1]);
    return NULL;
}

static void test_fd_reuse_parked_reader_woken_by_close(void **state)
{
    (void)state;
    cs_test_run_ok(parked_then_closed, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_fd_reuse_socketpair_rounds, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_fd_reuse_pipe_after_socketpair, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_fd_reuse_dup2_replaces, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_fd_reuse_old_file_kept_open, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_fd_reuse_accept_rounds, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_fd_reuse_parked_reader_woken_by_close,
                                    setup, teardown),
};

CS_TEST_MAIN("fd_reuse", tests)
