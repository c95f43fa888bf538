/*
 * trace.c - wiring libtrace into the runtime (see trace.h for what is
 * recorded where).  The per-switch part is cs__trace_parked() and the
 * inline cs__trace_switch() in trace_batch.h; everything else here runs at
 * cs_run, at spawn, on a wake or on a fatal signal.
 */
#include "trace_batch.h"
#include "fatal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cs__trace_rt_disabled;
int cs__trace_predict;

static uint64_t cs__next_obj_id = 1;
static uint64_t cs__next_coro_id = 1;

uint64_t cs__obj_id_next(void)
{
    return __atomic_fetch_add(&cs__next_obj_id, 1, __ATOMIC_RELAXED);
}

/* ---- process start and the crash record ---------------------------------- */

static pthread_mutex_t cs__trace_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t cs__trace_pid; /* process that last tried to start */
static void cs__trace_flush(void);

/* The fatal handler's third step (fatal.c), run once per process: the
 * open batch's records and a warning record in the crashing thread's
 * ring, then the flight recorder (COSCOPE_FLIGHT).  Async-signal-safe
 * (ring writes only). */
void cs__trace_crash(void)
{
    cs__loop *loop = cs__tls_loop;
    const char *path = cs__tr_flight_path();

    if (loop && loop->tr_ring)
        cs__trace_flush(); /* ring writes only: async-signal-safe */
    if (!path)
        return;
    if (loop && loop->tr_ring)
        cs__tr_warning(loop->tr_ring, loop->current ? loop->current->id : 0,
                       CS_WARN_CRASH, 0);
    cs__tr_flight_dump(path, CS_SEG_F_FLIGHT | CS_SEG_F_CRASH);
}

void cs__trace_process_start(void)
{
    pid_t pid = getpid();
    int r;

    if (__atomic_load_n(&cs__trace_pid, __ATOMIC_ACQUIRE) == pid)
        return;
    pthread_mutex_lock(&cs__trace_mu);
    if (cs__trace_pid != pid) {
        r = cs__tr_start();
        cs__tr_stop_hook = cs__trace_flush;
        if (r < 0)
            fprintf(stderr,
                    "coscope: tracing off: cannot create %s/%s%d: %s\n",
                    CS_SEG_DIR, CS_SEG_PREFIX, (int)pid, strerror(-r));
        __atomic_store_n(&cs__trace_pid, pid, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&cs__trace_mu);
}

/* ---- loops -------------------------------------------------------------- */

void cs__trace_loop_start(cs__loop *loop)
{
    cs__trace_cache *c;

    if (cs__trace_rt_disabled || !cs__tr_active())
        return;
    if (!(c = calloc(1, sizeof(*c))))
        return;
    if (!(loop->tr_ring = cs__tr_ring_acquire())) {
        free(c);
        return;
    }
    loop->tr_cache = c;
    loop->tr_t0 = cs__tr_now();
    loop->tr_hot = 0;
    loop->tr_nbt = 0;
    loop->tr_life_hot = 0;
    loop->tr_nlife = 0;
    loop->tr_life_est = 1;
    loop->tr_slow = 0;
    loop->tr_hdr = loop->tr_ring->hdr;
    cs__warn_box_open(loop);
    /* COSCOPE_BATCH_NS: what a short yield step is (trace_batch.h) */
    const char *v = getenv("COSCOPE_BATCH_NS");
    long ns = v && *v ? strtol(v, NULL, 10) : 1000;
    cs_seg_header *h = cs__tr_header();
    loop->tr_hot_ticks =
        ns <= 0 || !h ? 0 : (uint64_t)ns * (h->tick_hz / 1000) / 1000000 + 1;
}

void cs__trace_loop_stop(cs__loop *loop)
{
    if (!loop->tr_ring)
        return;
    cs__tr_slots_flush(&loop->tr_cache->slots);
    cs__warn_box_close(loop);
    cs__tr_ring_release(loop->tr_ring);
    loop->tr_ring = NULL;
    free(loop->tr_cache);
    loop->tr_cache = NULL;
}

/* ---- strings ------------------------------------------------------------ */

uint32_t cs__trace_site(cs__loop *loop, const char *file, int line)
{
    cs__trace_cache *c = loop->tr_cache;
    char buf[CS_STRING_MAX + 16];
    size_t n;
    unsigned h;

    if (!file || !c)
        return 0;
    h = (unsigned)(((uintptr_t)file >> 3) ^ ((unsigned)line * 2654435761u));
    h = (h ^ (h >> 16)) % CS__TRACE_CACHE;
    if (c->site[h].id && c->site[h].file == file && c->site[h].line == line)
        return c->site[h].id;
    n = strnlen(file, CS_STRING_MAX - 12);
    memcpy(buf, file, n);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ":%d", line);
    uint32_t id = cs__tr_intern_n(buf, n);
    if (id) {
        c->site[h].file = file;
        c->site[h].line = line;
        c->site[h].id = id;
    }
    return id;
}

