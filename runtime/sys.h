/*
 * sys.h - the system calls of the runtime's hot paths, made directly.
 *
 * The runtime's fds are non-blocking and its epoll_wait is its own, so
 * what libc's wrappers add is pure cost here: once the process has a
 * second thread (the to_thread pool, the agent's watchdog) every
 * cancellable call (read, write, accept4, connect, epoll_wait) brings two
 * calls to flip the thread's async-cancel state, ~115 instructions per
 * call; and under LD_PRELOAD, coscope's own interposer included, each
 * call first goes through a wrapper that only finds the runtime is the
 * caller.  syscall() is neither cancellable nor interposed.  Cold paths
 * (the to_thread pool's wake-ups) keep libc's calls.  Each returns
 * what libc's function would: the result, or -1 with errno set.
 * (epoll_pwait is made the same way, in poll_epoll.c, which alone knows
 * epoll.)
 */
#ifndef CS_SYS_H
#define CS_SYS_H

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static inline ssize_t cs__sys_read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}

static inline ssize_t cs__sys_write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}

static inline int cs__sys_accept4(int fd, struct sockaddr *addr,
                                  socklen_t *len, int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

static inline int cs__sys_connect(int fd, const struct sockaddr *addr,
                                  socklen_t len)
{
    return (int)syscall(SYS_connect, fd, addr, len);
}

#endif
