/*
 * where.c - code locations, await chains and creation sites.
 *
 * A location is "file:line in function", interned in the segment's string
 * table once per (code object, instruction offset) and remembered in a
 * small cache (which holds a reference to the code object, so an address
 * is never reused under a cached key).  The reader prints chains of these
 * ids; no Python runs in the target to read them.
 *
 * CPython 3.11 to 3.13: a suspended coroutine's frame is read directly
 * (the embedded _PyInterpreterFrame: code, last instruction; the awaited
 * object is the top of its stack when, as _PyGen_yf says, the next
 * instruction is RESUME with oparg >= 2 (3.11, 3.12) or the frame state
 * is FRAME_SUSPENDED_YIELD_FROM (3.13)), which costs a few loads per
 * level.  Other versions use the public attributes (cr_await, cr_frame,
 * f_lineno): the same chains, slower.
 */
#include "cspy.h"

#ifdef CS_PY_DIRECT
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#include "opcode.h"
#if PY_VERSION_HEX >= 0x030d0000
#define FRAME_CODE(f) ((PyCodeObject *)(f)->f_executable)
#define CUR_FRAME(ts) ((ts)->current_frame)
#else
#define FRAME_CODE(f) ((f)->f_code)
#define CUR_FRAME(ts) ((ts)->cframe ? (ts)->cframe->current_frame : NULL)
#endif
#endif

#include <string.h>

#define LOC_CAP 65536 /* entries before the cache starts over */

typedef struct {
    PyObject *code; /* strong; NULL = empty */
    int key;        /* instruction offset (3.11) or line */
    cs_py_loc loc;
    uint8_t aio;   /* asyncio's own code */
    int16_t local; /* waiting frames: index of the local that says on
                       what ("h" of sleep, "self" of the rest), -1 none */
} loc_entry;

static loc_entry *locs;
static size_t locs_used;
static char aio_dir[1024]; /* ".../asyncio/" */
static size_t aio_len;
static char std_dir[1024]; /* the standard library's directory + "/" */
static size_t std_len;
static char own_dir[1024]; /* coscope's package (its create_task on
                                3.13.0-3.13.2), counted as asyncio's */
static size_t own_len;

/* What asyncio's own waiting coroutines wait on. */
typedef struct asyncio_waiter {
    const char *qualname; /* the coroutine's co_qualname */
    unsigned wait;        /* the CS_WAIT_* reason it stands for */
} asyncio_waiter;

static const asyncio_waiter asyncio_waiters[] = {
    {"sleep", CS_WAIT_SLEEP},
    {"Lock.acquire", CS_WAIT_LOCK},
    {"Event.wait", CS_WAIT_EVENT},
    {"Condition.wait", CS_WAIT_EVENT},
    {"Semaphore.acquire", CS_WAIT_SEMAPHORE},
    {"Queue.get", CS_WAIT_QUEUE_GET},
    {"Queue.put", CS_WAIT_QUEUE_PUT},
    {"Queue.join", CS_WAIT_EVENT},
    {"StreamReader._wait_for_data", CS_WAIT_FD_READ},
    {"BaseSelectorEventLoop.sock_recv", CS_WAIT_FD_READ},
    {"BaseSelectorEventLoop.sock_recv_into", CS_WAIT_FD_READ},
    {"BaseSelectorEventLoop.sock_accept", CS_WAIT_FD_READ},
    {"BaseSelectorEventLoop.sock_sendall", CS_WAIT_FD_WRITE},
    {"BaseSelectorEventLoop.sock_connect", CS_WAIT_FD_WRITE},
    {"FlowControlMixin._drain_helper", CS_WAIT_FD_WRITE},
    {"StreamWriter.drain", CS_WAIT_FD_WRITE},
    {"wait_for", CS_WAIT_TASK},
    {"_wait", CS_WAIT_TASK},
    {"wait", CS_WAIT_TASK},
    {"BaseEventLoop.run_in_executor", CS_WAIT_THREAD},
    {"to_thread", CS_WAIT_THREAD},
};

