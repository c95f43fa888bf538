/*
 * task.c - task lifecycle and the scheduler's hand-off.
 *
 * A suspending task calls cs__suspend(), which hands the CPU straight to
 * the next ready task (or to the loop context when the queue is empty or
 * the budget is spent; see internal.h).  Every point where a context
 * resumes (after cs__switch, and a new task's first instruction) releases
 * the stack of a task that just ended: a task cannot unmap the stack it
 * is running on, so it leaves that to whoever runs next.
 *
 * Under AddressSanitizer each switch is announced with
 * __sanitizer_start/finish_switch_fiber so ASan follows the stack change.
 */
#include "trace_batch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

/* Task ids are process-wide so that traces of several loops never clash;
 * each loop takes them CS__ID_BLOCK at a time. */
static uint64_t cs__next_id = 1;
#define CS__ID_BLOCK 1024

static uint64_t cs__new_id(cs__loop *loop)
{
    if (cs_unlikely(loop->next_id == loop->end_id)) {
        loop->next_id =
            __atomic_fetch_add(&cs__next_id, CS__ID_BLOCK, __ATOMIC_RELAXED);
        loop->end_id = loop->next_id + CS__ID_BLOCK;
    }
    return loop->next_id++;
}


static void cs__task_entry(void *arg);

void cs__set_name(char *buf, size_t cap, char **long_name, const char *name)
{
    size_t n;

    if (!name)
        name = "task";
    n = strlen(name);
    *long_name = NULL;
    if (n < cap) {
        memcpy(buf, name, n + 1);
        return;
    }
    *long_name = strdup(name);
    if (!*long_name) { /* keep a truncated name rather than fail */
        memcpy(buf, name, cap - 1);
        buf[cap - 1] = '\0';
    } else {
        buf[0] = '\0';
    }
}

void cs__set_last_error(char **slot, const char *msg)
{
    free(*slot);
    *slot = msg ? strdup(msg) : NULL;
}

/* ---- switching ---------------------------------------------------------- */

#ifdef CS__TAIL_SWITCH
/* The traced switch, out of line so that the untraced one stays a few
 * instructions and a tail call: records the switch (trace_batch.h), then
 * switches, itself by a tail call, so the parked frame is the same. */
static __attribute__((noinline)) void
cs__jump_traced(cs__loop *loop, cs_task *self, cs_task *to, cs__ctx *from,
                cs__ctx *dst)
{
    uintptr_t sp = 0, fp = 0, ip = 0;
    /* Parked registers, known before the switch: with cs__switch
     * tail-called below, the parked frame's return address and frame
     * pointer are this function's (switch.h); checked once after a switch
     * (cs__trace_regs), and not used again if wrong. */
    int have = self && cs__trace_predict >= 0 &&
               cs__ctx_regs_predict(__builtin_frame_address(0), &sp, &fp, &ip);

    cs__trace_switch(loop, self, to, have, sp, fp, ip);
    cs__switch(from, dst);
}
#endif

#ifndef CS__TAIL_SWITCH
/* cs__switch, telling ASan about the change of stacks. */
static inline void cs__asan_switch(cs__loop *loop, cs_task *self, cs_task *to,
                                   bool dying, cs__ctx *from, cs__ctx *dst)
{
#ifdef CS__ASAN
    void **fake = self ? &self->fake_stack : &loop->fake_stack;
    const void *lo = to ? to->stack.lo : loop->asan_stack_lo;
    size_t size = to ? to->stack.size : loop->asan_stack_size;
    __sanitizer_start_switch_fiber(dying ? NULL : fake, lo, size);
    cs__switch(from, dst);
    __sanitizer_finish_switch_fiber(*fake, NULL, NULL);
#else
    (void)loop, (void)self, (void)to, (void)dying;
    cs__switch(from, dst);
#endif
}
#endif

/* Moves from the running context (a task, or the loop if self is NULL) to
 * `to` (a task, or the loop if NULL).  dying: self will never resume.
 * An ended task's stack is released later, by the next task to end or by
 * the loop context (cs__task_reap), never by the code after a switch:
 * that keeps the switch a tail call on the hot path. */
