/*
 * thread.c - starting coscope's own threads (the recorder's here; the
 * runtime's to_thread workers and the agent's watchdog and report threads
 * call it too, see writer.h).
 */
#include <pthread.h>
#include <signal.h>

#include "writer.h"

/* Every asynchronous signal blocked, so that the program's SIGINT/SIGTERM
 * (maybe blocked in its own threads and read from a signalfd) is never
 * delivered to it; faults stay deliverable so a crash in it is still
 * reported (libuv's threadpool does the same). */
int cs__thread_start(pthread_t *th, const pthread_attr_t *at,
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
