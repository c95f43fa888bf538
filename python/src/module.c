/*
 * module.c - the _coscope extension module: starts tracing into the
 * segment, hands coscope/__init__.py the pieces it installs on asyncio
 * (Handle._run, the task factory), and the calls its report writer needs.
 */
#include "cspy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int cs_py_tracing;
int cs_py_recording;
uint64_t cs_py_slow_ticks = UINT64_MAX;
PyObject *cs_py_report_cb;
__thread cs_py_thread *cs_py_self;
static pthread_key_t thread_key;
static uint64_t ns_mult = 1ull << 32;

PyObject *cs_py_make_handle_run(PyObject *cls, PyObject *err_cb);

uint64_t cs_py_ticks_to_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * ns_mult) >> 32);
}

/* A thread that ran a loop has ended: its ring goes back (the record
 * stays allocated: the watchdog may still be looking at it). */
static void thread_gone(void *p)
{
    cs_py_thread *t = p;
    if (t->ring)
        cs__tr_ring_release(t->ring);
    t->ring = NULL;
    t->tstate = NULL;
}

cs_py_thread *cs_py_thread_get(void)
{
    if (cs_py_self)
        return cs_py_self;
    cs_py_thread *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->tid = (pid_t)syscall(SYS_gettid);
    t->tstate = PyThreadState_Get();
    if (cs_py_tracing)
        t->ring = cs__tr_ring_acquire();
    cs_py_self = t;
    pthread_setspecific(thread_key, t);
    cs_py_register_thread(t);
    return t;
}

/* start(slow_ms) -> segment path, or None when tracing is off */
static PyObject *py_start(PyObject *m, PyObject *args)
{
    double slow_ms = 100;
    (void)m;
    if (!PyArg_ParseTuple(args, "|d", &slow_ms))
        return NULL;
    if (!cs_py_tracing) {
        cs__tr_config cfg;
        cs__tr_config_env(&cfg);
        /* Python's names and locations are many: more room for strings
         * than the C runtime's default, unless COSCOPE_STRINGS_KB says */
        if (!getenv("COSCOPE_STRINGS_KB"))
            cfg.strings_kb = 4096;
        /* asyncio programs keep many tasks alive at once (gather) */
        if (!getenv("COSCOPE_TASKS"))
            cfg.task_slots = 65536;
        int rc = cs__tr_start_with(&cfg);
        if (rc == 0 && cs__tr_header()) {
            cs_py_tracing = 1;
            cs_py_recording = cfg.record && cfg.record[0];
            ns_mult = cs__tr_header()->ns_mult;
        } else if (rc < 0) {
            fprintf(stderr,
                    "coscope: cannot create the trace segment: %s; "
                    "running untraced\n",
                    strerror(-rc));
        }
    }
    /* ticks per ms from the calibration: ns = ticks * mult >> 32 */
    if (slow_ms <= 0)
        cs_py_slow_ticks = UINT64_MAX;
    else
        cs_py_slow_ticks =
            (uint64_t)(slow_ms * 1e6 * 4294967296.0 / (double)ns_mult);
    if (!cs_py_tracing)
        Py_RETURN_NONE;
    return PyUnicode_FromString(cs__tr_segment_path());
}

static PyObject *py_handle_run(PyObject *m, PyObject *args)
{
    PyObject *cls, *err;
    (void)m;
    if (!PyArg_ParseTuple(args, "OO", &cls, &err))
        return NULL;
    return cs_py_make_handle_run(cls, err);
}

static PyObject *py_set_reporter(PyObject *m, PyObject *cb)
{
    (void)m;
    Py_INCREF(cb);
    Py_XSETREF(cs_py_report_cb, cb == Py_None ? (Py_DECREF(cb), NULL) : cb);
    Py_RETURN_NONE;
}

static PyObject *py_blocking_register(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyBool_FromLong(cs_py_blocking_register());
}

static PyObject *py_watchdog_start(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    if (cs_py_tracing && cs_py_watchdog_start() != 0)
        return PyErr_Format(PyExc_OSError, "cannot start coscope's watchdog");
    Py_RETURN_NONE;
}

/* task_id(task) -> coscope's id for it, 0 if it has none */
static PyObject *py_task_id(PyObject *m, PyObject *task)
{
    (void)m;
    return PyLong_FromUnsignedLongLong(cs_py_task_id(task));
}

const char *cs_py_string(uint32_t id)
{
    cs_seg_header *h = cs__tr_header();
    if (h == NULL || id == 0 || id % 4)
        return NULL;
    const cs_region_ref *g = &h->regions[CS_REGION_STRINGS];
    uint64_t used = __atomic_load_n(&h->strings_used, __ATOMIC_ACQUIRE);
    if ((uint64_t)id + 4 > used || used > g->size)
        return NULL;
    const char *e = (const char *)h + g->offset + id;
    uint32_t size = __atomic_load_n((const uint32_t *)e, __ATOMIC_ACQUIRE);
    if (size == 0 || (uint64_t)id + 4 + size > used)
        return NULL;
    return e + 4;
}

