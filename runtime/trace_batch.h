/*
 * trace_batch.h - tracing at a context switch (private to the runtime):
 * the timed switch, the yield and task-lifetime batches that skip its
 * clock read, and the prediction of a parked task's registers.  The
 * scheduler (task.c) calls cs__trace_switch and the batch checks; the
 * rest of the runtime needs none of it (internal.h).
 *
 * A loop's tracing is in one of three states at each switch:
 *
 *                        +-------------------------------+
 *      +---------------->|             TIMED             |<---------------+
 *      |                 | one clock read per switch,    |                |
 *      |                 | a CS_EV_STEP record per step  |                |
 *      |                 +-------------------------------+                |
 *      |       a yield, the last       |       |    an await of a task    |
 *      |       timed yield short       |       |    about to run first,   |
 *      |       (tr_hot)                v       v    a short lifetime      |
 *      |   +-----------------------------+   +--------------------------+ |
 *      |   |        YIELD BATCH          |   |     LIFETIME BATCH       | |
 *      |   |  (loop->tr_nbt tasks)       |   |  (loop->tr_nlife steps)  | |
 *      |   | each yield: tr_bk++, the    |   | each await or end: kept  | |
 *      |   | ring's step_task; no clock, |   | in tr_cache->life[], its | |
 *      |   | no record                   |   | slot written; no clock   | |
 *      |   +-----------------------------+   +--------------------------+ |
 *      |     any other switch, a task's            any other switch,      |
 *      |     64th step, a 9th task                 64 kept, a slow step   |
 *      |                 |                            |                   |
 *      |                 v                            v                   |
 *      |   clock read; CS_EV_BATCH, a       clock read; CS_EV_BATCH, then |
 *      +-- CS_EV_YIELDS per task; time      each kept step's WAIT, STEP --+
 *          shared out by steps              and end records
 *
 * The two batches are never open at once.  A timed switch writes the
 * parked task's step record and slot before cs__switch, which is a tail
 * call (CS__TAIL_SWITCH): the parked task's registers are predicted from
 * this frame, checked once, and recorded after the switch instead
 * (cs__trace_settle) where the prediction is wrong or there is no tail
 * call.
 */
#ifndef CS_RUNTIME_TRACE_BATCH_H
#define CS_RUNTIME_TRACE_BATCH_H

#include "internal.h"

/*
 * Yield batching.  A yield round trip costs ~11 ns untraced and the TSC
 * read alone ~12 ns on the machines we measured, so timing every switch
 * makes a tight yield loop 3.5x slower.  Once a timed yield step (or a
 * whole batch, on average) took less than COSCOPE_BATCH_NS (default
 * 1000), the next yields are counted instead of timed: each adds one to
 * the task's tr_bk and stores the ring's step_task word, nothing else.
 * The next switch that is not such a yield (a wait, the end of a task, the
 * loop's turn, a task's CS__TRACE_BATCH_MAX-th step in the batch, a ninth
 * task) reads the clock and writes one
 * CS_EV_BATCH record (steps, duration) and a CS_EV_YIELDS record per task
 * (its steps), and shares the time out over the slots by steps.  The
 * watchdog still sees which task runs (step_task) and a step_start at
 * most one batch old.  COSCOPE_BATCH_NS=0 times every step.
 */

/*
 * Task-lifetime batching: the same idea for spawn + await.  A task that
 * awaits a short task pays two switches, and with a clock read each the
 * two reads cost as much as the rest of spawn + await.  Once a timed step
 * of a short lifetime (an await of a task about to run for the first
 * time, or a task's end in its first step), or a whole lifetime batch on
 * average, took less than COSCOPE_BATCH_NS, a task that awaits the task
 * that runs next for the first time, or that ends before another task's
 * first step (a burst), opens a batch: that switch reads no clock, and
 * while the
 * batch is open neither does any switch whose step ended in an await or in
 * the task's end (up to CS__TRACE_LIFE_MAX steps).  Each such step is
 * kept in the loop's cache (task, how it stopped, the awaited task) and
 * its task slot is written at once (state, wait, awaiter, steps; run time
 * an estimate, the last batch's ticks per step; last_run the batch's
 * start).  The next other switch reads the clock and writes one CS_EV_BATCH
 * record (steps, duration), then each kept step's records at the batch's
 * end (CS_EV_WAIT, a CS_EV_STEP flagged CS_RECF_BATCHED with its share,
 * its end record), then its own step, flagged the same.  A lifetime batch
 * and a yield batch are never open at once.  A step the agent's watchdog
 * samples as slow (cs_agent_step_slow) is timed: it ends the batch and
 * takes all but the other steps' estimate, so its length is kept.
 */

