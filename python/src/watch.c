/*
 * watch.c - the slow-step watchdog and the blocking-call callback.
 *
 * Watchdog: a thread of coscope's own (no Python thread state, never takes
 * the GIL) wakes every 10 ms and reads each loop thread's "step started
 * at" word.  A step past the threshold has its Python stack sampled once,
 * while it still runs, by _Py_DumpTraceback(fd, tstate) into a memfd, as
 * faulthandler.dump_traceback_later does (Modules/faulthandler.c): it
 * reads the frame chain without the GIL and only write()s, so a loop
 * stuck in C code holding the GIL is sampled too.  The step's end (step.c)
 * picks the sample up and reports.
 *
 * Blocking calls: libcoscope-preload.so (agent/interpose.c) asks
 * bl_current() whether the calling thread runs a step, and calls
 * bl_report() after a blocking call there; that takes the GIL back (the
 * call released it, usually) and reports with the Python stack.
 */
#include "cspy.h"

#include "blocking.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* CPython's, exported by 3.11-3.13 (Include/internal/pycore_traceback.h) */
extern void _Py_DumpTraceback(int fd, PyThreadState *tstate);

#define MAX_THREADS CS_RING_MAX

static cs_py_thread *threads[MAX_THREADS];
static int nthreads;
static pthread_mutex_t threads_mu = PTHREAD_MUTEX_INITIALIZER;
static int memfd = -1;
static int stopping;        /* set at exit: the segment is about to go */
static pthread_t watchdog_th;

void cs_py_register_thread(cs_py_thread *t)
{
    pthread_mutex_lock(&threads_mu);
    if (nthreads < MAX_THREADS)
        __atomic_store_n(&threads[nthreads++], t, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&threads_mu);
}

static void sample(cs_py_thread *t, uint64_t start)
{
    int idle = 0;
    if (!__atomic_compare_exchange_n(&t->sample_state, &idle, 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    t->sample_for = start;
    /* the step may have ended between our check and the claim */
    if (__atomic_load_n(&t->ring->hdr->step_start, __ATOMIC_ACQUIRE) != start) {
        __atomic_store_n(&t->sample_state, 0, __ATOMIC_RELEASE);
        return;
    }
    size_t n = 0;
    /* The frames change under us (as faulthandler's do): a dump is kept
     * when the innermost frame was the same before and after it (3.11),
     * else taken again, three times at most. */
    for (int tries = 0; tries < 3; tries++) {
        if (memfd < 0 || ftruncate(memfd, 0) != 0 || lseek(memfd, 0, SEEK_SET) != 0)
            break;
#ifdef CS_PY_311
        void *before = __atomic_load_n((void **)&t->tstate->cframe->current_frame,
                                       __ATOMIC_ACQUIRE);
#endif
        _Py_DumpTraceback(memfd, t->tstate);
        ssize_t k = pread(memfd, t->sample, sizeof(t->sample) - 1, 0);
        n = k > 0 ? (size_t)k : 0;
#ifdef CS_PY_311
        if (__atomic_load_n((void **)&t->tstate->cframe->current_frame,
                            __ATOMIC_ACQUIRE) == before)
            break;
#else
        break;
#endif
    }
    t->sample[n] = 0;
    t->sample_len = n;
    __atomic_store_n(&t->sample_state, 2, __ATOMIC_RELEASE);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    struct timespec tick = {0, 10 * 1000 * 1000};
    while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
        nanosleep(&tick, NULL);
        if (__atomic_load_n(&stopping, __ATOMIC_ACQUIRE))
            break;
        uint64_t now = cs__tr_now();
        int n = __atomic_load_n(&nthreads, __ATOMIC_ACQUIRE);
        for (int i = 0; i < n; i++) {
            cs_py_thread *t = __atomic_load_n(&threads[i], __ATOMIC_ACQUIRE);
            if (t == NULL || t->ring == NULL || t->tstate == NULL)
                continue;
            uint64_t start = __atomic_load_n(&t->ring->hdr->step_start,
                                             __ATOMIC_ACQUIRE);
            if (start && now > start && now - start >= cs_py_slow_ticks &&
                !(t->sample_for == start &&
                  __atomic_load_n(&t->sample_state, __ATOMIC_ACQUIRE)))
                sample(t, start);
        }
    }
    return NULL;
}

/* atexit, registered after libtrace's own: runs before the segment is
 * unmapped, and waits for the watchdog to stop reading it. */
static void watchdog_stop(void)
{
    __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
    pthread_join(watchdog_th, NULL);
}

int cs_py_watchdog_start(void)
{
    static int started;
    if (started)
        return 0;
    memfd = memfd_create("coscope-sample", MFD_CLOEXEC);
    if (cs__tr_thread_start(&watchdog_th, NULL, watchdog_main, NULL) != 0)
        return -1;
    atexit(watchdog_stop);
    started = 1;
    return 0;
}

/* ---- blocking calls ------------------------------------------------------ */

static void *bl_current(void)
{
    cs_py_thread *t = cs_py_self;
    return t && t->in_step ? t : NULL;
}

/* Calls that block whatever they took; the rest count from 1 ms, so that
 * a thread handshake (sem_wait in Thread.start) is not a finding. */
static int always(const char *call)
{
    static const char *const a[] = {"sleep", "usleep", "nanosleep",
        "clock_nanosleep", "fsync", "fdatasync", "getaddrinfo",
        "gethostbyname", "system", "popen", "waitpid", "wait", "flock"};
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        if (strcmp(call, a[i]) == 0)
            return 1;
    return 0;
}

static void bl_report(const char *call, int64_t took_ns, const void *caller)
{
    (void)caller;
    /* the GIL's own mutex is taken around every call that released it */
    if (strcmp(call, "pthread_mutex_lock") == 0 || !Py_IsInitialized())
        return;
    if (!always(call) && took_ns < 1000000)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    cs_py_thread *t = cs_py_self;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (cs_py_report_cb && t) {
        PyObject *stack = cs_py_stack_here(64);
        if (stack) {
            PyObject *r = PyObject_CallFunction(
                cs_py_report_cb, "ssdOO", "blocking", call,
                (double)took_ns / 1e6, t->task ? t->task : Py_None, stack);
            Py_XDECREF(r);
            Py_DECREF(stack);
        }
        PyErr_Clear();
    }
    PyErr_Restore(et, ev, tb);
    PyGILState_Release(g);
}

int cs_py_blocking_register(void)
{
    cs_preload_register_fn *reg =
        (cs_preload_register_fn *)dlsym(RTLD_DEFAULT, CS_PRELOAD_REGISTER_SYM);
    if (reg == NULL)
        return 0;
    reg(bl_current, bl_report);
    return 1;
}
