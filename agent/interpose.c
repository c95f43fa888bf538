/*
 * interpose.c - libcoscope-preload.so: blocking calls made on an event
 * loop, caught by interposition (LD_PRELOAD=libcoscope-preload.so).
 *
 * Each wrapper forwards to the real function (dlsym(RTLD_NEXT)) and, only
 * when it was called from a coscope task, times it and tells the agent,
 * which reports "blocking call NAME() on the event loop in task 'T' (took
 * X ms)" with the caller's stack.  Calls are not reported:
 *   - outside a task: the program has no coscope (cs_current_task is looked
 *     up with dlsym(RTLD_DEFAULT)), or the thread runs no loop (cs_to_thread
 *     workers, other threads), or the loop itself runs (between steps);
 *   - from the runtime or the agent (the caller's address is in the object
 *     that defines cs_current_task), nor while a report is being made (a
 *     per-thread guard), nor before anything is resolved;
 *   - when they cannot block: I/O on an fd with O_NONBLOCK or on a regular
 *     file, writes to fds 0-2 (logging), poll/select/epoll_wait with a zero
 *     timeout, an uncontended mutex (trylock first), waitpid(WNOHANG),
 *     flock(LOCK_NB).
 * The checks cost nothing outside tasks beyond one call through a pointer.
 * Real functions are resolved in the constructor, and lazily when a call
 * comes earlier (another library's constructor); a call made while dlsym
 * itself runs falls back to the raw system call where there is one.  No
 * state is shared with a forked child beyond read-only pointers.
 */
#include "blocking.h"

#include <coscope/export.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CS_CALLER __builtin_return_address(0)

/* ---- what the program has ------------------------------------------------ */

static void *(*cs__ag_current_task)(void); /* NULL: not (yet) known */
static cs_agent_blocking_fn *cs__ag_report;
static uintptr_t cs__ag_rt_lo, cs__ag_rt_hi; /* libcoscope's address range */
static int cs__ag_resolved;                  /* 1 once looked up */
/* initial-exec: this library is loaded at start-up (LD_PRELOAD), and the
 * default model for a shared object costs a __tls_get_addr call on every
 * wrapped libc call. */
static __thread int cs__ag_busy /* in a report, or resolving */
    __attribute__((tls_model("initial-exec")));

static int cs__ag_range_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    uintptr_t a = (uintptr_t)data, lo = UINTPTR_MAX, hi = 0;

    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD)
            continue;
        if (info->dlpi_addr + p->p_vaddr < lo)
            lo = info->dlpi_addr + p->p_vaddr;
        if (info->dlpi_addr + p->p_vaddr + p->p_memsz > hi)
            hi = info->dlpi_addr + p->p_vaddr + p->p_memsz;
    }
    if (a < lo || a >= hi)
        return 0;
    /* the main program (first, unnamed) holds user code too: no range */
    if (info->dlpi_name && info->dlpi_name[0]) {
        cs__ag_rt_lo = lo;
        cs__ag_rt_hi = hi;
    }
    return 1;
}