/* String id of "@0x<ip>", a return address into the code that made a
 * task without a file:line (plain cs_spawn): readers name it.  Cached
 * with the sites, keyed by (ip, line -1). */
static uint32_t cs__trace_site_ip(cs__loop *loop, void *ip)
{
    cs__trace_cache *c = loop->tr_cache;
    const char *key = (const char *)ip;
    char buf[32];
    unsigned h;

    if (!ip || !c)
        return 0;
    h = (unsigned)(((uintptr_t)key >> 3) ^ 0xffffffffu);
    h = (h ^ (h >> 16)) % CS__TRACE_CACHE;
    if (c->site[h].id && c->site[h].file == key && c->site[h].line == -1)
        return c->site[h].id;
    int n = snprintf(buf, sizeof(buf), "@0x%llx",
                     (unsigned long long)(uintptr_t)ip);
    uint32_t id = cs__tr_intern_n(buf, (size_t)n);
    if (id) {
        c->site[h].file = key;
        c->site[h].line = -1;
        c->site[h].id = id;
    }
    return id;
}

static uint32_t cs__trace_name(cs__loop *loop, const char *name)
{
    cs__trace_cache *c = loop->tr_cache;
    size_t n = strnlen(name, sizeof(c->name[0].name));
    uint32_t h = 2166136261u, id;

    if (n == sizeof(c->name[0].name)) /* long: not cached */
        return cs__tr_intern(name);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    h %= CS__TRACE_CACHE;
    if (c->name[h].id && memcmp(c->name[h].name, name, n + 1) == 0)
        return c->name[h].id;
    id = cs__tr_intern_n(name, n);
    if (id) {
        memcpy(c->name[h].name, name, n + 1);
        c->name[h].id = id;
    }
    return id;
}

/* ---- tasks -------------------------------------------------------------- */

/* Whether two NUL-padded 32-byte names are equal (a task's name[] is:
 * its struct is zeroed before the name is copied in). */
static inline uint64_t cs__ld8(const char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}
static inline int cs__trace_name_eq(const char *a, const char *b)
{
    return ((cs__ld8(a) ^ cs__ld8(b)) | (cs__ld8(a + 8) ^ cs__ld8(b + 8)) |
            (cs__ld8(a + 16) ^ cs__ld8(b + 16)) |
            (cs__ld8(a + 24) ^ cs__ld8(b + 24))) == 0;
}

/* t's name id: the last short name again costs a 32-byte compare. */
static uint32_t cs__trace_task_name(cs__loop *loop, const cs_task *t)
{
    cs__trace_cache *c = loop->tr_cache;
    uint32_t id;

    _Static_assert(sizeof(t->name) == sizeof(c->last_name), "name size");
    if (t->long_name)
        return cs__trace_name(loop, t->long_name);
    if (c->last_name_id && cs__trace_name_eq(t->name, c->last_name))
        return c->last_name_id;
    if ((id = cs__trace_name(loop, t->name)) != 0) {
        memcpy(c->last_name, t->name, sizeof(c->last_name));
        c->last_name_id = id;
    }
    return id;
}

void cs__trace_task_new(cs__loop *loop, cs_task *t)
{
    cs__tr_ring *r = loop->tr_ring;
    uint64_t now = loop->tr_t0;
    uint32_t site = t->file ? cs__trace_site(loop, t->file, t->line)
                            : cs__trace_site_ip(loop, loop->spawn_ip);
    uint32_t name = cs__trace_task_name(loop, t);
    cs_task *parent = loop->current;

    t->tr_ref = cs__tr_task_alloc_in(&loop->tr_cache->slots, t->id, name, site,
                                     parent ? parent->id : 0, r->index, now);
    uint64_t i = cs__tr_claim(r, 2);
    cs__tr_put(r, i, now, t->id, CS_REC_INFO(CS_EV_TASK_CREATED, 0, 0), site);
    cs__tr_put(r, i + 1, now, t->id, CS_REC_INFO(CS_EV_TASK_NAME, 0, 0), name);
}

