/*
 * step.c - asyncio.events.Handle._run, in C.
 *
 * Every callback an asyncio loop runs, task steps included, goes through
 * Handle._run (pure Python on 3.11, called by BaseEventLoop._run_once).
 * This replacement does what it does - run the callback in the handle's
 * context, hand an exception to the loop's exception handler - and around
 * it: stamps {start, task} into the thread's ring header (the watchdog and
 * `coscope top` read it), and when the step ends writes one step record
 * and the task's slot: state, what it awaits, and its await chain (where.c).
 * A step longer than COSCOPE_SLOW_MS is reported with the stack the
 * watchdog sampled while it still ran.
 */
#include "cspy.h"

#include <structmember.h>

static PyTypeObject *handle_type;
static Py_ssize_t off_callback, off_args, off_context;
static PyObject *s_fut_waiter, *s_done, *on_error;

/* Reads a __slots__ member of a Handle (borrowed, may be NULL). */
#define SLOT(self, off) (*(PyObject **)((char *)(self) + (off)))

static PyObject *s_cancelled, *s_exception;

/* CS_WAIT_YIELD if the task is still pending (it yielded), else how it
 * finished (CS_STOP_*) with its final state in *state.  exception()
 * would mark an error retrieved: _exception only looks. */
static unsigned task_done_reason(PyObject *task, unsigned *state)
{
    PyObject *d = PyObject_CallMethodNoArgs(task, s_done);
    unsigned r = CS_WAIT_YIELD;
    if (d == Py_True) {
        PyObject *c = PyObject_CallMethodNoArgs(task, s_cancelled);
        PyObject *e = c == Py_True ? NULL
                                   : PyObject_GetAttr(task, s_exception);
        r = CS_STOP_DONE;
        *state = CS_TASK_DONE;
        if (c == Py_True) {
            r = CS_STOP_CANCELLED;
            *state = CS_TASK_CANCELLED;
        } else if (e && e != Py_None) {
            r = CS_STOP_RAISED;
            *state = CS_TASK_RAISED;
        }
        Py_XDECREF(c);
        Py_XDECREF(e);
    }
    Py_XDECREF(d);
    PyErr_Clear();
    return r;
}

/* Follows "awaits task" edges from r's target; 1 if they come back to r. */
static int cycle_from(cs_py_row *r, PyObject *target, PyObject **members,
                      int *n)
{
    PyObject *x = target;
    *n = 0;
    for (int i = 0; x && i < 64; i++) {
        cs_py_row *rx = cs_py_row_find(x);
        if (rx == NULL)
            return 0;
        members[(*n)++] = rx->task;
        if (rx == r)
            return 1;
        x = (PyObject *)(uintptr_t)rx->wait_task;
    }
    return 0;
}

static void report_cycle(cs_py_row *r, PyObject *target)
{
    PyObject *members[64];
    int n;
    if (r->reported || !cycle_from(r, target, members, &n) || !cs_py_report_cb)
        return;
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return;
    for (int i = 0; i < n; i++) {
        cs_py_row *m = cs_py_row_find(members[i]);
        if (m)
            m->reported = 1;
        PyList_Append(list, members[i]);
    }
    PyObject *res =
        PyObject_CallFunction(cs_py_report_cb, "sO", "deadlock", list);
    Py_XDECREF(res);
    Py_DECREF(list);
    PyErr_Clear();
}