static void cs__ag_resolve_program(void)
{
    void *(*cur)(void);
    cs_agent_blocking_fn *rep;

    cs__ag_busy++;
    cur = (void *(*)(void))dlsym(RTLD_DEFAULT, "cs_current_task");
    rep = (cs_agent_blocking_fn *)dlsym(RTLD_DEFAULT, CS_AGENT_BLOCKING_SYM);
    /* an agent that attached itself (cs_preload_attach) keeps its own */
    if (cur && !__atomic_load_n(&cs__ag_current_task, __ATOMIC_ACQUIRE)) {
        dl_iterate_phdr(cs__ag_range_cb, (void *)cur);
        __atomic_store_n(&cs__ag_report, rep, __ATOMIC_RELEASE);
        __atomic_store_n(&cs__ag_current_task, cur, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&cs__ag_resolved, 1, __ATOMIC_RELEASE);
    cs__ag_busy--;
}

/* The agent of a program that has it in its executable (a static link)
 * attaches here from its constructor: blocking.h.  There the runtime's
 * code cannot be told from the program's by address range; the agent
 * drops its own calls by name instead (detect_blocking.c). */
CS_EXTERN int cs_preload_attach(void *(*current_task)(void),
                                cs_agent_blocking_fn *report)
{
    if (!current_task || !report)
        return 0;
    cs__ag_busy++;
    dl_iterate_phdr(cs__ag_range_cb, (void *)current_task);
    cs__ag_busy--;
    __atomic_store_n(&cs__ag_report, report, __ATOMIC_RELEASE);
    __atomic_store_n(&cs__ag_current_task, current_task, __ATOMIC_RELEASE);
    return 1;
}

/* The Python extension's coscope, loaded after start-up without global
 * symbols, registers here: blocking.h.  Same as an attach once the
 * program's own functions have been resolved. */
CS_EXTERN void cs_preload_register(void *(*current)(void),
                                   cs_agent_blocking_fn *report)
{
    cs__ag_busy++;
    if (!__atomic_load_n(&cs__ag_resolved, __ATOMIC_ACQUIRE))
        cs__ag_resolve_program();
    cs__ag_busy--;
    (void)cs_preload_attach(current, report);
}

/* True if a call from caller should be watched: it runs in a task. */
static bool cs__ag_in_task(const void *caller)
{
    uintptr_t c = (uintptr_t)caller;

    if (cs__ag_busy)
        return false;
    if (!__atomic_load_n(&cs__ag_resolved, __ATOMIC_ACQUIRE))
        cs__ag_resolve_program();
    /* the runtime's own calls first: a compare, where cs_current_task()
     * is a call into another object (its hot paths make their system
     * calls directly, runtime/sys.h; the rest, e.g. its mutexes, land
     * here) */
    if (c >= cs__ag_rt_lo && c < cs__ag_rt_hi)
        return false;
    return cs__ag_current_task && cs__ag_current_task();
}

static int64_t cs__ag_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cs__ag_blocked(const char *call, int64_t t0, const void *caller)
{
    int64_t took = cs__ag_now() - t0;
    int e = errno;

    if (!cs__ag_report)
        return;
    cs__ag_busy++;
    cs__ag_report(call, took, caller);
    cs__ag_busy--;
    errno = e;
}

/* ---- real functions ------------------------------------------------------ */

#define CS_REALS(X)                                                           \
    X(unsigned, sleep, (unsigned))                                            \
    X(int, usleep, (useconds_t))                                              \
    X(int, nanosleep, (const struct timespec *, struct timespec *))           \
    X(int, clock_nanosleep,                                                   \
      (clockid_t, int, const struct timespec *, struct timespec *))           \
    X(ssize_t, read, (int, void *, size_t))                                   \
    X(ssize_t, write, (int, const void *, size_t))                            \
    X(ssize_t, recv, (int, void *, size_t, int))                              \
    X(ssize_t, send, (int, const void *, size_t, int))                        \
    X(ssize_t, recvfrom,                                                      \
      (int, void *, size_t, int, struct sockaddr *, socklen_t *))             \
    X(ssize_t, sendto,                                                        \
      (int, const void *, size_t, int, const struct sockaddr *, socklen_t))   \
    X(int, accept, (int, struct sockaddr *, socklen_t *))                     \
    X(int, connect, (int, const struct sockaddr *, socklen_t))                \
    X(int, poll, (struct pollfd *, nfds_t, int))                              \
    X(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *))     \
    X(int, epoll_wait, (int, struct epoll_event *, int, int))                 \
    X(int, pthread_mutex_lock, (pthread_mutex_t *))                           \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *))                        \
    X(int, pthread_join, (pthread_t, void **))                                \
    X(int, sem_wait, (sem_t *))                                               \
    X(int, getaddrinfo,                                                       \
      (const char *, const char *, const struct addrinfo *,                   \
       struct addrinfo **))                                                   \
    X(struct hostent *, gethostbyname, (const char *))                        \
    X(int, system, (const char *))                                            \
    X(FILE *, popen, (const char *, const char *))                            \
    X(pid_t, waitpid, (pid_t, int *, int))                                    \
    X(pid_t, wait, (int *))                                                   \
    X(int, fsync, (int))                                                      \
    X(int, fdatasync, (int))                                                  \
    X(int, flock, (int, int))                                                 \
    X(int, fcntl, (int, int, ...))                                            \
    X(int, fcntl64, (int, int, ...))

#define CS_REAL_PTR(ret, name, args) static ret(*real_##name) args;
CS_REALS(CS_REAL_PTR)