void cs__trace_task_flag(cs_task *t, unsigned flag)
{
    cs_task_slot *s = cs__tr_task_begin(t->tr_ref);

    if (!s)
        return;
    CS__TRACE_SET(s->flags, (uint16_t)(s->flags | flag));
    cs__tr_task_end(s);
    if (flag == CS_TASKF_CANCEL_REQUESTED && t->loop->tr_ring &&
        t->loop == cs__tls_loop)
        cs__tr_emit(t->loop->tr_ring, t->loop->tr_t0, t->id,
                    CS_REC_INFO(CS_EV_CANCEL, 0, 0), 0);
}

void cs__trace_task_failed(cs__loop *loop, cs_task *t)
{
    cs_task_slot *s;

    if (loop->tr_ring)
        cs__tr_emit(loop->tr_ring, loop->tr_t0, t->id,
                    CS_REC_INFO(CS_EV_TASK_RAISED, 0, 0), (uint32_t)t->status);
    if (!(s = cs__tr_task_begin(t->tr_ref)))
        return;
    CS__TRACE_SET(s->state, (uint8_t)CS_TASK_RAISED);
    CS__TRACE_SET(s->wait, (uint8_t)CS_WAIT_NONE);
    cs__tr_task_end(s);
}

void cs__trace_task_awaited(cs_task *const *tasks, size_t n,
                            const cs_task *self)
{
    for (size_t i = 0; i < n; i++) {
        cs_task_slot *s = cs__tr_task_begin(tasks[i]->tr_ref);
        if (s) {
            CS__TRACE_SET(s->awaiter, self->id);
            cs__tr_task_end(s);
        }
    }
}

/* What p waits on, as the task slot and CS_EV_WAIT name it. */
static void cs__trace_target(cs_task *p, uint64_t *target, uint64_t *aux)
{
    uint64_t deadline = p->heap_index >= 0 ? (uint64_t)p->deadline : 0;

    switch (p->wait.reason) {
    case CS_WAIT_SLEEP:
        *target = deadline;
        break;
    case CS_WAIT_TASK: {
        cs_task *a = p->wait.obj;
        cs_task_slot *s;
        *target = a->id;
        if ((s = cs__tr_task_begin(a->tr_ref)) != NULL) {
            CS__TRACE_SET(s->awaiter, p->id);
            cs__tr_task_end(s);
        }
        break;
    }
    case CS_WAIT_LOCK: {
        cs_task *h = cs__lock_holder(p->wait.obj);
        *target = ((const cs__obj *)p->wait.obj)->id;
        *aux = h ? h->id : 0;
        break;
    }
    case CS_WAIT_EVENT:
    case CS_WAIT_SEMAPHORE:
    case CS_WAIT_QUEUE_PUT:
    case CS_WAIT_QUEUE_GET:
        *target = p->wait.obj ? ((const cs__obj *)p->wait.obj)->id : 0;
        break;
    case CS_WAIT_FD_READ:
    case CS_WAIT_FD_WRITE:
        *target = (uint64_t)(int64_t)p->wait.fd;
        *aux = deadline;
        break;
    default:
        break;
    }
}

int cs__trace_batch_join(cs__loop *loop, cs_task *t, cs_task *to)
{
    cs_task_slot *s;

    if (loop->tr_nbt == CS__TRACE_BATCH_TASKS)
        return 0;
    loop->tr_bt[loop->tr_nbt++] = t;
    /* its registers are not recorded while it is batched: say so */
    if ((s = cs__tr_slot(t->tr_ref)) != NULL)
        cs__trace_slot_word(s, CS_TASK_READY, CS_WAIT_YIELD,
                            s->flags & ~CS_TASKF_REGS_VALID);
    t->tr_bk = 1;
    cs__trace_untimed_switch(loop->tr_hdr, to);
    return 1;
}

