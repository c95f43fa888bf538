/*
 * task.c - asyncio tasks in the segment's task table.
 *
 * The loop's task factory (set on every loop by coscope/__init__.py) makes
 * the task as asyncio would, then gives it a Row: a slot in the task table
 * with the creation site, and an entry in a table keyed by the task's
 * address.  The step that finishes the task writes its final state and
 * frees the slot (step.c).  The Row is the callback of a weak reference to
 * the task, which is all that keeps it: it runs when the task is
 * destroyed (a task destroyed while pending frees its slot then), so the
 * table never holds a stale address and never keeps a task alive.  (A done
 * callback would cost a loop callback per task: call_soon, a Handle.)
 * Tasks made without the factory (asyncio.Task(...) called directly,
 * loops made before install) get their Row at their first step.
 */
#include "cspy.h"

#include <string.h>

PyObject *cs_py_task_type;
PyObject *cs_py_future_type;
static PyObject *s_get_name, *s_loop, *s_done, *s_cancelled, *s_exception,
    *s_get_coro;
static PyObject *s_loop_kwnames; /* ("loop",) */
static uint64_t next_id = 1;

/* ---- task address -> row: open addressing, backward-shift delete -------- */

static cs_py_row **tab;
static size_t tab_cap, tab_used;

static size_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (tab_cap - 1);
}

static int tab_grow(void)
{
    size_t old = tab_cap, cap = old ? old * 2 : 1024;
    cs_py_row **o = tab, **n = calloc(cap, sizeof(*n));
    if (n == NULL)
        return -1;
    tab = n;
    tab_cap = cap;
    for (size_t i = 0; i < old; i++)
        if (o[i]) {
            size_t k = slot_of(o[i]->task);
            while (tab[k])
                k = (k + 1) & (cap - 1);
            tab[k] = o[i];
        }
    free(o);
    return 0;
}

cs_py_row *cs_py_row_find(PyObject *task)
{
    if (tab_cap == 0)
        return NULL;
    for (size_t k = slot_of(task);; k = (k + 1) & (tab_cap - 1)) {
        cs_py_row *r = tab[k];
        if (r == NULL || r->task == task)
            return r;
    }
}

static int tab_put(cs_py_row *r)
{
    if ((tab_used + 1) * 2 > tab_cap && tab_grow() != 0)
        return -1;
    size_t k = slot_of(r->task);
    while (tab[k])
        k = (k + 1) & (tab_cap - 1);
    tab[k] = r;
    tab_used++;
    r->in_table = 1;
    return 0;
}

static void tab_del(cs_py_row *r)
{
    size_t k = slot_of(r->task), m = tab_cap - 1;

    while (tab[k] != r) {
        if (tab[k] == NULL)
            return;
        k = (k + 1) & m;
    }
    tab[k] = NULL;
    tab_used--;
    r->in_table = 0;
    /* shift back the entries that probed past the hole */
    for (size_t j = (k + 1) & m; tab[j]; j = (j + 1) & m) {
        size_t want = slot_of(tab[j]->task);
        if (((j - want) & m) >= ((j - k) & m)) {
            tab[k] = tab[j];
            tab[j] = NULL;
            k = j;
        }
    }
}

/* ---- tasks made but not yet suspended: task address -> what the row
 * will need.  Most tasks of a create_task + gather burst finish in their
 * first step: they never get a row (a Python object, a weak reference, a
 * slot), only this entry and their records.  No reference is held: an
 * entry left by a task destroyed before it ran is overwritten by the next
 * task made at that address, or forgotten by the pending report. */

typedef struct {
    PyObject *task; /* key, borrowed; NULL empty */
    PyObject *coro; /* borrowed */
    uint64_t id, parent, created;
    uint32_t site;
} pend_entry;

static pend_entry *pend;
static size_t pend_cap, pend_used;

static size_t pend_slot(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (pend_cap - 1);
}

static pend_entry *pend_find(PyObject *task)
{
    if (pend_cap == 0)
        return NULL;
    for (size_t k = pend_slot(task);; k = (k + 1) & (pend_cap - 1)) {
        if (pend[k].task == task)
            return &pend[k];
        if (pend[k].task == NULL)
            return NULL;
    }
}