/* Wait reason said by asyncio's own waiting coroutines. */
static unsigned wait_of(const char *qualname)
{
    size_t n = sizeof asyncio_waiters / sizeof asyncio_waiters[0];
    for (size_t i = 0; i < n; i++)
        if (strcmp(qualname, asyncio_waiters[i].qualname) == 0)
            return asyncio_waiters[i].wait;
    return CS_WAIT_NONE;
}

static void locs_clear(void)
{
    for (size_t i = 0; i < LOC_CAP; i++)
        Py_CLEAR(locs[i].code);
    locs_used = 0;
}

/* The cached location of (code, key); line is computed on a miss by
 * line_of(code, key). */
static const loc_entry *loc_get(PyObject *code, int key,
                                int (*line_of)(PyObject *, int))
{
    uint64_t h = ((uint64_t)(uintptr_t)code ^ ((uint64_t)key << 32)) *
                 0x9e3779b97f4a7c15ull;
    size_t k = (size_t)(h >> 20) & (LOC_CAP - 1);

    for (;;) {
        loc_entry *e = &locs[k];
        if (e->code == code && e->key == key)
            return e;
        if (e->code == NULL)
            break;
        k = (k + 1) & (LOC_CAP - 1);
    }
    if (locs_used * 2 >= LOC_CAP) {
        locs_clear();
        return loc_get(code, key, line_of);
    }
    PyCodeObject *co = (PyCodeObject *)code;
    const char *file = PyUnicode_AsUTF8(co->co_filename);
    const char *func = PyUnicode_AsUTF8(co->co_qualname);
    if (file == NULL || func == NULL) {
        PyErr_Clear();
        file = file ? file : "?";
        func = func ? func : "?";
    }
    int line = line_of(code, key);
    char text[1024];
    snprintf(text, sizeof(text), "%s:%d in %s", file, line, func);
    loc_entry *e = &locs[k];
    e->code = Py_NewRef(code);
    e->key = key;
    e->loc.text = cs__tr_intern(text);
    e->aio = (aio_len && strncmp(file, aio_dir, aio_len) == 0) ||
             (own_len && strncmp(file, own_dir, own_len) == 0);
    e->loc.library = e->aio ||
                     (std_len && strncmp(file, std_dir, std_len) == 0);
    e->loc.wait = e->aio ? (uint8_t)wait_of(func) : CS_WAIT_NONE;
    e->local = -1;
#ifdef CS_PY_DIRECT
    if (e->loc.wait != CS_WAIT_NONE) {
        const char *want = e->loc.wait == CS_WAIT_SLEEP ? "h" : "self";
        PyObject *names = co->co_localsplusnames;
        for (Py_ssize_t i = 0;
             names && i < PyTuple_GET_SIZE(names) && i < 32767; i++) {
            const char *n = PyUnicode_AsUTF8(PyTuple_GET_ITEM(names, i));
            if (n && strcmp(n, want) == 0) {
                e->local = (int16_t)i;
                break;
            }
        }
        PyErr_Clear();
    }
#endif
    locs_used++;
    return e;
}

#ifdef CS_PY_DIRECT

static int line_direct(PyObject *code, int lasti)
{
    return PyCode_Addr2Line((PyCodeObject *)code,
                            lasti * (int)sizeof(_Py_CODEUNIT));
}

static const loc_entry *frame_loc(_PyInterpreterFrame *f)
{
    return loc_get((PyObject *)FRAME_CODE(f), _PyInterpreterFrame_LASTI(f),
                   line_direct);
}

/* What a suspended generator or coroutine awaits (borrowed), or NULL;
 * *fp: its frame if it is suspended. */
static PyObject *awaited(PyObject *o, _PyInterpreterFrame **fp)
{
    if (!PyCoro_CheckExact(o) && !PyGen_CheckExact(o))
        return NULL;
    PyGenObject *g = (PyGenObject *)o;
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)g->gi_iframe;
#if PY_VERSION_HEX >= 0x030d0000
    if (g->gi_frame_state != FRAME_SUSPENDED &&
        g->gi_frame_state != FRAME_SUSPENDED_YIELD_FROM)
        return NULL;
    *fp = f;
    if (g->gi_frame_state != FRAME_SUSPENDED_YIELD_FROM ||
        !PyCode_Check(f->f_executable) ||
        f->stacktop <= FRAME_CODE(f)->co_nlocalsplus)
        return NULL;
