/*
 * watch_trace.c - the watchdog's step source: the loop threads' "current
 * step" words that the runtime publishes in its trace segment (each ring
 * header holds its loop thread's tid, step_start and step_task), read in
 * our own process through libtrace's reader (cs_trace_open_pid(getpid())).
 *
 * The reader's functions are strong references (libtrace is merged into
 * libcoscope), so a static link takes the reader too.  The segment appears at
 * the first cs_run (not at all under COSCOPE=off), so opening it is
 * retried, less and less often, up to once a second.
 */
#include "agent.h"

#include <coscope/trace.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>


static cs_trace *cs__ag_self; /* our segment, once open */
static pid_t cs__ag_self_pid; /* the process it belongs to (fork) */
static unsigned cs__ag_wait, cs__ag_waited; /* polls between open attempts */

static bool cs__ag_self_open(void)
{
    if (cs__ag_self && cs__ag_self_pid == getpid())
        return true;
    cs__ag_self = NULL; /* a forked child: the parent's segment is not ours */
    if (cs__ag_waited++ < cs__ag_wait)
        return false;
    cs__ag_waited = 0;
    if (cs_trace_open_pid(getpid(), &cs__ag_self) != 0) {
        cs__ag_self = NULL;
        cs__ag_wait = cs__ag_wait < 100 ? cs__ag_wait * 2 + 1 : cs__ag_wait;
        return false;
    }
    cs__ag_self_pid = getpid();
    /* the segment exists, so cs__tr_stop is registered: registered
     * again now, the watchdog's exit runs before it, and a slow step it
     * reports at exit still reaches the trace (atexit runs the last
     * registered first; the first registration then finds it done) */
    static int reexit;
    if (!reexit++)
        atexit(cs__ag_watchdog_exit);
    return true;
}

static size_t cs__ag_trace_steps(cs__ag_step *out, size_t cap, void *arg)
{
    cs_trace_info info;
    size_t n = 0;

    (void)arg;
    if (!cs__ag_self_open() || cs_trace_info_get(cs__ag_self, &info) != 0)
        return 0;
    for (uint32_t r = 0; r < info.ring_count && n < cap; r++) {
        cs_trace_ring ring;
        if (cs_trace_ring_get(cs__ag_self, r, &ring) != 0 ||
            ring.state != CS_RING_ACTIVE || ring.tid == 0)
            continue;
        out[n].tid = (pid_t)ring.tid;
        out[n].task_id = ring.step_task;
        out[n].seq = ring.switches;
        out[n].start_ns =
            ring.step_start
                ? (int64_t)cs_trace_ns(cs__ag_self, ring.step_start)
                : 0;
        n++;
    }
    return n;
}

void cs__ag_watch_trace_start(void)
{
    static int started;

    if (__atomic_load_n(&started, __ATOMIC_RELAXED) ||
        __atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL))
        return;
    cs__ag_watchdog_start(cs__ag_trace_steps, NULL);
}
