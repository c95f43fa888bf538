/*
 * agent.c - installs the detectors as the runtime's agent hooks when
 * libcoscope is loaded, unless COSCOPE_REPORT=off.
 */
#define UNW_LOCAL_ONLY
#include "agent.h"
#include "blocking.h"

#include <dlfcn.h>
#include <libunwind.h>

/* Defined here, next to the constructor, so that a static link that pulls
 * any detector (they all read it) pulls the constructor too. */
struct cs__ag_cfg cs__ag_cfg = {.reports = CS_REPORT_ALL,
                                .slow_ns = 100000000};

/* What the runtime references (runtime/agent_hooks.c) so that a static
 * link pulls this file, and with it the constructor below. */
const char cs__agent_linked = 1;

bool cs__ag_preload_on;

static const cs_agent_hooks cs__ag_hooks = {
    .coro_created = cs__ag_coro_created,
    .coro_started = cs__ag_coro_started,
    .coro_unstarted = cs__ag_coro_unstarted,
    .task_raised = cs__ag_task_raised,
    .task_unretrieved = cs__ag_task_unretrieved,
    .task_pending_at_exit = cs__ag_task_pending_at_exit,
    .task_blocking = cs__ag_task_blocking,
    .loop_stuck = cs__ag_loop_stuck,
    .fatal_signal = cs__ag_crash_report,
};

/* Hands the interposer, if the program runs under one, what it needs to
 * report blocking calls: it finds them itself in libcoscope.so, but not
 * in an executable that carries the agent (blocking.h).  True if there
 * is an interposer. */
static bool cs__ag_attach_preload(bool on)
{
    cs_preload_attach_fn *attach =
        (cs_preload_attach_fn *)dlsym(RTLD_DEFAULT, CS_PRELOAD_ATTACH_SYM);

    if (!attach)
        return false;
    if (on)
        cs__ag_preload_on =
            attach((void *(*)(void))cs_current_task, cs_agent_blocking_report);
    return true;
}

__attribute__((constructor)) static void cs__ag_agent_init(void)
{
    cs__ag_cfg_load();
    cs__ag_report_dir_hello(cs__ag_cfg.reports != 0,
                            cs__ag_attach_preload(cs__ag_cfg.reports != 0));
    if (!cs__ag_cfg.reports)
        return;
    /* libunwind opens a pipe for itself at its first use and keeps it;
     * make that happen now, before the program counts its fds. */
    void *ip[1];
    unw_backtrace(ip, 1);
    cs_agent_set_hooks(&cs__ag_hooks);
    cs__ag_watch_trace_start();
}
