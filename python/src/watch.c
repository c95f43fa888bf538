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

#if PY_VERSION_HEX >= 0x030d0000 && PY_VERSION_HEX < 0x030e0000
/* 3.13 no longer exports _Py_DumpTraceback: its frame walk is done here
 * (dump_traceback() of Python/traceback.c, same text) */
#define CS_PY_OWN_DUMP 1
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#define CUR_FRAME(ts) ((ts)->current_frame)
#elif PY_VERSION_HEX < 0x030d0000
/* CPython's, exported by 3.11 and 3.12 (Include/internal/pycore_traceback.h) */
extern void _Py_DumpTraceback(int fd, PyThreadState *tstate);
#define CUR_FRAME(ts) ((ts)->cframe->current_frame)
#else
/* 3.14+: not ported; a slow step is still reported, without the sample */
#define CS_PY_NO_DUMP 1
#endif

#define MAX_THREADS CS_RING_MAX

static cs_py_thread *threads[MAX_THREADS];
static int nthreads;
static pthread_mutex_t threads_mu = PTHREAD_MUTEX_INITIALIZER;
static int memfd = -1;
static int stopping; /* set at exit: the segment is about to go */
static pthread_t watchdog_th;

void cs_py_register_thread(cs_py_thread *t)
{
    pthread_mutex_lock(&threads_mu);
    if (nthreads < MAX_THREADS)
        __atomic_store_n(&threads[nthreads++], t, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&threads_mu);
}

#ifdef CS_PY_OWN_DUMP
static void put_lit(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n < cap)
        buf[(*n)++] = *s++;
}

/* Appends s to buf (at *n, cap bytes) as faulthandler's _Py_DumpASCII
 * would, at most 500 characters, but non-ASCII as UTF-8 (step.c decodes
 * the sample as UTF-8).  Reads the string without the GIL: it is
 * immutable. */
static void put_str(char *buf, size_t *n, size_t cap, PyObject *s)
{
    if (s == NULL || !PyUnicode_Check(s)) {
        put_lit(buf, n, cap, "???");
        return;
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < len && i < 500; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        char u[4];
        int k;
        if (c < 0x80) {
            u[0] = (char)c;
            k = 1;
        } else if (c < 0x800) {
            u[0] = (char)(0xc0 | (c >> 6));
            u[1] = (char)(0x80 | (c & 0x3f));
            k = 2;
        } else if (c < 0x10000) {
            u[0] = (char)(0xe0 | (c >> 12));
            u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
            u[2] = (char)(0x80 | (c & 0x3f));
            k = 3;
        } else {
            u[0] = (char)(0xf0 | (c >> 18));
            u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
            u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
            u[3] = (char)(0x80 | (c & 0x3f));
            k = 4;
        }
        if (*n + (size_t)k > cap)
            return;
        memcpy(buf + *n, u, (size_t)k);
        *n += (size_t)k;
    }
}

/* The stack of tstate as _Py_DumpTraceback(fd, tstate) writes it
 * ("Stack (most recent call first):" then '  File "f", line N in func'
 * per frame, at most 100), into buf; its length.  Only reads memory. */
static size_t own_dump(PyThreadState *ts, char *buf, size_t cap)
{
    size_t n = 0;
    char num[24];
    put_lit(buf, &n, cap, "Stack (most recent call first):\n");
    _PyInterpreterFrame *f =
        __atomic_load_n(&ts->current_frame, __ATOMIC_ACQUIRE);
    for (int depth = 0; f && depth < 100; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_CSTACK || f->f_executable == NULL ||
            !PyCode_Check(f->f_executable))
            continue;
        PyCodeObject *co = (PyCodeObject *)f->f_executable;
        put_lit(buf, &n, cap, "  File \"");
        put_str(buf, &n, cap, co->co_filename);
        int line = PyUnstable_InterpreterFrame_GetLine(f);
        if (line >= 0)
            snprintf(num, sizeof(num), "%d", line);
        else
            strcpy(num, "???");
        put_lit(buf, &n, cap, "\", line ");
        put_lit(buf, &n, cap, num);
        put_lit(buf, &n, cap, " in ");
        put_str(buf, &n, cap, co->co_name);
        put_lit(buf, &n, cap, "\n");
        depth++;
    }
    return n;
}
#endif

static void sample(cs_py_thread *t, uint64_t start)
{
    int idle = 0;
    if (!__atomic_compare_exchange_n(&t->sample_state, &idle, 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    t->sample_for = start;
    /* the step may have ended between our check and the claim */
    if (__atomic_load_n(&t->ring->hdr->step_start, __ATOMIC_ACQUIRE) !=
        start) {
        __atomic_store_n(&t->sample_state, 0, __ATOMIC_RELEASE);
        return;
    }
    size_t n = 0;
    /* The frames change under us (as faulthandler's do): a dump is kept
     * when the innermost frame was the same before and after it, else
     * taken again, three times at most. */
    for (int tries = 0; tries < 3; tries++) {
#ifdef CS_PY_NO_DUMP
        break;
#else
        void *before =
            __atomic_load_n((void **)&CUR_FRAME(t->tstate), __ATOMIC_ACQUIRE);
#ifdef CS_PY_OWN_DUMP
        n = own_dump(t->tstate, t->sample, sizeof(t->sample) - 1);
#else
        if (memfd < 0 || ftruncate(memfd, 0) != 0 ||
            lseek(memfd, 0, SEEK_SET) != 0)
            break;
        _Py_DumpTraceback(memfd, t->tstate);
        ssize_t k = pread(memfd, t->sample, sizeof(t->sample) - 1, 0);
        n = k > 0 ? (size_t)k : 0;
#endif
        if (__atomic_load_n((void **)&CUR_FRAME(t->tstate),
                            __ATOMIC_ACQUIRE) == before)
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
            uint64_t start =
                __atomic_load_n(&t->ring->hdr->step_start, __ATOMIC_ACQUIRE);
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
    static const char *const a[] = {"sleep",       "usleep",
                                    "nanosleep",   "clock_nanosleep",
                                    "fsync",       "fdatasync",
                                    "getaddrinfo", "gethostbyname",
                                    "system",      "popen",
                                    "waitpid",     "wait",
                                    "flock"};
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
            PyObject *r =
                PyObject_CallFunction(cs_py_report_cb, "ssdOO", "blocking",
                                      call, (double)took_ns / 1e6,
                                      t->task ? t->task : Py_None, stack);
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
