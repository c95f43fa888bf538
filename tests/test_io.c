/*
 * test_io.c - fd I/O that suspends the task, not the loop: cs_read,
 * cs_write and cs_write_all over a socketpair and a pipe (payload larger
 * than the pipe buffer), a reader and a writer on one fd, cs_wait_fd
 * readiness (current, not cached) and timeout, cs_accept and cs_connect
 * over loopback TCP, polling while tasks keep yielding, regular files,
 * forgotten fds, and the error paths.
 */
#include "cs_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

/* Closes an fd the loop may know about. */
static void close_fd(int fd)
{
    cs_forget_fd(fd);
    close(fd);
}

/* ---- socketpair --------------------------------------------------------- */

struct ping {
    int fd;
    int rounds;
};

static void *ping_side(void *arg)
{
    struct ping *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        unsigned char b = (unsigned char)i;
        CS_CHECK_INT_EQ(cs_write(p->fd, &b, 1), 1);
        unsigned char r = 0xFF;
        CS_CHECK_INT_EQ(cs_read(p->fd, &r, 1), 1);
        CS_CHECK_INT_EQ(r, (unsigned char)(i + 1));
    }
    return NULL;
}

static void *pong_side(void *arg)
{
    struct ping *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        unsigned char b = 0xFF;
        CS_CHECK_INT_EQ(cs_read(p->fd, &b, 1), 1);
        CS_CHECK_INT_EQ(b, (unsigned char)i);
        b++;
        CS_CHECK_INT_EQ(cs_write(p->fd, &b, 1), 1);
    }
    /* The peer closes: the next read sees end of file. */
    char c;
    CS_CHECK_INT_EQ(cs_read(p->fd, &c, 1), 0);
    return NULL;
}

static void *ping_then_close(void *arg)
{
    struct ping *p = arg;
    ping_side(p);
    close_fd(p->fd);
    return NULL;
}

static void *socketpair_main(void *arg)
{
    (void)arg;
    int sv[2];
    CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct ping a = {sv[0], 200}, b = {sv[1], 200};
    cs_task *t[2] = {cs_spawn("ping", ping_then_close, &a),
                     cs_spawn("pong", pong_side, &b)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    close_fd(sv[1]);
    return NULL;
}

static void test_io_socketpair_ping_pong(void **state)
{
    (void)state;
    cs_test_run_ok(socketpair_main, NULL);
}

/* ---- pipe, payload larger than the pipe buffer -------------------------- */

#define PAYLOAD (1024 * 1024 + 123)

struct bulk {
    int fd;
    unsigned char *buf;
    size_t got;
    ssize_t wrote;
};

static void *bulk_writer(void *arg)
{
    struct bulk *b = arg;
    b->wrote = cs_write_all(b->fd, b->buf, PAYLOAD);
    close_fd(b->fd);
    return NULL;
}

static void *bulk_reader(void *arg)
{
    struct bulk *b = arg;
    for (;;) {
        ssize_t n = cs_read(b->fd, b->buf + b->got, 7000);
        if (n <= 0) {
            CS_CHECK_INT_EQ(n, 0);
            break;
        }
        b->got += (size_t)n;
        if (b->got + 7000 > PAYLOAD + 7000)
            break;
    }
    return NULL;
}

static void *pipe_main(void *arg)
{
    (void)arg;
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    unsigned char *src = malloc(PAYLOAD);
    unsigned char *dst = calloc(1, PAYLOAD + 7000);
    CS_CHECK(src != NULL && dst != NULL);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        return NULL;
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < PAYLOAD; i++) {
        x = x * 1103515245u + 12345u;
        src[i] = (unsigned char)(x >> 16);
    }
    struct bulk w = {p[1], src, 0, 0}, r = {p[0], dst, 0, 0};
    /* One loop thread: if cs_write_all blocked the thread instead of the
     * task, the reader could never drain the pipe and this would hang. */
    cs_task *t[2] = {cs_spawn("writer", bulk_writer, &w),
                     cs_spawn("reader", bulk_reader, &r)};
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    CS_CHECK_INT_EQ(w.wrote, PAYLOAD);
    CS_CHECK_INT_EQ(r.got, PAYLOAD);
    CS_CHECK(memcmp(src, dst, PAYLOAD) == 0);
    close_fd(p[0]);
    free(src);
    free(dst);
    return NULL;
}