static int pend_grow(void)
{
    size_t old = pend_cap, cap = old ? old * 2 : 1024;
    pend_entry *o = pend, *n = calloc(cap, sizeof(*n));
    if (n == NULL)
        return -1;
    pend = n;
    pend_cap = cap;
    for (size_t i = 0; i < old; i++)
        if (o[i].task) {
            size_t k = pend_slot(o[i].task);
            while (pend[k].task)
                k = (k + 1) & (cap - 1);
            pend[k] = o[i];
        }
    free(o);
    return 0;
}

static pend_entry *pend_put(PyObject *task)
{
    pend_entry *e = pend_find(task);
    if (e)
        return e; /* a task destroyed before it ran had this address */
    if ((pend_used + 1) * 2 > pend_cap && pend_grow() != 0)
        return NULL;
    size_t k = pend_slot(task);
    while (pend[k].task)
        k = (k + 1) & (pend_cap - 1);
    pend_used++;
    pend[k].task = task;
    return &pend[k];
}

static void pend_del(pend_entry *e)
{
    size_t m = pend_cap - 1, k = (size_t)(e - pend);
    e->task = NULL;
    pend_used--;
    for (size_t j = (k + 1) & m; pend[j].task; j = (j + 1) & m) {
        size_t want = pend_slot(pend[j].task);
        if (((j - want) & m) >= ((j - k) & m)) {
            pend[k] = pend[j];
            pend[j].task = NULL;
            k = j;
        }
    }
}

uint64_t cs_py_task_id(PyObject *task)
{
    cs_py_row *r = cs_py_row_find(task);
    pend_entry *e = r ? NULL : pend_find(task);
    return r ? r->id : e ? e->id : 0;
}

uint32_t cs_py_task_site(PyObject *task)
{
    cs_py_row *r = cs_py_row_find(task);
    pend_entry *e = r ? NULL : pend_find(task);
    return r ? r->site : e ? e->site : 0;
}

void cs_py_task_forget(PyObject *task)
{
    pend_entry *e = pend_find(task);
    if (e)
        pend_del(e);
}

int cs_py_task_finished_first(PyObject *task, unsigned reason, uint64_t t0,
                              uint64_t t1)
{
    pend_entry *e = pend_find(task);
    uint64_t id = e ? e->id : 0;
    cs_py_thread *t = cs_py_self;
    if (e)
        pend_del(e);
    if (t && t->ring) {
        cs__tr_step(t->ring, id, reason, t0, t1);
        cs__tr_emit(t->ring, t1, id,
                    CS_REC_INFO(cs_py_end_event(reason), 0, 0), 0);
    }
    return 0;
}

/* ---- rows ---------------------------------------------------------------- */

void cs_py_row_release(cs_py_row *r, unsigned state)
{
    if (r->in_table)
        tab_del(r);
    if (r->ref) {
        cs_task_slot *s = cs__tr_task_begin(r->ref);
        if (s) {
            CS__TRACE_SET(s->state, (uint8_t)state);
            CS__TRACE_SET(s->wait, (uint8_t)CS_WAIT_NONE);
            cs__tr_task_end(s);
        }
        cs__tr_task_free(r->ref);
        r->ref = 0;
    }
}

static void row_dealloc(PyObject *self)
{
    cs_py_row *r = (cs_py_row *)self;
    /* destroyed with its task while that was pending, or after done */
    cs_py_row_release(r, CS_TASK_CANCELLED);
    Py_TYPE(self)->tp_free(self);
}

void cs_py_row_name(cs_py_row *r)
{
    if (r->named || r->ref == 0)
        return;
    PyObject *n = PyObject_CallMethodNoArgs(r->task, s_get_name);
    r->named = 1;
    if (n == NULL) {
        PyErr_Clear();
        return;
    }
    Py_ssize_t len;
    const char *u = PyUnicode_Check(n) ? PyUnicode_AsUTF8AndSize(n, &len)
                                       : NULL;
    if (u) {
        uint32_t id = cs__tr_intern_n(u, (size_t)len);
        cs_task_slot *s = cs__tr_task_begin(r->ref);
        if (s) {
            CS__TRACE_SET(s->name, id);
            cs__tr_task_end(s);
        }
        cs_py_thread *t = cs_py_self;
        if (t && t->ring) /* for trace files: their readers name tasks so */
            cs__tr_emit(t->ring, cs__tr_now(), r->id,
                        CS_REC_INFO(CS_EV_TASK_NAME, 0, 0), id);
    } else {
        PyErr_Clear();
    }
    Py_DECREF(n);
}

