/*
 * writer.h - the writing side of libtrace, for the runtime and the agent.
 *
 * Not a public header: it is included by coscope's own libraries, which
 * link libtrace statically.  Names are internal (cs__trace_*).
 *
 * One process has at most one segment (/dev/shm/coscope.<pid>).  The
 * runtime calls cs__tr_start() when cs_run first starts; when tracing is
 * off or the segment cannot be created every call below is a cheap no-op
 * (rings are NULL, string and stack ids 0, task refs 0), so callers never
 * need to test whether tracing is on.
 *
 * Threading: a ring has one writer, the thread that acquired it.  A task
 * slot has one writer, the loop thread that owns the task.  Strings, stacks
 * and task slot allocation may be used from any thread.  Nothing here
 * allocates or locks on the event path (cs__tr_emit and the task slot
 * updates); cs__tr_stack_put and cs__tr_flight_dump are
 * async-signal-safe.
 */
#ifndef CS_LIBTRACE_WRITER_H
#define CS_LIBTRACE_WRITER_H

#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "coscope/trace_format.h"

#if defined(__GNUC__)
#define cs__tr_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define cs__tr_unlikely(x) (x)
#endif

/* A thread's ring, as its writer sees it: private bookkeeping around the
 * ring in the segment.  Lives in process memory, never in the segment. */
typedef struct cs__tr_ring {
    cs_ring_header *hdr; /* the ring header in the segment */
    cs_record *slot;     /* first record slot in the segment */
    uint64_t mask;       /* slots - 1 */
    uint64_t head;       /* private copy of hdr->head */
    uint32_t index;      /* ring number in the segment */
} cs__tr_ring;

/* Settings; cs__tr_start() fills them from the environment. */
typedef struct cs__tr_config {
    int enabled;         /* COSCOPE=off|0|no disables */
    uint32_t ring_kb;    /* COSCOPE_RING_KB per ring, default 1024 */
    uint32_t rings;      /* COSCOPE_RINGS, default 4 */
    uint32_t task_slots; /* COSCOPE_TASKS, default 16384 */
    uint32_t strings_kb; /* COSCOPE_STRINGS_KB, default 256 */
    uint32_t stacks_kb;  /* COSCOPE_STACKS_KB, default 256 */
    int force_monotonic; /* COSCOPE_CLOCK=monotonic: never use the TSC */
    const char *record;  /* COSCOPE_RECORD: stream events to this file */
    const char *flight;  /* COSCOPE_FLIGHT: dump the rings here at exit */
    const char *dir;     /* segment directory, default /dev/shm (tests) */
} cs__tr_config;

/* The process-wide writer state read by the inline functions below. */
typedef struct cs__tr_state {
    int clock_tsc;       /* 1: cs__tr_now() reads the TSC */
    cs_task_slot *tasks; /* task table in the segment, NULL when off */
    uint32_t task_slots; /* its size */
    uint32_t epoch;      /* bumped by each start: which segment a cached
                              slot ref (cs__tr_slots) belongs to */
} cs__tr_state;
extern cs__tr_state cs__tr_g;

/* ---- lifecycle ------------------------------------------------------------ */

/* Reads the settings from the environment into *cfg. */
void cs__tr_config_env(cs__tr_config *cfg);
/* cs__tr_start_with(settings from the environment). */
int cs__tr_start(void);
/*
 * Creates the segment and starts the recorder if one is configured.
 * Idempotent while started.  Returns 0, 1 when tracing is disabled, or a
 * negative errno when the segment could not be made (tracing then stays
 * off; the program must run on).  Not thread-safe against itself or stop.
 */
int cs__tr_start_with(const cs__tr_config *cfg);
/* Finishes the recorder, writes COSCOPE_FLIGHT, unmaps and unlinks the
 * segment.  Rings and refs handed out before become invalid.  Registered
 * with atexit() by the first successful start. */