static void test_io_pipe_round_trip_larger_than_buffer(void **state)
{
    (void)state;
    cs_test_run_ok(pipe_main, NULL);
}

/* ---- one fd, a reader and a writer at once ----------------------------- */

#define DUPLEX_BYTES (512 * 1024)

struct duplex {
    int fd[2];          /* socketpair */
    unsigned char *out; /* what side 0 sends */
    unsigned char *in;  /* what side 1 received */
    ssize_t sent;
    char reply;
};

static void *duplex_sender(void *arg)
{
    struct duplex *d = arg;
    d->sent = cs_write_all(d->fd[0], d->out, DUPLEX_BYTES); /* fills up */
    return NULL;
}

static void *duplex_reply_reader(void *arg)
{
    struct duplex *d = arg;
    /* Waits to read on the fd the sender is blocked writing to. */
    CS_CHECK_INT_EQ(cs_read(d->fd[0], &d->reply, 1), 1);
    return NULL;
}

static void *duplex_peer(void *arg)
{
    struct duplex *d = arg;
    size_t got = 0;
    while (got < DUPLEX_BYTES) {
        ssize_t n = cs_read(d->fd[1], d->in + got, DUPLEX_BYTES - got);
        CS_CHECK(n > 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CS_CHECK_INT_EQ(cs_write(d->fd[1], "R", 1), 1);
    return NULL;
}

static void *duplex_main(void *arg)
{
    (void)arg;
    struct duplex d = {
        {-1, -1}, malloc(DUPLEX_BYTES), malloc(DUPLEX_BYTES), 0, 0};
    CS_CHECK(d.out != NULL && d.in != NULL);
    CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, d.fd), 0);
    for (size_t i = 0; i < DUPLEX_BYTES; i++)
        d.out[i] = (unsigned char)(i * 7 + i / 251);
    cs_task *t[3] = {cs_spawn("sender", duplex_sender, &d),
                     cs_spawn("reply_reader", duplex_reply_reader, &d), NULL};
    cs_yield(); /* both park on fd[0], one per direction */
    t[2] = cs_spawn("peer", duplex_peer, &d);
    CS_CHECK_RC(cs_gather(t, 3, NULL), 0);
    CS_CHECK_INT_EQ(d.sent, DUPLEX_BYTES);
    CS_CHECK(memcmp(d.out, d.in, DUPLEX_BYTES) == 0);
    CS_CHECK_INT_EQ(d.reply, 'R');
    close_fd(d.fd[0]);
    close_fd(d.fd[1]);
    free(d.out);
    free(d.in);
    return NULL;
}

static void test_io_reader_and_writer_on_one_fd(void **state)
{
    (void)state;
    cs_test_run_ok(duplex_main, NULL);
}

static void *second_reader(void *arg)
{
    int fd = *(int *)arg;
    char c;
    return CS_P((intptr_t)cs_read(fd, &c, 1));
}

static void *two_readers_main(void *arg)
{
    (void)arg;
    /* One task may wait to read an fd at a time; a second is refused. */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    cs_task *a = cs_spawn("reader_a", second_reader, &p[0]);
    cs_yield();
    cs_task *b = cs_spawn("reader_b", second_reader, &p[0]);
    void *rb = NULL;
    CS_CHECK_RC(cs_await(b, &rb), 0);
    CS_CHECK_INT_EQ((intptr_t)rb, CS_EBUSY);
    CS_CHECK_INT_EQ(cs_write(p[1], "x", 1), 1);
    void *ra = NULL;
    CS_CHECK_RC(cs_await(a, &ra), 0);
    CS_CHECK_INT_EQ((intptr_t)ra, 1);
    close_fd(p[0]);
    close_fd(p[1]);
    return NULL;
}

static void test_io_second_reader_is_refused(void **state)
{
    (void)state;
    cs_test_run_ok(two_readers_main, NULL);
}

/* ---- cs_wait_fd --------------------------------------------------------- */

