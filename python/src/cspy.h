/*
 * cspy.h - private to python/src: what the files of the _coscope extension
 * share.  The extension puts asyncio programs into coscope's segment
 * through libtrace's writer (libtrace/writer.h), like the C runtime does:
 *
 *   step.c    Handle._run replaced by a C method: times every step of the
 *             loop, names the task it belongs to, publishes the task's
 *             state, what it awaits and its await chain as it suspends
 *   task.c    the task factory, one Row per task (its slot in the task
 *             table), a pointer-keyed table from task to Row
 *   where.c   code locations ("file:line in function") interned once per
 *             (code object, instruction), await chains, creation sites;
 *             CPython 3.11's frame layout, the public API elsewhere
 *   watch.c   the slow-step watchdog thread (samples a stuck loop's Python
 *             stack without the GIL, as faulthandler does) and the
 *             interposer's blocking-call callback
 *   module.c  the module: install, reports handed to coscope/__init__.py
 *
 * Everything that touches Python objects runs with the GIL held; the GIL
 * is also what serialises the task table and each slot's writers.
 */
#ifndef CS_PY_PRIVATE_H
#define CS_PY_PRIVATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "writer.h"

#if PY_VERSION_HEX >= 0x030b0000 && PY_VERSION_HEX < 0x030c0000
#define CS_PY_311 1 /* 3.11's frame layout */
#endif
/* -DCS_PY_PUBLIC: the public attributes' way everywhere (the only one for
 * 3.14+), to test and measure it on 3.12 and 3.13 */
#if PY_VERSION_HEX >= 0x030b0000 && PY_VERSION_HEX < 0x030e0000 &&            \
    !(defined(CS_PY_PUBLIC) && PY_VERSION_HEX >= 0x030c0000)
#define CS_PY_DIRECT 1 /* where.c reads frames directly: 3.11 to 3.13 */
#endif

/* One thread that runs an event loop (or any Handle). */
typedef struct cs_py_thread {
    cs__tr_ring *ring;     /* its event ring, NULL when tracing is off */
    PyThreadState *tstate; /* for the watchdog's stack samples */
    pid_t tid;
    struct cs_py_row *row; /* task whose step runs now, or NULL */
    PyObject *task;        /* that task (borrowed), also before its row */
    int in_step;           /* 1 while a Handle runs */
    uint64_t step_start;   /* clock value the running step began at */
    /* the watchdog's sample of the running step (written by the watchdog
     * thread while sample_for == step_start and sample_state == 1) */
    int sample_state;    /* 0 none, 1 being taken, 2 taken */
    uint64_t sample_for; /* the step_start it belongs to */
    char sample[8192];   /* faulthandler-style text */
    size_t sample_len;
} cs_py_thread;

/* A task's row: its slot in the segment's task table.  Held by the task
 * as a done callback, so that it dies with the task (done or destroyed). */
typedef struct cs_py_row {
    PyObject_HEAD
    PyObject *task;     /* borrowed: the row lives no longer than its task */
    PyObject *coro;     /* borrowed: the task's own reference keeps it */
    uint64_t id;        /* coscope task id */
    uint32_t ref;       /* task slot ref (0: none, table full or off) */
    uint32_t site;      /* creation site string id */
    uint8_t named;      /* name interned into the slot */
    uint8_t in_table;   /* listed in the task -> row table */
    uint8_t reported;   /* a deadlock report named it already */
    uint64_t wait_task; /* address of the task it awaits (a key), 0 none */
    uint32_t chain[CS_PY_CHAIN_MAX]; /* last published await chain */
    PyObject *wr; /* the weak reference whose callback this row is */
} cs_py_row;

/* The record type of a task's end by its step's stop reason (CS_STOP_*). */
static inline unsigned cs_py_end_event(unsigned reason)
{
    return reason == CS_STOP_DONE     ? CS_EV_TASK_DONE
           : reason == CS_STOP_RAISED ? CS_EV_TASK_RAISED
                                      : CS_EV_TASK_CANCELLED;
}

/* The start of the initialiser of each of the extension's static types:
 * the object head, the type's name, the size of its instances, the
 * default flags and its doc string.  Spelt once, here, also because
 * clang-format 14 joins the line after PyVarObject_HEAD_INIT to it (see
 * .clang-format). */