static PyObject *str_or_none(uint32_t id)
{
    const char *s = cs_py_string(id);
    if (s == NULL)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* row_info(task) -> (id, site, [chain, innermost first]) or None: what
 * the segment says of the task (its chain as last published) */
static PyObject *py_row_info(PyObject *m, PyObject *task)
{
    (void)m;
    cs_py_row *r = cs_py_row_find(task);
    if (r == NULL)
        r = cs_py_row_dead(task);
    if (r == NULL)
        Py_RETURN_NONE;
    PyObject *chain = PyList_New(0);
    for (int i = 0; chain && i < CS_PY_CHAIN_MAX && r->chain[i]; i++) {
        PyObject *s = str_or_none(r->chain[i]);
        if (s == NULL || PyList_Append(chain, s) != 0)
            Py_CLEAR(chain);
        Py_XDECREF(s);
    }
    if (chain == NULL)
        return NULL;
    PyObject *site = str_or_none(r->site);
    if (site == NULL) {
        Py_DECREF(chain);
        return NULL;
    }
    return Py_BuildValue("(KNN)", (unsigned long long)r->id, site, chain);
}

/* warn(kind, task, text): a warning record in the segment, the Python
 * stack text as its string (CS_RECF_PYSTACK) */
static PyObject *py_warn(PyObject *m, PyObject *args)
{
    unsigned kind;
    PyObject *task;
    const char *text;
    Py_ssize_t len;
    (void)m;
    if (!PyArg_ParseTuple(args, "IOs#", &kind, &task, &text, &len))
        return NULL;
    if (!cs_py_tracing)
        Py_RETURN_NONE;
    cs_py_row *r = task == Py_None ? NULL : cs_py_row_find(task);
    uint64_t id = task == Py_None ? 0 : cs_py_task_id(task);
    if (r)
        cs_py_row_name(r);
    cs_py_thread *t = cs_py_thread_get();
    uint32_t sid = cs__tr_intern_n(text, (size_t)len);
    cs_seg_header *h = cs__tr_header();
    if (h)
        __atomic_fetch_add(&h->warnings, 1, __ATOMIC_RELAXED);
    if (t && t->ring)
        cs__tr_emit(t->ring, cs__tr_now(), id,
                    CS_REC_INFO(CS_EV_WARNING, kind, CS_RECF_PYSTACK), sid);
    Py_RETURN_NONE;
}

static PyObject *py_stack(PyObject *m, PyObject *args)
{
    int max = 64;
    (void)m;
    if (!PyArg_ParseTuple(args, "|i", &max))
        return NULL;
    return cs_py_stack_here(max);
}

static PyObject *py_segment(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    if (!cs_py_tracing)
        Py_RETURN_NONE;
    return PyUnicode_FromString(cs__tr_segment_path());
}

/* tee(first, second) -> f: f(x) calls first(x) (errors ignored), then
 * returns second(x).  In C so that no frame of ours sits between a caller
 * and second: warnings' stacklevel still names the user's line. */
static PyObject *tee_call(PyObject *pair, PyObject *x)
{
    PyObject *r = PyObject_CallOneArg(PyTuple_GET_ITEM(pair, 0), x);
    Py_XDECREF(r);
    if (r == NULL)
        PyErr_Clear();
    return PyObject_CallOneArg(PyTuple_GET_ITEM(pair, 1), x);
}
static PyMethodDef tee_def = {"_warn_unawaited_coroutine", tee_call, METH_O,
                              "coscope's report, then warnings' own"};

static PyObject *py_tee(PyObject *m, PyObject *args)
{
    PyObject *a, *b;
    (void)m;
    if (!PyArg_ParseTuple(args, "OO", &a, &b))
        return NULL;
    PyObject *pair = PyTuple_Pack(2, a, b);
    if (pair == NULL)
        return NULL;
    PyObject *f = PyCFunction_New(&tee_def, pair);
    Py_DECREF(pair);
    return f;
}

/* timed_select(select) -> f: f(timeout) calls select(timeout) and
 * writes a loop-iteration record with the time spent in it, which is
 * what `top`'s "loop busy %" and trace files' idle time come from. */
static PyObject *timed_select_call(PyObject *inner, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    cs_py_thread *t = cs_py_self ? cs_py_self : cs_py_thread_get();
    uint64_t t0 = cs__tr_now();
    PyObject *r = PyObject_Vectorcall(inner, args, (size_t)nargs, NULL);
    if (t && t->ring) {
        uint64_t t1 = cs__tr_now();
        cs__tr_loop_iter(t->ring, t1, t1 - t0);
    }
    return r;
}
static PyMethodDef timed_select_def = {
    "select", (PyCFunction)(void (*)(void))timed_select_call, METH_FASTCALL,
    "the selector's select, timed by coscope"};

static PyObject *py_timed_select(PyObject *m, PyObject *inner)
{
    (void)m;
    return PyCFunction_New(&timed_select_def, inner);
}

static PyMethodDef methods[] = {
    {"timed_select", py_timed_select, METH_O,
     "timed_select(select): select, with a loop-iteration record per call"},
    {"tee", py_tee, METH_VARARGS,
     "tee(first, second): f(x) runs first(x), returns second(x)"},
    {"start", py_start, METH_VARARGS,
     "start(slow_ms=100): create this process's segment; its path or None"},
    {"handle_run", py_handle_run, METH_VARARGS,
     "handle_run(Handle, on_error): a method to assign to Handle._run"},
    {"set_reporter", py_set_reporter, METH_O,
     "set_reporter(fn): fn(kind, ...) writes coscope's reports"},
    {"blocking_register", py_blocking_register, METH_NOARGS,
     "hook into libcoscope-preload.so if it is loaded; True if it is"},
    {"watchdog_start", py_watchdog_start, METH_NOARGS,
     "start the slow-step watchdog thread"},
    {"task_id", py_task_id, METH_O, "task_id(task): coscope's id, 0 if none"},
    {"row_info", py_row_info, METH_O,
     "row_info(task): (id, creation site, await chain) or None"},
    {"warn", py_warn, METH_VARARGS,
     "warn(kind, task, text): a warning record in the segment"},
    {"stack", py_stack, METH_VARARGS,
     "stack(max=64): [(file, line, function)] of this thread, innermost first"},
    {"segment", py_segment, METH_NOARGS, "the segment's path, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    "_coscope",
    "coscope's asyncio bridge, in C (use the coscope package)",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* REPORT_CLASSES {name: CS_WARN_* kind} of the classes the agent reports
 * and REPORT_ALIASES {older spelling: name}, from CS_REPORT_CLASS_MAP. */
static int add_report_classes(PyObject *m)
{
    PyObject *classes = PyDict_New(), *aliases = PyDict_New();
    int bad = classes == NULL || aliases == NULL;
#define ADD_CLASS(k, value, name, trace_name, reported)                       \
    if (!bad && (reported)) {                                                 \
        PyObject *v = PyLong_FromLong(value);                                 \
        bad = v == NULL || PyDict_SetItemString(classes, name, v) < 0;        \
        Py_XDECREF(v);                                                        \
        if (!bad && strcmp(name, trace_name) != 0) {                          \
            PyObject *to = PyUnicode_FromString(name);                        \
            bad = to == NULL ||                                               \
                  PyDict_SetItemString(aliases, trace_name, to) < 0;          \
            Py_XDECREF(to);                                                   \
        }                                                                     \
    }
    CS_REPORT_CLASS_MAP(ADD_CLASS)
#undef ADD_CLASS
    if (!bad && PyModule_AddObject(m, "REPORT_CLASSES", classes) == 0)
        classes = NULL;
    else
        bad = 1;
    if (!bad && PyModule_AddObject(m, "REPORT_ALIASES", aliases) == 0)
        aliases = NULL;
    else
        bad = 1;
    Py_XDECREF(classes);
    Py_XDECREF(aliases);
    return bad ? -1 : 0;
}

PyMODINIT_FUNC PyInit__coscope(void)
{
    /* A build for another minor version (the CMake build's directory put
     * on PYTHONPATH for another interpreter: the file name has no ABI tag)
     * would read that version's structures wrongly: refuse it, before
     * anything else runs.  Py_Version: the running interpreter's. */
    if ((Py_Version >> 16) != (PY_VERSION_HEX >> 16)) {
        PyErr_Format(
            PyExc_ImportError,
            "this coscope bridge was built for Python %d.%d, not %d.%d "
            "(build it for this interpreter: pip install ./python, or "
            "cmake -DPython3_EXECUTABLE=...)",
            PY_MAJOR_VERSION, PY_MINOR_VERSION, (int)(Py_Version >> 24),
            (int)((Py_Version >> 16) & 0xff));
        return NULL;
    }
    PyObject *m = PyModule_Create(&moddef);
    if (m == NULL)
        return NULL;
    if (pthread_key_create(&thread_key, thread_gone) != 0 ||
        cs_py_task_init(m) < 0 || cs_py_where_init() < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "FORMAT_MINOR", CS_FORMAT_MINOR);
    PyModule_AddIntConstant(m, "WARN_SLOW_STEP", CS_WARN_SLOW_STEP);
    PyModule_AddIntConstant(m, "WARN_BLOCKING", CS_WARN_BLOCKING);
    PyModule_AddIntConstant(m, "WARN_NEVER_AWAITED", CS_WARN_NEVER_AWAITED);
    PyModule_AddIntConstant(m, "WARN_EXCEPTION", CS_WARN_EXCEPTION);
    PyModule_AddIntConstant(m, "WARN_PENDING", CS_WARN_PENDING);
    PyModule_AddIntConstant(m, "WARN_DEADLOCK", CS_WARN_DEADLOCK);
    if (add_report_classes(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
