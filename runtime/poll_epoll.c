/*
 * poll_epoll.c - the only file that knows epoll (as ae_epoll.c in Redis).
 *
 * Each fd is registered once, for both directions, edge-triggered, and
 * stays registered until cs_forget_fd(): one epoll_ctl per fd lifetime
 * instead of two per wait.  Edges set the fd's readable/writable flags and
 * wake its waiters; the I/O calls clear a flag when they see EAGAIN.
 */
#include "internal.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <unistd.h>

#define CS__MAX_EVENTS 256

int cs__poll_init(cs__loop *loop)
{
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    return loop->epfd < 0 ? -errno : 0;
}

void cs__poll_close(cs__loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
}

/* The event's data: the fd in the low half, the generation it was
 * registered under (fd_close.c) in the high half. */
int cs__poll_add(cs__loop *loop, int fd, uint32_t gen)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)gen << 32 | (uint32_t)fd,
    };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    if (errno == EEXIST) /* registered by an earlier owner of this number */
        return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
    return -errno;
}

void cs__poll_del(cs__loop *loop, int fd)
{
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Hands a ready fd's edge to its waiters.  An edge registered under
 * another generation comes from a file the number no longer names (one
 * kept open elsewhere after the program closed this fd): dropped. */
static void cs__poll_dispatch(cs__loop *loop, int fd, uint32_t gen,
                              uint32_t ev)
{
    cs__fd *f = cs__fd_get(loop, fd);
    int ready = 0;

    if (!f || gen != f->gen)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        f->readable = true;
        ready |= CS_READABLE;
    }
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        f->writable = true;
        ready |= CS_WRITABLE;
    }
    for (int pass = 0; pass < 2; pass++) {
        cs_task *t = pass ? f->writer : f->reader;
        int got;
        if (!t || !(got = ready & t->wait.events))
            continue;
        cs__fd_unlink(t);
        cs__wake(t, got);
    }
}

/* Waits up to timeout_ns (< 0: forever) for I/O and thread completions. */
int cs__poll(cs__loop *loop, int64_t timeout_ns)
{
    struct epoll_event evs[CS__MAX_EVENTS];
    int ms, n;

    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns >= (int64_t)INT_MAX * 1000000)
        ms = INT_MAX;
    else /* round up: waking early would only spin */
        ms = (int)((timeout_ns + 999999) / 1000000);
    n = cs__sys_epoll_wait(loop->epfd, evs, CS__MAX_EVENTS, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        if (fd == loop->wakefd)
            cs__jobs_collect(loop);
        else
            cs__poll_dispatch(loop, fd, (uint32_t)(evs[i].data.u64 >> 32),
                              evs[i].events);
    }
    return n;
}