void cs_py_publish(cs_py_row *r, uint64_t t0, uint64_t t1)
{
    PyObject *task = r->task;
    unsigned state = CS_TASK_READY, reason, cw = CS_WAIT_NONE;
    uint64_t target = 0, ctarget = 0;
    uint32_t ids[CS_PY_CHAIN_MAX] = {0};
    int depth = 0;
    PyObject *w = PyObject_GetAttr(task, s_fut_waiter);

    r->wait_task = 0;
    if (w == NULL) {
        PyErr_Clear();
        reason = CS_WAIT_YIELD;
    } else if (w == Py_None) {
        reason = task_done_reason(task, &state);
    } else {
        state = CS_TASK_WAITING;
        reason = CS_WAIT_FUTURE;
        if (PyObject_TypeCheck(w, (PyTypeObject *)cs_py_task_type)) {
            cs_py_row *o = cs_py_row_of(w);
            reason = CS_WAIT_TASK;
            if (o) {
                target = o->id;
                r->wait_task = (uint64_t)(uintptr_t)w;
                report_cycle(r, w);
            }
        }
    }
    Py_XDECREF(w);
    int finished = reason >= CS_STOP_DONE;
    if (finished && cs_py_recording)
        cs_py_row_name(r); /* a trace file names every task */
    if (!finished) {
        if (r->coro)
            depth = cs_py_chain(r->coro, ids, CS_PY_CHAIN_MAX, &cw, &ctarget);
        if (state == CS_TASK_WAITING && cw != CS_WAIT_NONE &&
            reason != CS_WAIT_TASK) {
            reason = cw;
            target = ctarget;
        }
        cs_py_row_name(r);
        memcpy(r->chain, ids, sizeof(r->chain));
    }
    cs_task_slot *s = cs__tr_task_begin(r->ref);
    if (s) {
        CS__TRACE_SET(s->state, (uint8_t)state);
        CS__TRACE_SET(s->wait, (uint8_t)(reason < CS_WAIT_COUNT ? reason : 0));
        CS__TRACE_SET(s->wait_target, target);
        CS__TRACE_SET(s->steps, s->steps + 1);
        CS__TRACE_SET(s->run_ticks, s->run_ticks + (t1 - t0));
        CS__TRACE_SET(s->sp, (uint64_t)ids[0] | (uint64_t)ids[1] << 32);
        CS__TRACE_SET(s->fp, (uint64_t)ids[2] | (uint64_t)ids[3] << 32);
        CS__TRACE_SET(s->ip, (uint64_t)ids[4] | (uint64_t)ids[5] << 32);
        CS__TRACE_SET(s->reserved0, (uint32_t)depth);
        cs__tr_task_end(s);
    }
    cs_py_thread *t = cs_py_self;
    if (t && t->ring) {
        if (target)
            cs__tr_emit(t->ring, t1, target,
                        CS_REC_INFO(CS_EV_WAIT, CS_WAIT_TASK, 0), 0);
        cs__tr_step(t->ring, r->id, reason, t0, t1);
        if (finished)
            cs__tr_emit(t->ring, t1, r->id,
                        CS_REC_INFO(cs_py_end_event(reason), 0, 0), 0);
    }
    if (finished)
        cs_py_row_release(r, state);
}

/* After a task's first step: it finished (records only, no row), or
 * it suspended and gets its row now (a new reference). */
static cs_py_row *first_step_end(PyObject *task, uint64_t t0, uint64_t t1)
{
    PyObject *w = PyObject_GetAttr(task, s_fut_waiter);
    if (w == NULL)
        PyErr_Clear();
    if (w == Py_None) {
        unsigned state;
        unsigned reason = task_done_reason(task, &state);
        if (reason >= CS_STOP_DONE) {
            Py_DECREF(w);
            cs_py_task_finished_first(task, reason, t0, t1);
            return NULL;
        }
    }
    Py_XDECREF(w);
    cs_py_row *r = cs_py_row_of(task);
    PyErr_Clear();
    Py_XINCREF(r);
    return r;
}

/* Eager tasks named before create_task gave them their name (3.12 calls
 * set_name after the factory): named again at the end of the step that
 * made them (or at the start of the next one, when made outside a step),
 * found by (task address, id), so that a task gone meanwhile is skipped.
 * The GIL serialises these. */
#define RENAME_MAX 64
static struct {
    PyObject *task;
    uint64_t id;
} renames[RENAME_MAX];
static int nrenames;

