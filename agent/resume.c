/*
 * resume.c - the program's sleeps and waits run their whole time, although
 * the watchdog interrupts the loop thread with a signal (sample.c) to take
 * its stack.  The handler has SA_RESTART, which restarts read(), write()
 * and the like; but the kernel never restarts these after a handler
 * (signal(7), "Interruption of system calls"): they fail with EINTR, and
 * usleep(200 ms) would come back after 100 ms.
 *
 * libcoscope therefore defines them (in libcoscope.so they interpose
 * libc's for the whole process, as fd_close.c's close() does; in
 * libcoscope.a they are the program's own, pulled in by its first call to
 * one): each makes the system call and, when it failed with EINTR and the
 * sample handler ran on this thread meanwhile (cs__ag_sample_signals), makes
 * it again for the time that is left.  An EINTR from the program's own
 * signals is returned as without coscope.  Should one of ours and one of
 * the program's land in the same call, the call resumes (as if the
 * program's handler had SA_RESTART).
 *
 * The calls are made with syscall(2), not through libc: under the
 * interposer (libcoscope-preload.so) the interposer's wrapper is met
 * first and forwards here (RTLD_NEXT), so it still times and reports
 * them.  In an executable that carries the agent (libcoscope.a) the
 * program's calls bind to these at link time and never reach the
 * interposer: there, when an interposer attached itself (agent.c), these
 * report the blocking call themselves, with the interposer's rules (in a
 * task, a non-zero timeout).  They are not pthread cancellation points.
 * Not covered (documented in docs/agent.md): pause, sigsuspend,
 * sigtimedwait, semop, msgrcv, io_getevents, sem_timedwait, and I/O on a
 * socket with SO_RCVTIMEO.
 */
/* these are the definitions: no fortify wrappers in front of them */
#undef _FORTIFY_SOURCE
#include "agent.h"
#include "blocking.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CS__SIGSET_BYTES (_NSIG / 8) /* the kernel's sigset_t */

static int64_t cs__ag_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec cs__ag_ts(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return (struct timespec){ns / 1000000000, ns % 1000000000};
}