/* Rows of tasks destroyed lately: the garbage collector clears weak
 * references before it runs finalizers, so "Task was destroyed but it is
 * pending!" (Task's finalizer) comes after the row left the table; the
 * report finds the chain and site here (cs_py_row_dead). */
#define DEAD_MAX 64
static cs_py_row *dead[DEAD_MAX];
static unsigned dead_next;

cs_py_row *cs_py_row_dead(PyObject *task)
{
    for (unsigned i = 0; i < DEAD_MAX; i++)
        if (dead[i] && dead[i]->task == task)
            return dead[i];
    return NULL;
}

/* The weak reference's callback: the task is being destroyed. */
static PyObject *row_call(PyObject *self, PyObject *args, PyObject *kw)
{
    cs_py_row *r = (cs_py_row *)self;
    (void)args;
    (void)kw;
    if (r->ref) { /* still pending: its finalizer may report it */
        cs_py_row *old = dead[dead_next % DEAD_MAX];
        dead[dead_next++ % DEAD_MAX] = (cs_py_row *)Py_NewRef(self);
        Py_XDECREF(old);
    }
    cs_py_row_release(r, CS_TASK_CANCELLED);
    Py_CLEAR(r->wr); /* the cycle row <-> weakref ends: both go */
    Py_RETURN_NONE;
}

static PyObject *row_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<coscope row of task %llu>",
                                (unsigned long long)((cs_py_row *)self)->id);
}

PyTypeObject cs_py_row_type = {
    CS_PY_TYPE_HEAD("_coscope.Row", cs_py_row,
                    "coscope's record of one asyncio task (a weakref "
                    "callback)"),
    .tp_dealloc = row_dealloc,
    .tp_call = row_call,
    .tp_repr = row_repr,
};

/* A row for task (borrowed) made with site; also its done callback. */
static cs_py_row *row_new(PyObject *task, PyObject *coro, uint32_t site,
                          uint64_t id, uint64_t parent, uint64_t created)
{
    cs_py_row *r = PyObject_New(cs_py_row, &cs_py_row_type);
    if (r == NULL)
        return NULL;
    r->task = task;
    r->coro = coro; /* borrowed: the task holds it as long as it lives */
    r->id = id ? id : next_id++;
    r->site = site;
    r->named = 0;
    r->in_table = 0;
    r->reported = 0;
    r->wait_task = 0;
    r->wr = NULL;
    memset(r->chain, 0, sizeof(r->chain));
    cs_py_thread *t = cs_py_thread_get();
    uint64_t now = created ? created : cs__tr_now();
    r->ref = cs__tr_task_alloc(r->id, 0, site, parent,
                               t && t->ring ? t->ring->index : 0, now);
    if (r->ref) {
        cs_task_slot *s = cs__tr_task_begin(r->ref);
        if (s) {
            CS__TRACE_SET(s->flags, (uint16_t)(s->flags | CS_TASKF_PYTHON));
            cs__tr_task_end(s);
        }
    }
    if (!id && t && t->ring) /* made by the factory: announced there */
        cs__tr_emit(t->ring, now, r->id, CS_REC_INFO(CS_EV_TASK_CREATED, 0, 0),
                    site);
    if (tab_put(r) != 0)
        goto fail;
    r->wr = PyWeakref_NewRef(task, (PyObject *)r);
    if (r->wr == NULL)
        goto fail;
    Py_DECREF(r); /* the weak reference owns it now */
    return r;
fail:
    PyErr_Clear();
    Py_DECREF(r);
    return NULL;
}

cs_py_row *cs_py_row_of(PyObject *task)
{
    cs_py_row *r = cs_py_row_find(task);
    if (r || !cs_py_tracing)
        return r;
    if (!PyObject_TypeCheck(task, (PyTypeObject *)cs_py_task_type))
        return NULL;
    PyObject *done = PyObject_CallMethodNoArgs(task, s_done);
    int is_done = done == Py_True;
    Py_XDECREF(done);
    PyErr_Clear();
    if (is_done)
        return NULL;
    pend_entry *e = pend_find(task);
    if (e) {
        pend_entry copy = *e;
        pend_del(e);
        return row_new(task, copy.coro, copy.site, copy.id, copy.parent,
                       copy.created);
    }
    PyObject *coro = PyObject_CallMethodNoArgs(task, s_get_coro);
    if (coro == NULL)
        PyErr_Clear();
    r = row_new(task, coro && PyCoro_CheckExact(coro) ? coro : NULL, 0, 0, 0,
                0);
    Py_XDECREF(coro);
    return r;
}

