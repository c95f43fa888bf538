/*
 * bench_echo.c - echo requests/s of coscope's echo server against a plain
 * epoll echo server, on loopback.
 *
 * Two servers run as child processes of this bench, one thread each:
 *   coscope  examples/echo_server.c (built as bench_echo_server), started
 *            with port 0; its "listening on 127.0.0.1:PORT" line is read
 *            from a pipe; stopped with SIGTERM and expected to exit 0;
 *   epoll    plain_serve() below: edge-triggered, non-blocking, one
 *            thread, the textbook loop a C programmer would write.
 * The load generator is this process: blocking sockets, ping-pong of a
 * 64-byte message (one request in flight per connection) for a fixed time,
 * at 1 and 50 connections, driven by at most two threads (a thread sends on
 * each of its connections, then reads each echo), so that the load
 * generator does not crowd the server off a two-core machine.
 *
 * Each point's time is cut into slices run in pairs, epoll then coscope,
 * then coscope then epoll, and so on: requests/s is each server's total
 * over its slices, and the ratio is the median of the pairs' ratios, which
 * holds when the machine's speed drifts during the run.  Everything is
 * bounded: socket timeouts of 5 s and an alarm() over the whole run.
 *
 * Target (issue 3): coscope >= 0.9x the epoll server's requests/s.  Also
 * printed: each server's CPU time per request (from /proc/PID/schedstat),
 * which depends less than requests/s on how fast the kernel wakes threads
 * on a busy machine.
 *
 * Options: --quick, -n MS (measurement time per point and server, default
 * 2000), --reps R (slices per point, default 10), --server PATH (the
 * coscope echo server binary),
 * --no-pin (by default, with two CPUs or more, the servers run on CPU 0 and
 * the load threads on CPU 1: the same placement for both servers, where
 * unpinned runs swing by 4x at one connection as the kernel moves threads).
 */
#include "bench_server.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#ifndef BENCH_ECHO_SERVER
#define BENCH_ECHO_SERVER "./bench_echo_server"
#endif

enum {
    MSG_SIZE = 64,
    IO_TIMEOUT_S = 5,
    MAX_CONNS = 256,
    LOAD_THREADS = 2,
    MAX_SLICES = 100
};

static const char *prog = "bench_echo";

static int pin = 1; /* servers on CPU 0, load on CPU 1 (if 2+ CPUs) */

/* Pins the calling thread (and what it forks or execs) to one CPU. */
static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pin)
        sched_setaffinity(0, sizeof set, &set);
}

/* ---- the plain epoll echo server --------------------------------------- */

typedef struct plain_conn {
    int fd;          /* non-blocking socket */
    size_t off, len; /* bytes of buf still to write: [off, len) */
    char buf[16384]; /* last bytes read */
} plain_conn;

/* Writes what is pending: 0 all written, 1 would block, -1 error. */
static int plain_flush(plain_conn *c)
{
    while (c->off < c->len) {
        ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 1 : -1;
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    return 0;
}

/* Edge-triggered: echo until read or write would block. */
static void plain_io(plain_conn *c)
{
    for (;;) {
        int f = plain_flush(c);
        if (f > 0)
            return; /* EPOLLOUT will call us again */
        if (f < 0)
            break;
        ssize_t n = read(c->fd, c->buf, sizeof c->buf);
        if (n > 0) {
            c->len = (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        break; /* EOF or error */
    }
    close(c->fd); /* also leaves the epoll set */
    free(c);
}

static void plain_accept(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an aborted connection */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        plain_conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                 .data.ptr = c};
        if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        plain_io(c); /* data may already be there */
    }
}

static _Noreturn void plain_serve(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("bench_echo: epoll server");
        _exit(1);
    }
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr)
                plain_io(evs[i].data.ptr);
            else
                plain_accept(ep, lfd);
        }
    }
}

/* ---- starting and stopping the servers --------------------------------- */

typedef struct server {
    const char *name; /* "epoll" or "coscope" */
    pid_t pid;        /* child process */
    int port;         /* where it listens */
} server;

static int start_plain(server *s)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, SOMAXCONN) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    s->pid = fork();
    if (s->pid == 0) {
        pin_to(0);
        plain_serve(lfd);
    }
    close(lfd);
    return s->pid > 0 ? 0 : -1;
}

static void pin_server(void *arg)
{
    (void)arg;
    pin_to(0);
}

static int start_coscope(server *s, const char *path)
{
    s->port = bench_server_start(prog, path, pin_server, NULL, &s->pid);
    return s->port < 0 ? -1 : 0;
}

/* SIGTERMs the server and reaps it; returns 0 if it ended as expected
 * (coscope: exit 0 after a clean shutdown; epoll: killed by SIGTERM). */
static int stop_server(server *s)
{
    int st = 0;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            if (strcmp(s->name, "coscope") == 0 && WIFEXITED(st) &&
                WEXITSTATUS(st) == 0)
                return 0;
            if (strcmp(s->name, "epoll") == 0 && WIFSIGNALED(st) &&
                WTERMSIG(st) == SIGTERM)
                return 0;
            fprintf(stderr, "%s: %s server ended with status 0x%x\n", prog,
                    s->name, st);
            return -1;
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    fprintf(stderr, "%s: %s server did not stop on SIGTERM\n", prog, s->name);
    return -1;
}

