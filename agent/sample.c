/*
 * sample.c - the stack of another thread of this process, taken by a
 * signal: the watchdog's way of seeing where a long step is (DESIGN.md,
 * Agent).  The sampling thread sends CS__SAMPLE_SIG to the target with
 * tgkill and waits; the target's handler unwinds from the signal context
 * into the request (libunwind's local unwinding and plain stores only:
 * async-signal-safe), copies the running task's name, and marks the
 * request done.  One request at a time; a target that does not answer in
 * time (blocked signal, gone) fails the request, and a late answer is
 * ignored by its state word.
 */
#include "agent.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { CS__IDLE, CS__ASKED, CS__ANSWERED };

static pthread_mutex_t cs__ag_sample_mu = PTHREAD_MUTEX_INITIALIZER;
static cs__ag_sample *cs__ag_req; /* the request in flight */
static pid_t cs__ag_req_tid;      /* the thread that must answer it */
static int cs__ag_req_state;      /* CS__*, atomic */

/* Bumped by the handler on the thread it interrupts (initial-exec: no
 * __tls_get_addr in a handler; libcoscope is loaded at start-up). */
static __thread unsigned cs__ag_sigs
    __attribute__((tls_model("initial-exec")));

unsigned cs__ag_sample_signals(void)
{
    return __atomic_load_n(&cs__ag_sigs, __ATOMIC_RELAXED);
}

static void cs__ag_sample_handler(int sig, siginfo_t *si, void *uc)
{
    cs__ag_sample *s = __atomic_load_n(&cs__ag_req, __ATOMIC_ACQUIRE);
    cs_task *t;
    int e = errno;

    (void)sig, (void)si;
    /* before anything else: the interrupted call compares it on return */
    __atomic_store_n(&cs__ag_sigs, cs__ag_sigs + 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&cs__ag_req_state, __ATOMIC_ACQUIRE) != CS__ASKED ||
        !s || (pid_t)syscall(SYS_gettid) != cs__ag_req_tid) {
        errno = e;
        return;
    }
    cs__ag_bt_signal(&s->bt, uc);
    cs_agent_step_slow(); /* not averaged into a trace batch */
    s->call_ret = cs__ag_resume_ret;
    s->task_id = 0;
    s->task[0] = '\0';
    if ((t = cs_current_task()) != NULL) {
        const char *name = cs_task_name(t);
        size_t n = 0;
        while (name && name[n] && n + 1 < sizeof(s->task))
            s->task[n] = name[n], n++;
        s->task[n] = '\0';
        s->task_id = cs_task_id(t);
    }
    __atomic_store_n(&cs__ag_req_state, CS__ANSWERED, __ATOMIC_RELEASE);
    errno = e;
}

static int cs__ag_sample_install(void)
{
    static int done;
    struct sigaction sa;

    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = cs__ag_sample_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(CS__SAMPLE_SIG, &sa, NULL) < 0)
        return -errno;
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return 0;
}

int cs__ag_sample_thread(pid_t tid, cs__ag_sample *out, int timeout_ms)
{
    struct timespec nap = {0, 100000}; /* 0.1 ms */
    int r = 0;

    pthread_mutex_lock(&cs__ag_sample_mu);
    if ((r = cs__ag_sample_install()) < 0)
        goto out;
    memset(out, 0, sizeof(*out));
    __atomic_store_n(&cs__ag_req, out, __ATOMIC_RELEASE);
    cs__ag_req_tid = tid;
    __atomic_store_n(&cs__ag_req_state, CS__ASKED, __ATOMIC_RELEASE);
    if (syscall(SYS_tgkill, getpid(), tid, CS__SAMPLE_SIG) < 0) {
        r = -errno;
    } else {
        r = -ETIMEDOUT;
        for (int waited = 0; waited < timeout_ms * 10; waited++) {
            if (__atomic_load_n(&cs__ag_req_state, __ATOMIC_ACQUIRE) ==
                CS__ANSWERED) {
                r = 0;
                break;
            }
            nanosleep(&nap, NULL);
        }
    }
    /* from here a late handler sees IDLE and leaves *out alone */
    __atomic_store_n(&cs__ag_req_state, CS__IDLE, __ATOMIC_RELEASE);
    __atomic_store_n(&cs__ag_req, NULL, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&cs__ag_sample_mu);
    return r;
}

void cs__ag_sample_wake(pid_t tid)
{
    if (cs__ag_sample_install() == 0)
        syscall(SYS_tgkill, getpid(), tid, CS__SAMPLE_SIG);
}
