/*
 * detect_task.c - asyncio's two end-of-life warnings for tasks:
 *
 *   "Task exception was never retrieved": a task failed (cs_raise) and
 *   nobody will read its error, because it was detached or was not
 *   awaited when its loop ended.  The stack where cs_raise was called is
 *   captured in task_raised, on the raising task's own stack, into a small
 *   per-thread ring (most raised errors are retrieved, and the runtime has
 *   no hook for a task's end, so nothing per task must outlive the report).
 *
 *   "Task was destroyed but it is pending!": the loop ended while a task
 *   that nobody awaited or detached was still unfinished; its stack is
 *   read from the registers it was parked with.
 */
#include "agent.h"

#include <string.h>

#define CS__RAISED_RING 16

/* Recent raises on this thread, by task and id (ids are never reused). */
static __thread struct cs__raised {
    uint64_t id;
    cs__bt bt;
} cs__raised[CS__RAISED_RING];
static __thread unsigned cs__raised_next;

void cs__task_raised(cs_task *t, int code, const char *msg)
{
    struct cs__raised *r;

    (void)code, (void)msg;
    if (!cs__reporting(CS_WARN_EXCEPTION))
        return;
    r = &cs__raised[cs__raised_next++ % CS__RAISED_RING];
    r->id = cs_task_id(t);
    cs__bt_here(&r->bt, 1);
}

static const cs__bt *cs__raised_find(uint64_t id)
{
    for (int i = 0; i < CS__RAISED_RING; i++)
        if (cs__raised[i].id == id)
            return &cs__raised[i].bt;
    return NULL;
}

static void cs__report_created(const cs_agent_task_info *i)
{
    char label[160];

    cs__task_label(i, label, sizeof(label));
    if (i->file)
        cs__report_line("%s, created at %s:%d", label, i->file, i->line);
    else
        cs__report_line("%s", label);
}

struct cs__task_report {
    cs_agent_task_info i;
    bool have_bt;
    cs__bt bt;
};

static void cs__unretrieved_report(void *arg)
{
    struct cs__task_report *r = arg;

    if (!cs__report_begin(CS_WARN_EXCEPTION,
                          "Task exception was never retrieved"))
        return;
    cs__report_created(&r->i);
    cs__report_line("failed with %s: %s (%s)", cs_err_name(r->i.status),
                    r->i.errmsg ? r->i.errmsg : cs_strerror(r->i.status),
                    r->i.detached ? "detached, so nobody can await it"
                                  : "nobody awaited it before its loop ended");
    if (r->have_bt) {
        cs__bt_trim_self(&r->bt);
        cs__report_line("raised here:");
        cs__report_stack(&r->bt);
    }
    cs__report_end();
}

void cs__task_unretrieved(cs_task *t)
{
    struct cs__task_report r;
    const cs__bt *raised;

    if (!cs__reporting(CS_WARN_EXCEPTION) || cs_agent_task_get(t, &r.i) != 0)
        return;
    raised = cs__raised_find(r.i.id);
    r.have_bt = raised != NULL;
    if (raised)
        r.bt = *raised;
    cs__report_trace(CS_WARN_EXCEPTION, r.i.id, raised ? &r.bt : NULL);
    cs__report_offstack(CS_WARN_EXCEPTION, cs__unretrieved_report, &r);
}

static void cs__pending_report(void *arg)
{
    struct cs__task_report *r = arg;
    char what[256];

    if (!cs__report_begin(CS_WARN_PENDING, "Task was destroyed but it is "
                                           "pending!"))
        return;
    cs__report_created(&r->i);
    cs__report_line("neither awaited nor detached when the loop's main "
                    "ended; %s; it is cancelled now",
                    cs__wait_text(&r->i, what, sizeof(what)));
    cs__bt_parked(&r->bt, r->i.sp, r->i.fp, r->i.ip);
    cs__bt_trim_self(&r->bt);
    cs__report_line("suspended here:");
    cs__report_stack(&r->bt);
    cs__report_end();
}

void cs__task_pending_at_exit(cs_task *t)
{
    struct cs__task_report r;

    if (!cs__reporting(CS_WARN_PENDING) || cs_agent_task_get(t, &r.i) != 0)
        return;
    cs__report_trace(CS_WARN_PENDING, r.i.id, NULL);
    cs__report_offstack(CS_WARN_PENDING, cs__pending_report, &r);
}