static int64_t cs__ag_ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Time left until deadline, in whole milliseconds rounded up (a wait
 * that ends early would shorten the program's). */
static int cs__ag_ms_left(int64_t deadline)
{
    int64_t left = deadline - cs__ag_mono();
    return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

/* True if the call that started when the count was `before` failed with
 * EINTR because of our signal: then it is made again. */
static bool cs__ag_ours(long r, unsigned before)
{
    return r < 0 && errno == EINTR && cs__ag_sample_signals() != before;
}

/* ---- the blocking report of a static link with an interposer ------------- */

static bool cs__ag_watch(bool may_block)
{
    return may_block && cs__ag_preload_on && cs__ag_bt_self_is_main() &&
           cs_current_task() != NULL;
}

__thread uintptr_t cs__ag_resume_ret
    __attribute__((tls_model("initial-exec")));

/* The body of each wrapper: expr, with cs__ag_resume_ret set so that a
 * sample taken inside shows the call (this frame) and not our helpers. */
#define CS__WATCHED(name, may_block, expr)                                    \
    do {                                                                      \
        const void *caller_ = __builtin_return_address(0);                    \
        uintptr_t outer_ = cs__ag_resume_ret;                                 \
        int64_t t0_ = 0;                                                      \
        bool watch_ = cs__ag_watch(may_block);                                \
        if (watch_)                                                           \
            t0_ = cs__ag_mono();                                              \
        cs__ag_resume_ret = (uintptr_t)caller_;                               \
        __typeof__(expr) r_ = expr;                                           \
        int e_ = errno;                                                       \
        cs__ag_resume_ret = outer_;                                           \
        if (watch_)                                                           \
            cs_agent_blocking_report(name, cs__ag_mono() - t0_, caller_);     \
        errno = e_;                                                           \
        return r_;                                                            \
    } while (0)

/* ---- sleeping ------------------------------------------------------------ */

/* clock_nanosleep, resumed after our signals until the deadline the
 * call had when it began (an absolute sleep on clk from then on), so that
 * the time our handler took does not lengthen it either.  0 or an errno
 * value; *rem as the kernel gives it, for a relative sleep the program's
 * signal ended. */
static int cs__ag_sleep_until(clockid_t clk, int flags,
                              const struct timespec *req, struct timespec *rem)
{
    struct timespec t, r2 = {0, 0}, now;
    int64_t deadline = 0;
    int abs = flags & TIMER_ABSTIME;

    if (!req)
        return EFAULT;
    t = *req;
    if (!abs && clock_gettime(clk, &now) == 0)
        deadline = cs__ag_ts_ns(&now) + cs__ag_ts_ns(req);
    for (;;) {
        unsigned before = cs__ag_sample_signals();
        long r = syscall(SYS_clock_nanosleep, clk, abs, &t, &r2);
        if (r == 0)
            return 0;
        if (!cs__ag_ours(r, before))
            break;
        if (!abs && deadline) { /* from here: until the first deadline */
            abs = TIMER_ABSTIME;
            t = cs__ag_ts(deadline);
        } else if (!abs) {
            t = r2;
        }
    }
    int e = errno;
    if (e == EINTR && rem && !(flags & TIMER_ABSTIME)) {
        *rem = r2;
        if (abs && clock_gettime(clk, &now) == 0) /* resumed: what is left */
            *rem = cs__ag_ts(deadline - cs__ag_ts_ns(&now));
    }
    return e;
}

static int cs__ag_nanosleep(const struct timespec *req, struct timespec *rem)
{
    /* Linux's nanosleep measures CLOCK_MONOTONIC */
    int e = cs__ag_sleep_until(CLOCK_MONOTONIC, 0, req, rem);
    return e ? (errno = e, -1) : 0;
}

static int cs__ag_clock_nanosleep(clockid_t clk, int flags,
                                  const struct timespec *req,
                                  struct timespec *rem)
{
    return cs__ag_sleep_until(clk, flags, req, rem);
}

static unsigned cs__ag_sleep(unsigned s)
{
    struct timespec req = {s, 0}, rem = {0, 0};

    if (cs__ag_nanosleep(&req, &rem) == 0)
        return 0;
    return (unsigned)rem.tv_sec + (rem.tv_nsec >= 500000000); /* as glibc */
}

static int cs__ag_usleep(useconds_t us)
{
    struct timespec req = {us / 1000000, (long)(us % 1000000) * 1000};
    return cs__ag_nanosleep(&req, NULL);
}

CS_EXTERN int nanosleep(const struct timespec *req, struct timespec *rem)
{
    CS__WATCHED("nanosleep", true, cs__ag_nanosleep(req, rem));
}

CS_EXTERN int clock_nanosleep(clockid_t clk, int flags,
                              const struct timespec *req, struct timespec *rem)
{
    CS__WATCHED("clock_nanosleep", true,
                cs__ag_clock_nanosleep(clk, flags, req, rem));
}

CS_EXTERN unsigned sleep(unsigned s)
{
    CS__WATCHED("sleep", true, cs__ag_sleep(s));
}

CS_EXTERN int usleep(useconds_t us)
{
    CS__WATCHED("usleep", us > 0, cs__ag_usleep(us));
}

/* ---- waiting for fds ----------------------------------------------------- */

/* ppoll with a relative timeout (NULL: none), resumed for what is left. */
static int cs__ag_ppoll(struct pollfd *fds, nfds_t n,
                        const struct timespec *tmo, const sigset_t *mask)
{
    int64_t deadline = tmo ? cs__ag_mono() + cs__ag_ts_ns(tmo) : 0;
    long r;

    for (;;) {
        struct timespec left = tmo ? cs__ag_ts(deadline - cs__ag_mono())
                                   : (struct timespec){0, 0};
        unsigned before = cs__ag_sample_signals();
        r = syscall(SYS_ppoll, fds, n, tmo ? &left : NULL, mask,
                    mask ? CS__SIGSET_BYTES : 0);
        if (!cs__ag_ours(r, before))
            return (int)r;
    }
}

CS_EXTERN int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    struct timespec tmo = cs__ag_ts((int64_t)timeout * 1000000);
    CS__WATCHED("poll", timeout != 0,
                cs__ag_ppoll(fds, n, timeout < 0 ? NULL : &tmo, NULL));
}

CS_EXTERN int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                    const sigset_t *mask)
{
    CS__WATCHED("ppoll", !tmo || tmo->tv_sec || tmo->tv_nsec,
                cs__ag_ppoll(fds, n, tmo, mask));
}