static CS__HOT_INLINE void cs__jump(cs__loop *loop, cs_task *self, cs_task *to,
                                    bool dying)
{
    cs__ctx *from = self ? &self->ctx : &loop->ctx;
    cs__ctx *dst = to ? &to->ctx : &loop->ctx;

#ifndef CS__TAIL_SWITCH
    /* No tail call (ASan, or no optimisation): the switch returns here,
     * so registers are recorded right after it. */
    if (loop->tr_ring)
        cs__trace_switch(loop, self, to, 0, 0, 0, 0);
    cs__asan_switch(loop, self, to, dying, from, dst);
    if (loop->tr_ring)
        cs__trace_settle(loop);
#else
    /* A tail call: cs__switch resumes `to` by jumping straight to its
     * return address, so the switch costs no mispredicted return (see
     * switch_x86_64.S).  Nothing may follow it here.  Traced: the one
     * timestamp and the records are written before the switch (trace_batch.h). */
    (void)dying;
    if (loop->tr_ring) {
        /* a short yield inside a batch: counted, not timed (trace_batch.h).
         * tr_prev is NULL here: a batch opens only without one, and the
         * timed switches that set it close the batch first. */
        if (cs__trace_batch_more(loop, self, to)) {
            cs__switch(from, dst);
            return;
        }
        /* a short await or task end inside a lifetime batch: kept, not
         * timed (trace_batch.h) */
        if (loop->tr_life_hot && cs__trace_life_fits(loop, self, to)) {
            cs__trace_jump_life(loop, self, to, from, dst);
            return;
        }
        cs__jump_traced(loop, self, to, from, dst);
        return;
    }
    cs__switch(from, dst);
#endif
}

static int cs__task_start(cs__loop *loop, cs_task *t);

/* Picks what runs next: the head of the ready queue while the budget lasts,
 * else the loop context (NULL).  A task about to run for the first time
 * gets its stack now (cs__task_start); one that cannot has ended. */
static inline cs_task *cs__pick(cs__loop *loop)
{
    cs_task *t;

    while ((t = loop->ready_head) != NULL && loop->budget > 0) {
        loop->budget--;
        loop->ready_head = t->next;
        if (!t->next)
            loop->ready_tail = NULL;
        t->next = NULL;
        if (cs_unlikely(!t->stack.lo) && cs__task_start(loop, t) < 0)
            continue;
        t->state = CS__RUNNING;
        loop->current = t;
        return t;
    }
    loop->current = NULL;
    return NULL;
}

void cs__suspend(cs__loop *loop, cs_task *self)
{
    cs_task *next = cs__pick(loop);

    if (next == self) /* yielded with nobody else ready */
        return;
    cs__jump(loop, self, next, false);
}

/* Called from the loop context: runs ready tasks until control comes back. */
void cs__loop_dispatch(cs__loop *loop)
{
    cs_task *next;

    loop->budget = CS__BUDGET;
    next = cs__pick(loop);
    if (next)
        cs__jump(loop, NULL, next, false);
    if (loop->tr_ring)
        cs__trace_settle(loop);
    cs__task_reap(loop);
}

void cs__make_ready(cs__loop *loop, cs_task *t)
{
    t->state = CS__READY;
    t->next = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next = t;
    else
        loop->ready_head = t;
    loop->ready_tail = t;
}

/* ---- waiting ------------------------------------------------------------ */

int cs__wait(cs_task *self, enum cs_wait_reason reason, void *obj,
             cs__wait_cancel_fn *cancel, int64_t timeout)
{
    cs__loop *loop = self->loop;

    self->state = CS__WAITING;
    self->wait.reason = (uint8_t)reason;
    self->wait.obj = obj;
    self->wait.cancel = cancel;
    self->wait.result = 0;
    if (cs_unlikely(cs__agent != NULL) &&
        (reason == CS_WAIT_LOCK || reason == CS_WAIT_TASK))
        CS__HOOK(task_blocking, self);
    if (timeout >= 0 && cs__timer_add(loop, self, cs__deadline(timeout)) < 0) {
        /* no memory for the timer: behave as an immediate timeout */
        cs__wait_unlink(self);
        self->state = CS__RUNNING;
        self->wait.reason = CS_WAIT_NONE;
        return CS_ENOMEM;
    }
    cs__suspend(loop, self);
    if (loop->tr_ring)
        cs__trace_settle(loop);
    self->wait.reason = CS_WAIT_NONE;
    return self->wait.result;
}

