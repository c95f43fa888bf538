/*
 * detect_crash.c - "task 'T' crashed: SIGSEGV at ADDR": a fatal signal
 * (SEGV, BUS, FPE, ILL) raised inside a task.
 *
 * The handler runs on the loop thread's alternate stack (the runtime sets
 * one per loop thread, for stack overflows; its own SIGSEGV handler is put
 * in front of ours at each cs_run and chains to us).  The headline is
 * formatted by hand and written with write(2), and the interrupted stack
 * is captured with libunwind from the signal's context: both
 * async-signal-safe.  Naming the frames is not (the symboliser allocates);
 * the process is dying anyway, so it is attempted under alarm(2), whose
 * handler gives up and lets the crash proceed if it hangs (a crash inside
 * malloc holding its lock).  Then the handler found at load runs, or the
 * default action: the process dies of the original signal, with its core.
 */
#include "agent.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static const int cs__fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
static struct sigaction cs__old[4];
static volatile sig_atomic_t cs__crashing;
static volatile sig_atomic_t cs__crash_sig;

static int cs__slot(int sig)
{
    for (int i = 0; i < 4; i++)
        if (cs__fatal[i] == sig)
            return i;
    return 0;
}

static const char *cs__signame(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    default: return "signal";
    }
}

/* Async-signal-safe appenders. */
static size_t cs__put_s(char *buf, size_t n, size_t cap, const char *s)
{
    while (s && *s && n + 1 < cap)
        buf[n++] = *s++;
    return n;
}

static size_t cs__put_x(char *buf, size_t n, size_t cap, uintptr_t v)
{
    char tmp[2 + 2 * sizeof(v)];
    size_t k = 0;

    do {
        tmp[k++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    n = cs__put_s(buf, n, cap, "0x");
    while (k && n + 1 < cap)
        buf[n++] = tmp[--k];
    return n;
}

static size_t cs__put_u(char *buf, size_t n, size_t cap, uint64_t v)
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

/* Lets the crash proceed: the previous handler, or the default action. */
static void cs__chain(int sig, siginfo_t *si, void *uc)
{
    cs__signal_chain(&cs__old[cs__slot(sig)], sig, si, uc);
}

static void cs__alarm(int sig)
{
    static const char msg[] = "    (naming the frames hung; giving up)\n";

    (void)sig;
    (void)!write(2, msg, sizeof(msg) - 1);
    signal(cs__crash_sig, SIG_DFL);
    raise(cs__crash_sig);
}

static void cs__crash_handler(int sig, siginfo_t *si, void *uc)
{
    cs_task *t = cs_current_task();
    char buf[512];
    size_t n = 0;
    cs__bt bt;

    if (!t || cs__crashing || !(cs__cfg.reports & CS__R_CRASH)) {
        cs__chain(sig, si, uc);
        return;
    }
    cs__crashing = 1;
    cs__crash_sig = sig;
    n = cs__put_s(buf, n, sizeof(buf), "coscope: task '");
    n = cs__put_s(buf, n, sizeof(buf), cs_task_name(t));
    n = cs__put_s(buf, n, sizeof(buf), "' crashed: ");
    n = cs__put_s(buf, n, sizeof(buf), cs__signame(sig));
    n = cs__put_s(buf, n, sizeof(buf), " at ");
    n = cs__put_x(buf, n, sizeof(buf), (uintptr_t)si->si_addr);
    cs__report_json_begin(CS__R_CRASH, buf + 9, n - 9);
    n = cs__put_s(buf, n, sizeof(buf), "\n  task id ");
    n = cs__put_u(buf, n, sizeof(buf), cs_task_id(t));
    n = cs__put_s(buf, n, sizeof(buf), "; stack at the fault:\n");
    if (!cs__cfg.quiet)
        (void)!write(2, buf, n);
    cs__bt_signal(&bt, uc);
    cs__bt_trim_self(&bt);
    signal(SIGALRM, cs__alarm);
    alarm(3);
    cs__report_stack(&bt);
    cs__report_json_end();
    alarm(0);
    cs__chain(sig, si, uc);
}

void cs__crash_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = cs__crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(cs__fatal[i], &sa, &cs__old[i]);
}
