/*
 * bench_server.h - the servers some benches run as child processes,
 * private to bench/ (bench_echo, bench_trace): start one that prints
 * "listening on 127.0.0.1:PORT" (examples/echo_server.c, started with port
 * 0), connect to it on loopback, and a watchdog that kills the children
 * and ends the bench when its alarm() goes off.
 */
#ifndef CS_BENCH_SERVER_H
#define CS_BENCH_SERVER_H

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BENCH_MAX_CHILDREN = 2 };

/* The children the watchdog kills (0: none), and the bench's name. */
static volatile pid_t bench_children[BENCH_MAX_CHILDREN];
static const char *bench_watchdog_prog;

/* SIGALRM: the run took longer than its bound.  Async-signal-safe: kill,
 * strlen and write, then _exit. */
static void bench_watchdog(int sig)
{
    static const char msg[] = ": time bound exceeded\n";
    (void)sig;
    for (int i = 0; i < BENCH_MAX_CHILDREN; i++)
        if (bench_children[i] > 0)
            kill(bench_children[i], SIGKILL);
    if (write(STDERR_FILENO, bench_watchdog_prog,
              strlen(bench_watchdog_prog)) < 0 ||
        write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(1);
}

/* Bounds the whole run to secs seconds (and ignores SIGPIPE: a server
 * that died shows as a failed send, not as the bench's death). */
static inline void bench_watchdog_arm(const char *prog, unsigned secs)
{
    bench_watchdog_prog = prog;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, bench_watchdog);
    alarm(secs);
}

/*
 * Starts `path 0` with its stdout on a pipe, setup(arg) run first in the
 * child (when not NULL), and reads its "listening on 127.0.0.1:PORT"
 * line.  Returns the port and the child in *pid, or -1 with a line on
 * stderr.
 */
static inline int bench_server_start(const char *prog, const char *path,
                                     void (*setup)(void *), void *arg,
                                     pid_t *pid)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    *pid = fork();
    if (*pid == 0) {
        if (setup)
            setup(arg);
        dup2(p[1], STDOUT_FILENO);
        execl(path, path, "0", (char *)NULL);
        fprintf(stderr, "%s: cannot run '%s': %s\n", prog, path,
                strerror(errno));
        _exit(127);
    }
    close(p[1]);
    if (*pid < 0) {
        close(p[0]);
        return -1;
    }
    char line[128];
    size_t got = 0;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    while (got < sizeof line - 1 && !memchr(line, '\n', got) &&
           poll(&pfd, 1, 10000) == 1) {
        ssize_t n = read(p[0], line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    line[got] = '\0';
    close(p[0]); /* the server prints nothing more on stdout */
    int port;
    if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1) {
        fprintf(stderr, "%s: '%s' did not say where it listens\n", prog, path);
        return -1;
    }
    return port;
}

/* A blocking TCP connection to 127.0.0.1:port with TCP_NODELAY and send
 * and receive timeouts of timeout_s; the fd, or -1. */
static inline int bench_connect(int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

#endif