/* One task's part of a batch: k of its n steps, of dur ticks in all. */
static void cs__trace_batch_task(cs__loop *loop, cs_task *t, uint64_t k,
                                 uint64_t n, uint64_t dur, uint64_t t1)
{
    uint64_t share = dur / n * k + dur % n * k / n;
    cs_task_slot *s;

    cs__tr_emit(loop->tr_ring, t1, t->id,
                CS_REC_INFO(CS_EV_YIELDS, CS_WAIT_YIELD, 0),
                k > 0xffffffffu ? 0xffffffffu : (uint32_t)k);
    if (!(s = cs__tr_task_begin(t->tr_ref)))
        return;
    CS__TRACE_SET(s->last_run, t1 - share);
    CS__TRACE_SET(s->steps, s->steps + k);
    CS__TRACE_SET(s->run_ticks, s->run_ticks + share);
    cs__tr_task_end(s);
}

uint64_t cs__trace_batch_end(cs__loop *loop, cs_task *self, int self_yields,
                             uint64_t t1)
{
    uint64_t dur = t1 - loop->tr_t0, n = 0;
    uint32_t flags = 0, arg;
    int self_listed = 0;

    if (self_yields && self)
        self->tr_bk++; /* its step ending now is the batch's last */
    for (uint32_t i = 0; i < loop->tr_nbt; i++) {
        n += loop->tr_bt[i]->tr_bk;
        self_listed |= loop->tr_bt[i] == self;
    }
    if (self && !self_listed) /* the list was full, or ... */
        n += self_yields ? self->tr_bk : 0;
    if (self && !self_yields) /* ... its last step was not a yield */
        n++;
    if (n == 0)
        n = 1;
    arg = cs__tr_dur_arg(dur, &flags);
    cs__tr_emit(loop->tr_ring, t1, n, CS_REC_INFO(CS_EV_BATCH, 0, flags), arg);
    for (uint32_t i = 0; i < loop->tr_nbt; i++) {
        cs_task *t = loop->tr_bt[i];
        if (t->tr_bk)
            cs__trace_batch_task(loop, t, t->tr_bk, n, dur, t1);
        t->tr_bk = 0;
    }
    if (self_yields && self && !self_listed) /* the list was full */
        cs__trace_batch_task(loop, self, self->tr_bk, n, dur, t1);
    if (self)
        self->tr_bk = 0;
    loop->tr_nbt = 0;
    loop->tr_hot = dur < loop->tr_hot_ticks * n;
    return n ? dur / n : 0;
}

/* How ended task p ended: its stop reason, slot state and end record. */
static unsigned cs__trace_end_kind(const cs_task *p, unsigned *state,
                                   unsigned *ev)
{
    if (!p->has_status || p->status == 0) {
        *state = CS_TASK_DONE, *ev = CS_EV_TASK_DONE;
        return CS_STOP_DONE;
    }
    if (p->status == CS_ECANCELLED) {
        *state = CS_TASK_CANCELLED, *ev = CS_EV_TASK_CANCELLED;
        return CS_STOP_CANCELLED;
    }
    *state = CS_TASK_RAISED, *ev = CS_EV_TASK_RAISED;
    return CS_STOP_RAISED;
}

/* ---- task-lifetime batches (trace_batch.h) ------------------------------------ */

static CS__HOT_INLINE void cs__trace_life_in(cs__loop *loop, cs_task *self,
                                             cs_task *to, int have_regs,
                                             uintptr_t sp, uintptr_t fp,
                                             uintptr_t ip)
{
    cs__trace_life *e = &loop->tr_cache->life[loop->tr_nlife++];
    cs_task *p = loop->tr_prev, *a = NULL;
    unsigned state = CS_TASK_WAITING, wait = CS_WAIT_TASK, ev;
    cs_task_slot *s;

    loop->tr_prev = NULL;
    if (p && p != to)
        cs__trace_regs(p);
    e->task = self->id;
    if (self->state == CS__WAITING) { /* on task a: a's awaiter is self */
        a = self->wait.obj;
        e->target = a->id;
        e->reason = CS_WAIT_TASK;
    } else {
        e->target = 0;
        e->reason = (uint8_t)cs__trace_end_kind(self, &state, &ev);
        e->status = self->status;
        wait = CS_WAIT_NONE;
    }
    if ((s = cs__tr_task_begin(self->tr_ref)) != NULL) {
        cs__trace_slot_word(s, state, wait,
                            a && have_regs ? s->flags | CS_TASKF_REGS_VALID
                                           : s->flags);
        CS__TRACE_SET(s->wait_target, e->target);
        CS__TRACE_SET(s->wait_aux, (uint64_t)0);
        CS__TRACE_SET(s->last_run, loop->tr_t0); /* the batch's start */
        CS__TRACE_SET(s->steps, s->steps + 1);
        CS__TRACE_SET(s->run_ticks, s->run_ticks + loop->tr_life_est);
        if (a && have_regs) {
            CS__TRACE_SET(s->sp, (uint64_t)sp);
            CS__TRACE_SET(s->fp, (uint64_t)fp);
            CS__TRACE_SET(s->ip, (uint64_t)ip);
        }
        cs__tr_task_end(s);
    }
    if (a && (!have_regs || cs__trace_predict == 0))
        loop->tr_prev = self;
    cs__trace_untimed_switch(loop->tr_hdr, to);
    if ((s = cs__tr_slot(to->tr_ref)) == NULL)
        return;
    if (a == to) { /* the awaited task runs now: one section for both */
        s = cs__tr_task_begin(to->tr_ref);
        CS__TRACE_SET(s->awaiter, self->id);
        cs__trace_slot_word(s, CS_TASK_RUNNING, CS_WAIT_NONE,
                            s->flags & ~CS_TASKF_REGS_VALID);
        cs__tr_task_end(s);
        return;
    }
    cs__trace_slot_word(s, CS_TASK_RUNNING, CS_WAIT_NONE,
                        s->flags & ~CS_TASKF_REGS_VALID);
    if (a && (s = cs__tr_task_begin(a->tr_ref)) != NULL) {
        CS__TRACE_SET(s->awaiter, self->id);
        cs__tr_task_end(s);
    }
}