static void *wait_fd_main(void *arg)
{
    (void)arg;
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    int64_t t0 = cs_now_ns();
    CS_CHECK_RC(cs_wait_fd(p[0], CS_READABLE, CS_MSEC(20)), CS_ETIMEDOUT);
    CS_CHECK(cs_now_ns() - t0 >= CS_MSEC(20));
    CS_CHECK_INT_EQ(cs_wait_fd(p[1], CS_WRITABLE, CS_SEC(10)), CS_WRITABLE);
    CS_CHECK_INT_EQ(cs_wait_fd(p[1], CS_WRITABLE, -1), CS_WRITABLE);
    CS_CHECK_INT_EQ(write(p[1], "x", 1), 1);
    CS_CHECK_INT_EQ(cs_wait_fd(p[0], CS_READABLE, CS_SEC(10)), CS_READABLE);
    /* The ready subset: a socket with data is readable and writable. */
    int sv[2];
    CS_CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CS_CHECK_INT_EQ(write(sv[1], "y", 1), 1);
    CS_CHECK_INT_EQ(cs_wait_fd(sv[0], CS_READABLE | CS_WRITABLE, CS_SEC(10)),
                    CS_READABLE | CS_WRITABLE);
    /* Without data the other end is only writable. */
    CS_CHECK_INT_EQ(cs_wait_fd(sv[1], CS_READABLE | CS_WRITABLE, CS_SEC(10)),
                    CS_WRITABLE);
    /* Bad arguments. */
    CS_CHECK_RC(cs_wait_fd(sv[0], 0, 0), CS_EINVAL);
    CS_CHECK_RC(cs_wait_fd(-1, CS_READABLE, 0), CS_EINVAL);
    close_fd(sv[0]);
    close_fd(sv[1]);
    close_fd(p[0]);
    close_fd(p[1]);
    return NULL;
}

static void test_io_wait_fd_ready_and_timeout(void **state)
{
    (void)state;
    cs_test_run_ok(wait_fd_main, NULL);
}

struct delayed_write {
    int fd;
    cs_event *go;
};

static void *write_when_told(void *arg)
{
    struct delayed_write *d = arg;
    CS_CHECK_RC(cs_event_wait(d->go), 0);
    CS_CHECK_INT_EQ(cs_write(d->fd, "w", 1), 1);
    return NULL;
}

static void *wait_fd_wakes_main(void *arg)
{
    (void)arg;
    /* A waiter on an fd is woken by data written by another task. */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    struct delayed_write d = {p[1], cs_event_new()};
    cs_task *w = cs_spawn("writer", write_when_told, &d);
    cs_yield();
    cs_event_set(d.go);
    CS_CHECK_INT_EQ(cs_wait_fd(p[0], CS_READABLE, -1), CS_READABLE);
    char c = 0;
    CS_CHECK_INT_EQ(cs_read(p[0], &c, 1), 1);
    CS_CHECK_INT_EQ(c, 'w');
    CS_CHECK_RC(cs_await(w, NULL), 0);
    cs_event_free(d.go);
    close_fd(p[0]);
    close_fd(p[1]);
    return NULL;
}

static void test_io_wait_fd_woken_by_other_task(void **state)
{
    (void)state;
    cs_test_run_ok(wait_fd_wakes_main, NULL);
}

struct one_byte {
    int fd;
    cs_event *go;
};

static void *write_one_when_told(void *arg)
{
    struct one_byte *o = arg;
    CS_CHECK_RC(cs_event_wait(o->go), 0);
    CS_CHECK_INT_EQ(cs_write(o->fd, "1", 1), 1);
    return NULL;
}

