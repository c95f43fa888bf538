/*
 * thread.c - what coscope's libraries share about threads and signals
 * (writer.h): starting our own threads (the recorder's here; the runtime's
 * to_thread workers and the agent's threads too), and handing a fatal
 * signal on to whoever handled it before us (the runtime's overflow and
 * crash handlers, the agent's crash report).
 */
#include <pthread.h>
#include <signal.h>

#include "writer.h"

/* Every asynchronous signal blocked, so that the program's SIGINT/SIGTERM
 * (maybe blocked in its own threads and read from a signalfd) is never
 * delivered to it; faults stay deliverable so a crash in it is still
 * reported (libuv's threadpool does the same). */
int cs__tr_thread_start(pthread_t *th, const pthread_attr_t *at,
                        void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int r;

    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(th, at, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* Async-signal-safe (sigaction handlers, signal, raise). */
void cs__tr_signal_chain(const struct sigaction *old, int sig, siginfo_t *si,
                         void *uc)
{
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN &&
        old->sa_handler != NULL) {
        old->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    /* A fault re-executes and dies; a signal that was sent must be sent
     * again (abort() does that itself, raise() is harmless there). */
    if (si == NULL || si->si_code <= 0)
        raise(sig);
}