void cs__tr_stop(void);
/* Called first by cs__tr_stop, on the thread that stops (exit): the
 * runtime writes there what its loop kept back (batches).  NULL: none. */
extern void (*cs__tr_stop_hook)(void);
/* 1 while a segment exists. */
int cs__tr_active(void);
/* The segment's header (read-write), or NULL. */
cs_seg_header *cs__tr_header(void);
/* Path of the segment, or "" when there is none. */
const char *cs__tr_segment_path(void);

/* Adds the objects loaded since the last call to the module table (all of
 * them when force is set); one callback when nothing changed.  Takes the
 * loader's lock: never call it from a signal handler. */
void cs__tr_modules_refresh(int force);

/* pthread_create for coscope's own threads (the recorder, the runtime's
 * to_thread workers, the agent's): asynchronous signals blocked in the new
 * thread, faults not (thread.c). */
int cs__tr_thread_start(pthread_t *th, const pthread_attr_t *at,
                        void *(*fn)(void *), void *arg);
/* From a handler of sig: calls the handler `old` that was installed
 * before ours, or restores the default action (a fault then re-executes
 * and dies, a sent signal is raised again).  Async-signal-safe. */
void cs__tr_signal_chain(const struct sigaction *old, int sig, siginfo_t *si,
                         void *uc);

/* ---- rings and events --------------------------------------------------- */

/* A ring for the calling thread, or NULL (tracing off, or all rings taken:
 * the header's rings_dropped counts those). */
cs__tr_ring *cs__tr_ring_acquire(void);
/* Gives the ring back; it keeps its events and its head for readers. */
void cs__tr_ring_release(cs__tr_ring *r);

/* Reads the trace clock (TSC ticks or CLOCK_MONOTONIC ns). */
static inline uint64_t cs__tr_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (cs__tr_g.clock_tsc)
        return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    if (cs__tr_g.clock_tsc) {
        uint64_t v;
        __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
        return v;
    }
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Appends one record to r (no-op when r is NULL).  The protocol readers
 * rely on (trace_format.h): claim the index in head, release fence, payload,
 * then seq with release.  Only r's owner thread may call this.
 */
static inline void cs__tr_emit(cs__tr_ring *r, uint64_t ts, uint64_t task,
                               uint32_t info, uint32_t arg)
{
    if (cs__tr_unlikely(r == NULL))
        return;
    uint64_t i = r->head++;
    cs_record *rec = &r->slot[i & r->mask];
    __atomic_store_n(&r->hdr->head, i + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&rec->ts, ts, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->task_id, task, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->info, info, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->seq, i + 1, __ATOMIC_RELEASE);
}

/* Claims k records at once (one store of head); the caller then writes
 * each with cs__tr_put(r, first + j, ...), in order.  Readers stop at
 * a claimed record not yet written, as they do with cs__tr_emit's. */
