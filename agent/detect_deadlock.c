/*
 * detect_deadlock.c - "deadlock: ..." from the wait-for graph.
 *
 * Edges the runtime names (agent.h): a task awaiting a task, a task
 * waiting for a lock -> the lock's holder.  Each time a task is about to
 * block on one of them (task_blocking) the chain of holders/awaited tasks
 * is followed from it; coming back to it means the edge just added closed
 * a cycle, which is reported at once, naming every task and what it waits
 * on.  Each task of a reported cycle is marked in its agent slot, so no
 * cycle is reported twice.  Chains are short in practice; they are cut at
 * CS__CHAIN_MAX.  Timers, fds, events, semaphores and queues are no edges,
 * so waiting on them never looks like a cycle.
 *
 * When the whole loop is stuck (loop_stuck: every task waits and nothing -
 * timer, fd, thread - can wake one) the tasks not already explained by a
 * reported cycle are listed with what each waits on.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>

#define CS__CHAIN_MAX 64
#define CS__REPORTED ((void *)1) /* agent slot of a task in a reported cycle */

static bool cs__ag_reported(const cs_task *t)
{
    return *cs_agent_task_slot((cs_task *)t) == CS__REPORTED;
}

/* The task t waits on by an edge (lock holder or awaited task), or NULL. */
static const cs_task *cs__ag_next(const cs_task *t)
{
    return cs_agent_task_edge(t);
}

struct cs__ag_cycle {
    const cs_task *path[CS__CHAIN_MAX]; /* path[k] waits on path[k + 1] */
    int n;
    cs__ag_bt here; /* path[0]'s stack: it is running */
};

static void cs__ag_cycle_report(void *arg)
{
    struct cs__ag_cycle *c = arg;
    char head[1024], what[256], label[160];
    size_t len = 0;
    cs_agent_task_info i;

    /* "A waits for lock L held by B, which awaits A" */
    for (int k = 0; k < c->n && len < sizeof(head) - 1; k++) {
        cs_agent_task_get(c->path[k], &i);
        if (k == 0)
            cs__ag_task_label(&i, label, sizeof(label));
        len += (size_t)snprintf(head + len, sizeof(head) - len, "%s%s %s",
                                k ? ", which" : "", k ? "" : label,
                                cs__ag_wait_text(&i, what, sizeof(what)));
    }
    if (!cs__ag_report_begin(CS_WARN_DEADLOCK, "deadlock: %s", head))
        return;
    for (int k = 0; k < c->n; k++) {
        cs__ag_bt bt = c->here;
        cs_agent_task_get(c->path[k], &i);
        cs__ag_report_line("%s %s here:",
                           cs__ag_task_label(&i, label, sizeof(label)),
                           k == 0 ? "blocks" : "is blocked");
        if (k > 0)
            cs__ag_bt_parked(&bt, i.sp, i.fp, i.ip);
        cs__ag_bt_trim_self(&bt);
        cs__ag_report_stack(&bt);
    }
    cs__ag_report_end();
}

void cs__ag_task_blocking(cs_task *t)
{
    const cs_task *path[CS__CHAIN_MAX];
    int n = 0;

    if (!cs__ag_reporting(CS_WARN_DEADLOCK))
        return;
    for (const cs_task *cur = t; cur && n < CS__CHAIN_MAX;) {
        if (cs__ag_reported(cur))
            return; /* part of a cycle already reported */
        path[n++] = cur;
        cur = cs__ag_next(cur);
        if (cur == t) {
            struct cs__ag_cycle c = {.n = n};
            for (int k = 0; k < n; k++) {
                c.path[k] = path[k];
                *cs_agent_task_slot((cs_task *)path[k]) = CS__REPORTED;
            }
            cs__ag_bt_here(&c.here, 0);
            cs__ag_report_trace(CS_WARN_DEADLOCK, cs_task_id(t), &c.here);
            cs__ag_report_offstack(CS_WARN_DEADLOCK, cs__ag_cycle_report, &c);
            return;
        }
        for (int k = 1; k < n; k++)
            if (path[k] == cur)
                return; /* a cycle not through t: reported when it closed */
    }
}

/* True if t's chain of edges reaches a task of a reported cycle. */
static bool cs__ag_explained(const cs_task *t)
{

    for (int n = 0; t && n < CS__CHAIN_MAX; n++) {
        if (cs__ag_reported(t))
            return true;
        t = cs__ag_next(t);
    }
    return false;
}

struct cs__ag_stuck {
    cs_task **all;
    size_t n, unexplained;
};

static void cs__ag_stuck_report(void *arg)
{
    struct cs__ag_stuck *st = arg;
    char what[256], label[160];
    size_t shown = 0;

    if (!cs__ag_report_begin(CS_WARN_DEADLOCK,
                             "deadlock: every task is waiting and nothing can "
                             "wake any of them (%zu tasks)",
                             st->n))
        return;
    for (size_t k = 0; k < st->n && shown < 16; k++) {
        cs_agent_task_info i;
        cs__ag_bt bt;
        if (cs_agent_task_get(st->all[k], &i) != 0 ||
            cs__ag_explained(st->all[k]))
            continue;
        cs__ag_report_line("%s %s, here:",
                           cs__ag_task_label(&i, label, sizeof(label)),
                           cs__ag_wait_text(&i, what, sizeof(what)));
        cs__ag_bt_parked(&bt, i.sp, i.fp, i.ip);
        cs__ag_bt_trim_self(&bt);
        cs__ag_report_stack(&bt);
        shown++;
    }
    if (st->unexplained > shown)
        cs__ag_report_line("... and %zu more", st->unexplained - shown);
    cs__ag_report_end();
}

void cs__ag_loop_stuck(void)
{
    struct cs__ag_stuck st = {NULL, cs_all_tasks(NULL, 0), 0};

    if (!cs__ag_reporting(CS_WARN_DEADLOCK) || st.n == 0)
        return;
    if ((st.all = calloc(st.n, sizeof(*st.all))) == NULL)
        return;
    size_t got = cs_all_tasks(st.all, st.n);
    if (got < st.n)
        st.n = got;
    for (size_t k = 0; k < st.n; k++)
        st.unexplained += !cs__ag_explained(st.all[k]);
    if (st.unexplained) {
        cs__ag_report_trace(CS_WARN_DEADLOCK, 0, NULL);
        cs__ag_report_offstack(CS_WARN_DEADLOCK, cs__ag_stuck_report, &st);
    }
    free(st.all);
}
