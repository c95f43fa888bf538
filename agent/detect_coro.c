/*
 * detect_coro.c - "coroutine 'NAME' was never awaited" (asyncio's
 * RuntimeWarning): a cs_coro dropped without running, or still unstarted
 * when the cs_run of its thread ends.  The creation stack is captured raw
 * (unw_backtrace) into the coroutine's agent slot when it is made, freed
 * when it starts, and symbolised only if it is reported.
 */
#include "agent.h"

#include <stdlib.h>

void cs__ag_coro_created(cs_coro *c, const char *name, const char *file,
                         int line)
{
    cs__ag_bt *bt;

    (void)name, (void)file, (void)line;
    if (!cs__ag_reporting(CS_WARN_NEVER_AWAITED))
        return;
    if ((bt = malloc(sizeof(*bt))) == NULL)
        return; /* reported without its stack */
    cs__ag_bt_here(bt, 1);
    *cs_agent_coro_slot(c) = bt;
}

void cs__ag_coro_started(cs_coro *c)
{
    void **slot = cs_agent_coro_slot(c);
    free(*slot);
    *slot = NULL;
}

struct cs__ag_unstarted {
    cs_coro *c;
    int leaked;
    cs__ag_bt *bt; /* creation stack, or NULL */
};

static void cs__ag_unstarted_report(void *arg)
{
    struct cs__ag_unstarted *u = arg;
    const char *file = NULL, *how;
    int line = 0;
    const char *name = cs_agent_coro_name(u->c, &file, &line);

    if (!cs__ag_report_begin(CS_WARN_NEVER_AWAITED,
                             "coroutine '%s' was never awaited", name))
        return;
    how = u->leaked ? "still unstarted when its loop ended"
                    : "dropped with cs_coro_drop()";
    if (file)
        cs__ag_report_line("created at %s:%d, %s", file, line, how);
    else
        cs__ag_report_line("%s", how);
    if (u->bt) {
        cs__ag_bt_trim_self(u->bt);
        cs__ag_report_line("created here:");
        cs__ag_report_stack(u->bt);
    }
    cs__ag_report_end();
}

void cs__ag_coro_unstarted(cs_coro *c, int leaked)
{
    void **slot = cs_agent_coro_slot(c);
    struct cs__ag_unstarted u = {c, leaked, *slot};

    *slot = NULL;
    if (cs__ag_reporting(CS_WARN_NEVER_AWAITED)) {
        cs_task *cur = cs_current_task();
        cs__ag_report_trace(CS_WARN_NEVER_AWAITED, cur ? cs_task_id(cur) : 0,
                            u.bt);
        cs__ag_report_offstack(CS_WARN_NEVER_AWAITED, cs__ag_unstarted_report,
                               &u);
    }
    free(u.bt);
}
