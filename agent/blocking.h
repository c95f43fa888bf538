/*
 * blocking.h - the one call between the interposer (interpose.c, in
 * libcoscope-preload.so) and the agent inside libcoscope.  The interposer
 * finds it with dlsym(RTLD_DEFAULT, CS_AGENT_BLOCKING_SYM) at run time, so
 * it works (and stays silent) in programs without coscope; or the agent
 * attaches itself (CS_PRELOAD_ATTACH_SYM, below).
 */
#ifndef CS_AGENT_BLOCKING_H
#define CS_AGENT_BLOCKING_H

#include <stdint.h>

#define CS_AGENT_BLOCKING_SYM "cs_agent_blocking_report"

/* Reports that the running task called the blocking function `call`,
 * which took took_ns; caller is the return address into the code that
 * called it (the report's stack starts there).  Loop thread, in a task. */
typedef void cs_agent_blocking_fn(const char *call, int64_t took_ns,
                                  const void *caller);

/* The other direction, for a program that carries the agent in its
 * executable (a static link of libcoscope.a), where dlsym(RTLD_DEFAULT)
 * cannot see cs_current_task or the report function: the agent's
 * constructor finds this function of the interposer, when one is loaded,
 * and hands both over.  Returns nonzero (the interposer is there). */
#define CS_PRELOAD_ATTACH_SYM "cs_preload_attach"
typedef int cs_preload_attach_fn(void *(*current_task)(void),
                                 cs_agent_blocking_fn *report);
/* For a coscope loaded after start-up without global symbols (the Python
 * extension, python/): hands the interposer its "is a task running on
 * this thread" and report functions.  Found with dlsym(RTLD_DEFAULT). */
#define CS_PRELOAD_REGISTER_SYM "cs_preload_register"
typedef void cs_preload_register_fn(void *(*current)(void),
                                    cs_agent_blocking_fn *report);

#endif
