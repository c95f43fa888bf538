/*
 * echo_server.c - a TCP echo server on coscope, one task per connection.
 *
 *   echo_server [PORT]
 *
 * Listens on 127.0.0.1:PORT (default 0: the kernel picks a port) and prints
 * "listening on 127.0.0.1:PORT".  The main task accepts connections with
 * cs_accept() and spawns a task for each, which echoes with cs_read() and
 * cs_write_all() until the peer closes.  SIGINT and SIGTERM are read from a
 * signalfd by a task of their own, which cancels the accept loop; cs_run()
 * then cancels the connection tasks and waits for them, as asyncio.run()
 * does, so the server exits 0 with every socket closed.
 */
#include <coscope.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct server {
    int listen_fd;     /* listening socket */
    int signal_fd;     /* SIGINT/SIGTERM, or -1 */
    cs_task *acceptor; /* the accept loop, cancelled on a signal */
    int signo;         /* the signal that stopped the server, or 0 */
} server;

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    ssize_t n;

    while ((n = cs_read(fd, buf, sizeof buf)) > 0) {
        if (cs_write_all(fd, buf, (size_t)n) < 0)
            break;
    }
    cs_forget_fd(fd);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    server *s = arg;
    for (;;) {
        int fd = cs_accept(s->listen_fd, NULL, NULL);
        if (fd == CS_ECANCELLED)
            return NULL;
        if (fd < 0) {
            fprintf(stderr, "echo_server: accept: %s\n", cs_strerror(fd));
            continue; /* e.g. ECONNABORTED or EMFILE: keep serving */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs_task *t = cs_spawn("echo_conn", echo_conn, (void *)(intptr_t)fd);
        if (!t) {
            cs_forget_fd(fd);
            close(fd);
            continue;
        }
        cs_detach(t);
    }
}

static void *signal_watch(void *arg)
{
    server *s = arg;
    struct signalfd_siginfo si;
    ssize_t n = cs_read(s->signal_fd, &si, sizeof si);
    if (n == (ssize_t)sizeof si) {
        s->signo = (int)si.ssi_signo;
        cs_cancel(s->acceptor);
    }
    return NULL;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *server_main(void *arg)
{
    server *s = arg;
    cs_task *watcher = NULL;
    struct sockaddr_in a;
    socklen_t len = sizeof a;

    /* Said from inside the loop: once this line is out, the process can
     * be inspected (its coscope segment exists) as well as connected to. */
    if (getsockname(s->listen_fd, (struct sockaddr *)&a, &len) == 0)
        printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    s->acceptor = cs_spawn("accept_loop", accept_loop, s);
    if (!s->acceptor)
        cs_raise(CS_ENOMEM, "cannot start the accept loop");
    if (s->signal_fd >= 0) {
        watcher = cs_spawn("signal_watch", signal_watch, s);
        if (watcher)
            cs_detach(watcher); /* cs_run cancels it if no signal comes */
    }
    int rc = cs_await(s->acceptor, NULL);
    if (rc != 0 && !(rc == CS_ECANCELLED && s->signo))
        cs_raise(rc, "accept loop failed: %s", cs_strerror(rc));
    if (s->signo)
        fprintf(stderr, "echo_server: %s, shutting down\n",
                strsignal(s->signo));
    cs_forget_fd(s->listen_fd);
    close(s->listen_fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: echo_server [PORT]\n");
        return 2;
    }
    int port = argc == 2 ? atoi(argv[1]) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "echo_server: invalid port '%s'\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that goes away is an EPIPE */

    server s = {.signal_fd = -1};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) == 0)
        s.signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s.signal_fd < 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL); /* no clean shutdown then */
        fprintf(stderr, "echo_server: no signalfd; ^C ends it abruptly\n");
    }

    s.listen_fd = listen_on(port);
    if (s.listen_fd < 0) {
        perror("echo_server: cannot listen on 127.0.0.1");
        return 1;
    }
    int rc = cs_run(server_main, &s, NULL);
    if (s.signal_fd >= 0)
        close(s.signal_fd);
    if (rc != 0) {
        const char *msg = cs_last_error();
        fprintf(stderr, "echo_server: %s\n", msg ? msg : cs_strerror(rc));
        return 1;
    }
    return 0;
}
