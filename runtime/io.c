/*
 * io.c - fd I/O that suspends the task instead of the loop.
 *
 * Every call first tries the operation (the fd is non-blocking); only on
 * EAGAIN does the task wait for the fd's next edge.  That try-first order
 * is what makes edge-triggered registration correct: an edge we slept
 * through is harmless because we never wait without having seen EAGAIN.
 */
#include "internal.h"
#include "poller.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The fd's poller state, growing the table as needed; NULL if fd < 0 or
 * out of memory. */
cs__fd *cs__fd_get(cs__loop *loop, int fd)
{
    if (fd < 0)
        return NULL;
    if (fd >= loop->nfds) {
        int n = loop->nfds ? loop->nfds : 64;
        while (n <= fd)
            n *= 2;
        cs__fd *f = realloc(loop->fds, (size_t)n * sizeof(*f));
        if (!f)
            return NULL;
        memset(f + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof(*f));
        loop->fds = f;
        loop->nfds = n;
    }
    return &loop->fds[fd];
}

void cs__fd_unlink(cs_task *t)
{
    cs__fd *f = &t->loop->fds[t->wait.fd];

    if (f->reader == t)
        f->reader = NULL;
    if (f->writer == t)
        f->writer = NULL;
    t->loop->fd_waiters--;
}

static int cs__set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Registers fd with the poller on first use and makes it non-blocking. */
static cs__fd *cs__fd_prepare(cs__loop *loop, int fd, int *err)
{
    cs__fd *f = cs__fd_get(loop, fd);

    if (!f) {
        *err = fd < 0 ? CS_EBADF : CS_ENOMEM;
        return NULL;
    }
    if (!f->registered || cs_unlikely(!cs__fd_current(fd, f))) {
        if (f->registered) /* closed and reused behind our back */
            cs__fd_renew(f);
        if ((*err = cs__set_nonblock(fd)) < 0)
            return NULL;
        f->gen = cs__fd_gen_register(fd);
        if ((*err = cs__poll_add(loop, fd, CS__TOKEN_FD(fd, f->gen),
                                 CS_READABLE | CS_WRITABLE | CS__POLL_EDGE)) <
            0) {
            /* regular files cannot be polled: they never block anyway */
            if (*err != -EPERM)
                return NULL;
            *err = 0;
            return NULL;
        }
        f->registered = true;
        f->readable = f->writable = false;
    }
    return f;
}

/* The flags only say an edge came since our last EAGAIN; the program may
 * have drained the fd with plain read() since.  Ask the kernel before
 * reporting ready, and forget a flag that is no longer true. */
static int cs__fd_ready_now(int fd, cs__fd *f, int events)
{
    struct pollfd p = {.fd = fd};
    int ready = 0;

    p.events = (short)((events & CS_READABLE ? POLLIN : 0) |
                       (events & CS_WRITABLE ? POLLOUT : 0));
    if (poll(&p, 1, 0) < 0)
        return events; /* cannot tell: let the caller try */
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
        ready |= CS_READABLE;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR))
        ready |= CS_WRITABLE;
    ready &= events;
    if ((events & CS_READABLE) && !(ready & CS_READABLE))
        f->readable = false;
    if ((events & CS_WRITABLE) && !(ready & CS_WRITABLE))
        f->writable = false;
    return ready;
}

/* Waits for events on fd; returns the ready subset or a negative code. */
static int cs__fd_wait(cs_task *self, int fd, int events, int64_t timeout)
{
    cs__loop *loop = self->loop;
    int err = 0, ready;
    cs__fd *f;

    if ((err = cs__cancel_check(self)) != 0)
        return err;
    f = cs__fd_prepare(loop, fd, &err);
    if (!f)
        return err ? err : events; /* unpollable: always ready */
    ready = ((events & CS_READABLE) && f->readable ? CS_READABLE : 0) |
            ((events & CS_WRITABLE) && f->writable ? CS_WRITABLE : 0);
    if (ready && (ready = cs__fd_ready_now(fd, f, ready)) != 0)
        return ready;
    if (((events & CS_READABLE) && f->reader) ||
        ((events & CS_WRITABLE) && f->writer))
        return CS_EBUSY; /* another task already waits this way */
    if (events & CS_READABLE)
        f->reader = self;
    if (events & CS_WRITABLE)
        f->writer = self;
    self->wait.fd = fd;
    self->wait.events = events;
    loop->fd_waiters++;
    return cs__wait(self,
                    events & CS_READABLE ? CS_WAIT_FD_READ : CS_WAIT_FD_WRITE,
                    NULL, cs__fd_unlink, timeout);
}