/* pselect6 with a relative timeout (NULL: none).  On EINTR the kernel
 * leaves the sets as they were, so the same sets are waited on again;
 * tv, when given, gets the time left as Linux's select() does. */
static int cs__ag_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                          const struct timespec *tmo, const sigset_t *mask,
                          struct timeval *tv)
{
    int64_t deadline = tmo ? cs__ag_mono() + cs__ag_ts_ns(tmo) : 0;
    struct {
        const sigset_t *ss;
        size_t len;
    } data = {mask, CS__SIGSET_BYTES};
    long r;

    for (;;) {
        struct timespec left = tmo ? cs__ag_ts(deadline - cs__ag_mono())
                                   : (struct timespec){0, 0};
        unsigned before = cs__ag_sample_signals();
        r = syscall(SYS_pselect6, nfds, rd, wr, ex, tmo ? &left : NULL, &data);
        if (!cs__ag_ours(r, before))
            break;
    }
    if (tv && tmo) {
        struct timespec left = cs__ag_ts(deadline - cs__ag_mono());
        int e = errno;
        tv->tv_sec = left.tv_sec;
        tv->tv_usec = left.tv_nsec / 1000;
        errno = e;
    }
    return (int)r;
}

static int cs__ag_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                         struct timeval *tv)
{
    struct timespec tmo;

    if (tv)
        tmo = cs__ag_ts((int64_t)tv->tv_sec * 1000000000 +
                        (int64_t)tv->tv_usec * 1000);
    return cs__ag_pselect(nfds, rd, wr, ex, tv ? &tmo : NULL, NULL, tv);
}

CS_EXTERN int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                     struct timeval *tv)
{
    CS__WATCHED("select", !tv || tv->tv_sec || tv->tv_usec,
                cs__ag_select(nfds, rd, wr, ex, tv));
}

CS_EXTERN int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                      const struct timespec *tmo, const sigset_t *mask)
{
    CS__WATCHED("pselect", !tmo || tmo->tv_sec || tmo->tv_nsec,
                cs__ag_pselect(nfds, rd, wr, ex, tmo, mask, NULL));
}

static int cs__ag_epoll_pwait(int epfd, struct epoll_event *ev, int max,
                              int timeout, const sigset_t *mask)
{
    int64_t deadline = cs__ag_mono() + (int64_t)timeout * 1000000;
    int ms = timeout;
    long r;

    for (;;) {
        unsigned before = cs__ag_sample_signals();
        r = syscall(SYS_epoll_pwait, epfd, ev, max, ms, mask,
                    CS__SIGSET_BYTES);
        if (!cs__ag_ours(r, before))
            return (int)r;
        if (timeout > 0)
            ms = cs__ag_ms_left(deadline);
    }
}

CS_EXTERN int epoll_wait(int epfd, struct epoll_event *ev, int max,
                         int timeout)
{
    CS__WATCHED("epoll_wait", timeout != 0,
                cs__ag_epoll_pwait(epfd, ev, max, timeout, NULL));
}

CS_EXTERN int epoll_pwait(int epfd, struct epoll_event *ev, int max,
                          int timeout, const sigset_t *mask)
{
    CS__WATCHED("epoll_pwait", timeout != 0,
                cs__ag_epoll_pwait(epfd, ev, max, timeout, mask));
}