static inline uint64_t cs__tr_claim(cs__tr_ring *r, uint64_t k)
{
    uint64_t i = r->head;
    r->head = i + k;
    __atomic_store_n(&r->hdr->head, i + k, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return i;
}
static inline void cs__tr_put(cs__tr_ring *r, uint64_t i, uint64_t ts,
                              uint64_t task, uint32_t info, uint32_t arg)
{
    cs_record *rec = &r->slot[i & r->mask];
    __atomic_store_n(&rec->ts, ts, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->task_id, task, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->info, info, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->seq, i + 1, __ATOMIC_RELEASE);
}

/* Encodes a tick duration for a record's arg: exact below 2^32 ticks, else
 * shifted by 16 with CS_RECF_ARG_SHIFT16 set in *flags. */
static inline uint32_t cs__tr_dur_arg(uint64_t ticks, uint32_t *flags)
{
    if (ticks <= 0xffffffffu)
        return (uint32_t)ticks;
    *flags |= CS_RECF_ARG_SHIFT16;
    ticks >>= 16;
    return ticks > 0xffffffffu ? 0xffffffffu : (uint32_t)ticks;
}

/* A step of task ran from t0 to t1 and stopped for reason (CS_WAIT_* or
 * CS_STOP_*).  Also clears the ring's "current step" words. */
static inline void cs__tr_step(cs__tr_ring *r, uint64_t task, unsigned reason,
                               uint64_t t0, uint64_t t1)
{
    if (cs__tr_unlikely(r == NULL))
        return;
    uint32_t flags = 0;
    uint32_t arg = cs__tr_dur_arg(t1 - t0, &flags);
    __atomic_store_n(&r->hdr->step_start, 0, __ATOMIC_RELAXED);
    cs__tr_emit(r, t1, task, CS_REC_INFO(CS_EV_STEP, reason, flags), arg);
}

/* Announces that task starts a step at now (for watchdogs and `top`). */
static inline void cs__tr_step_begin(cs__tr_ring *r, uint64_t task,
                                     uint64_t now)
{
    if (cs__tr_unlikely(r == NULL))
        return;
    __atomic_store_n(&r->hdr->step_task, task, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->step_start, now, __ATOMIC_RELEASE);
}

/* One loop iteration ended; it spent poll_ticks in epoll_wait. */
static inline void cs__tr_loop_iter(cs__tr_ring *r, uint64_t now,
                                    uint64_t poll_ticks)
{
    if (cs__tr_unlikely(r == NULL))
        return;
    uint32_t flags = 0;
    uint32_t arg = cs__tr_dur_arg(poll_ticks, &flags);
    uint64_t n = r->hdr->iterations + 1;
    __atomic_store_n(&r->hdr->iterations, n, __ATOMIC_RELAXED);
    cs__tr_emit(r, now, n, CS_REC_INFO(CS_EV_LOOP_ITER, 0, flags), arg);
}

/* A warning of kind (CS_WARN_*) about task (0: none) with a stored stack
 * (0: none); counted in the header. */
void cs__tr_warning(cs__tr_ring *r, uint64_t task, unsigned kind,
                    uint32_t stack_id);

/* ---- task table ----------------------------------------------------------
 * A task's slot is named by a ref: slot index + 1, 0 meaning "no slot". */

/* Takes a free slot for a new task and fills it (state READY).  Returns the
 * ref, or 0 when tracing is off or the table is full.  Any thread. */
uint32_t cs__tr_task_alloc(uint64_t id, uint32_t name, uint32_t site,
                           uint64_t parent, uint32_t ring, uint64_t now);
/* Frees the slot (its generation is bumped).  The owner thread only. */
void cs__tr_task_free(uint32_t ref);

/* A loop's cache of freed slots (its thread only): a short-lived task's
 * slot goes back there and the next task takes it again, without the
 * shared free list's two atomic operations.  A cached slot is free for
 * readers (state FREE, generation bumped), like any other. */
#define CS__TRACE_SLOTS_CACHE 64
typedef struct cs__tr_slots {
    uint32_t n;     /* refs in ref[] */
    uint32_t epoch; /* cs__tr_g.epoch of the segment they are from */
    uint32_t ref[CS__TRACE_SLOTS_CACHE];
} cs__tr_slots;
/* Gives c's slots back to the shared free list (the loop ends). */
void cs__tr_slots_flush(cs__tr_slots *c);

/* The slot ref names, or NULL (0, out of range, or tracing off): the one
 * bounds check on a ref. */
static inline cs_task_slot *cs__tr_slot(uint32_t ref)
{
    if (ref == 0 || ref > cs__tr_g.task_slots)
        return NULL;
    return &cs__tr_g.tasks[ref - 1];
}

/* Opens a seqlock write section on ref's slot; returns the slot or NULL.
 * Store fields with CS__TRACE_SET, then call cs__tr_task_end(). */
static inline cs_task_slot *cs__tr_task_begin(uint32_t ref)
{
    cs_task_slot *s = cs__tr_slot(ref);
    if (s == NULL)
        return NULL;
    __atomic_store_n(&s->lock, s->lock + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return s;
}
static inline void cs__tr_task_end(cs_task_slot *s)
{
    __atomic_store_n(&s->lock, s->lock + 1, __ATOMIC_RELEASE);
}
/* Stores one field inside a write section (relaxed atomic store). */
#define CS__TRACE_SET(field, value)                                           \
    __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)

/* A new task's slot contents (state READY), inside a write section. */
static inline void cs__tr_slot_fill(cs_task_slot *s, uint64_t id,
                                    uint32_t name, uint32_t site,
                                    uint64_t parent, uint32_t ring,
                                    uint64_t now)
{
    CS__TRACE_SET(s->id, id);
    CS__TRACE_SET(s->name, name);
    CS__TRACE_SET(s->site, site);
    CS__TRACE_SET(s->state, (uint8_t)CS_TASK_READY);
    CS__TRACE_SET(s->wait, (uint8_t)CS_WAIT_NONE);
    CS__TRACE_SET(s->flags, (uint16_t)0);
    CS__TRACE_SET(s->wait_target, (uint64_t)0);
    CS__TRACE_SET(s->wait_aux, (uint64_t)0);
    CS__TRACE_SET(s->awaiter, (uint64_t)0);
    CS__TRACE_SET(s->created, now);
    CS__TRACE_SET(s->last_run, (uint64_t)0);
    CS__TRACE_SET(s->steps, (uint64_t)0);
    CS__TRACE_SET(s->run_ticks, (uint64_t)0);
    CS__TRACE_SET(s->sp, (uint64_t)0);
    CS__TRACE_SET(s->fp, (uint64_t)0);
    CS__TRACE_SET(s->ip, (uint64_t)0);
    CS__TRACE_SET(s->ring, ring);
    CS__TRACE_SET(s->parent, parent);
}

/* A freed slot's contents (state FREE, generation bumped), inside a
 * write section. */
static inline void cs__tr_slot_clear(cs_task_slot *s)
{
    CS__TRACE_SET(s->id, (uint64_t)0);
    CS__TRACE_SET(s->gen, s->gen + 1);
    CS__TRACE_SET(s->state, (uint8_t)CS_TASK_FREE);
    CS__TRACE_SET(s->wait, (uint8_t)CS_WAIT_NONE);
    CS__TRACE_SET(s->flags, (uint16_t)0);
    CS__TRACE_SET(s->sp, (uint64_t)0);
    CS__TRACE_SET(s->fp, (uint64_t)0);
    CS__TRACE_SET(s->ip, (uint64_t)0);
}

/* cs__tr_task_alloc, taking a slot from c first (c may be NULL). */
static inline uint32_t cs__tr_task_alloc_in(cs__tr_slots *c, uint64_t id,
                                            uint32_t name, uint32_t site,
                                            uint64_t parent, uint32_t ring,
                                            uint64_t now)
{
    cs_task_slot *s;
    uint32_t ref;

    if (c == NULL || c->n == 0 || c->epoch != cs__tr_g.epoch)
        return cs__tr_task_alloc(id, name, site, parent, ring, now);
    ref = c->ref[--c->n];
    if ((s = cs__tr_task_begin(ref)) == NULL)
        return 0;
    cs__tr_slot_fill(s, id, name, site, parent, ring, now);
    cs__tr_task_end(s);
    return ref;
}

/* cs__tr_task_free, keeping the slot in c while it has room. */
static inline void cs__tr_task_free_in(cs__tr_slots *c, uint32_t ref)
{
    cs_task_slot *s;

    if (c != NULL && c->epoch != cs__tr_g.epoch) {
        c->n = 0; /* refs of an earlier segment (a forked child's): gone */
        c->epoch = cs__tr_g.epoch;
    }
    if (c == NULL || c->n == CS__TRACE_SLOTS_CACHE ||
        (s = cs__tr_task_begin(ref)) == NULL) {
        cs__tr_task_free(ref);
        return;
    }
    cs__tr_slot_clear(s);
    cs__tr_task_end(s);
    c->ref[c->n++] = ref;
}

/* The task starts a step at now. */
static inline void cs__tr_task_running(uint32_t ref, uint64_t now)
{
    cs_task_slot *s = cs__tr_task_begin(ref);
    if (s == NULL)
        return;
    CS__TRACE_SET(s->state, (uint8_t)CS_TASK_RUNNING);
    CS__TRACE_SET(s->wait, (uint8_t)CS_WAIT_NONE);
    CS__TRACE_SET(s->flags, (uint16_t)(s->flags & ~CS_TASKF_REGS_VALID));
    CS__TRACE_SET(s->last_run, now);
    cs__tr_task_end(s);
}

/* The task's step from t0 to t1 ended; it is now in state (READY, WAITING
 * or a final state) waiting for reason on target/aux. */
static inline void cs__tr_task_stopped(uint32_t ref, unsigned state,
                                       unsigned reason, uint64_t target,
                                       uint64_t aux, uint64_t t0, uint64_t t1)
{
    cs_task_slot *s = cs__tr_task_begin(ref);
    if (s == NULL)
        return;
    CS__TRACE_SET(s->state, (uint8_t)state);
    CS__TRACE_SET(s->wait, (uint8_t)reason);
    CS__TRACE_SET(s->wait_target, target);
    CS__TRACE_SET(s->wait_aux, aux);
    CS__TRACE_SET(s->steps, s->steps + 1);
    CS__TRACE_SET(s->run_ticks, s->run_ticks + (t1 - t0));
    cs__tr_task_end(s);
}

/* Records the saved registers of a parked task (after its context was
 * saved), for remote unwinding. */
static inline void cs__tr_task_park(uint32_t ref, uint64_t sp, uint64_t fp,
                                    uint64_t ip)
{
    cs_task_slot *s = cs__tr_task_begin(ref);
    if (s == NULL)
        return;
    CS__TRACE_SET(s->sp, sp);
    CS__TRACE_SET(s->fp, fp);
    CS__TRACE_SET(s->ip, ip);
    CS__TRACE_SET(s->flags, (uint16_t)(s->flags | CS_TASKF_REGS_VALID));
    cs__tr_task_end(s);
}

/* ---- strings and stacks ------------------------------------------------- */

/* Interns s (truncated to CS_STRING_MAX bytes) and returns its id, the same
 * for equal strings; 0 when off or the table is full.  Any thread (takes a
 * mutex: not for signal handlers). */
uint32_t cs__tr_intern(const char *s);
uint32_t cs__tr_intern_n(const char *s, size_t n);
/* Stores n instruction pointers (innermost first, at most CS_STACK_MAX) and
 * returns the stack id, 0 when off or full.  Lock-free and
 * async-signal-safe; no deduplication. */
uint32_t cs__tr_stack_put(const uint64_t *ips, size_t n);

/* ---- trace files -------------------------------------------------------- */

/*
 * Writes the current contents of the segment (header, strings, stacks, live
 * tasks, every ring's records) as a trace file at path (created 0600,
 * replaced if it exists) or to fd.  flags: CS_SEG_F_FLIGHT and/or
 * CS_SEG_F_CRASH, stored in the file header.  Async-signal-safe: uses only
 * open/write/close and a static buffer; one dump at a time (a concurrent
 * call returns -EBUSY).  Returns 0 or a negative errno.
 */
int cs__tr_flight_dump(const char *path, uint32_t flags);
int cs__tr_flight_dump_fd(int fd, uint32_t flags);
/* The COSCOPE_FLIGHT path given at start, or NULL. */
const char *cs__tr_flight_path(void);

#endif /* CS_LIBTRACE_WRITER_H */