CS_EXTERN int cs_wait_fd(int fd, int events, int64_t timeout_ns)
{
    cs_task *self = cs_current_task();

    events &= CS_READABLE | CS_WRITABLE;
    if (!self)
        return CS_ENOLOOP;
    if (!events || fd < 0)
        return CS_EINVAL;
    return cs__fd_wait(self, fd, events, timeout_ns < 0 ? -1 : timeout_ns);
}

/* The common shape of cs_read/cs_write/cs_accept: try, wait on EAGAIN. */
#define CS__IO_LOOP(self, fd, dir, flag, expr)                                \
    for (;;) {                                                                \
        ssize_t r_ = (expr);                                                  \
        int w_;                                                               \
        if (r_ >= 0)                                                          \
            return r_;                                                        \
        if (errno == EINTR)                                                   \
            continue;                                                         \
        if (errno != EAGAIN && errno != EWOULDBLOCK)                          \
            return -errno;                                                    \
        if (!self)                                                            \
            return -errno;                                                    \
        if (fd < self->loop->nfds)                                            \
            self->loop->fds[fd].flag = false;                                 \
        w_ = cs__fd_wait(self, fd, dir, -1);                                  \
        if (w_ < 0)                                                           \
            return w_;                                                        \
    }

/* Makes fd non-blocking once before the first try. */
static void cs__io_begin(cs_task *self, int fd)
{
    int err;
    if (self && fd >= 0 &&
        (fd >= self->loop->nfds || !self->loop->fds[fd].registered ||
         cs_unlikely(!cs__fd_current(fd, &self->loop->fds[fd]))))
        cs__fd_prepare(self->loop, fd, &err);
}

CS_EXTERN ssize_t cs_read(int fd, void *buf, size_t n)
{
    cs_task *self = cs_current_task();
    cs__io_begin(self, fd);
    CS__IO_LOOP(self, fd, CS_READABLE, readable, cs__sys_read(fd, buf, n));
}

CS_EXTERN ssize_t cs_write(int fd, const void *buf, size_t n)
{
    cs_task *self = cs_current_task();
    cs__io_begin(self, fd);
    CS__IO_LOOP(self, fd, CS_WRITABLE, writable, cs__sys_write(fd, buf, n));
}

CS_EXTERN ssize_t cs_write_all(int fd, const void *buf, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = cs_write(fd, (const char *)buf + done, n - done);
        if (r < 0)
            return r;
        done += (size_t)r;
    }
    return (ssize_t)n;
}

CS_EXTERN int cs_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    cs_task *self = cs_current_task();
    cs__io_begin(self, fd);
    CS__IO_LOOP(self, fd, CS_READABLE, readable,
                cs__sys_accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

CS_EXTERN int cs_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    cs_task *self = cs_current_task();
    int err = 0, w;
    socklen_t elen = sizeof(err);

    cs__io_begin(self, fd);
    if (cs__sys_connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS || !self)
        return -errno;
    if (fd < self->loop->nfds)
        self->loop->fds[fd].writable = false;
    w = cs__fd_wait(self, fd, CS_WRITABLE, -1);
    if (w < 0)
        return w;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return -errno;
    return -err;
}

CS_EXTERN void cs_forget_fd(int fd)
{
    cs__loop *loop = cs__tls_loop;
    cs__fd *f;

    if (!loop || fd < 0 || fd >= loop->nfds)
        return;
    f = &loop->fds[fd];
    if (f->reader) {
        cs_task *t = f->reader;
        cs__fd_unlink(t);
        cs__wake(t, CS_EBADF);
    }
    if (f->writer) {
        cs_task *t = f->writer;
        cs__fd_unlink(t);
        cs__wake(t, CS_EBADF);
    }
    if (f->registered)
        cs__poll_del(loop, fd);
    memset(f, 0, sizeof(*f));
}

CS_EXTERN int cs_close(int fd)
{
    cs_forget_fd(fd);
    return close(fd) == 0 ? 0 : -errno;
}

void cs__io_close(cs__loop *loop)
{
    free(loop->fds);
    loop->fds = NULL;
    loop->nfds = 0;
}