CS_EXTERN void cs_agent_step_slow(void)
{
    cs__loop *loop = cs__tls_loop;

    if (loop && loop->tr_ring)
        loop->tr_slow = 1;
}

void cs__trace_life_step(cs__loop *loop, cs_task *self, cs_task *to,
                         int have_regs, uintptr_t sp, uintptr_t fp,
                         uintptr_t ip)
{
    cs__trace_life_in(loop, self, to, have_regs, sp, fp, ip);
}

#ifdef CS__TAIL_SWITCH
/* cs__jump_traced's way for a step that joins a lifetime batch: the
 * same tail call to cs__switch, so the parked frame and its predicted
 * registers are the same (switch.h), with none of the timed path. */
__attribute__((noinline)) void cs__trace_jump_life(cs__loop *loop,
                                                   cs_task *self, cs_task *to,
                                                   cs__ctx *from, cs__ctx *dst)
{
    uintptr_t sp = 0, fp = 0, ip = 0;
    int have = self->state == CS__WAITING && cs__trace_predict >= 0 &&
               cs__ctx_regs_predict(__builtin_frame_address(0), &sp, &fp,
                                    &ip); /* an ended task has none */

    cs__trace_life_in(loop, self, to, have, sp, fp, ip);
    cs__switch(from, dst);
}
#endif

uint64_t cs__trace_life_end(cs__loop *loop, uint64_t t1, int closing)
{
    cs__tr_ring *r = loop->tr_ring;
    const cs__trace_life *e = loop->tr_cache->life;
    uint32_t n = loop->tr_nlife + (closing ? 1 : 0);
    uint64_t dur = t1 - loop->tr_t0, q = dur / n;
    /* the step ending now was found slow: the kept ones were short, each
     * as long as the last batch's, and it takes the rest */
    if (loop->tr_slow && closing && loop->tr_life_est * (n - 1) < dur)
        q = loop->tr_life_est;
    uint32_t flags = 0, arg = cs__tr_dur_arg(dur, &flags);
    uint32_t qflags = CS_RECF_BATCHED, qarg = cs__tr_dur_arg(q, &qflags);
    /* the batch record, then two per kept step */
    uint64_t i = cs__tr_claim(r, 1 + 2 * (uint64_t)loop->tr_nlife);

    cs__tr_put(r, i++, t1, n, CS_REC_INFO(CS_EV_BATCH, 0, flags), arg);
    for (uint32_t k = 0; k < loop->tr_nlife; k++, e++) {
        uint32_t step = CS_REC_INFO(CS_EV_STEP, e->reason, qflags);
        if (e->reason == CS_WAIT_TASK) {
            cs__tr_put(r, i++, t1, e->target,
                       CS_REC_INFO(CS_EV_WAIT, CS_WAIT_TASK, 0), 0);
            cs__tr_put(r, i++, t1, e->task, step, qarg);
            continue;
        }
        cs__tr_put(r, i++, t1, e->task, step, qarg);
        if (e->reason == CS_STOP_DONE)
            cs__tr_put(r, i++, t1, e->task, CS_REC_INFO(CS_EV_TASK_DONE, 0, 0),
                       0);
        else if (e->reason == CS_STOP_CANCELLED)
            cs__tr_put(r, i++, t1, e->task,
                       CS_REC_INFO(CS_EV_TASK_CANCELLED, 0, 0), 0);
        else
            cs__tr_put(r, i++, t1, e->task,
                       CS_REC_INFO(CS_EV_TASK_RAISED, 0, 0),
                       (uint32_t)e->status);
    }
    loop->tr_nlife = 0;
    loop->tr_life_est = q ? q : 1;
    loop->tr_life_hot = !loop->tr_slow && q < loop->tr_hot_ticks;
    return dur - q * (n - 1);
}

