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
static __thread struct cs__ag_raised {
    uint64_t id;
    cs__ag_bt bt;
} cs__ag_raised[CS__RAISED_RING];
static __thread unsigned cs__ag_raised_next;

void cs__ag_task_raised(cs_task *t, int code, const char *msg)
{
    struct cs__ag_raised *r;

    (void)code, (void)msg;
    if (!cs__ag_reporting(CS_WARN_EXCEPTION))
        return;
    r = &cs__ag_raised[cs__ag_raised_next++ % CS__RAISED_RING];
    r->id = cs_task_id(t);
    cs__ag_bt_here(&r->bt, 1);
}

static const cs__ag_bt *cs__ag_raised_find(uint64_t id)
{
    for (int i = 0; i < CS__RAISED_RING; i++)
        if (cs__ag_raised[i].id == id)
            return &cs__ag_raised[i].bt;
    return NULL;
}

static void cs__ag_report_created(const cs_agent_task_info *i)
{
    char label[160];

    cs__ag_task_label(i, label, sizeof(label));
    if (i->file)
        cs__ag_report_line("%s, created at %s:%d", label, i->file, i->line);
    else
        cs__ag_report_line("%s", label);
}

struct cs__ag_task_report {
    cs_agent_task_info i;
    bool have_bt;
    cs__ag_bt bt;
};

static void cs__ag_unretrieved_report(void *arg)
{
    struct cs__ag_task_report *r = arg;

    if (!cs__ag_report_begin(CS_WARN_EXCEPTION,
                             "Task exception was never retrieved"))
        return;
    cs__ag_report_created(&r->i);
    cs__ag_report_line("failed with %s: %s (%s)", cs_err_name(r->i.status),
                       r->i.errmsg ? r->i.errmsg : cs_strerror(r->i.status),
                       r->i.detached
                           ? "detached, so nobody can await it"
                           : "nobody awaited it before its loop ended");
    if (r->have_bt) {
        cs__ag_bt_trim_self(&r->bt);
        cs__ag_report_line("raised here:");
        cs__ag_report_stack(&r->bt);
    }
    cs__ag_report_end();
}

void cs__ag_task_unretrieved(cs_task *t)
{
    struct cs__ag_task_report r;
    const cs__ag_bt *raised;

    if (!cs__ag_reporting(CS_WARN_EXCEPTION) ||
        cs_agent_task_get(t, &r.i) != 0)
        return;
    raised = cs__ag_raised_find(r.i.id);
    r.have_bt = raised != NULL;
    if (raised)
        r.bt = *raised;
    cs__ag_report_trace(CS_WARN_EXCEPTION, r.i.id, raised ? &r.bt : NULL);
    cs__ag_report_offstack(CS_WARN_EXCEPTION, cs__ag_unretrieved_report, &r);
}

static void cs__ag_pending_report(void *arg)
{
    struct cs__ag_task_report *r = arg;
    char what[256];

    if (!cs__ag_report_begin(CS_WARN_PENDING, "Task was destroyed but it is "
                                              "pending!"))
        return;
    cs__ag_report_created(&r->i);
    cs__ag_report_line("neither awaited nor detached when the loop's main "
                       "ended; %s; it is cancelled now",
                       cs__ag_wait_text(&r->i, what, sizeof(what)));
    cs__ag_bt_parked(&r->bt, r->i.sp, r->i.fp, r->i.ip);
    cs__ag_bt_trim_self(&r->bt);
    cs__ag_report_line("suspended here:");
    cs__ag_report_stack(&r->bt);
    cs__ag_report_end();
}

void cs__ag_task_pending_at_exit(cs_task *t)
{
    struct cs__ag_task_report r;

    if (!cs__ag_reporting(CS_WARN_PENDING) || cs_agent_task_get(t, &r.i) != 0)
        return;
    cs__ag_report_trace(CS_WARN_PENDING, r.i.id, NULL);
    cs__ag_report_offstack(CS_WARN_PENDING, cs__ag_pending_report, &r);
}
