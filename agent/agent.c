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
struct cs__cfg cs__cfg = {.reports = CS_REPORT_ALL, .slow_ns = 100000000};

/* What the runtime references (runtime/agent_hooks.c) so that a static
 * link pulls this file, and with it the constructor below. */
const char cs__agent_linked = 1;

bool cs__preload_on;

static const cs_agent_hooks cs__hooks = {
    .coro_created = cs__coro_created,
    .coro_started = cs__ag_coro_started,
    .coro_unstarted = cs__coro_unstarted,
    .task_raised = cs__task_raised,
    .task_unretrieved = cs__task_unretrieved,
    .task_pending_at_exit = cs__task_pending_at_exit,
    .task_blocking = cs__task_blocking,
    .loop_stuck = cs__loop_stuck,
    .fatal_signal = cs__ag_crash_report,
};

/* Hands the interposer, if the program runs under one, what it needs to
 * report blocking calls: it finds them itself in libcoscope.so, but not
 * in an executable that carries the agent (blocking.h).  True if there
 * is an interposer. */
static bool cs__attach_preload(bool on)
{
    cs_preload_attach_fn *attach =
        (cs_preload_attach_fn *)dlsym(RTLD_DEFAULT, CS_PRELOAD_ATTACH_SYM);

    if (!attach)
        return false;
    if (on)
        cs__preload_on =
            attach((void *(*)(void))cs_current_task, cs_agent_blocking_report);
    return true;
}

__attribute__((constructor)) static void cs__agent_init(void)
{
    cs__cfg_load();
    cs__report_dir_hello(cs__cfg.reports != 0,
                         cs__attach_preload(cs__cfg.reports != 0));
    if (!cs__cfg.reports)
        return;
    /* libunwind opens a pipe for itself at its first use and keeps it;
     * make that happen now, before the program counts its fds. */
    void *ip[1];
    unw_backtrace(ip, 1);
    cs_agent_set_hooks(&cs__hooks);
    cs__watch_trace_start();
}