#else
    if (g->gi_frame_state != FRAME_SUSPENDED)
        return NULL;
    *fp = f;
    _Py_CODEUNIT next = f->prev_instr[1];
    int op = _Py_OPCODE(next);
#ifdef CS_PY_311
    int resume = op == RESUME || op == RESUME_QUICK;
#else
    int resume = op == RESUME || op == INSTRUMENTED_RESUME;
#endif
    if (!resume || _Py_OPARG(next) < 2 ||
        f->stacktop <= FRAME_CODE(f)->co_nlocalsplus)
        return NULL;
#endif
    return f->localsplus[f->stacktop - 1];
}

/* What the waiting frame f (at e) waits on: a sleep's deadline
 * (CLOCK_MONOTONIC ns, from its TimerHandle's _when: the default loops'
 * time() is time.monotonic()), else the address of the lock, event,
 * queue... it is a method of. */
static uint64_t target_of(_PyInterpreterFrame *f, const loc_entry *e)
{
    if (e->local < 0 || e->local >= FRAME_CODE(f)->co_nlocalsplus)
        return 0;
    PyObject *v = f->localsplus[e->local];
    if (v == NULL)
        return 0;
    if (e->loc.wait != CS_WAIT_SLEEP)
        return (uint64_t)(uintptr_t)v;
    PyObject *when = PyObject_GetAttrString(v, "_when");
    double d = when ? PyFloat_AsDouble(when) : -1;
    Py_XDECREF(when);
    PyErr_Clear();
    return d > 0 ? (uint64_t)(d * 1e9) : 0;
}

int cs_py_chain(PyObject *coro, uint32_t *ids, int cap, unsigned *wait,
                uint64_t *target)
{
    uint32_t outer[64];
    int n = 0;
    unsigned w = CS_WAIT_NONE;
    _PyInterpreterFrame *wf = NULL;
    const loc_entry *we = NULL;

    for (PyObject *o = coro; o && n < 64;) {
        _PyInterpreterFrame *f = NULL;
        PyObject *next = awaited(o, &f);
        if (f == NULL)
            break;
        const loc_entry *e = frame_loc(f);
        outer[n++] = e->loc.text;
        if (e->loc.wait) {
            w = e->loc.wait;
            wf = f;
            we = e;
        }
        o = next;
    }
    *wait = w;
    *target = wf ? target_of(wf, we) : 0;
    for (int i = 0; i < n && i < cap; i++)
        ids[i] = outer[n - 1 - i];
    return n;
}

uint32_t cs_py_site_here(void)
{
    PyThreadState *ts = PyThreadState_Get();
    _PyInterpreterFrame *f = CUR_FRAME(ts);
    uint32_t first = 0;

    for (int depth = 0; f && depth < 32; f = f->previous, depth++) {
#if PY_VERSION_HEX >= 0x030d0000
        if (f->owner == FRAME_OWNED_BY_CSTACK ||
            !PyCode_Check(f->f_executable))
            continue;
#endif
        if (_PyFrame_IsIncomplete(f))
            continue;
        const loc_entry *e = frame_loc(f);
        if (!first)
            first = e->loc.text;
        if (!e->aio)
            return e->loc.text;
    }
    return first;
}

#else /* other versions (3.14+): the public attributes */

static int line_pub(PyObject *code, int line)
{
    (void)code;
    return line;
}

/* What the waiting frame fr waits on, as target_of says for 3.11: the
 * sleep's deadline from its local "h" (a TimerHandle), else the "self"
 * it is a method of; through PyFrame_GetVarString (3.12+), only for the
 * one waiting frame of a chain. */
static uint64_t target_pub(PyFrameObject *fr, unsigned wait)
{
    uint64_t t = 0;
#if PY_VERSION_HEX >= 0x030c0000
    PyObject *v =
        PyFrame_GetVarString(fr, wait == CS_WAIT_SLEEP ? "h" : "self");
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (wait != CS_WAIT_SLEEP) {
        t = (uint64_t)(uintptr_t)v; /* an address, as a key */
    } else {
        PyObject *when = PyObject_GetAttrString(v, "_when");
        double d = when ? PyFloat_AsDouble(when) : -1;
        Py_XDECREF(when);
        PyErr_Clear();
        t = d > 0 ? (uint64_t)(d * 1e9) : 0;
    }
    Py_DECREF(v);
#else
    (void)fr;
    (void)wait;
#endif
    return t;
}