/* Ends the loop's yield batch at t1 (trace clock): self, switching out
 * now, ran the batch's last step, a yield if self_yields; returns the
 * ticks of that last step's share (cs__trace_switch). */
uint64_t cs__trace_batch_end(struct cs__loop *loop, struct cs_task *self,
                             int self_yields, uint64_t t1);
/* Opens or joins the loop's yield batch with t's yield to `to`, counted
 * like cs__trace_batch_more; 0 if the batch has all the tasks it can. */
int cs__trace_batch_join(struct cs__loop *loop, struct cs_task *t,
                         struct cs_task *to);

/* self's step ends in an await or its end, inside a lifetime batch
 * (opened by this call if none is): kept, not timed (see above). */
void cs__trace_life_step(struct cs__loop *loop, struct cs_task *self,
                         struct cs_task *to, int have_regs, uintptr_t sp,
                         uintptr_t fp, uintptr_t ip);
/* Ends the loop's lifetime batch at t1: its records; closing: the step
 * ending now is the batch's last.  Returns that step's share (ticks). */
uint64_t cs__trace_life_end(struct cs__loop *loop, uint64_t t1, int closing);

/* A task slot's state, wait and flags are adjacent (bytes 24..27): one
 * 32-bit store sets all three. */
typedef uint32_t cs__u32_alias __attribute__((may_alias));
_Static_assert(offsetof(cs_task_slot, state) == 24 &&
                   offsetof(cs_task_slot, wait) == 25 &&
                   offsetof(cs_task_slot, flags) == 26,
               "slot state word");
/* A switch to `to` inside a yield batch (above): which task runs, and
 * one more untimed switch since step_start, for watchdogs (the ring's
 * owner is its only writer). */