/* cs__wake without the slot's READY (for a task that runs next). */
static inline void cs__wake_quiet(cs_task *t, int result)
{
    if (t->heap_index >= 0)
        cs__timer_del(t->loop, t);
    t->wait.result = result;
    cs__make_ready(t->loop, t);
}

void cs__wake(cs_task *t, int result)
{
    cs__wake_quiet(t, result);
    if (t->tr_ref)
        cs__trace_task_woken(t);
}

/* Takes a waiting task out of whatever it waits on, before a wake that
 * the object itself did not cause (cancellation, timeout). */
void cs__wait_unlink(cs_task *t)
{
    if (t->wait.cancel)
        t->wait.cancel(t);
}

/* ---- creation and end --------------------------------------------------- */

/* The error of a failed spawn, for cs_last_error(). */
static void cs__spawn_error(cs__loop *loop, const char *msg)
{
    if (loop->current)
        cs__set_last_error(&loop->current->last_error, msg);
    else
        cs__set_run_error(msg);
}

/* A task is created without a stack: it gets one when it first runs
 * (cs__task_start).  A burst of spawns then needs no more stacks than run
 * at once: a task that ends before the next starts hands it its stack,
 * still in the cache, instead of each of them touching one of its own. */
cs_task *cs__task_new(cs__loop *loop, const char *name, cs_fn fn, void *arg,
                      const char *file, int line, size_t stack_size)
{
    cs_task *t = loop->free_tasks;

    if (stack_size > CS__STACK_MAX) {
        cs__spawn_error(loop, "cannot create a task: its stack size is "
                              "over the 1 GiB limit");
        return NULL;
    }
    if (t) {
        loop->free_tasks = t->next;
        loop->free_len--;
        if (loop->free_len < loop->free_low)
            loop->free_low = loop->free_len;
    } else if (!(t = malloc(sizeof(*t)))) {
        cs__spawn_error(loop, "cannot create a task: out of memory");
        return NULL;
    }
    memset(t, 0, sizeof(*t));
    cs__set_name(t->name, sizeof(t->name), &t->long_name, name);
    t->loop = loop;
    t->id = cs__new_id(loop);
    t->fn = fn;
    t->arg = arg;
    t->file = file;
    t->line = line;
    t->heap_index = -1;
    t->stack_size = stack_size;
    cs__list_init(&t->wait.node);
    cs__list_push(&loop->all, &t->all);
    loop->ntasks++;
    cs__make_ready(loop, t);
    if (loop->tr_ring)
        cs__trace_task_new(loop, t);
    return t;
}

/* t's status is final: marks it ended, tells the agent of a failure nobody
 * will retrieve, and wakes its awaiter.  Shared by a task's own end and a
 * start that failed. */
static void cs__task_finished(cs__loop *loop, cs_task *t)
{
    t->state = CS__DONE;
    loop->ntasks--;
    if (t->detached && cs__task_failed(t))
        CS__HOOK(task_unretrieved, t);
    if (t->awaiter) {
        cs_task *a = t->awaiter;
        t->awaiter = NULL;
        if (!loop->ready_head) {
            /* a runs next, after runtime code only (t's switch, or the
             * loop's turn): its slot says READY then RUNNING at that
             * switch, so the first is left out (trace_batch.h) */
            cs__wake_quiet(a, 0);
        } else {
            cs__wake(a, 0);
        }
    }
}

/* Ends t, which never ran, with error `code`: as cs__task_end, but from
 * the context that was about to switch to it. */
static void cs__task_fail_start(cs__loop *loop, cs_task *t, int code,
                                const char *msg)
{
    t->has_status = true;
    t->status = code;
    free(t->errmsg);
    t->errmsg = msg ? strdup(msg) : NULL;
    if (t->tr_ref)
        cs__trace_task_failed(loop, t);
    cs__task_finished(loop, t);
    if (t->detached)
        cs__task_release(t);
}

/* Gives t, about to run for the first time, its stack and first frame.
 * Without memory for a stack, t ends with CS_ENOMEM, never having run,
 * and its awaiter is told why (the stack allocator has said so on stderr
 * if guard pages ran out). */