static void *wait_fd_after_drain_main(void *arg)
{
    (void)arg;
    /* Readiness reported by cs_wait_fd is current: once a task has read
     * everything there was, the fd is not readable until more arrives. */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    struct one_byte o = {p[1], cs_event_new()};
    cs_task *w = cs_spawn("writer", write_one_when_told, &o);
    cs_event_set(o.go);
    char c = 0;
    CS_CHECK_INT_EQ(cs_read(p[0], &c, 1), 1); /* waits for the writer */
    CS_CHECK_RC(cs_await(w, NULL), 0);
    CS_CHECK_RC(cs_wait_fd(p[0], CS_READABLE, CS_MSEC(20)), CS_ETIMEDOUT);
    /* And it still wakes when data does come. */
    cs_event_clear(o.go);
    w = cs_spawn("writer", write_one_when_told, &o);
    cs_yield();
    cs_event_set(o.go);
    CS_CHECK_INT_EQ(cs_wait_fd(p[0], CS_READABLE, -1), CS_READABLE);
    CS_CHECK_RC(cs_await(w, NULL), 0);
    CS_CHECK_INT_EQ(cs_read(p[0], &c, 1), 1);
    /* The same for writability: a full pipe is not writable. */
    char block[4096];
    memset(block, 'b', sizeof(block));
    while (write(p[1], block, sizeof(block)) > 0)
        ;
    CS_CHECK_RC(cs_wait_fd(p[1], CS_WRITABLE, CS_MSEC(20)), CS_ETIMEDOUT);
    cs_event_free(o.go);
    close_fd(p[0]);
    close_fd(p[1]);
    return NULL;
}

static void test_io_wait_fd_not_ready_after_drain(void **state)
{
    (void)state;
    cs_test_run_ok(wait_fd_after_drain_main, NULL);
}

/* ---- TCP over loopback -------------------------------------------------- */

struct tcp {
    int listener;
    struct sockaddr_in addr;
    int accepted_nonblock;
    int accepted_cloexec;
    char echoed[64];
};

static void *tcp_server(void *arg)
{
    struct tcp *t = arg;
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    int fd = cs_accept(t->listener, (struct sockaddr *)&peer, &len);
    CS_CHECK(fd >= 0);
    if (fd < 0)
        return NULL;
    CS_CHECK_INT_EQ(peer.sin_family, AF_INET);
    CS_CHECK_INT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    t->accepted_nonblock = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    t->accepted_cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
    char buf[64];
    ssize_t n;
    while ((n = cs_read(fd, buf, sizeof(buf))) > 0)
        CS_CHECK_INT_EQ(cs_write_all(fd, buf, (size_t)n), n);
    CS_CHECK_INT_EQ(n, 0);
    close_fd(fd);
    return NULL;
}

