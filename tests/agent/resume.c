/*
 * resume.c - the watchdog neither changes what the program does nor loses
 * what it finds (tests/agent/resume.sh runs it under a short
 * COSCOPE_SLOW_MS, so the watchdog's sample signal lands in every call):
 *
 *   agent_resume CALL     a task sleeps or waits 200 ms in CALL (usleep,
 *                         nanosleep, clock_nanosleep, poll, ppoll, select,
 *                         pselect, epoll_wait, sleep: 1 s); exit 1 if it
 *                         returned early or failed
 *   agent_resume alarm-CALL   the program's own SIGALRM (a handler without
 *                         SA_RESTART) at 400 ms ends a 5 s CALL with
 *                         EINTR, as without coscope; exit 1 if it does not
 *   agent_resume trace    a 300 ms step in task 'hasher', then the loop
 *                         sleeps in its poller on a pipe; a thread reads
 *                         the process's own segment until the slow-step
 *                         warning for 'hasher' is in the loop thread's
 *                         ring, then writes the pipe (the loop must have
 *                         been woken to write it: without that this hangs
 *                         until the alarm); prints "ready" and, with
 *                         `hold`, waits for stdin to close (coscope metrics)
 */
#include <coscope.h>
#include <coscope/trace.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define WANT_MS 200

static const char *call;
static int alarmed; /* alarm-CALL */
static volatile sig_atomic_t alarms;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* The call for ms milliseconds: 0 when it ran its time, -1 with errno. */
static int __attribute__((noinline)) wait_in(const char *c, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000}, rem;
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
    int p[2], r;

    if (!strcmp(c, "usleep"))
        return usleep((useconds_t)ms * 1000);
    if (!strcmp(c, "nanosleep"))
        return nanosleep(&ts, &rem);
    if (!strcmp(c, "clock_nanosleep"))
        return (errno = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &rem)) ? -1
                                                                        : 0;
    if (!strcmp(c, "sleep"))
        return sleep((unsigned)(ms + 999) / 1000) ? (errno = EINTR, -1) : 0;
    if (!strcmp(c, "select"))
        return select(0, NULL, NULL, NULL, &tv);
    if (!strcmp(c, "pselect"))
        return pselect(0, NULL, NULL, NULL, &ts, NULL);
    if (pipe(p) < 0)
        return -1;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    if (!strcmp(c, "poll")) {
        r = poll(&pfd, 1, ms);
    } else if (!strcmp(c, "ppoll")) {
        r = ppoll(&pfd, 1, &ts, NULL);
    } else if (!strcmp(c, "epoll_wait")) {
        struct epoll_event ev = {.events = EPOLLIN}, out;
        int ep = epoll_create1(0);
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
        r = epoll_wait(ep, &out, 1, ms);
        int e = errno;
        close(ep);
        errno = e;
    } else {
        fprintf(stderr, "agent_resume: unknown call '%s'\n", c);
        exit(2);
    }
    int e = errno;
    close(p[0]);
    close(p[1]);
    errno = e;
    return r;
}

static void *sleeper(void *arg)
{
    int ms = !strcmp(call, "sleep") ? 1000 : WANT_MS;
    int64_t t0, took;
    int r;

    (void)arg;
    if (alarmed) {
        struct sigaction sa;
        struct itimerval it = {{0, 0}, {0, 400000}};
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_alarm; /* no SA_RESTART: the call must end */
        sigaction(SIGALRM, &sa, NULL);
        setitimer(ITIMER_REAL, &it, NULL);
        r = wait_in(call, 5000);
        int e = errno;
        printf("%s: returned %d (%s) after the program's SIGALRM (%d)\n", call,
               r, r < 0 ? strerror(e) : "no error", (int)alarms);
        return (void *)(intptr_t)(r < 0 && e == EINTR && alarms == 1 ? 0 : 1);
    }
    t0 = mono_ms();
    r = wait_in(call, ms);
    took = mono_ms() - t0;
    printf("%s(%d ms): returned %d (%s) after %lld ms\n", call, ms, r,
           r < 0 ? strerror(errno) : "no error", (long long)took);
    return (void *)(intptr_t)(r == 0 && took >= ms ? 0 : 1);
}

