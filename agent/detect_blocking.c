/*
 * detect_blocking.c - "blocking call NAME() on the event loop in task 'T'
 * (took X ms)": the agent's half of blocking-call detection.  The other
 * half, interpose.c (libcoscope-preload.so), wraps the blocking functions,
 * times them, and calls cs_agent_blocking_report (blocking.h) when one was
 * called from a task.  Each call site is reported once; sites whose stack
 * holds a function of the COSCOPE_ALLOW file are not reported.
 */
#include "agent.h"
#include "blocking.h"

#include <pthread.h>
#include <string.h>

#define CS__SITES 256

static pthread_mutex_t cs__ag_sites_mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t cs__ag_sites[CS__SITES]; /* open addressing; 0 = empty */

/* True the first time (call, caller) is seen. */
static bool cs__ag_site_new(const char *call, const void *caller)
{
    uintptr_t key = (uintptr_t)caller ^ ((uintptr_t)call << 1), h = key;
    bool fresh = true;

    if (!key)
        return true;
    pthread_mutex_lock(&cs__ag_sites_mu);
    for (int k = 0; k < CS__SITES; k++) {
        uintptr_t *s = &cs__ag_sites[(h + (uintptr_t)k) % CS__SITES];
        if (*s == key) {
            fresh = false;
            break;
        }
        if (*s == 0) {
            *s = key;
            break;
        }
    }
    pthread_mutex_unlock(&cs__ag_sites_mu);
    return fresh;
}

/* Drops the leading frames of a sanitizer's interceptor: with
 * LD_PRELOAD=libasan.so:libcoscope-preload.so ours is called by ASan's.
 * Inside a report (the report lock serialises the symboliser). */
static void cs__ag_drop_interceptors(cs__ag_bt *bt)
{
    int i = 0;
    cs__ag_sym s;

    while (i < bt->n - 1) {
        cs__ag_sym_lookup(bt->ip[i], true, &s);
        if (!s.func || strncmp(s.func, "__interceptor_", 14) != 0)
            break;
        i++;
    }
    memmove(bt->ip, bt->ip + i, (size_t)(bt->n - i) * sizeof(bt->ip[0]));
    bt->n -= i;
}

struct cs__ag_blocking {
    const char *call;
    int64_t took_ns;
    cs_agent_task_info i;
    cs__ag_bt bt;
};

static void cs__ag_blocking_report(void *arg)
{
    struct cs__ag_blocking *b = arg;
    char label[160];

    if (cs__ag_report_allowed(&b->bt))
        return;
    if (!cs__ag_report_begin(
            CS_WARN_BLOCKING,
            "blocking call %s() on the event loop in task '%s' "
            "(took %.1f ms)",
            b->call, b->i.name, (double)b->took_ns / 1e6))
        return;
    cs__ag_drop_interceptors(&b->bt);
    cs__ag_task_label(&b->i, label, sizeof(label));
    if (b->i.file)
        cs__ag_report_line(
            "%s (created at %s:%d) held the loop: no other task "
            "ran meanwhile",
            label, b->i.file, b->i.line);
    else
        cs__ag_report_line("%s held the loop: no other task ran meanwhile",
                           label);
    cs__ag_report_line("called here:");
    cs__ag_report_stack(&b->bt);
    cs__ag_report_end();
}

CS_EXTERN void cs_agent_blocking_report(const char *call, int64_t took_ns,
                                        const void *caller)
{
    cs_task *t = cs_current_task();
    struct cs__ag_blocking b = {.call = call, .took_ns = took_ns};

    if (!t || !cs__ag_reporting(CS_WARN_BLOCKING) || cs__ag_agent_busy() ||
        cs_agent_task_get(t, &b.i) != 0 || !cs__ag_site_new(call, caller) ||
        cs__ag_report_ours((uintptr_t)caller))
        return;
    cs__ag_bt_here(&b.bt, 0);
    cs__ag_bt trace = b.bt;
    cs__ag_bt_from(&b.bt, (uintptr_t)caller);
    cs__ag_bt_trim_self(&b.bt); /* the task's root */
    /* the trace's copy keeps one frame above the caller, the interposer's
     * wrapper: it names the call for readers (coscope report), which
     * leave it out of the stack as this report does */
    for (int i = 1; i < trace.n; i++) {
        if (trace.ip[i] != (uintptr_t)caller)
            continue;
        memmove(trace.ip, trace.ip + i - 1,
                (size_t)(trace.n - i + 1) * sizeof(trace.ip[0]));
        trace.n -= i - 1;
        break;
    }
    if (trace.n > 1 && trace.ip[1] == (uintptr_t)caller)
        cs__ag_report_trace(CS_WARN_BLOCKING, b.i.id, &trace);
    else
        cs__ag_report_trace(CS_WARN_BLOCKING, b.i.id, &b.bt);
    cs__ag_report_offstack(CS_WARN_BLOCKING, cs__ag_blocking_report, &b);
}