/* ---- the load generator ------------------------------------------------ */

typedef struct load {
    int port;                  /* server port */
    atomic_int stop;           /* set when the time is up */
    atomic_int failed;         /* a connection failed */
    pthread_barrier_t barrier; /* all connected: start */
} load;

typedef struct load_thread {
    load *l;      /* shared state */
    int nfd;      /* connections this thread drives */
    long count;   /* round trips completed */
    pthread_t id; /* the thread */
} load_thread;

static int recv_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/*
 * One round on each of the thread's connections: send the message on every
 * one, then receive every echo.  Each connection has one request in flight
 * at a time (ping-pong), but a thread drives several, so that 50
 * connections need not be 50 threads competing with the server for the
 * machine's two cores.  Returns 0, or -1 on an error or a wrong echo.
 */
static int round_trip(const int *fds, int nfd, char *msg, char *back)
{
    for (int i = 0; i < nfd; i++)
        if (send(fds[i], msg, MSG_SIZE, MSG_NOSIGNAL) != MSG_SIZE)
            return -1;
    for (int i = 0; i < nfd; i++)
        if (recv_all(fds[i], back, MSG_SIZE) != 0 ||
            memcmp(msg, back, MSG_SIZE) != 0)
            return -1;
    return 0;
}

static void *load_run(void *arg)
{
    load_thread *t = arg;
    char msg[MSG_SIZE], back[MSG_SIZE];
    int fds[MAX_CONNS];
    int nfd = 0;
    memset(msg, 'x', sizeof msg);
    for (; nfd < t->nfd; nfd++) {
        fds[nfd] = bench_connect(t->l->port, IO_TIMEOUT_S);
        if (fds[nfd] < 0) {
            atomic_store(&t->l->failed, 1);
            break;
        }
    }
    pthread_barrier_wait(&t->l->barrier);
    while (nfd == t->nfd &&
           !atomic_load_explicit(&t->l->stop, memory_order_relaxed)) {
        if (round_trip(fds, nfd, msg, back) != 0) {
            atomic_store(&t->l->failed, 1);
            break;
        }
        t->count += nfd;
    }
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    return NULL;
}

/* Drives the server at port with conns connections spread over at most
 * LOAD_THREADS threads for ms milliseconds; stores the requests completed
 * and the time taken.  Returns 0, or -1 if a connection failed. */
static int drive(int port, int conns, long ms, long *requests,
                 int64_t *elapsed_ns)
{
    load l = {.port = port};
    load_thread th[LOAD_THREADS];
    int nth = conns < LOAD_THREADS ? conns : LOAD_THREADS;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pin) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(1, &set);
        pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    }
    pthread_barrier_init(&l.barrier, NULL, (unsigned)nth + 1);
    for (int i = 0; i < nth; i++) {
        th[i] = (load_thread){.l = &l, .nfd = conns / nth + (i < conns % nth)};
        if (pthread_create(&th[i].id, &attr, load_run, &th[i]) != 0) {
            fprintf(stderr, "%s: cannot start load threads\n", prog);
            exit(1); /* cannot happen short of resource exhaustion */
        }
    }
    pthread_barrier_wait(&l.barrier);
    int64_t t0 = bench_now_ns();
    struct timespec d = {.tv_sec = ms / 1000,
                         .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
    atomic_store(&l.stop, 1);
    int64_t t1 = bench_now_ns();
    long total = 0;
    for (int i = 0; i < nth; i++) {
        pthread_join(th[i].id, NULL);
        total += th[i].count;
    }
    pthread_barrier_destroy(&l.barrier);
    pthread_attr_destroy(&attr);
    *requests = total;
    *elapsed_ns = t1 - t0;
    return atomic_load(&l.failed) ? -1 : 0;
}

/* ---- main -------------------------------------------------------------- */

/* What one server did at one connection count, summed over the slices. */
typedef struct tally {
    long requests;  /* requests completed */
    int64_t ns;     /* time the load ran */
    int64_t cpu_ns; /* server CPU time, or -1 if unknown */
} tally;