static void rename_eager(void)
{
    int n = nrenames;
    nrenames = 0;
    for (int i = 0; i < n; i++) {
        cs_py_row *r = cs_py_row_find(renames[i].task);
        if (r && r->id == renames[i].id) {
            r->named = 0;
            cs_py_row_name(r);
        }
    }
}

void cs_py_first_step_done(PyObject *task, uint64_t t0, uint64_t t1)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    cs_py_row *r = first_step_end(task, t0, t1);
    if (r) {
        cs_py_publish(r, t0, t1);
        if (nrenames < RENAME_MAX) {
            renames[nrenames].task = task;
            renames[nrenames++].id = r->id;
        }
        Py_DECREF(r);
    }
    PyErr_Restore(et, ev, tb);
}

/* Hands the sample the watchdog took of this step (or None) to Python. */
static PyObject *take_sample(cs_py_thread *t, uint64_t t0)
{
    int st;
    /* the watchdog may be reading the frames right now: let it finish */
    while ((st = __atomic_load_n(&t->sample_state, __ATOMIC_ACQUIRE)) == 1)
        ;
    PyObject *text = NULL;
    if (st == 2 && t->sample_for == t0)
        text = PyUnicode_DecodeUTF8(t->sample, (Py_ssize_t)t->sample_len,
                                    "replace");
    __atomic_store_n(&t->sample_state, 0, __ATOMIC_RELEASE);
    if (text == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return text;
}

static void report_slow(cs_py_thread *t, PyObject *task, PyObject *cb,
                        uint64_t t0, uint64_t t1)
{
    PyObject *sample = take_sample(t, t0);
    if (!cs_py_report_cb)
        return;
    double secs = (double)cs_py_ticks_to_ns(t1 - t0) / 1e9;
    PyObject *res = PyObject_CallFunction(cs_py_report_cb, "sOOdO", "slow",
                                          task ? task : Py_None, cb, secs,
                                          sample);
    Py_XDECREF(res);
    Py_DECREF(sample);
    PyErr_Clear();
}

static PyObject *handle_run(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (!PyObject_TypeCheck(self, handle_type))
        return PyErr_Format(PyExc_TypeError, "Handle._run on a %s",
                            Py_TYPE(self)->tp_name);
    PyObject *cb = SLOT(self, off_callback), *args = SLOT(self, off_args);
    PyObject *ctx = SLOT(self, off_context);
    if (cb == NULL || args == NULL || ctx == NULL || !PyTuple_Check(args))
        return PyErr_Format(PyExc_AttributeError, "incomplete Handle");
    cs_py_thread *t = cs_py_self ? cs_py_self : cs_py_thread_get();
    cs_py_row *r = NULL;
    PyObject *task = NULL;
    uint64_t id = 0;
    if (cs_py_tracing) {
        if (nrenames)
            rename_eager();
        task = cs_py_task_of_callback(cb);
        if (task) {
            r = cs_py_row_find(task);
            id = r ? r->id : cs_py_task_id(task);
        }
    }
    Py_INCREF(self);
    Py_XINCREF(task);
    Py_XINCREF(r);
    cs_py_thread saved_step = {0};
    uint64_t saved_id = 0;
    if (t) { /* a handle may run a nested loop: keep the outer step */
        saved_step.row = t->row;
        saved_step.task = t->task;
        saved_step.in_step = t->in_step;
        saved_step.step_start = t->step_start;
        saved_id = t->ring ? t->ring->hdr->step_task : 0;
    }
    uint64_t t0 = cs__tr_now();
    if (t) {
        t->row = r;
        t->task = task;
        t->in_step = 1;
        t->step_start = t0;
        cs__tr_step_begin(t->ring, id, t0);
    }
    if (r)
        cs__tr_task_running(r->ref, t0);

    PyObject *res = NULL;
    Py_INCREF(ctx);
    Py_INCREF(cb);
    Py_INCREF(args);
    if (PyContext_Enter(ctx) == 0) {
        res = PyObject_Call(cb, args, NULL);
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyContext_Exit(ctx);
        PyErr_Restore(et, ev, tb);
    }
    uint64_t t1 = cs__tr_now();
    if (nrenames) /* eager tasks made in this step: named by now */
        rename_eager();
    if (t) {
        t->row = saved_step.row;
        t->task = saved_step.task;
        t->in_step = saved_step.in_step;
        t->step_start = saved_step.step_start;
        if (t->ring) {
            if (saved_step.in_step)
                cs__tr_step_begin(t->ring, saved_id, saved_step.step_start);
            else
                __atomic_store_n(&t->ring->hdr->step_start, 0,
                                 __ATOMIC_RELAXED);
        }
    }
    if (!saved_step.in_step && t1 - t0 >= cs_py_slow_ticks && t) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        report_slow(t, task, cb, t0, t1);
        PyErr_Restore(et, ev, tb);
    } else if (t && t->sample_state) {
        __atomic_store_n(&t->sample_state, 0, __ATOMIC_RELEASE);
    }
    if (task && !r) { /* its first step: a row only if it suspended */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        r = first_step_end(task, t0, t1); /* a new reference, or NULL */
        if (r)
            cs_py_publish(r, t0, t1);
        PyErr_Restore(et, ev, tb);
    } else if (r) {
        cs_py_publish(r, t0, t1);
    } else if (t && t->ring) {
        cs__tr_step(t->ring, 0, CS_STOP_DONE, t0, t1);
    }
    if (res == NULL) {
        /* as Handle._run: SystemExit and KeyboardInterrupt go up, the rest
         * to the loop's exception handler (coscope/__init__.py) */
        if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
            PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
            on_error == NULL)
            goto out;
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (tb && ev)
            PyException_SetTraceback(ev, tb);
        res = PyObject_CallFunctionObjArgs(on_error, self, ev ? ev : Py_None,
                                           NULL);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
    }
    Py_XSETREF(res, res ? Py_NewRef(Py_None) : NULL);
