/*
 * sample.c - the watchdog's sampler (agent/sample.c): the stack of a
 * thread that is busy in a known function is taken through a signal and
 * names that function; a thread that is gone fails the request.  Linked
 * with libcoscope.a, where the agent's hidden functions are reachable.
 */
#include "agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Shared with the spinner thread: atomics, so ThreadSanitizer's run of
 * this test sees no race of its own. */
static int stop;
static pid_t spinner_tid;

static void __attribute__((noinline)) spin_in_here(void)
{
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
        __asm__ volatile("" ::: "memory");
}

static void *spinner(void *arg)
{
    __atomic_store_n(&spinner_tid, (pid_t)syscall(SYS_gettid),
                     __ATOMIC_RELEASE);
    spin_in_here();
    return arg;
}

int main(void)
{
    pthread_t th;
    cs__ag_sample s;
    int found = 0, r;

    pthread_create(&th, NULL, spinner, NULL);
    while (!__atomic_load_n(&spinner_tid, __ATOMIC_ACQUIRE))
        usleep(100);
    r = cs__ag_sample_thread(spinner_tid, &s, 1000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    if (r != 0) {
        fprintf(stderr, "sample: cs__ag_sample_thread: %s\n", strerror(-r));
        return 1;
    }
    for (int i = 0; i < s.bt.n; i++) {
        cs__ag_sym sym;
        cs__ag_sym_lookup(s.bt.ip[i], i > 0 || !s.bt.exact0, &sym);
        printf("#%d %s\n", i, sym.func ? sym.func : "?");
        found |= sym.func && strcmp(sym.func, "spin_in_here") == 0;
    }
    cs__ag_sym_release();
    if (!found || s.task_id != 0) {
        fprintf(stderr, "sample: spin_in_here not in the stack (task %llu)\n",
                (unsigned long long)s.task_id);
        return 1;
    }
    /* the thread has ended: no such thread, or no answer */
    r = cs__ag_sample_thread(spinner_tid, &s, 50);
    if (r != -ESRCH && r != -ETIMEDOUT) {
        fprintf(stderr, "sample: a gone thread answered (%d)\n", r);
        return 1;
    }
    printf("sample: ok\n");
    return 0;
}