static double rps_of(const tally *t)
{
    return t->ns > 0 ? (double)t->requests * 1e9 / (double)t->ns : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reports coscope (cs) against epoll (ep); ratios[] holds the coscope/epoll
 * ratio of each slice pair, whose median is the ratio reported. */
static void report(int conns, const tally *cs, const tally *ep, double *ratios,
                   int n)
{
    char fig[64], v[64], b[64], r[64];
    qsort(ratios, (size_t)n, sizeof *ratios, cmp_double);
    double ratio = n % 2 ? ratios[n / 2]
                         : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
    printf("%d conn: coscope %.0f req/s, epoll %.0f req/s, median pair "
           "ratio %.2fx (range %.2f-%.2f)\n",
           conns, rps_of(cs), rps_of(ep), ratio, ratios[0], ratios[n - 1]);
    bench_row(bench_fmt(fig, sizeof fig, "echo, %d conn", conns),
              bench_fmt(v, sizeof v, "%.0f req/s", rps_of(cs)),
              bench_fmt(b, sizeof b, "epoll %.0f req/s", rps_of(ep)),
              bench_fmt(r, sizeof r, "%.2fx", ratio), ">= 0.9x", ratio >= 0.9);
    if (cs->cpu_ns < 0 || ep->cpu_ns < 0 || !cs->requests || !ep->requests)
        return;
    double cs_cpu = (double)cs->cpu_ns / (double)cs->requests;
    double ep_cpu = (double)ep->cpu_ns / (double)ep->requests;
    printf("%d conn: server CPU per request: coscope %.0f ns, epoll %.0f ns, "
           "ratio %.2fx\n",
           conns, cs_cpu, ep_cpu, cs_cpu / ep_cpu);
    bench_row(bench_fmt(fig, sizeof fig, "echo CPU/req, %d conn", conns),
              bench_fmt(v, sizeof v, "%.0f ns", cs_cpu),
              bench_fmt(b, sizeof b, "epoll %.0f ns", ep_cpu),
              bench_fmt(r, sizeof r, "%.2fx", cs_cpu / ep_cpu), "(none)", -1);
}

/* One slice: drives server s and adds to its tally; returns req/s or -1. */
static double slice(const server *srv, int conns, long ms, tally *t)
{
    long requests = 0;
    int64_t ns = 0;
    int64_t cpu0 = bench_cpu_ns(srv->pid);
    int rc = drive(srv->port, conns, ms, &requests, &ns);
    int64_t cpu1 = bench_cpu_ns(srv->pid);
    if (rc != 0) {
        fprintf(stderr, "%s: a connection to the %s server failed\n", prog,
                srv->name);
        return -1;
    }
    t->requests += requests;
    t->ns += ns;
    if (cpu0 < 0 || cpu1 < 0 || t->cpu_ns < 0)
        t->cpu_ns = -1;
    else
        t->cpu_ns += cpu1 - cpu0;
    double rps = (double)requests * 1e9 / (double)ns;
    printf("  %2d conn, %-7s: %.0f req/s, server CPU %.0f ns/req\n", conns,
           srv->name, rps,
           requests && cpu0 >= 0 ? (double)(cpu1 - cpu0) / requests : -1.0);
    return rps;
}

int main(int argc, char **argv)
{
    bench_opts o;
    int nargs = 0;
    for (int i = 0; i < argc; i++) /* --no-pin is ours alone */
        if (strcmp(argv[i], "--no-pin") == 0)
            pin = 0;
        else
            argv[nargs++] = argv[i];
    bench_parse(nargs, argv, &o, "--server", " [--server PATH] [--no-pin]");
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) != 0 ||
        !CPU_ISSET(0, &cpus) || !CPU_ISSET(1, &cpus))
        pin = 0;
    long ms = bench_n(&o, 200, 2000);
    int slices = bench_reps(&o, 1, 10);
    if (slices > MAX_SLICES)
        slices = MAX_SLICES;
    const int conn_counts[2] = {1, o.quick ? 4 : 50};
    const char *path = o.extra ? o.extra : BENCH_ECHO_SERVER;

    bench_watchdog_arm(
        prog, (unsigned)(4 * (ms / 1000 + slices * (IO_TIMEOUT_S + 1)) + 30));

    server srv[2] = {{.name = "epoll"}, {.name = "coscope"}};
    if (start_plain(&srv[0]) != 0) {
        perror("bench_echo: cannot start the epoll server");
        return 1;
    }
    bench_children[0] = srv[0].pid;
    if (start_coscope(&srv[1], path) != 0) {
        stop_server(&srv[0]);
        return 1;
    }
    bench_children[1] = srv[1].pid;
    printf("echo: %d-byte ping-pong, %ld ms per point in %d slices; epoll "
           "server on port %d, coscope server (%s) on port %d; %s\n",
           MSG_SIZE, ms, slices, srv[0].port, path, srv[1].port,
           pin ? "servers pinned to CPU 0, load to CPU 1" : "not pinned");

    int err = 0;
    double ratios[2][MAX_SLICES];
    tally tallies[2][2]; /* [conn count][server] */
    memset(tallies, 0, sizeof tallies);
    for (int c = 0; c < 2 && !err; c++) {
        for (int k = 0; k < slices && !err; k++) {
            double rps[2];
            for (int i = 0; i < 2 && !err; i++) {
                int s = (i + k) % 2; /* alternate which server goes first */
                rps[s] = slice(&srv[s], conn_counts[c], ms / slices,
                               &tallies[c][s]);
                err = rps[s] < 0;
            }
            if (!err)
                ratios[c][k] = rps[1] / rps[0];
        }
    }
    for (int s = 0; s < 2; s++)
        err |= stop_server(&srv[s]) != 0;
    if (err)
        return 1;
    for (int c = 0; c < 2; c++)
        report(conn_counts[c], &tallies[c][1], &tallies[c][0], ratios[c],
               slices);
    return 0;
}