/* clang-format off */
#define CS_PY_TYPE_HEAD(name, instance, doc)                                  \
    PyVarObject_HEAD_INIT(NULL, 0)                                            \
    .tp_name = (name),                                                        \
    .tp_basicsize = sizeof(instance),                                         \
    .tp_flags = Py_TPFLAGS_DEFAULT,                                           \
    .tp_doc = (doc)
/* clang-format on */

/* ---- module.c --------------------------------------------------------- */
extern int cs_py_tracing;         /* 1 once the segment exists */
extern int cs_py_recording;       /* COSCOPE_RECORD: name every task */
extern uint64_t cs_py_slow_ticks; /* slow-step threshold, clock ticks */
extern PyObject *cs_py_report_cb; /* coscope._report(kind, ...) */
uint64_t cs_py_ticks_to_ns(uint64_t ticks);
/* The segment's string id (our own table), or NULL. */
const char *cs_py_string(uint32_t id);
/* The calling thread's record, made on first use (GIL held). */
cs_py_thread *cs_py_thread_get(void);
extern __thread cs_py_thread *cs_py_self;

/* ---- task.c ----------------------------------------------------------- */
extern PyTypeObject cs_py_row_type;
extern PyTypeObject cs_py_factory_type;
int cs_py_task_init(PyObject *module);
/* The row of task, made if the task was not seen before (a task not made
 * by the factory); NULL with no error set when none can be made. */
cs_py_row *cs_py_row_of(PyObject *task);
cs_py_row *cs_py_row_find(PyObject *task);
/* The row of a task destroyed lately while pending, or NULL. */
cs_py_row *cs_py_row_dead(PyObject *task);
/* The task finished (state: CS_TASK_DONE, _RAISED, _CANCELLED): its slot
 * says so and goes; the row leaves the table. */
void cs_py_row_release(cs_py_row *r, unsigned state);
/* coscope's id of task (made by the factory or with a row), 0 if none. */
uint64_t cs_py_task_id(PyObject *task);
/* Its creation site's string id, 0 if unknown. */
uint32_t cs_py_task_site(PyObject *task);
/* Drops what the factory noted of a task that never ran (pending report). */
void cs_py_task_forget(PyObject *task);
/* Records a task that finished in its first step (reason CS_STOP_*): it
 * never gets a row. */
int cs_py_task_finished_first(PyObject *task, unsigned reason, uint64_t t0,
                              uint64_t t1);
/* Names the row's slot from task.get_name() if not done yet. */
void cs_py_row_name(cs_py_row *r);
/* The task of a Handle's callback (a task step or wakeup), borrowed, or
 * NULL. */
PyObject *cs_py_task_of_callback(PyObject *cb);
extern PyObject *cs_py_task_type;   /* asyncio.Task */
extern PyObject *cs_py_future_type; /* asyncio.Future */

/* ---- where.c ---------------------------------------------------------- */
/* What a code location says about a wait (for the innermost frame). */
typedef struct cs_py_loc {
    uint32_t text;   /* string id of "file:line in function" */
    uint8_t wait;    /* CS_WAIT_* if the frame is asyncio's waiting code */
    uint8_t library; /* asyncio's or the standard library's own code */
} cs_py_loc;
/* The await chain of coro, innermost first, into ids (at most cap);
 * returns the full depth; *wait gets what asyncio's innermost waiting
 * frame says, *target on what (a deadline for sleeps, else an address;
 * 0 when unknown). */
int cs_py_chain(PyObject *coro, uint32_t *ids, int cap, unsigned *wait,
                uint64_t *target);
/* String id of the creation site: the innermost frame of the calling
 * thread outside asyncio ("file:line in function"). */
uint32_t cs_py_site_here(void);
/* Python list of (file, line, function) of the calling thread, innermost
 * first, at most max frames (GIL held). */
PyObject *cs_py_stack_here(int max);
int cs_py_where_init(void);

/* ---- watch.c ---------------------------------------------------------- */
int cs_py_watchdog_start(void);
void cs_py_register_thread(cs_py_thread *t);
/* Registers with libcoscope-preload.so if it is loaded: 1, else 0. */
int cs_py_blocking_register(void);

/* ---- step.c ----------------------------------------------------------- */
extern PyMethodDef cs_py_handle_run_def;
/* Publishes row's state after a step (or on demand). */
void cs_py_publish(cs_py_row *r, uint64_t t0, uint64_t t1);
/* A task's first step ran outside Handle._run, from t0 to t1 (an eager
 * task, 3.12+: inside the factory): what a first step's end records. */
void cs_py_first_step_done(PyObject *task, uint64_t t0, uint64_t t1);

#endif