static inline void cs__trace_untimed_switch(cs_ring_header *h,
                                            const struct cs_task *to)
{
    __atomic_store_n(&h->step_task, to->id, __ATOMIC_RELAXED);
    __atomic_store_n(&h->switches,
                     __atomic_load_n(&h->switches, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELEASE);
}

static inline void cs__trace_slot_word(cs_task_slot *s, unsigned state,
                                       unsigned wait, unsigned flags)
{
    struct {
        uint8_t state, wait;
        uint16_t flags;
    } w = {(uint8_t)state, (uint8_t)wait, (uint16_t)flags};
    cs__u32_alias v;
    memcpy(&v, &w, sizeof(v));
    __atomic_store_n((cs__u32_alias *)&s->state, v, __ATOMIC_RELAXED);
}

/* A task woken (made ready by someone else): one 32-bit store, as when
 * a task is marked running; a reader sees the word before or after it,
 * either consistent. */
static inline void cs__trace_task_woken(cs_task *t)
{
    cs_task_slot *s = cs__tr_slot(t->tr_ref);

    if (s)
        cs__trace_slot_word(s, CS_TASK_READY, CS_WAIT_NONE, s->flags);
}

/* The slot of a released task: back to its loop's cache, on the loop's
 * thread (awaited, detached, or left at the loop's end), the cache
 * outliving the tasks (cs__trace_loop_stop). */
static inline void cs__trace_task_gone(cs_task *t)
{
    cs__loop *loop = t->loop;

    if (loop->tr_prev == t)
        loop->tr_prev = NULL;
    if (loop->tr_cache)
        cs__tr_task_free_in(&loop->tr_cache->slots, t->tr_ref);
    else
        cs__tr_task_free(t->tr_ref);
    t->tr_ref = 0;
}

/* Whether parked registers are predicted before the switch (see
 * cs__trace_park_predicted): 0 not yet checked, 1 checked right, -1
 * wrong in this build (registers are then recorded after the switch). */
extern int cs__trace_predict;

/* Records the saved registers of p, parked by an earlier switch (its
 * context is stored by now), for remote unwinding; while the prediction
 * is unchecked, checks it against them. */
static inline void cs__trace_regs(cs_task *p)
{
    cs_task_slot *s = cs__tr_task_begin(p->tr_ref);
    uintptr_t sp, fp, ip;

    if (!s)
        return;
    cs__ctx_regs_inline(&p->ctx, &sp, &fp, &ip);
    if (cs__trace_predict == 0 && (s->flags & CS_TASKF_REGS_VALID))
        __atomic_store_n(&cs__trace_predict,
                         s->sp == sp && s->fp == fp && s->ip == ip ? 1 : -1,
                         __ATOMIC_RELAXED); /* any loop thread: same verdict */
    CS__TRACE_SET(s->sp, (uint64_t)sp);
    CS__TRACE_SET(s->fp, (uint64_t)fp);
    CS__TRACE_SET(s->ip, (uint64_t)ip);
    CS__TRACE_SET(s->flags, (uint16_t)(s->flags | CS_TASKF_REGS_VALID));
    cs__tr_task_end(s);
}

/* Where a switched-to context runs runtime code again (a new task, the
 * loop, a task back from cs__wait): the task parked by the switch that
 * got us here has its context saved, so its registers can be recorded
 * (unless they were predicted right before the switch). */
static inline void cs__trace_settle(cs__loop *loop)
{
    cs_task *p = loop->tr_prev;

    loop->tr_prev = NULL;
    if (p && p != loop->current)
        cs__trace_regs(p);
}

/* self, in the loop's yield batch, yields to `to`: counted, no clock
 * (above).  The fast path of cs__jump, and cs__trace_switch's first
 * check where cs__jump has none (ASan builds). */
static CS__HOT_INLINE bool cs__trace_batch_more(cs__loop *loop, cs_task *self,
                                                cs_task *to)
{
    if (!self || !self->tr_bk || !to || self->state != CS__READY ||
        self->tr_bk >= CS__TRACE_BATCH_MAX)
        return false;
    self->tr_bk++;
    cs__trace_untimed_switch(loop->tr_hdr, to);
    return true;
}

/* Whether self's step, ending now with a switch to `to`, goes into the
 * loop's lifetime batch (above): an await of the task that runs next
 * for the first time, or an end followed by a task's first step, opens
 * one; while one is open, any await or end joins it. */
static CS__HOT_INLINE bool cs__trace_life_fits(const cs__loop *loop,
                                               const cs_task *self,
                                               const cs_task *to)
{
    if (!self || !to || loop->tr_nbt || loop->tr_nlife >= CS__TRACE_LIFE_MAX ||
        loop->tr_slow)
        return false;
    if (self->state == CS__WAITING)
        return self->wait.reason == CS_WAIT_TASK &&
               (loop->tr_nlife || (self->wait.obj == to && !to->ran));
    return self->state == CS__DONE && (loop->tr_nlife || !to->ran);
}

/* Whether a timed step of self, ending with a switch to `to`, is a short
 * lifetime's (above), whose length says if the next ones are batched:
 * an await of a task about to run for the first time, or a task's end in
 * its first step (its slot counts no step yet). */
static inline bool cs__trace_life_kind(const cs_task *self, const cs_task *to)
{
    const cs_task_slot *s;

    if (self->state == CS__WAITING)
        return self->wait.reason == CS_WAIT_TASK && to &&
               self->wait.obj == to && !to->ran;
    return self->state == CS__DONE && (s = cs__tr_slot(self->tr_ref)) &&
           s->steps == 0;
}

/* Tracing at a switch from self to `to` (NULL: the loop context), before
 * cs__switch, which is a tail call on the hot path: nothing runs after it
 * until the resumed task's own code.  One timestamp: the end of self's
 * step and the start of to's.  Writes self's step record and slot (a yield
 * inline, anything else in cs__trace_parked) and marks `to` running.
 * self's registers exist only once cs__switch has saved them: they are
 * predicted just before the switch (cs__jump_traced), and until one
 * prediction has been checked, or if it proved wrong, recorded by the next
 * switch or the next settle point (cs__trace_settle) as well.
 *
 * Two more shortcuts keep the switch cheap.  The slot's last_run is
 * written when a step ends (it is that step's start); while a task runs,
 * its ring's step_start says since when.  Marking a task running is one
 * 32-bit store of state/wait/flags outside the seqlock: a reader sees the
 * word before or after it, and either goes with the rest of the slot
 * (running: no wait, registers not valid). */
static CS__HOT_INLINE void cs__trace_switch(cs__loop *loop, cs_task *self,
                                            cs_task *to, int have_regs,
                                            uintptr_t sp, uintptr_t fp,
                                            uintptr_t ip)
{
    cs__tr_ring *r = loop->tr_ring;
    cs_task *p = loop->tr_prev;
    cs_task_slot *s;
    int yielded = self && cs_likely(self->state == CS__READY);
    uint64_t t0, t1;
    uint32_t batched = 0;

    /* A short yield in a run of them: counted, not timed (above). */
    if (cs__trace_batch_more(loop, self, to) ||
        (yielded && to && loop->tr_hot && !p && !self->tr_bk &&
         !loop->tr_nlife && cs__trace_batch_join(loop, self, to))) {
        if ((s = cs__tr_slot(to->tr_ref)) != NULL)
            cs__trace_slot_word(s, CS_TASK_RUNNING, CS_WAIT_NONE,
                                s->flags & ~CS_TASKF_REGS_VALID);
        return;
    }
    /* A short await or end in a run of them: kept, not timed (above). */
    if (!yielded && loop->tr_life_hot && cs__trace_life_fits(loop, self, to)) {
        cs__trace_life_step(loop, self, to, have_regs, sp, fp, ip);
        return;
    }
    t0 = loop->tr_t0;
    t1 = cs__tr_now();
    if (loop->tr_nbt) { /* self's step began inside the batch */
        t0 = t1 - cs__trace_batch_end(loop, self, yielded, t1);
        batched = 1;
    } else if (loop->tr_nlife) { /* ... inside a lifetime batch */
        t0 = t1 - cs__trace_life_end(loop, t1, self != NULL);
        batched = 2;
    }
    loop->tr_slow = 0;
    loop->tr_t0 = t1;
    loop->tr_prev = NULL;
    if (p && p != to)
        cs__trace_regs(p);
    if (yielded) {
        if (batched != 1) { /* else counted by cs__trace_batch_end */
            uint32_t flags = batched ? CS_RECF_BATCHED : 0;
            uint32_t arg = cs__tr_dur_arg(t1 - t0, &flags);
            cs__tr_emit(r, t1, self->id,
                        CS_REC_INFO(CS_EV_STEP, CS_WAIT_YIELD, flags), arg);
            if (!batched)
                loop->tr_hot = t1 - t0 < loop->tr_hot_ticks;
        }
        if ((s = cs__tr_task_begin(self->tr_ref)) != NULL) {
            cs__trace_slot_word(s, CS_TASK_READY, CS_WAIT_YIELD,
                                have_regs ? s->flags | CS_TASKF_REGS_VALID
                                          : s->flags);
            if (batched != 1) {
                CS__TRACE_SET(s->last_run, t0);
                CS__TRACE_SET(s->steps, s->steps + 1);
                CS__TRACE_SET(s->run_ticks, s->run_ticks + (t1 - t0));
            }
            if (have_regs) {
                CS__TRACE_SET(s->sp, (uint64_t)sp);
                CS__TRACE_SET(s->fp, (uint64_t)fp);
                CS__TRACE_SET(s->ip, (uint64_t)ip);
            }
            cs__tr_task_end(s);
        }
        if (!have_regs || cs__trace_predict == 0)
            loop->tr_prev = self;
    } else if (self) {
        loop->tr_hot = 0;
        if (!batched && cs__trace_life_kind(self, to))
            loop->tr_life_hot = t1 - t0 < loop->tr_hot_ticks;
        cs__trace_parked(loop, self, t0, t1, batched);
        if (self->state != CS__DONE) {
            if (have_regs)
                cs__tr_task_park(self->tr_ref, sp, fp, ip);
            if (!have_regs || cs__trace_predict == 0)
                loop->tr_prev = self;
        }
    }
    __atomic_store_n(&r->hdr->step_task, to ? to->id : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->switches, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->step_start, to ? t1 : 0, __ATOMIC_RELEASE);
    if (to && (s = cs__tr_slot(to->tr_ref)) != NULL)
        cs__trace_slot_word(s, CS_TASK_RUNNING, CS_WAIT_NONE,
                            s->flags & ~CS_TASKF_REGS_VALID);
}

/* trace.c: the switch of a step that joins a lifetime batch (above),
 * from cs__jump_traced, by a tail call. */
void cs__trace_jump_life(cs__loop *loop, cs_task *self, cs_task *to,
                         cs__ctx *from, cs__ctx *dst);

#endif