/* ---- the task factory ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *inner; /* the factory set before ours (chained), or NULL */
} cs_py_factory;

/* Did the task's coroutine run already (its task done, or the coroutine
 * suspended)?  A task made the usual way has not started yet. */
static int eager_started(PyObject *task, PyObject *coro)
{
    PyObject *v = PyObject_CallMethodNoArgs(task, s_done);
    int yes = v == Py_True;
    Py_XDECREF(v);
    if (!yes) {
        v = PyObject_GetAttrString(coro, "cr_suspended");
        yes = v == Py_True;
        Py_XDECREF(v);
    }
    PyErr_Clear();
    return yes;
}

static PyObject *factory_call(PyObject *self, PyObject *args, PyObject *kw)
{
    cs_py_factory *f = (cs_py_factory *)self;
    PyObject *loop, *coro, *task;

    if (!PyArg_UnpackTuple(args, "task_factory", 2, 2, &loop, &coro))
        return NULL;
    uint64_t t_call = 0;
    int chained = f->inner && f->inner != Py_None;
    if (chained) {
        t_call = cs__tr_now();
        task = PyObject_Call(f->inner, args, kw);
    } else if (kw == NULL || PyDict_GET_SIZE(kw) == 0) {
        PyObject *av[2] = {coro, loop}; /* asyncio.Task(coro, loop=loop) */
        task = PyObject_Vectorcall(cs_py_task_type, av, 1, s_loop_kwnames);
    } else {
        PyObject *kw2 = PyDict_Copy(kw);
        if (kw2 == NULL || PyDict_SetItem(kw2, s_loop, loop) != 0) {
            Py_XDECREF(kw2);
            return NULL;
        }
        PyObject *a = PyTuple_Pack(1, coro);
        task = a ? PyObject_Call(cs_py_task_type, a, kw2) : NULL;
        Py_XDECREF(a);
        Py_DECREF(kw2);
    }
    if (task == NULL || !cs_py_tracing)
        return task;
    if (!PyObject_TypeCheck(task, (PyTypeObject *)cs_py_future_type) ||
        cs_py_row_find(task) != NULL)
        return task;
    pend_entry *e = pend_put(task);
    if (e == NULL)
        return task;
    cs_py_thread *t = cs_py_thread_get();
    e->coro = PyCoro_CheckExact(coro) ? coro : NULL;
    e->id = next_id++;
    e->parent = t && t->task ? cs_py_task_id(t->task) : 0;
    e->created = cs__tr_now();
    e->site = cs_py_site_here();
    /* 3.12+'s eager tasks (asyncio.eager_task_factory, chained) ran their
     * first step inside the factory, not through Handle._run: done, or
     * suspended in an await */
    int eager = chained && e->coro && eager_started(task, coro);
    if (eager)
        e->created = t_call;
    if (t && t->ring)
        cs__tr_emit(t->ring, e->created, e->id,
                    CS_REC_INFO(CS_EV_TASK_CREATED, 0, 0), e->site);
    if (eager)
        cs_py_first_step_done(task, t_call, cs__tr_now());
    return task;
}

static int factory_init(PyObject *self, PyObject *args, PyObject *kw)
{
    cs_py_factory *f = (cs_py_factory *)self;
    PyObject *inner = NULL;
    (void)kw;
    if (!PyArg_ParseTuple(args, "|O", &inner))
        return -1;
    Py_XINCREF(inner);
    Py_XSETREF(f->inner, inner);
    return 0;
}

