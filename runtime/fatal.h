/*
 * fatal.h - the runtime's one handler of fatal signals (fatal.c), and the
 * steps it runs, which live with the module each belongs to.  Private to
 * the runtime.
 */
#ifndef CS_RUNTIME_FATAL_H
#define CS_RUNTIME_FATAL_H

#include <signal.h>

struct cs__loop;

/* Puts the handler in front of the current disposition of SIGSEGV,
 * SIGBUS, SIGABRT, SIGFPE and SIGILL, unless it is there already (a
 * handler installed since an earlier cs_run is chained to, not lost).
 * At each cs_run, before its loop runs. */
void cs__fatal_install(void);
/* Gives the loop's thread an alternate signal stack big enough for the
 * steps (its own, or one it already has); fini restores the old one. */
int cs__fatal_thread_init(struct cs__loop *loop);
void cs__fatal_thread_fini(struct cs__loop *loop);

/* The steps, each async-signal-safe. */
/* stack.c: reports a fault in the running task's guard page. */
void cs__stack_overflow_report(int sig, const siginfo_t *si);
/* trace.c: a crash record in the thread's ring and the flight recorder
 * (COSCOPE_FLIGHT), if it is on. */
void cs__trace_crash(void);

#endif