/* Looks name up once; NULL while this thread is inside dlsym already. */
static void *cs__real(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

    if (p || cs__ag_busy)
        return p;
    cs__ag_busy++;
    p = dlsym(RTLD_NEXT, name);
    cs__ag_busy--;
    __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    return p;
}
#define REAL(name)                                                            \
    ((__typeof__(real_##name))cs__real((void **)&real_##name, #name))

__attribute__((constructor)) static void cs__ag_preload_init(void)
{
#define CS_RESOLVE(ret, name, args) (void)REAL(name);
    CS_REALS(CS_RESOLVE)
    cs__ag_resolve_program();
}

/* ---- fds ------------------------------------------------------------------ */

/* True if I/O on fd may block the thread: O_NONBLOCK clear, and not a
 * regular file or block device (those never wait for a peer). */
static bool cs__ag_fd_blocks(int fd)
{
    struct stat st;
    int fl;

    if (!REAL(fcntl) || (fl = REAL(fcntl)(fd, F_GETFL)) < 0 ||
        (fl & O_NONBLOCK))
        return false;
    return fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
}

/* Wraps the real call `expr` of `name` when `cond` (evaluated in a task
 * only) says it may block. */
#define CS_WATCH(type, name, cond, expr, fallback)                            \
    do {                                                                      \
        const void *caller_ = CS_CALLER;                                      \
        if (!REAL(name))                                                      \
            return fallback;                                                  \
        if (!cs__ag_in_task(caller_) || !(cond))                              \
            return expr;                                                      \
        int64_t t0_ = cs__ag_now();                                           \
        type r_ = expr;                                                       \
        cs__ag_blocked(#name, t0_, caller_);                                  \
        return r_;                                                            \
    } while (0)

/* ---- sleeping --------------------------------------------------------------- */

CS_EXTERN unsigned sleep(unsigned s)
{
    struct timespec ts = {s, 0};
    CS_WATCH(unsigned, sleep, true, real_sleep(s),
             (unsigned)syscall(SYS_nanosleep, &ts, NULL));
}

CS_EXTERN int usleep(useconds_t us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    CS_WATCH(int, usleep, us > 0, real_usleep(us),
             (int)syscall(SYS_nanosleep, &ts, NULL));
}

CS_EXTERN int nanosleep(const struct timespec *req, struct timespec *rem)
{
    CS_WATCH(int, nanosleep, true, real_nanosleep(req, rem),
             (int)syscall(SYS_nanosleep, req, rem));
}

CS_EXTERN int clock_nanosleep(clockid_t clk, int flags,
                              const struct timespec *req, struct timespec *rem)
{
    CS_WATCH(int, clock_nanosleep, true,
             real_clock_nanosleep(clk, flags, req, rem),
             (int)syscall(SYS_clock_nanosleep, clk, flags, req, rem));
}

/* ---- fd I/O ---------------------------------------------------------------- */

CS_EXTERN ssize_t read(int fd, void *buf, size_t n)
{
    CS_WATCH(ssize_t, read, cs__ag_fd_blocks(fd), real_read(fd, buf, n),
             syscall(SYS_read, fd, buf, n));
}

CS_EXTERN ssize_t write(int fd, const void *buf, size_t n)
{
    CS_WATCH(ssize_t, write, fd > 2 && cs__ag_fd_blocks(fd),
             real_write(fd, buf, n), syscall(SYS_write, fd, buf, n));
}

CS_EXTERN ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    CS_WATCH(ssize_t, recv, !(flags & MSG_DONTWAIT) && cs__ag_fd_blocks(fd),
             real_recv(fd, buf, n, flags),
             syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL));
}

CS_EXTERN ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    CS_WATCH(ssize_t, send, !(flags & MSG_DONTWAIT) && cs__ag_fd_blocks(fd),
             real_send(fd, buf, n, flags),
             syscall(SYS_sendto, fd, buf, n, flags, NULL, 0));
}

CS_EXTERN ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                           struct sockaddr *a, socklen_t *alen)
{
    CS_WATCH(ssize_t, recvfrom,
             !(flags & MSG_DONTWAIT) && cs__ag_fd_blocks(fd),
             real_recvfrom(fd, buf, n, flags, a, alen),
             syscall(SYS_recvfrom, fd, buf, n, flags, a, alen));
}

CS_EXTERN ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *a, socklen_t alen)
{
    CS_WATCH(ssize_t, sendto, !(flags & MSG_DONTWAIT) && cs__ag_fd_blocks(fd),
             real_sendto(fd, buf, n, flags, a, alen),
             syscall(SYS_sendto, fd, buf, n, flags, a, alen));
}

CS_EXTERN int accept(int fd, struct sockaddr *a, socklen_t *alen)
{
    CS_WATCH(int, accept, cs__ag_fd_blocks(fd), real_accept(fd, a, alen),
             (int)syscall(SYS_accept, fd, a, alen));
}

CS_EXTERN int connect(int fd, const struct sockaddr *a, socklen_t alen)
{
    CS_WATCH(int, connect, cs__ag_fd_blocks(fd), real_connect(fd, a, alen),
             (int)syscall(SYS_connect, fd, a, alen));
}