out:
    Py_DECREF(cb);
    Py_DECREF(args);
    Py_DECREF(ctx);
    Py_XDECREF(r);
    Py_XDECREF(task);
    Py_DECREF(self);
    return res;
}

PyMethodDef cs_py_handle_run_def = {"_run", handle_run, METH_NOARGS,
                                    "coscope's Handle._run: runs the callback "
                                    "and records the step"};

static Py_ssize_t member_offset(PyObject *cls, const char *name)
{
    PyObject *d = PyObject_GetAttrString(cls, name);
    Py_ssize_t off = -1;
    if (d && Py_TYPE(d) == &PyMemberDescr_Type)
        off = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_XDECREF(d);
    PyErr_Clear();
    return off;
}

/* handle_run_descr(Handle, on_error): a method descriptor to assign to
 * Handle._run. */
PyObject *cs_py_make_handle_run(PyObject *cls, PyObject *err_cb)
{
    if (!PyType_Check(cls))
        return PyErr_Format(PyExc_TypeError, "Handle must be a class");
    off_callback = member_offset(cls, "_callback");
    off_args = member_offset(cls, "_args");
    off_context = member_offset(cls, "_context");
    if (off_callback < 0 || off_args < 0 || off_context < 0)
        return PyErr_Format(
            PyExc_RuntimeError,
            "asyncio's Handle has no _callback/_args/_context slots");
    if (!s_fut_waiter &&
        (!(s_fut_waiter = PyUnicode_InternFromString("_fut_waiter")) ||
         !(s_done = PyUnicode_InternFromString("done")) ||
         !(s_cancelled = PyUnicode_InternFromString("cancelled")) ||
         !(s_exception = PyUnicode_InternFromString("_exception"))))
        return NULL;
    Py_XINCREF(err_cb);
    Py_XSETREF(on_error, err_cb);
    handle_type = (PyTypeObject *)cls;
    Py_INCREF(cls);
    return PyDescr_NewMethod(handle_type, &cs_py_handle_run_def);
}
