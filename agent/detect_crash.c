/*
 * detect_crash.c - "task 'T' crashed: SIGSEGV at ADDR": a fatal signal
 * (SEGV, BUS, ABRT, FPE, ILL) raised inside a task.
 *
 * No handler of its own: the runtime's fatal-signal handler (runtime/
 * fatal.c) calls cs__ag_crash_report through the agent hook table, on the
 * thread's alternate stack, after its stack-overflow report and before
 * its flight-recorder dump, then hands the signal to the previous
 * disposition (docs/runtime.md, "Fatal signals").  The headline is
 * formatted by hand and written with write(2), and the interrupted stack
 * is captured with libunwind from the signal's context: both
 * async-signal-safe.  Naming the frames is not (the symboliser allocates);
 * the process is dying anyway, so it is attempted under alarm(2), whose
 * handler gives up (a crash inside malloc holding its lock) by jumping
 * back here, so that the runtime's remaining steps still run.
 */
#include "agent.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Where the alarm handler lands if naming the frames hangs, and the
 * thread whose stack that is. */
static sigjmp_buf cs__ag_hung;
static pid_t cs__ag_crash_tid;

static const char *cs__ag_signame(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGABRT:
        return "SIGABRT";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    default:
        return "signal";
    }
}

/* Async-signal-safe appenders. */
static size_t cs__ag_put_s(char *buf, size_t n, size_t cap, const char *s)
{
    while (s && *s && n + 1 < cap)
        buf[n++] = *s++;
    return n;
}

static size_t cs__ag_put_x(char *buf, size_t n, size_t cap, uintptr_t v)
{
    char tmp[2 + 2 * sizeof(v)];
    size_t k = 0;

    do {
        tmp[k++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    n = cs__ag_put_s(buf, n, cap, "0x");
    while (k && n + 1 < cap)
        buf[n++] = tmp[--k];
    return n;
}

static size_t cs__ag_put_u(char *buf, size_t n, size_t cap, uint64_t v)
{
    char tmp[24];
    size_t k = 0;

    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && n + 1 < cap)
        buf[n++] = tmp[--k];
    return n;
}

/* Async-signal-safe.  alarm(2) signals the process: another thread
 * that takes it passes it on to the crashing one, whose stack the jump
 * lands on. */
static void cs__ag_alarm(int sig)
{
    static const char msg[] = "    (naming the frames hung; giving up)\n";

    if ((pid_t)syscall(SYS_gettid) != cs__ag_crash_tid) {
        syscall(SYS_tgkill, getpid(), cs__ag_crash_tid, sig);
        return;
    }
    (void)!write(2, msg, sizeof(msg) - 1);
    siglongjmp(cs__ag_hung, 1);
}

/* Names bt's frames and ends the report, giving up after 3 s. */
static void cs__ag_name_frames(const cs__ag_bt *bt)
{
    struct sigaction sa, old_alarm;
    sigset_t alrm, mask;

    cs__ag_crash_tid = (pid_t)syscall(SYS_gettid);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cs__ag_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old_alarm);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &alrm, &mask);
    if (sigsetjmp(cs__ag_hung, 1) == 0) {
        alarm(3);
        cs__ag_report_stack(bt);
        cs__ag_report_json_end();
    }
    alarm(0);
    sigaction(SIGALRM, &old_alarm, NULL);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

/* The fatal_signal hook: called once per process by the runtime. */
void cs__ag_crash_report(int sig, siginfo_t *si, void *uc)
{
    cs_task *t = cs_current_task();
    char buf[512];
    size_t n = 0;
    cs__ag_bt bt;

    if (!t || !cs__ag_reporting(CS_WARN_CRASH))
        return;
    n = cs__ag_put_s(buf, n, sizeof(buf), "coscope: task '");
    n = cs__ag_put_s(buf, n, sizeof(buf), cs_task_name(t));
    n = cs__ag_put_s(buf, n, sizeof(buf), "' crashed: ");
    n = cs__ag_put_s(buf, n, sizeof(buf), cs__ag_signame(sig));
    n = cs__ag_put_s(buf, n, sizeof(buf), " at ");
    n = cs__ag_put_x(buf, n, sizeof(buf), (uintptr_t)si->si_addr);
    cs__ag_report_json_begin(CS_WARN_CRASH, buf + 9, n - 9);
    n = cs__ag_put_s(buf, n, sizeof(buf), "\n  task id ");
    n = cs__ag_put_u(buf, n, sizeof(buf), cs_task_id(t));
    n = cs__ag_put_s(buf, n, sizeof(buf), "; stack at the fault:\n");
    if (!cs__ag_cfg.quiet)
        (void)!write(2, buf, n);
    cs__ag_bt_signal(&bt, uc);
    cs__ag_bt_trim_self(&bt);
    cs__ag_name_frames(&bt);
}