static __attribute__((noinline, cold)) int cs__task_start(cs__loop *loop,
                                                          cs_task *t)
{
    int r = cs__stack_get(loop, &t->stack, t->stack_size);

    if (r < 0) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "task '%s' could not start: no memory for its stack",
                 cs_task_name(t));
        cs__task_fail_start(loop, t, r, msg);
        return r;
    }
    cs__ctx_make(&t->ctx, t->stack.lo, t->stack.size, cs__task_entry, t);
    return 0;
}

static void cs__task_entry(void *arg)
{
    cs_task *t = arg;

#ifdef CS__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    t->ran = true;
    if (t->loop->tr_ring)
        cs__trace_settle(t->loop);
    /* Cancelled before its first step: like asyncio, the body never runs. */
    if (t->cancel_pending) {
        t->cancel_pending = false;
        t->cancel_delivered = true;
    } else {
        t->result = t->fn(t->arg);
    }
    cs__task_end(t);
}

/* Ends the running task t: wakes its awaiter and leaves the CPU for good. */
void cs__task_end(cs_task *t)
{
    cs__loop *loop = t->loop;

    if (!t->has_status && t->cancel_delivered) {
        t->has_status = true;
        t->status = CS_ECANCELLED;
    }
    cs__task_finished(loop, t);
    cs__task_reap(loop); /* the previous ended task: not running */
    loop->reap = t;
    cs__jump(loop, t, cs__pick(loop), true);
    __builtin_unreachable();
}

/* Frees the struct of an ended task whose handle is gone. */
void cs__task_release(cs_task *t)
{
    cs__loop *loop = t->loop;

    cs__list_del(&t->all);
    if (t->tr_ref)
        cs__trace_task_gone(t);
    free(t->long_name);
    free(t->errmsg);
    free(t->last_error);
    t->next = loop->free_tasks;
    loop->free_tasks = t;
    loop->free_len++;
}

/* Frees task structs that stayed unused for a whole trim tick (stack.c):
 * the list is LIFO, so the last `low` of it were not touched; the first
 * CS__FREE_TASKS_KEEP of those stay. */
void cs__task_trim(cs__loop *loop)
{
    size_t keep = loop->free_len - loop->free_low + CS__FREE_TASKS_KEEP;
    cs_task **pp = &loop->free_tasks;

    if (loop->free_len <= keep)
        return;
    for (size_t i = 0; i < keep && *pp; i++)
        pp = &(*pp)->next;
    while (*pp) {
        cs_task *t = *pp;
        *pp = t->next;
        free(t);
        loop->free_len--;
    }
    loop->free_low = loop->free_len;
#ifdef __GLIBC__
    /* the structs kept are the newest, at the top of the heap: without
     * this, glibc keeps the freed ones below them resident */
    malloc_trim(0);
#endif
}

void cs__task_reap(cs__loop *loop)
{
    cs_task *t = loop->reap;

    if (!t)
        return;
    loop->reap = NULL;
    cs__stack_put(loop, &t->stack);
    if (t->detached)
        cs__task_release(t);
}

/* ---- public: identity --------------------------------------------------- */

CS_EXTERN cs_task *cs_current_task(void)
{
    cs__loop *loop = cs__tls_loop;
    return loop ? loop->current : NULL;
}

CS_EXTERN const char *cs_task_name(const cs_task *t)
{
    if (!t)
        return NULL;
    return t->long_name ? t->long_name : t->name;
}

CS_EXTERN uint64_t cs_task_id(const cs_task *t)
{
    return t ? t->id : 0;
}

CS_EXTERN int cs_task_done(const cs_task *t)
{
    return t && t->state == CS__DONE;
}

CS_EXTERN size_t cs_all_tasks(cs_task **out, size_t cap)
{
    cs__loop *loop = cs__tls_loop;
    size_t n = 0;

    if (!loop)
        return 0;
    for (cs__link *l = loop->all.next; l != &loop->all; l = l->next) {
        cs_task *t = cs__container_of(l, cs_task, all);
        if (t->state == CS__DONE)
            continue;
        if (n < cap && out)
            out[n] = t;
        n++;
    }
    return n;
}