/* Writes what the calling thread's loop keeps in an open batch, now: the
 * process is ending (exit, a fatal signal), and readers of what it leaves
 * must see those steps.  The running task's step is not one of them. */
static void cs__trace_flush(void)
{
    cs__loop *loop = cs__tls_loop;
    uint64_t now;

    if (!loop || !loop->tr_ring || (!loop->tr_nlife && !loop->tr_nbt))
        return;
    now = cs__tr_now();
    if (loop->tr_nlife)
        cs__trace_life_end(loop, now, 0);
    if (loop->tr_nbt)
        cs__trace_batch_end(loop, NULL, 0, now);
    loop->tr_t0 = now;
}

void cs__trace_parked(cs__loop *loop, cs_task *p, uint64_t t0, uint64_t t1,
                      uint32_t batched)
{
    cs__tr_ring *r = loop->tr_ring;
    unsigned state, reason, ended = 0;
    uint64_t target = 0, aux = 0;
    uint32_t flags = 0, arg;
    cs_task_slot *s;

    switch (p->state) {
    case CS__WAITING:
        state = CS_TASK_WAITING;
        reason = p->wait.reason;
        cs__trace_target(p, &target, &aux);
        cs__tr_emit(r, t1, target, CS_REC_INFO(CS_EV_WAIT, reason, 0),
                    (uint32_t)aux);
        break;
    case CS__DONE:
        reason = cs__trace_end_kind(p, &state, &ended);
        break;
    default: /* CS__READY: yielded */
        state = CS_TASK_READY;
        reason = CS_WAIT_YIELD;
        break;
    }
    arg = cs__tr_dur_arg(t1 - t0, &flags);
    if (batched)
        flags |= CS_RECF_BATCHED;
    cs__tr_emit(r, t1, p->id, CS_REC_INFO(CS_EV_STEP, reason, flags), arg);
    if (ended)
        cs__tr_emit(r, t1, p->id, CS_REC_INFO(ended, 0, 0),
                    ended == CS_EV_TASK_RAISED ? (uint32_t)p->status : 0);
    if (!(s = cs__tr_task_begin(p->tr_ref)))
        return;
    CS__TRACE_SET(s->state, (uint8_t)state);
    CS__TRACE_SET(s->wait, (uint8_t)(ended ? CS_WAIT_NONE : reason));
    CS__TRACE_SET(s->wait_target, target);
    CS__TRACE_SET(s->wait_aux, aux);
    CS__TRACE_SET(s->last_run, t0); /* batched: its share, t0 = t1 - share */
    CS__TRACE_SET(s->steps, s->steps + 1);
    CS__TRACE_SET(s->run_ticks, s->run_ticks + (t1 - t0));
    cs__tr_task_end(s);
}

/* ---- coroutines --------------------------------------------------------- */

uint64_t cs__trace_coro_new(const char *file, int line)
{
    cs__loop *loop = cs__tls_loop;
    uint64_t id = __atomic_fetch_add(&cs__next_coro_id, 1, __ATOMIC_RELAXED);

    if (loop && loop->tr_ring)
        cs__tr_emit(loop->tr_ring, loop->tr_t0, id,
                    CS_REC_INFO(CS_EV_CORO_CREATED, 0, 0),
                    cs__trace_site(loop, file, line));
    return id;
}

void cs__trace_coro_dropped(uint64_t id, int never_ran)
{
    cs__loop *loop = cs__tls_loop;

    if (loop && loop->tr_ring)
        cs__tr_emit(loop->tr_ring, loop->tr_t0, id,
                    CS_REC_INFO(CS_EV_CORO_DROPPED, never_ran ? 1 : 0, 0), 0);
}