static void factory_dealloc(PyObject *self)
{
    Py_CLEAR(((cs_py_factory *)self)->inner);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *factory_get_inner(PyObject *self, void *c)
{
    (void)c;
    PyObject *i = ((cs_py_factory *)self)->inner;
    return Py_NewRef(i ? i : Py_None);
}

static PyGetSetDef factory_getset[] = {
    {"inner", factory_get_inner, NULL, "the factory coscope chains to", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject cs_py_factory_type = {
    CS_PY_TYPE_HEAD("_coscope.TaskFactory", cs_py_factory,
                    "TaskFactory(inner=None): an asyncio task factory that "
                    "records each task in coscope's segment, then behaves "
                    "as inner (or asyncio.Task)"),
    .tp_new = PyType_GenericNew,
    .tp_init = factory_init,
    .tp_dealloc = factory_dealloc,
    .tp_call = factory_call,
    .tp_getset = factory_getset,
};

/* ---- a Handle's callback -> its task ------------------------------------- */

/* 3.11's _asyncio.TaskStepMethWrapper: {PyObject_HEAD; TaskObj *sw_task;
 * PyObject *sw_arg}.  The layout is checked against __self__ once. */
typedef struct {
    PyObject_HEAD
    PyObject *sw_task;
} cs_step_wrapper;
static PyTypeObject *step_wrapper_type; /* checked layout, or NULL */
static int step_wrapper_checked;

/* Is tp the C Task's step wrapper, by name?  3.11 calls the type
 * "TaskStepMethWrapper", 3.12+ "_asyncio.TaskStepMethWrapper" (a heap
 * type with its module's name). */
static int is_step_wrapper_name(PyTypeObject *tp)
{
    const char *n = strrchr(tp->tp_name, '.');
    return strcmp(n ? n + 1 : tp->tp_name, "TaskStepMethWrapper") == 0;
}

PyObject *cs_py_task_of_callback(PyObject *cb)
{
    PyTypeObject *tp = Py_TYPE(cb);
    PyObject *self;

    if (tp == step_wrapper_type)
        return ((cs_step_wrapper *)cb)->sw_task;
    if (PyCFunction_Check(cb)) { /* task_wakeup, bound to its task */
        self = PyCFunction_GET_SELF(cb);
        if (self && Py_TYPE(self) == (PyTypeObject *)cs_py_task_type)
            return self;
        return NULL;
    }
    if (PyMethod_Check(cb)) { /* a pure-Python Task's __step */
        self = PyMethod_GET_SELF(cb);
        return PyObject_TypeCheck(self, (PyTypeObject *)cs_py_task_type)
                   ? self
                   : NULL;
    }
    if (!step_wrapper_checked && is_step_wrapper_name(tp)) {
        step_wrapper_checked = 1;
        self = PyObject_GetAttrString(cb, "__self__");
        if (self && self == ((cs_step_wrapper *)cb)->sw_task)
            step_wrapper_type = tp;
        Py_XDECREF(self);
        PyErr_Clear();
        if (step_wrapper_type)
            return ((cs_step_wrapper *)cb)->sw_task;
    }
    if (step_wrapper_checked && step_wrapper_type == NULL &&
        is_step_wrapper_name(tp)) {
        self = PyObject_GetAttrString(cb, "__self__");
        if (self == NULL) {
            PyErr_Clear();
            return NULL;
        }
        Py_DECREF(self); /* the wrapper holds it */
        return self;
    }
    return NULL;
}

int cs_py_task_init(PyObject *module)
{
    PyObject *aio = PyImport_ImportModule("asyncio");
    if (aio == NULL)
        return -1;
    cs_py_task_type = PyObject_GetAttrString(aio, "Task");
    cs_py_future_type = PyObject_GetAttrString(aio, "Future");
    Py_DECREF(aio);
    if (!cs_py_task_type || !cs_py_future_type)
        return -1;
#define INTERN(v, s)                                                          \
    if ((v = PyUnicode_InternFromString(s)) == NULL)                          \
    return -1
    INTERN(s_get_name, "get_name");
    INTERN(s_loop, "loop");
    INTERN(s_done, "done");
    INTERN(s_cancelled, "cancelled");
    INTERN(s_exception, "exception");
    INTERN(s_get_coro, "get_coro");
    if ((s_loop_kwnames = PyTuple_Pack(1, s_loop)) == NULL)
        return -1;
#undef INTERN
    if (PyType_Ready(&cs_py_row_type) < 0 ||
        PyType_Ready(&cs_py_factory_type) < 0)
        return -1;
    Py_INCREF(&cs_py_factory_type);
    return PyModule_AddObject(module, "TaskFactory",
                              (PyObject *)&cs_py_factory_type);
}