int cs_py_chain(PyObject *coro, uint32_t *ids, int cap, unsigned *wait,
                uint64_t *target)
{
    uint32_t outer[64];
    int n = 0;
    unsigned w = CS_WAIT_NONE;
    PyObject *o = Py_XNewRef(coro);

    *target = 0;

    while (o && n < 64 && (PyCoro_CheckExact(o) || PyGen_CheckExact(o))) {
        PyObject *fr = PyObject_GetAttrString(o, PyCoro_CheckExact(o)
                                                     ? "cr_frame"
                                                     : "gi_frame");
        PyObject *next = PyObject_GetAttrString(o, PyCoro_CheckExact(o)
                                                       ? "cr_await"
                                                       : "gi_yieldfrom");
        Py_DECREF(o);
        o = NULL;
        if (fr == NULL || fr == Py_None) {
            Py_XDECREF(fr);
            Py_XDECREF(next);
            break;
        }
        PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)fr);
        const loc_entry *e =
            loc_get((PyObject *)code,
                    PyFrame_GetLineNumber((PyFrameObject *)fr), line_pub);
        Py_DECREF(code);
        outer[n++] = e->loc.text;
        if (e->loc.wait) {
            w = e->loc.wait;
            *target = target_pub((PyFrameObject *)fr, e->loc.wait);
        }
        Py_DECREF(fr);
        o = next == Py_None ? (Py_DECREF(next), NULL) : next;
    }
    Py_XDECREF(o);
    PyErr_Clear();
    *wait = w;
    for (int i = 0; i < n && i < cap; i++)
        ids[i] = outer[n - 1 - i];
    return n;
}

uint32_t cs_py_site_here(void)
{
    PyFrameObject *f = PyEval_GetFrame();
    uint32_t first = 0;

    Py_XINCREF(f);
    for (int depth = 0; f && depth < 32; depth++) {
        PyCodeObject *code = PyFrame_GetCode(f);
        const loc_entry *e =
            loc_get((PyObject *)code, PyFrame_GetLineNumber(f), line_pub);
        Py_DECREF(code);
        if (!first)
            first = e->loc.text;
        if (!e->aio) {
            Py_DECREF(f);
            return e->loc.text;
        }
        PyFrameObject *b = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = b;
    }
    Py_XDECREF(f);
    return first;
}

#endif

PyObject *cs_py_stack_here(int max)
{
    PyObject *list = PyList_New(0);
    PyFrameObject *f = PyEval_GetFrame();

    if (list == NULL)
        return NULL;
    Py_XINCREF(f);
    for (int i = 0; f && i < max; i++) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *t = Py_BuildValue("(OiO)", code->co_filename,
                                    PyFrame_GetLineNumber(f),
                                    code->co_qualname);
        Py_DECREF(code);
        if (t == NULL || PyList_Append(list, t) != 0) {
            Py_XDECREF(t);
            Py_DECREF(f);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
        PyFrameObject *b = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = b;
    }
    Py_XDECREF(f);
    return list;
}

static void dir_of(const char *module, const char *attr, char *out, size_t cap,
                   size_t *len)
{
    PyObject *m = PyImport_ImportModule(module);
    PyObject *v = m ? PyObject_GetAttrString(m, attr) : NULL;
    const char *s = v && PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
    if (s) {
        const char *slash = strrchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) + 1 : 0;
        if (n < cap) {
            memcpy(out, s, n);
            out[n] = 0;
            *len = n;
        }
    }
    Py_XDECREF(v);
    Py_XDECREF(m);
    PyErr_Clear();
}

int cs_py_where_init(void)
{
    locs = calloc(LOC_CAP, sizeof(*locs));
    if (locs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    dir_of("asyncio", "__file__", aio_dir, sizeof(aio_dir), &aio_len);
    dir_of("os", "__file__", std_dir, sizeof(std_dir), &std_len);
    dir_of("coscope", "__file__", own_dir, sizeof(own_dir), &own_len);
    return 0;
}
