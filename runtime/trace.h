/*
 * trace.h - the runtime's side of libtrace (private to the runtime).
 *
 * What the runtime records (issue 4), and where:
 *   - the segment is created at the first cs_run of the process (and of a
 *     forked child), COSCOPE=off disabling it; each cs_run takes a ring for
 *     its thread and gives it back at the end (loop.c);
 *   - every task has a slot in the live task table from creation to the
 *     release of its struct (task.c);
 *   - every switch but a batched yield (below) takes ONE timestamp and,
 *     before cs__switch (a tail call
 *     on the hot path: no runtime code runs after it), writes one
 *     CS_EV_STEP record for the task that parks (it ran from the previous
 *     switch's timestamp to this one), its slot (state, wait reason and
 *     target, steps, run time) and marks the task it resumes as running
 *     (cs__trace_switch in trace_batch.h); the parked task's saved sp/fp/ip
 *     exist only after the switch, so they are recorded by the next switch
 *     or the next place the runtime runs after one (cs__trace_settle);
 *   - waits other than yields add a CS_EV_WAIT record naming the target;
 *     task creation, coroutine creation/drop and loop iterations (with the
 *     time spent in epoll_wait) have their own records;
 *   - a fatal signal emits a CS_WARN_CRASH record and, with COSCOPE_FLIGHT,
 *     dumps the flight recorder (after the stack-overflow report of
 *     stack.c, which chains to our handler).
 * A loop without a ring (tracing off, or every ring taken) skips all of it
 * on one well-predicted branch.
 *
 * Timestamps: the TSC read costs ~12 ns here (more than the rest of a
 * switch), so only switches and polls read it.  Records written within a
 * step (task or coroutine created, cancel requested) carry the time the
 * step began, loop->tr_t0, which keeps each ring's timestamps
 * non-decreasing; a task's "created" is the start of its creator's step.
 */
#ifndef CS_RUNTIME_TRACE_H
#define CS_RUNTIME_TRACE_H

#include "writer.h"

#include <stdint.h>

struct cs__loop;
struct cs_task;

/* Set by benchmarks and tests before cs_run: loops started while it is
 * non-zero take no ring, so they run with every hook compiled in but off. */
extern int cs__trace_rt_disabled;

/* Yield batching: trace_batch.h. */
#define CS__TRACE_BATCH_MAX 64
#define CS__TRACE_BATCH_TASKS 8

/* Task-lifetime batching: trace_batch.h. */
#define CS__TRACE_LIFE_MAX 64
typedef struct cs__trace_life {
    uint64_t task;   /* whose step it was */
    uint64_t target; /* CS_WAIT_TASK: the awaited task's id */
    int32_t status;  /* CS_STOP_RAISED: the error it ended with */
    uint8_t reason;  /* CS_WAIT_TASK or a CS_STOP_* */
} cs__trace_life;

/* Per-loop caches of interned strings, so that a spawn interns (mutex) only
 * the first time a name or a site is seen. */
#define CS__TRACE_CACHE 64
typedef struct cs__trace_cache {
    struct {
        const char *file; /* creation site: static string and line */
        int line;
        uint32_t id;
    } site[CS__TRACE_CACHE];
    struct {
        char name[32]; /* short names, by content */
        uint32_t id;
    } name[CS__TRACE_CACHE];
    char last_name[32];    /* the last short name, NUL-padded as in a task */
    uint32_t last_name_id; /* its id, 0 if none */
    cs__tr_slots slots;    /* task slots this loop freed, for reuse */
    cs__trace_life life[CS__TRACE_LIFE_MAX]; /* the open lifetime batch */
} cs__trace_cache;

/* Warnings another thread posts for a loop (the watchdog's slow steps,
 * warn_post.c): the loop's ring has one writer, its own thread, which
 * copies them in at the end of its next iteration.  Posters take the
 * registry lock; the loop thread only loads posted on its fast path. */
#define CS__WARN_BOX 8
typedef struct cs__warn_box {
    struct {
        uint64_t task;        /* the task it is about */
        uint32_t kind, stack; /* CS_WARN_*, stored stack id */
    } e[CS__WARN_BOX];
    uint32_t posted;  /* entries posted, ever (atomic) */
    uint32_t drained; /* entries written to the ring (atomic) */
} cs__warn_box;
/* Lists / unlists loop (with its ring) for posters; close drains first. */
void cs__warn_box_open(struct cs__loop *loop);
void cs__warn_box_close(struct cs__loop *loop);
/* Writes the posted warnings into the loop's ring (its thread only). */
void cs__warn_box_drain(struct cs__loop *loop);
/* Stores a warning's stack (any thread); its id, 0 for none. */
uint32_t cs__warn_stack_put(const uintptr_t *ips, size_t n);

/* Starts tracing for the process if not done yet (thread-safe; again in a
 * forked child).  The crash record and flight dump are the fatal-signal
 * handler's third step (cs__trace_crash, fatal.h). */
void cs__trace_process_start(void);
/* Takes a ring for loop's thread (NULL when off or all rings are taken). */
void cs__trace_loop_start(struct cs__loop *loop);
/* Gives the ring back (after every task slot was freed). */
void cs__trace_loop_stop(struct cs__loop *loop);

/* Task slot and creation record for a new task. */
void cs__trace_task_new(struct cs__loop *loop, struct cs_task *t);
/* Sets a CS_TASKF_* flag (cancel requested: also a CS_EV_CANCEL record). */
void cs__trace_task_flag(struct cs_task *t, unsigned flag);
/* t ended without running (no stack): its end event and slot state. */
void cs__trace_task_failed(struct cs__loop *loop, struct cs_task *t);
/* Each of tasks[0..n) is awaited by self (cs_gather: it awaits them one
 * after the other, and a reader shows them all): their slots' awaiter. */
void cs__trace_task_awaited(struct cs_task *const *tasks, size_t n,
                            const struct cs_task *self);
/* The step of prev ended at t1 (it started at t0); prev parked or ended.
 * batched: the step began inside a yield batch, which counted it. */
void cs__trace_parked(struct cs__loop *loop, struct cs_task *prev, uint64_t t0,
                      uint64_t t1, uint32_t batched);

/* Coroutines: ids and records. */
uint64_t cs__trace_coro_new(const char *file, int line);
void cs__trace_coro_dropped(uint64_t id, int never_ran);

/* String id of "file:line" through the loop's cache (0 when off). */
uint32_t cs__trace_site(struct cs__loop *loop, const char *file, int line);

#endif