/* ---- trace ------------------------------------------------------------------ */

static volatile uint64_t hasher_id;
static int wake[2];
static int loop_tid;

static unsigned __attribute__((noinline)) crunch(int ms)
{
    int64_t end = mono_ms() + ms;
    volatile unsigned h = 0;
    while (mono_ms() < end)
        h = h * 31 + 7;
    return h;
}

static void *hasher(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)crunch(300);
}

/* True once ring r of t holds the slow warning about the hasher. */
static int found_in(cs_trace *t, uint32_t r)
{
    cs_trace_event ev[256];
    uint64_t cursor = 0, lost = 0;
    size_t n;

    while (cs_trace_read(t, r, &cursor, ev, 256, &n, &lost) == 0 && n) {
        for (size_t i = 0; i < n; i++)
            if (ev[i].type == CS_EV_WARNING &&
                ev[i].reason == CS_WARN_SLOW_STEP && hasher_id &&
                ev[i].task_id == hasher_id)
                return 1;
    }
    return 0;
}

/* Reads our own segment until the warning is there (an event: bounded by
 * the alarm in main, not by a timing). */
static void *watcher(void *arg)
{
    cs_trace *t = NULL;
    struct timespec nap = {0, 2000000};

    (void)arg;
    for (;;) {
        if (!t && cs_trace_open_pid(getpid(), &t) != 0)
            t = NULL;
        cs_trace_info info;
        if (t && cs_trace_info_get(t, &info) == 0) {
            for (uint32_t r = 0; r < info.ring_count; r++) {
                cs_trace_ring ring;
                if (cs_trace_ring_get(t, r, &ring) == 0 &&
                    (int)ring.tid == loop_tid && found_in(t, r)) {
                    printf(
                        "slow warning for task %llu in the loop's ring %u\n",
                        (unsigned long long)hasher_id, r);
                    fflush(stdout);
                    cs_trace_close(t);
                    if (write(wake[1], "x", 1) != 1)
                        abort();
                    return NULL;
                }
            }
        }
        nanosleep(&nap, NULL); /* a poll interval, not a synchronisation */
    }
}

static void *trace_main(void *arg)
{
    char c;
    pthread_t th;

    loop_tid = (int)syscall(SYS_gettid);
    cs_task *h = cs_spawn("hasher", hasher, NULL);
    hasher_id = cs_task_id(h);
    cs_await(h, NULL);
    if (pipe(wake) < 0 || pthread_create(&th, NULL, watcher, NULL) != 0)
        return (void *)1;
    /* the loop sleeps in epoll_wait until the watcher saw the warning */
    if (cs_read(wake[0], &c, 1) != 1)
        return (void *)1;
    pthread_detach(th); /* it has ended or is ending: no wait on the loop */
    printf("ready\n");
    fflush(stdout);
    if (arg) /* hold: until stdin closes */
        while (cs_read(0, &c, 1) > 0)
            ;
    return NULL;
}

int main(int argc, char **argv)
{
    void *res = NULL;

    if (argc < 2) {
        fprintf(stderr, "usage: agent_resume CALL|alarm-CALL|trace [hold]\n");
        return 2;
    }
    alarm(60); /* a hang fails (SIGALRM's default action) */
    if (!strcmp(argv[1], "trace")) {
        int r = cs_run(trace_main, argc > 2 ? (void *)1 : NULL, &res);
        return r || res ? 1 : 0;
    }
    call = argv[1];
    if (!strncmp(call, "alarm-", 6)) {
        call += 6;
        alarmed = 1;
        alarm(0); /* the itimer is ITIMER_REAL too */
    }
    int r = cs_run(sleeper, NULL, &res);
    return r || res ? 1 : 0;
}