/* ---- waiting for fds --------------------------------------------------------- */

CS_EXTERN int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    CS_WATCH(int, poll, timeout != 0, real_poll(fds, n, timeout),
             (int)syscall(SYS_ppoll, fds, n, NULL, NULL, 0));
}

CS_EXTERN int select(int n, fd_set *r, fd_set *w, fd_set *e,
                     struct timeval *tv)
{
    CS_WATCH(int, select, !tv || tv->tv_sec || tv->tv_usec,
             real_select(n, r, w, e, tv), (errno = ENOSYS, -1));
}

CS_EXTERN int epoll_wait(int epfd, struct epoll_event *ev, int max,
                         int timeout)
{
    CS_WATCH(int, epoll_wait, timeout != 0,
             real_epoll_wait(epfd, ev, max, timeout),
             (int)syscall(SYS_epoll_pwait, epfd, ev, max, timeout, NULL, 8));
}

/* ---- threads and processes ------------------------------------------------------ */

/* Only a contended mutex blocks: try first, and time only the wait. */
CS_EXTERN int pthread_mutex_lock(pthread_mutex_t *m)
{
    const void *caller = CS_CALLER;
    int64_t t0;
    int r;

    if (!REAL(pthread_mutex_lock))
        return EINVAL;
    if (!REAL(pthread_mutex_trylock) || !cs__ag_in_task(caller))
        return real_pthread_mutex_lock(m);
    if ((r = real_pthread_mutex_trylock(m)) != EBUSY)
        return r; /* taken at once (or an error): it did not block */
    t0 = cs__ag_now();
    r = real_pthread_mutex_lock(m);
    cs__ag_blocked("pthread_mutex_lock", t0, caller);
    return r;
}

CS_EXTERN int pthread_join(pthread_t th, void **ret)
{
    CS_WATCH(int, pthread_join, true, real_pthread_join(th, ret), EINVAL);
}

CS_EXTERN int sem_wait(sem_t *s)
{
    CS_WATCH(int, sem_wait, true, real_sem_wait(s), (errno = ENOSYS, -1));
}

CS_EXTERN int getaddrinfo(const char *node, const char *service,
                          const struct addrinfo *hints, struct addrinfo **res)
{
    CS_WATCH(int, getaddrinfo, true,
             real_getaddrinfo(node, service, hints, res), EAI_SYSTEM);
}

CS_EXTERN struct hostent *gethostbyname(const char *name)
{
    CS_WATCH(struct hostent *, gethostbyname, true, real_gethostbyname(name),
             NULL);
}

CS_EXTERN int system(const char *cmd)
{
    CS_WATCH(int, system, true, real_system(cmd), -1);
}

CS_EXTERN FILE *popen(const char *cmd, const char *mode)
{
    CS_WATCH(FILE *, popen, true, real_popen(cmd, mode), NULL);
}

CS_EXTERN pid_t waitpid(pid_t pid, int *status, int options)
{
    CS_WATCH(pid_t, waitpid, !(options & WNOHANG),
             real_waitpid(pid, status, options),
             (pid_t)syscall(SYS_wait4, pid, status, options, NULL));
}

CS_EXTERN pid_t wait(int *status)
{
    CS_WATCH(pid_t, wait, true, real_wait(status),
             (pid_t)syscall(SYS_wait4, -1, status, 0, NULL));
}

/* ---- files ---------------------------------------------------------------------- */

CS_EXTERN int fsync(int fd)
{
    CS_WATCH(int, fsync, true, real_fsync(fd), (int)syscall(SYS_fsync, fd));
}

CS_EXTERN int fdatasync(int fd)
{
    CS_WATCH(int, fdatasync, true, real_fdatasync(fd),
             (int)syscall(SYS_fdatasync, fd));
}

CS_EXTERN int flock(int fd, int op)
{
    CS_WATCH(int, flock, !(op & LOCK_NB), real_flock(fd, op),
             (int)syscall(SYS_flock, fd, op));
}

CS_EXTERN int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    CS_WATCH(int, fcntl, cmd == F_SETLKW || cmd == F_OFD_SETLKW,
             real_fcntl(fd, cmd, arg), (int)syscall(SYS_fcntl, fd, cmd, arg));
}

CS_EXTERN int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    CS_WATCH(int, fcntl64, cmd == F_SETLKW || cmd == F_OFD_SETLKW,
             real_fcntl64(fd, cmd, arg),
             (int)syscall(SYS_fcntl, fd, cmd, arg));
}
