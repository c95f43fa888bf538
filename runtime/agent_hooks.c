/*
 * agent_hooks.c - the runtime's side of coscope/agent.h: the installed
 * hooks, task snapshots for reports, and the per-thread list of coroutine
 * objects not yet started (kept only while an agent is installed), which
 * is how "coroutine was never awaited" is found when a loop ends.
 */
#include "internal.h"

#include <string.h>

const cs_agent_hooks *cs__agent;

/* A static link (libcoscope.a) takes an archive member only for a symbol
 * something needs, and nothing the program calls needs the agent: this
 * reference is what brings agent/agent.c (whose constructor installs the
 * hooks) into every program that uses the runtime, as libcoscope.so has
 * it.  Defined by the agent; a build without one defines it to 0. */
extern const char cs__agent_linked;
__attribute__((used)) static const char *const cs__agent_keep =
    &cs__agent_linked;

/* Coroutines created on this thread and not yet started or dropped. */
static __thread cs__link cs__unstarted;

CS_EXTERN void cs_agent_set_hooks(const cs_agent_hooks *h)
{
    __atomic_store_n(&cs__agent, h, __ATOMIC_RELEASE);
}

bool cs__task_failed(const cs_task *t)
{
    return t->has_status && t->status != 0 && t->status != CS_ECANCELLED;
}

void cs__agent_coro_created(cs_coro *c)
{
    if (!cs__agent)
        return;
    if (!cs__unstarted.next)
        cs__list_init(&cs__unstarted);
    cs__list_push(&cs__unstarted, &c->live);
    CS__HOOK(coro_created, c, cs__coro_name(c), c->file, c->line);
}

void cs__agent_coro_forget(cs_coro *c)
{
    cs__list_del(&c->live); /* a self-linked node when never listed */
}

/* At the end of cs_run: coroutines still unstarted on this thread, and
 * failed tasks nobody awaited. */
void cs__agent_loop_end(cs__loop *loop, bool outermost)
{
    if (!cs__agent)
        return;
    for (cs__link *l = loop->all.next; l != &loop->all; l = l->next) {
        cs_task *t = cs__container_of(l, cs_task, all);
        /* main's error is what cs_run returns: it is retrieved */
        if (t != loop->main && t->state == CS__DONE && !t->detached &&
            cs__task_failed(t))
            CS__HOOK(task_unretrieved, t);
    }
    if (!outermost || !cs__unstarted.next)
        return;
    while (!cs__list_empty(&cs__unstarted)) {
        cs_coro *c = cs__container_of(cs__unstarted.next, cs_coro, live);
        cs__list_del(&c->live); /* reported once; the object stays valid */
        CS__HOOK(coro_unstarted, c, 1);
    }
}

CS_EXTERN int cs_agent_task_get(const cs_task *t, cs_agent_task_info *info)
{
    if (!t || !info)
        return CS_EINVAL;
    memset(info, 0, sizeof(*info));
    info->id = t->id;
    info->name = cs_task_name(t);
    info->file = t->file;
    info->line = t->line;
    info->state = t->state; /* CS__* are CS_AGENT_* (internal.h, agent.h) */
    info->wait_fd = -1;
    info->deadline_ns = t->heap_index >= 0 ? t->deadline : -1;
    if (t->state == CS__WAITING) {
        info->wait_reason = t->wait.reason;
        info->wait_obj = t->wait.obj;
        if (t->wait.reason == CS_WAIT_TASK) {
            info->holder = t->wait.obj;
            info->wait_task = info->holder->id;
        }
        if (t->wait.reason == CS_WAIT_LOCK) {
            info->holder = cs__lock_holder(t->wait.obj);
            info->lock_holder = info->holder ? info->holder->id : 0;
        }
        if (t->wait.reason == CS_WAIT_FD_READ ||
            t->wait.reason == CS_WAIT_FD_WRITE)
            info->wait_fd = t->wait.fd;
    }
    info->status = t->has_status ? t->status : 0;
    info->errmsg = t->errmsg;
    info->detached = t->detached;
    info->awaited = t->awaiter != NULL;
    /* a task blocking right now (task_blocking) is WAITING but still on
     * its stack: its saved registers are stale until it switches */
    if (t->state != CS__RUNNING && t->state != CS__DONE && t->ctx.sp &&
        t->loop->current != t)
        cs__ctx_regs(&t->ctx, &info->sp, &info->fp, &info->ip);
    return 0;
}

CS_EXTERN const cs_task *cs_agent_task_edge(const cs_task *t)
{
    if (!t || t->state != CS__WAITING)
        return NULL;
    if (t->wait.reason == CS_WAIT_TASK)
        return t->wait.obj;
    if (t->wait.reason == CS_WAIT_LOCK)
        return cs__lock_holder(t->wait.obj);
    return NULL;
}

CS_EXTERN const char *cs_agent_coro_name(const cs_coro *c, const char **file,
                                         int *line)
{
    if (!c)
        return NULL;
    if (file)
        *file = c->file;
    if (line)
        *line = c->line;
    return cs__coro_name(c);
}

CS_EXTERN void **cs_agent_coro_slot(cs_coro *c)
{
    return c ? &c->agent : NULL;
}

CS_EXTERN void **cs_agent_task_slot(cs_task *t)
{
    return t ? &t->agent : NULL;
}

CS_EXTERN void cs_agent_trace_warning(int kind, uint64_t task_id,
                                      const uintptr_t *ips, size_t n)
{
    cs__loop *loop = cs__tls_loop;

    if (!loop || !loop->tr_ring || kind <= 0 || kind >= CS_WARN_COUNT)
        return;
    cs__tr_warning(loop->tr_ring, task_id, (unsigned)kind,
                   cs__warn_stack_put(ips, n));
}
