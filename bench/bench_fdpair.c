/*
 * bench_fdpair.c - an fd round trip between two tasks over a socketpair,
 * against the same round trip in a plain edge-triggered epoll loop.
 *
 * coscope: task A writes a byte to its end and reads the answer; task B
 * reads it and writes it back.  Every read first sees EAGAIN, so each
 * round trip is two waits, two polls and two wake-ups: the I/O path of
 * the echo server (try, EAGAIN, wait, poller, dispatch, wake) without the
 * network and without its races, so that bench/callgrind.sh counts it
 * exactly.  Baseline: one thread, both ends registered edge-triggered in
 * one epoll set, making the tasks' system calls (write, read to EAGAIN,
 * epoll_wait, read, write, read to EAGAIN, epoll_wait, read) in their
 * order, through libc.  Both in this binary, best of --reps.
 *
 * Options: --quick, -n N (round trips per repetition, default 200,000),
 * --reps R (default 5), --only coscope|epoll (one side, e.g. under
 * callgrind).
 */
#include "bench.h"

#include <coscope.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "bench_fdpair";

static void die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
    exit(1);
}

/* ---- coscope: two tasks ------------------------------------------------ */

static char failed_mark;
#define FAILED ((void *)&failed_mark) /* a task's result when a call failed */

struct pair {
    int fd[2]; /* socketpair ends: A's, B's */
    long n;    /* round trips */
};

static void *task_b(void *arg)
{
    struct pair *p = arg;
    char c;
    for (long i = 0; i < p->n; i++)
        if (cs_read(p->fd[1], &c, 1) != 1 || cs_write(p->fd[1], &c, 1) != 1)
            return FAILED;
    return NULL;
}

static void *task_a(void *arg)
{
    struct pair *p = arg;
    cs_task *b = cs_spawn("b", task_b, p);
    void *rb = FAILED;
    char c = 'x';
    for (long i = 0; i < p->n; i++)
        if (cs_write(p->fd[0], &c, 1) != 1 || cs_read(p->fd[0], &c, 1) != 1)
            return FAILED;
    if (!b || cs_await(b, &rb) != 0 || rb != NULL)
        return FAILED;
    return NULL;
}

static double bench_coscope(long n, int reps)
{
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        struct pair p = {{-1, -1}, n};
        void *r = FAILED;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p.fd) < 0)
            die("socketpair");
        int64_t t0 = bench_now_ns();
        if (cs_run(task_a, &p, &r) != 0 || r != NULL) {
            fprintf(stderr, "%s: the coscope round trips failed\n", prog);
            exit(1);
        }
        double ns = (double)(bench_now_ns() - t0) / (double)n;
        cs_close(p.fd[0]);
        cs_close(p.fd[1]);
        if (rep == 0 || ns < best)
            best = ns;
    }
    return best;
}

/* ---- plain epoll: one thread ------------------------------------------- */

/* A read that must find nothing: the reader is about to wait. */
static void plain_read_eagain(int fd)
{
    char c;
    if (read(fd, &c, 1) >= 0 || errno != EAGAIN)
        die("read to EAGAIN");
}

static void plain_wait(int ep, int want)
{
    struct epoll_event ev;
    int n;
    while ((n = epoll_wait(ep, &ev, 1, -1)) < 0 && errno == EINTR)
        ;
    if (n != 1 || (int)ev.data.u32 != want)
        die("epoll_wait");
}

static double bench_epoll(long n, int reps)
{
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        int fd[2], ep = epoll_create1(EPOLL_CLOEXEC);
        char c = 'x';
        if (ep < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       fd) < 0)
            die("epoll_create1/socketpair");
        for (int i = 0; i < 2; i++) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                     .data.u32 = (uint32_t)i};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev) < 0)
                die("epoll_ctl");
        }
        plain_wait(ep, 0); /* the first edges: both writable */
        plain_wait(ep, 1);
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < n; i++) { /* the tasks' calls, in order */
            if (write(fd[0], &c, 1) != 1)
                die("write");
            plain_read_eagain(fd[0]);
            plain_wait(ep, 1);
            if (read(fd[1], &c, 1) != 1 || write(fd[1], &c, 1) != 1)
                die("read/write");
            plain_read_eagain(fd[1]);
            plain_wait(ep, 0);
            if (read(fd[0], &c, 1) != 1)
                die("read");
        }
        double ns = (double)(bench_now_ns() - t0) / (double)n;
        close(fd[0]);
        close(fd[1]);
        close(ep);
        if (rep == 0 || ns < best)
            best = ns;
    }
    return best;
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_parse(argc, argv, &o, "--only", " [--only coscope|epoll]");
    long n = bench_n(&o, 2000, 200000);
    int reps = bench_reps(&o, 1, 5);
    int do_cs = bench_only(&o, "coscope");
    int do_ep = bench_only(&o, "epoll");
    if (!do_cs && !do_ep)
        bench_usage(argv[0], " [--only coscope|epoll]");

    printf("fd round trip over a socketpair: %ld round trips, best of %d\n", n,
           reps);
    double cs = do_cs ? bench_coscope(n, reps) : 0;
    double ep = do_ep ? bench_epoll(n, reps) : 0;
    bench_printf_if(do_cs, "coscope, two tasks:  %.0f ns\n", cs);
    bench_printf_if(do_ep, "plain epoll loop:    %.0f ns\n", ep);
    if (!do_cs || !do_ep)
        return 0;
    char v[64], b[64], r[64];
    printf("ratio coscope/epoll: %.2fx\n", cs / ep);
    bench_row("fd round trip, two tasks",
              bench_fmt(v, sizeof v, "%.0f ns", cs),
              bench_fmt(b, sizeof b, "epoll loop %.0f ns", ep),
              bench_fmt(r, sizeof r, "%.2fx", cs / ep), "(none)", -1);
    return 0;
}