CS_EXTERN cs_task *cs_spawn_at(const char *name, cs_fn fn, void *arg,
                               const char *file, int line)
{
    cs__loop *loop = cs__tls_loop;

    if (!loop) {
        cs__set_run_error("cs_spawn outside cs_run: no event loop");
        return NULL;
    }
    if (!fn) {
        cs__spawn_error(loop, "cs_spawn: no function to run");
        return NULL;
    }
    return cs__task_new(loop, name, fn, arg, file, line, 0);
}

CS_EXTERN cs_task *cs_spawn(const char *name, cs_fn fn, void *arg)
{
    cs__loop *loop = cs__tls_loop;
    cs_task *t;

    if (loop) /* the site without CS_SPAWN: the caller, named on read */
        loop->spawn_ip = __builtin_return_address(0);
    t = cs_spawn_at(name, fn, arg, NULL, 0);
    if (loop)
        loop->spawn_ip = NULL;
    return t;
}

/* ---- public: suspension ------------------------------------------------- */

/* The yield round trip is the figure we compete on; dropping the frame
 * pointer here saves 3 of its ~55 instructions.  Unwinders still step
 * through it with the DWARF CFI (libunwind, gdb). */
#if defined(__clang__)
#define CS__NO_FRAME_POINTER
#else
#define CS__NO_FRAME_POINTER __attribute__((optimize("omit-frame-pointer")))
#endif
CS__NO_FRAME_POINTER CS_EXTERN void cs_yield(void)
{
    cs__loop *loop = cs__tls_loop;
    cs_task *self, *next;

    if (cs_unlikely(!loop) || cs_unlikely(!(self = loop->current)))
        return;
    next = loop->ready_head;
    if (cs_likely(next != NULL && loop->budget > 0 && next->stack.lo)) {
        /* hot path: rotate the queue, self to the tail, next off the head */
        loop->budget--;
        self->state = CS__READY;
        self->next = NULL;
        loop->ready_head = next->next ? next->next : self;
        if (next->next)
            loop->ready_tail->next = self;
        loop->ready_tail = self;
        next->state = CS__RUNNING;
        loop->current = next;
        cs__jump(loop, self, next, false);
        return;
    }
    cs__make_ready(loop, self);
    cs__suspend(loop, self);
}

CS_EXTERN int cs_sleep(int64_t ns)
{
    cs__loop *loop = cs__tls_loop;
    cs_task *self = loop ? loop->current : NULL;
    int r;

    if (!self)
        return CS_ENOLOOP;
    if ((r = cs__cancel_check(self)) != 0)
        return r;
    if (ns <= 0) {
        cs_yield();
        return cs__cancel_check(self);
    }
    return cs__wait(self, CS_WAIT_SLEEP, NULL, NULL, ns);
}

CS_EXTERN int cs_cancel(cs_task *t)
{
    if (!t)
        return CS_EINVAL;
    if (t->state == CS__DONE)
        return 0;
    if (t->tr_ref && !t->cancelled)
        cs__trace_task_flag(t, CS_TASKF_CANCEL_REQUESTED);
    t->cancelled = true;
    if (t->state == CS__WAITING && !t->shielded) {
        cs__wait_unlink(t);
        t->cancel_delivered = true;
        cs__wake(t, CS_ECANCELLED);
    } else {
        t->cancel_pending = true;
    }
    return 0;
}

CS_EXTERN int cs_cancelled(void)
{
    cs_task *self = cs_current_task();
    return self ? self->cancelled : 0;
}

/* ---- public: raise ------------------------------------------------------ */

CS_EXTERN _Noreturn void cs_raise(int code, const char *fmt, ...)
{
    cs_task *self = cs_current_task();
    char *msg = NULL;
    va_list ap;

    if (code > 0)
        code = -code;
    if (code == 0)
        code = CS_ERAISED;
    va_start(ap, fmt);
    if (!fmt || vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!self) {
        fprintf(stderr, "coscope: cs_raise outside a task: %s (%s)\n",
                msg ? msg : "", cs_strerror(code));
        abort();
    }
    CS__HOOK(task_raised, self, code, msg);
    free(self->errmsg);
    self->errmsg = msg;
    self->status = code;
    self->has_status = true;
    if (self->catcher)
        longjmp(self->catcher->env, 1);
    cs__task_end(self);
}
