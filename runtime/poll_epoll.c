/*
 * poll_epoll.c - the only file that knows epoll (as ae_epoll.c in Redis).
 *
 * Behind cs__poll_* (internal.h) a registration is an fd, a 64-bit token
 * that comes back with its events, and a mask of CS_READABLE/CS_WRITABLE,
 * optionally CS__POLL_EDGE; cs__poll_wait returns (token, mask) pairs and
 * knows nothing of what they stand for: the loop dispatches them (loop.c).
 * epoll's flags are translated here, both ways.  The loop's fds are
 * registered once, for both directions, edge-triggered (io.c), which is
 * one epoll_ctl per fd lifetime instead of two per wait.
 */
#include "internal.h"
#include "poller.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

/* epoll_pwait with no mask, made directly (see sys.h for why): aarch64 has
 * no epoll_wait system call. */
static inline int cs__sys_epoll_wait(int epfd, struct epoll_event *evs,
                                     int max, int ms)
{
    return (int)syscall(SYS_epoll_pwait, epfd, evs, max, ms, NULL, 8);
}

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

int cs__poll_add(cs__loop *loop, int fd, uint64_t token, unsigned mask)
{
    struct epoll_event ev = {
        .events = (mask & CS_READABLE ? EPOLLIN | EPOLLRDHUP : 0) |
                  (mask & CS_WRITABLE ? EPOLLOUT : 0) |
                  (mask & CS__POLL_EDGE ? EPOLLET : 0),
        .data.u64 = token,
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

/* Waits up to timeout_ns (< 0: forever); fills out[0..max) with what is
 * ready.  A hang-up or an error makes an fd both readable and writable:
 * the next read or write then says what happened.  Returns how many, 0 on
 * EINTR, or a negative code. */
int cs__poll_wait(cs__loop *loop, int64_t timeout_ns, cs__poll_event *out,
                  int max)
{
    struct epoll_event evs[CS__POLL_MAX];
    int ms, n;

    if (max > CS__POLL_MAX)
        max = CS__POLL_MAX;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns >= (int64_t)INT_MAX * 1000000)
        ms = INT_MAX;
    else /* round up: waking early would only spin */
        ms = (int)((timeout_ns + 999999) / 1000000);
    n = cs__sys_epoll_wait(loop->epfd, evs, max, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        out[i].token = evs[i].data.u64;
        out[i].mask = (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
                           ? CS_READABLE
                           : 0) |
                      (e & (EPOLLOUT | EPOLLHUP | EPOLLERR) ? CS_WRITABLE : 0);
    }
    return n;
}