static void *tcp_client(void *arg)
{
    struct tcp *t = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CS_CHECK(fd >= 0);
    CS_CHECK_INT_EQ(cs_connect(fd, (struct sockaddr *)&t->addr,
                               sizeof(t->addr)),
                    0);
    static const char msg[] = "hello over loopback";
    CS_CHECK_INT_EQ(cs_write_all(fd, msg, sizeof(msg)), sizeof(msg));
    size_t got = 0;
    while (got < sizeof(msg)) {
        ssize_t n = cs_read(fd, t->echoed + got, sizeof(t->echoed) - got);
        CS_CHECK(n > 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CS_CHECK_INT_EQ(got, sizeof(msg));
    CS_CHECK(memcmp(t->echoed, msg, sizeof(msg)) == 0);
    close_fd(fd); /* the server sees end of file */
    return NULL;
}

static int listen_loopback(struct sockaddr_in *addr, int do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr->sin_port = 0;
    socklen_t len = sizeof(*addr);
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0 ||
        (do_listen && listen(fd, 16) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *tcp_main(void *arg)
{
    struct tcp *t = arg;
    t->listener = listen_loopback(&t->addr, 1);
    CS_CHECK(t->listener >= 0);
    if (t->listener < 0)
        return NULL;
    cs_task *tasks[2] = {cs_spawn("server", tcp_server, t),
                         cs_spawn("client", tcp_client, t)};
    CS_CHECK_RC(cs_gather(tasks, 2, NULL), 0);
    close_fd(t->listener);
    return NULL;
}

static void test_io_accept_connect_loopback(void **state)
{
    (void)state;
    struct tcp t;
    memset(&t, 0, sizeof(t));
    cs_test_run_ok(tcp_main, &t);
    assert_true(t.accepted_nonblock);
    assert_true(t.accepted_cloexec);
}

static void *refused_main(void *arg)
{
    (void)arg;
    /* Bound but not listening: a connection attempt is refused. */
    struct sockaddr_in addr;
    int bound = listen_loopback(&addr, 0);
    CS_CHECK(bound >= 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CS_CHECK_INT_EQ(cs_connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
                    -ECONNREFUSED);
    close_fd(fd);
    close(bound);
    return NULL;
}

static void test_io_connect_refused(void **state)
{
    (void)state;
    cs_test_run_ok(refused_main, NULL);
}

/* ---- no starvation ------------------------------------------------------ */

struct spin_io {
    int stop;
    int fd;
};

static void *io_spinner(void *arg)
{
    struct spin_io *s = arg;
    while (!s->stop)
        cs_yield();
    return NULL;
}

static void *io_stopper(void *arg)
{
    struct spin_io *s = arg;
    char c;
    CS_CHECK_INT_EQ(cs_read(s->fd, &c, 1), 1);
    s->stop = 1;
    return NULL;
}

static void *write_from_thread(void *arg)
{
    int fd = *(int *)arg;
    CS_CHECK_INT_EQ(write(fd, "s", 1), 1);
    return NULL;
}

static void *io_starve_main(void *arg)
{
    (void)arg;
    /* A task that only yields never lets the ready queue empty; fds must
     * still be polled.  The data comes from another thread. */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    struct spin_io s = {0, p[0]};
    cs_task *t[2] = {cs_spawn("spinner", io_spinner, &s),
                     cs_spawn("stopper", io_stopper, &s)};
    cs_yield();
    pthread_t th;
    CS_CHECK_INT_EQ(pthread_create(&th, NULL, write_from_thread, &p[1]), 0);
    CS_CHECK_RC(cs_gather(t, 2, NULL), 0);
    pthread_join(th, NULL);
    close_fd(p[0]);
    close_fd(p[1]);
    return NULL;
}

static void test_io_polled_while_tasks_keep_yielding(void **state)
{
    (void)state;
    cs_test_run_ok(io_starve_main, NULL);
}

/* ---- regular files and forgotten fds ------------------------------------ */

static void *regular_file_main(void *arg)
{
    (void)arg;
    /* A regular file cannot be polled but never blocks: the calls just
     * proceed. */
    FILE *f = tmpfile();
    CS_CHECK(f != NULL);
    if (f == NULL)
        return NULL;
    int fd = fileno(f);
    CS_CHECK_INT_EQ(cs_write_all(fd, "file data", 9), 9);
    CS_CHECK_INT_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[16] = {0};
    CS_CHECK_INT_EQ(cs_read(fd, buf, sizeof(buf)), 9);
    CS_CHECK(memcmp(buf, "file data", 9) == 0);
    CS_CHECK_INT_EQ(cs_read(fd, buf, sizeof(buf)), 0);
    CS_CHECK_INT_EQ(cs_wait_fd(fd, CS_READABLE, CS_SEC(10)), CS_READABLE);
    cs_forget_fd(fd);
    fclose(f);
    return NULL;
}

static void *high_fd_main(void *arg)
{
    (void)arg;
    /* fds far above the first ones the loop saw grow its table. */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    int hi_r = dup2(p[0], 900), hi_w = dup2(p[1], 901);
    CS_CHECK(hi_r == 900 && hi_w == 901);
    close(p[0]);
    close(p[1]);
    CS_CHECK_INT_EQ(cs_write(hi_w, "h", 1), 1);
    char c = 0;
    CS_CHECK_INT_EQ(cs_read(hi_r, &c, 1), 1);
    CS_CHECK_INT_EQ(c, 'h');
    CS_CHECK_RC(cs_wait_fd(hi_r, CS_READABLE, CS_MSEC(5)), CS_ETIMEDOUT);
    close_fd(hi_r);
    close_fd(hi_w);
    return NULL;
}

static void test_io_high_fd_numbers(void **state)
{
    (void)state;
    cs_test_run_ok(high_fd_main, NULL);
}

static void test_io_regular_file(void **state)
{
    (void)state;
    cs_test_run_ok(regular_file_main, NULL);
}

struct forgotten {
    int fd;
    int entered;
    ssize_t rc;
};

static void *read_forgotten(void *arg)
{
    struct forgotten *f = arg;
    char c;
    f->entered = 1;
    f->rc = cs_read(f->fd, &c, 1);
    return NULL;
}

static void *forget_waiter_main(void *arg)
{
    (void)arg;
    /* Forgetting an fd a task waits on ends that wait with CS_EBADF
     * instead of leaving the task parked forever. */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    struct forgotten f = {p[0], 0, 1};
    cs_task *t = cs_spawn("reader", read_forgotten, &f);
    cs_yield();
    CS_CHECK(f.entered);
    cs_forget_fd(p[0]);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    CS_CHECK_RC(f.rc, CS_EBADF);
    close(p[0]);
    /* cs_close forgets and closes in one call, waking waiters the same
     * way; a bad fd is reported. */
    int q[2];
    CS_CHECK_INT_EQ(pipe(q), 0);
    f = (struct forgotten){q[0], 0, 1};
    t = cs_spawn("reader", read_forgotten, &f);
    cs_yield();
    CS_CHECK(f.entered);
    CS_CHECK_RC(cs_close(q[0]), 0);
    CS_CHECK_RC(cs_await(t, NULL), 0);
    CS_CHECK_RC(f.rc, CS_EBADF);
    CS_CHECK(fcntl(q[0], F_GETFD) < 0); /* closed */
    CS_CHECK_RC(cs_close(q[1]), 0);
    CS_CHECK_RC(cs_close(q[1]), -EBADF);
    close_fd(p[1]);
    return NULL;
}

static void test_io_forget_fd_ends_its_waits(void **state)
{
    (void)state;
    cs_test_run_ok(forget_waiter_main, NULL);
}

/* ---- error paths -------------------------------------------------------- */

static void *errors_main(void *arg)
{
    (void)arg;
    char c;
    CS_CHECK_INT_EQ(cs_read(-1, &c, 1), CS_EBADF);
    CS_CHECK_INT_EQ(cs_write(-1, "x", 1), CS_EBADF);
    CS_CHECK_INT_EQ(cs_write_all(-1, "x", 1), CS_EBADF);

    /* Writing to a pipe whose reader is gone fails with EPIPE (SIGPIPE is
     * ignored by the test main). */
    int p[2];
    CS_CHECK_INT_EQ(pipe(p), 0);
    close(p[0]);
    CS_CHECK_INT_EQ(cs_write(p[1], "x", 1), -EPIPE);
    CS_CHECK_INT_EQ(cs_write_all(p[1], "xyz", 3), -EPIPE);
    close_fd(p[1]);

    /* cs_read and cs_write make the fd non-blocking. */
    CS_CHECK_INT_EQ(pipe(p), 0);
    CS_CHECK_INT_EQ(cs_write(p[1], "a", 1), 1);
    CS_CHECK_INT_EQ(cs_read(p[0], &c, 1), 1);
    CS_CHECK((fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0);
    CS_CHECK((fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0);
    close_fd(p[0]);
    close_fd(p[1]);
    return NULL;
}

static void test_io_error_paths(void **state)
{
    (void)state;
    cs_test_run_ok(errors_main, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_io_socketpair_ping_pong, setup),
    cmocka_unit_test_setup(test_io_pipe_round_trip_larger_than_buffer, setup),
    cmocka_unit_test_setup(test_io_reader_and_writer_on_one_fd, setup),
    cmocka_unit_test_setup(test_io_second_reader_is_refused, setup),
    cmocka_unit_test_setup(test_io_wait_fd_ready_and_timeout, setup),
    cmocka_unit_test_setup(test_io_wait_fd_woken_by_other_task, setup),
    cmocka_unit_test_setup(test_io_wait_fd_not_ready_after_drain, setup),
    cmocka_unit_test_setup(test_io_accept_connect_loopback, setup),
    cmocka_unit_test_setup(test_io_connect_refused, setup),
    cmocka_unit_test_setup(test_io_polled_while_tasks_keep_yielding, setup),
    cmocka_unit_test_setup(test_io_high_fd_numbers, setup),
    cmocka_unit_test_setup(test_io_regular_file, setup),
    cmocka_unit_test_setup(test_io_forget_fd_ends_its_waits, setup),
    cmocka_unit_test_setup(test_io_error_paths, setup),
};

CS_TEST_MAIN("runtime_io", tests)
